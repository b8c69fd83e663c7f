"""kernels.splat: the numba kernel against the PyTorch reference on odd shapes, cameras behind and beside the points,
free slots, ties; the dispatcher's choice."""
import numpy as np
import pytest
import torch

from worldwalk.controls.se3 import make_pose, rotation_from_angles
from worldwalk.kernels.splat import splat_backend, splat_ref

numba = pytest.importorskip("numba")
from worldwalk.kernels.splat.cpu import splat_cpu  # noqa: E402


def cloud(M, seed):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randn(M, 3, generator=g) * torch.tensor([3.0, 1.0, 3.0]) + torch.tensor([0.0, 0.0, 5.0])
    rgb = torch.randint(0, 256, (M, 3), dtype=torch.uint8, generator=g)
    conf = torch.rand(M, generator=g)
    conf[torch.rand(M, generator=g) < 0.2] = 0  # free slots
    steps = torch.randn(M, 2, 3, generator=g) * 0.05
    return xyz, rgb, conf, steps.half()


@pytest.mark.parametrize("M, W, H, levels, seed, support", [(1, 5, 3, 1, 0, 0), (257, 37, 23, 3, 1, 0),
                                                             (3000, 64, 48, 4, 2, 0), (2000, 50, 50, 4, 3, 0),
                                                             (257, 37, 23, 3, 1, 2), (3000, 64, 48, 4, 2, 3),
                                                             (2000, 50, 50, 4, 3, 1)])
@pytest.mark.parametrize("crack", [0.0, 1.05])
def test_numba_matches_the_reference(M, W, H, levels, seed, support, crack):
    xyz, rgb, conf, steps = cloud(M, seed)
    poses = np.stack([np.eye(4), make_pose(rotation_from_angles(25.0, -10.0), np.array([0.5, 0.2, 1.5])),
                      make_pose(np.eye(3), np.array([0.0, 0.0, 40.0]))])  # the last stands past the cloud, facing away
    P = torch.from_numpy(poses).float()
    intr = (0.8 * W, 0.8 * W, W / 2 - 0.3, H / 2 + 0.2)
    kw = dict(levels=levels, level_weight=(1.0, 0.85, 0.7, 0.55)[:levels], occlusion=0.08, magnified=1.5, near=0.05,
              support=support, support_ratio=1.3, crack=crack)
    ref = splat_ref(xyz, rgb, conf, steps, P[:, :3, :3], P[:, :3, 3], intr, (W, H), **kw)
    out = splat_cpu(xyz, rgb, conf, steps, P[:, :3, :3], P[:, :3, 3], intr, (W, H), **kw)
    names = ("rgb", "depth", "conf", "level", "owner")
    for name, a, b in zip(names, ref, out):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert torch.equal(torch.isinf(a.float()), torch.isinf(b.float())), name
        diff = (a.float() - b.float()).abs()
        diff = diff[torch.isfinite(diff)]
        # float64 projection in the kernel vs float32 in the reference: a rare point lands one cell over
        assert diff.numel() == 0 or (diff > 1e-4).float().mean() < 2e-3, (name, (diff > 1e-4).float().mean())
    assert not ref[2][2].any() and not out[2][2].any()  # nothing behind the camera is drawn


def test_empty_and_all_free():
    xyz, rgb, conf, steps = cloud(10, 0)
    P = torch.eye(4)[None]
    for c in (conf * 0,):
        out = splat_cpu(xyz, rgb, c, steps, P[:, :3, :3], P[:, :3, 3], (10.0, 10.0, 4.0, 4.0), (8, 8))
        assert not out[2].any() and torch.isinf(out[1]).all() and (out[3] == -1).all() and (out[4] == -1).all()


def test_dispatch(monkeypatch):
    assert splat_backend("cpu") == "numba"
    assert splat_backend("cuda:0") == "reference"
    monkeypatch.setenv("WORLDWALK_KERNELS", "reference")
    assert splat_backend("cpu") == "reference"


@pytest.mark.parametrize("N, C, H, W, seed", [(1, 3, 1, 1, 0), (2, 3, 5, 3, 1), (3, 3, 37, 23, 2), (2, 1, 64, 48, 3),
                                              (1, 2, 33, 65, 4)])
