"""kernels.lift: the numba lift against the PyTorch reference on odd frame sizes with depth edges, sky (+inf), far
field, NaN, negative and near depth, with and without a mask and a step limit: the same pixels, the same points and
steps, to the last bit (a step limit: to float rounding)."""
import pytest
import torch

from worldwalk.kernels.lift import depth_edges, lift, lift_ref

numba = pytest.importorskip("numba")
from worldwalk.kernels.lift.cpu import lift_cpu  # noqa: E402

CFG = dict(near=0.05, far=150.0, far_store=1000.0, edge=0.05, edge_inv=0.02)


def scene_depth(H, W, seed):
    """A sloping ground, boxes in front, sky above a horizon, far hills, and a few broken pixels."""
    g = torch.Generator().manual_seed(seed)
    v = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
    z = torch.where(v > H * 0.4, 1.6 * W / (v - H * 0.4 + 0.5), torch.full((H, W), float("inf")))
    z = z * (1 + 0.02 * torch.rand(H, W, generator=g))
    for _ in range(3):
        a, b = (torch.randint(0, max(H - 2, 1), (2,), generator=g)).tolist()
        c, d = (torch.randint(0, max(W - 2, 1), (2,), generator=g)).tolist()
        z[min(a, b):max(a, b) + 2, min(c, d):max(c, d) + 2] = float(torch.rand(1, generator=g) * 10 + 0.5)
    z[: max(H // 5, 1), : W // 2] = 180.0  # far field, inside `far`'s reach
    flat = z.view(-1)
    broken = torch.randint(0, H * W, (max(H * W // 50, 3),), generator=g)
    flat[broken[0::3]] = float("nan")
    flat[broken[1::3]] = -1.0
    flat[broken[2::3]] = 0.01  # nearer than `near`
    return z


@pytest.mark.parametrize("H, W, seed, masked, max_step", [(1, 1, 0, False, 0.0), (7, 5, 1, True, 0.0),
                                                           (37, 53, 2, True, 0.0), (64, 48, 3, False, 0.0),
                                                           (33, 29, 4, True, 2.0)])
def test_numba_is_the_reference(H, W, seed, masked, max_step):
    z = scene_depth(H, W, seed)
    mask = (torch.rand(H, W, generator=torch.Generator().manual_seed(seed)) > 0.3) if masked else None
    intr = (0.8 * W + 0.3, 0.8 * W - 0.2, W / 2 - 0.4, H / 2 + 0.7)
    ref = lift_ref(z, mask, intr, max_step=max_step, **CFG)
    out = lift_cpu(z, mask, intr, max_step=max_step, **CFG)
    assert torch.equal(out[0], ref[0])
    if max_step:
        assert torch.allclose(out[1], ref[1]) and torch.allclose(out[2], ref[2], rtol=1e-5, atol=1e-6)
    else:
        assert torch.equal(out[1], ref[1]) and torch.equal(out[2], ref[2])
    if H * W > 1:
        assert 0 < out[0].numel() < H * W  # some pixels lifted, some not


def test_what_is_lifted_and_how():
    """Broken and edge pixels stay out; sky goes far along its ray; a step on a flat wall is a pixel's width; a step
    across an edge is the fallback; the dispatcher picks the same."""
    H, W = 12, 16
    z = torch.full((H, W), 4.0)
    z[:, 10:] = 8.0  # a step: columns 9 and 10 are on the edge
    z[:2] = float("inf")  # sky: rows 1 and 2 are on its edge
    z[5, 5] = float("nan")
    intr = (20.0, 20.0, 7.5, 5.5)
    idx, cam, steps = lift(z, None, intr, **CFG)
    lifted = torch.zeros(H * W, dtype=torch.bool)
    lifted[idx] = True
    lifted = lifted.view(H, W)
    edges = depth_edges(z, 0.05, 0.02)
    assert edges[2:, 9:11].all() and edges[1:3].all() and not edges[3:, :9].any()
    assert not lifted[2:, 9:11].any() and not lifted[1:3].any() and not lifted[5, 5]
    assert lifted[0].all() and lifted[3:, :9].sum() == 9 * 9 - 5  # NaN is stored far: its 4 neighbours are on an edge
    k = int((idx == 0).nonzero()[0, 0])
    assert cam[k, 2] == 1000.0 and torch.equal(steps[k, 0], torch.tensor([50.0, 0, 0]))  # far: fallback step
    k = int((idx == 7 * W + 3).nonzero()[0, 0])
    assert torch.allclose(cam[k], torch.tensor([(3 - 7.5) / 20 * 4, (7 - 5.5) / 20 * 4, 4.0]))
    assert torch.allclose(steps[k], torch.tensor([[0.2, 0, 0], [0, 0.2, 0]]))  # a flat wall 4 m away
    k = int((idx == 7 * W + 11).nonzero()[0, 0])  # the far side of the step: a wall 8 m away
    assert torch.allclose(steps[k], torch.tensor([[0.4, 0, 0], [0, 0.4, 0]]))