def test_pull_push_matches_the_reference(N, C, H, W, seed):
    from worldwalk.kernels.splat import pull_push_ref
    from worldwalk.kernels.splat.cpu import pull_push_cpu

    g = torch.Generator().manual_seed(seed)
    img = torch.rand(N, C, H, W, generator=g) * 2 - 1
    weight = (torch.rand(N, 1, H, W, generator=g) < 0.3).float() * torch.rand(N, 1, H, W, generator=g)
    if N > 1:
        weight[-1] = 0  # a frame with nothing: its own mean of nothing (0)
    ref, out = pull_push_ref(img, weight), pull_push_cpu(img, weight)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert torch.isfinite(out).all()
    assert torch.equal(out[weight.expand_as(img) > 0], img[weight.expand_as(img) > 0])  # weighted pixels kept
    err = (out - ref).norm() / ref.norm().clamp_min(1e-6)
    assert err < 1e-5, err


@pytest.mark.parametrize("N, H, W, r, seed", [(1, 1, 1, 1, 0), (2, 5, 3, 2, 1), (3, 37, 23, 6, 2), (2, 64, 48, 8, 3),
                                              (1, 9, 70, 12, 4)])
def test_feather_matches_the_reference(N, H, W, r, seed):
    from worldwalk.kernels.splat import feather_ref
    from worldwalk.kernels.splat.cpu import feather_cpu

    g = torch.Generator().manual_seed(seed)
    blobs = torch.nn.functional.interpolate(torch.rand(N, 1, 4, 4, generator=g), size=(H, W), mode="bilinear")
    for mask in ((blobs > 0.5).float(), torch.ones(N, 1, H, W), torch.zeros(N, 1, H, W)):
        ref, out = feather_ref(mask, r), feather_cpu(mask, r)
        assert out.shape == ref.shape and out.dtype == ref.dtype
        assert (out - ref).abs().max() < 1e-5


def test_mark_matches_the_reference():
    from worldwalk.kernels.splat import mark_ref
    from worldwalk.kernels.splat.cpu import mark_cpu

    g = torch.Generator().manual_seed(0)
    owner = torch.randint(-1, 50, (3, 7, 5), generator=g)
    a, b = torch.zeros(50, dtype=torch.int32), torch.zeros(50, dtype=torch.int32)
    assert mark_ref(a, owner, 7) is None and mark_cpu(b, owner, 7) is None
    assert torch.equal(a, b) and set(a.nonzero()[:, 0].tolist()) == set(owner[owner >= 0].tolist())
    # with the slots' pinned flags: also where a pinned slot was drawn (and without seen: nothing stamped)
    pinned = torch.rand(50, generator=g) < 0.3
    want = torch.tensor([[[bool(m >= 0 and pinned[m]) for m in row] for row in cam] for cam in owner.tolist()])
    for seen in (a.clone(), None):
        before = None if seen is None else seen.clone()
        got = mark_cpu(seen, owner, 9, pinned)
        assert got.shape == owner.shape and torch.equal(got, want)
        assert torch.equal(mark_ref(None, owner, 9, pinned), want)
        if seen is not None:
            assert bool((seen[owner[owner >= 0]] == 9).all()) and torch.equal(seen[seen != 9], before[seen != 9])


def test_pull_push_writes_into_a_channels_last_out():
    from worldwalk.kernels.splat import pull_push, pull_push_ref

    g = torch.Generator().manual_seed(5)
    img = torch.rand(3, 3, 20, 28, generator=g)
    weight = (torch.rand(3, 1, 20, 28, generator=g) < 0.5).float()
    for out in (torch.empty(4, 3, 20, 28, memory_format=torch.channels_last)[1:], torch.empty(3, 3, 20, 28)):
        got = pull_push(img, weight, out=out)
        assert got is out
        assert torch.allclose(out, pull_push_ref(img, weight), atol=1e-6)


def grid_points(z: float, f: float, W: int, H: int, rgb):
    """One point per pixel of a W x H camera at the origin (focal f), on the plane at depth z, with its surface steps
    (to the right and lower neighbours' points): a surface as the memory lifts it."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    xyz = torch.stack([(u - W / 2 + 0.5) * z / f, (v - H / 2 + 0.5) * z / f, torch.full_like(u, z)], -1).reshape(-1, 3)
    steps = torch.zeros(len(xyz), 2, 3)
    steps[:, 0, 0] = steps[:, 1, 1] = z / f
    return xyz, torch.tensor(rgb, dtype=torch.uint8).expand(len(xyz), 3).clone(), torch.ones(len(xyz)), steps


@pytest.mark.parametrize("fn", [splat_ref, splat_cpu])
def test_a_lone_fragment_is_not_drawn_as_a_block_but_a_surface_still_fills(fn):
    """Walking 1.5 m towards a lone point 2 m away (magnified 4x) in front of a far wall: with support, the pyramid no
    longer grows it over the wall's own pixels into a square block; a whole near surface magnified alike still
    covers everything it should (its inside and its straight edges: 5 of 8 neighbours)."""
    W = H = 32
    f = 32.0
    wall = grid_points(40.0, 2 * f, 2 * W, 2 * H, (0, 0, 255))  # two points a pixel each way: no holes
    lone = (torch.tensor([[0.01, 0.01, 2.0]]), torch.tensor([[255, 0, 0]], dtype=torch.uint8), torch.ones(1),
            torch.full((1, 2, 3), 0.0).index_put_((torch.tensor([0]), torch.tensor([0]), torch.tensor([0])),
                                                  torch.tensor(2.0 / f)).index_put_(
                (torch.tensor([0]), torch.tensor([1]), torch.tensor([1])), torch.tensor(2.0 / f)))
    near = grid_points(2.0, f, W // 2, H // 2, (255, 0, 0))  # a 16 x 16 pixel patch of surface, 2 m away
    pose = torch.eye(4)[None]
    pose[0, 2, 3] = 1.5  # 1.5 m forward: the points 2 m away now 0.5 m away, 4x magnified
    kw = dict(levels=4, level_weight=(1.0, 0.85, 0.7, 0.55), occlusion=0.08, magnified=1.5, near=0.05)
    for scene, most in (("lone", None), ("near", None)):
        pts = lone if scene == "lone" else near
        cloud_ = tuple(torch.cat([a, b]) for a, b in zip(wall, pts))
        drawn = {}
        for support in (0, 5):
            rgb, depth, *_ = fn(*cloud_, pose[:, :3, :3], pose[:, :3, 3], (f, f, W / 2, H / 2), (W, H),
                                support=support, **kw)
            drawn[support] = int((depth < 10).sum())  # pixels showing the near point(s), not the wall
        if scene == "lone":
            assert drawn[0] >= 16, drawn  # a block: the fragment grown over the wall's pixels
            assert drawn[5] <= 2, drawn  # itself only
        else:
            assert drawn[0] == drawn[5] == W * H, drawn  # the patch, 4x magnified, fills the frame either way


@pytest.mark.parametrize("fn", [splat_ref, splat_cpu])
def test_a_surface_magnified_a_little_shows_no_grid_of_the_background(fn):
    """A 16 x 16 pixel patch of surface 2 m away over a far wall, seen from 0.4 m nearer (1.25x): its points, drawn a
    pixel each, leave a one-pixel gap every fourth row and column, through which the wall shows (crack 0: a grid of
    wall lines over the patch). With crack, the gaps take the patch's own surface, and its outline grows by no more
    than a pixel: the patch covers what its 20 x 20 pixel image covers, and the wall stays around it."""
    W = H = 48
    f = 32.0
    wall = grid_points(40.0, 2 * f, 2 * W, 2 * H, (0, 0, 255))
    near = grid_points(2.0, f, 16, 16, (255, 0, 0))  # pixels 16-31 of a 48-pixel frame seen from the origin
    cloud_ = tuple(torch.cat([a, b]) for a, b in zip(wall, near))
    pose = torch.eye(4)[None]
    pose[0, 2, 3] = 0.4
    kw = dict(levels=4, level_weight=(1.0, 0.85, 0.7, 0.55), occlusion=0.08, magnified=1.5, near=0.05, support=5,
              support_ratio=1.5)
    shown = {}
    for crack in (0.0, 1.05):
        _, depth, *_ = fn(*cloud_, pose[:, :3, :3], pose[:, :3, 3], (f, f, W / 2, H / 2), (W, H), crack=crack, **kw)
        shown[crack] = depth[0] < 10  # the patch, not the wall
    inner = torch.zeros(H, W, dtype=torch.bool)
    inner[15:33, 15:33] = True  # the patch's image at 1.25x (pixels 14-34), less a pixel's margin
    assert (~shown[0.0] & inner).sum() >= 20  # the grid of wall lines
    assert not (~shown[1.05] & inner).any()
    outer = torch.ones(H, W, dtype=torch.bool)
    outer[13:36, 13:36] = False  # beyond a pixel around the image
    assert not (shown[1.05] & outer).any() and not (shown[0.0] & outer).any()
