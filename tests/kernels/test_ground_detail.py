"""kernels.ground: the numba ground-detail lookup against the PyTorch reference on odd shapes, cameras that walk,
turn, roll and look up at the sky, and weights with zeros, fractions and ones; only weighted pixels below the horizon
are drawn, and a point past the source rectangle reads its mirror image; with depth bands, far ground reads the band
of its own scale, and a point between two bands keeps the texture's contrast."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from worldwalk.kernels.ground import draw_ref, fold

numba = pytest.importorskip("numba")
from worldwalk.kernels.ground.cpu import draw_cpu  # noqa: E402

EYE = 1.6


def cameras(N, seed):
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (N, 1, 1))
    angles = np.stack([rng.uniform(-0.3, 0.3, N), rng.uniform(-3, 3, N), rng.uniform(-0.1, 0.1, N)], 1)
    angles[0] = 0
    if N > 1:
        angles[1] = [-0.9, 0.4, 0.0]  # looking up: mostly sky
    c2w[:, :3, :3] = Rotation.from_euler("xyz", angles).as_matrix()
    c2w[:, :3, 3] = rng.uniform(-6, 6, (N, 3)) * [1, 0.05, 1]
    return torch.from_numpy(c2w).float()


@pytest.mark.parametrize("N, W, H, Ws, Hs, seed, bands", [(1, 5, 3, 7, 9, 0, 1), (3, 37, 23, 41, 29, 1, 1),
                                                          (6, 64, 48, 96, 64, 2, 1), (3, 37, 23, 41, 29, 3, 2),
                                                          (6, 64, 48, 96, 64, 4, 4)])
def test_numba_matches_the_reference(N, W, H, Ws, Hs, seed, bands):
    g = torch.Generator().manual_seed(seed)
    high = torch.randn(3, Hs, Ws, generator=g) * 0.1
    src = (0.8 * Ws, 0.8 * Ws, Ws / 2 - 0.3, Hs / 2 - 3.2)
    rect = (2.0, 5.0, 1.1, bands)
    intr = (0.7 * W, 0.75 * W, W / 2 + 0.2, H / 2 - 0.4)
    c2w = cameras(N, seed)
    weight = torch.rand(N, H, W, generator=g)
    weight[weight < 0.3] = 0
    weight[weight > 0.8] = 1
    ref = draw_ref(high, src, EYE, rect, c2w, intr, weight)
    out = draw_cpu(high, src, EYE, rect, c2w, intr, weight)
    assert out.shape == ref.shape == (N, 3, H, W) and torch.isfinite(out).all()
    assert (out[(weight == 0)[:, None].expand_as(out)] == 0).all()
    if ref.abs().sum() > 0:
        rel = ((out - ref).pow(2).mean() / ref.pow(2).mean()).sqrt()
        assert rel < 1e-4, float(rel)
    else:
        assert out.abs().sum() == 0


def test_only_the_ground_is_drawn_and_far_points_read_their_mirror_image():
    W = H = 32
    high = torch.zeros(3, H, W)
    high[:, 20:, :] = torch.linspace(-0.2, 0.2, W)  # a ramp across the picture's ground
    src = intr = (30.0, 30.0, 15.5, 15.5)
    one = torch.ones(1, H, W)
    d = draw_cpu(high, src, EYE, (2.0, 6.0, 1.5), torch.eye(4)[None], intr, one)
    assert d[0, :, :16].abs().max() == 0  # the horizon row and the sky
    assert d[0, :, 20:].abs().mean() > 0.01
    # beyond the rectangle's right edge by s, a ground point reads the point s inside it (its mirror image)
    assert float(fold(torch.tensor(1.5 + 0.4), -1.5, 1.5)) == pytest.approx(1.1)
    assert float(fold(torch.tensor(6.0 + 0.5), 2.0, 6.0)) == pytest.approx(5.5)


def test_adding_to_uint8_frames_matches_the_reference_and_clips():
    N, W, H = 3, 37, 23
    g = torch.Generator().manual_seed(5)
    high = torch.randn(3, 29, 41, generator=g) * 0.3  # large: some sums leave [0, 255]
    src, rect, intr = (33.0, 33.0, 20.2, 11.3), (2.0, 5.0, 1.1), (26.0, 28.0, 18.7, 11.1)
    c2w = cameras(N, 4)
    weight = torch.rand(N, H, W, generator=g)
    frames = np.random.default_rng(0).integers(0, 256, (N, H, W, 3)).astype(np.uint8)
    frames[:, -4:] = 255
    from worldwalk.kernels.ground import add_u8_ref
    from worldwalk.kernels.ground.cpu import add_u8_cpu

    ref = add_u8_ref(frames.copy(), high, src, EYE, rect, c2w, intr, weight)
    out = add_u8_cpu(frames.copy(), high, src, EYE, rect, c2w, intr, weight)
    assert out.dtype == np.uint8 and (out != frames).mean() > 0.1
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1  # one level at most (rounding of a float sum)
    exact = (frames + 127.5 * draw_ref(high, src, EYE, rect, c2w, intr, weight).permute(0, 2, 3, 1).numpy())
    assert np.abs(out - np.clip(np.round(exact), 0, 255)).max() <= 1


def test_far_ground_reads_the_band_of_its_own_scale():
    """Bands r = 2.5 times as far as the one before: ground as far as band 1's far edge reads band 1 with its full
    contrast (its source is as fine as the view), where one band alone fades it by the distance over the source's;
    nearer than band 0's far edge, the start camera reads band 0 alone, as with one band."""
    H, W = 200, 160
    high = torch.zeros(3, H, W)
    high[:, 101:] = torch.from_numpy(np.random.default_rng(0).normal(0, 0.05, (H - 101, W))).float()
    src = intr = (100.0, 100.0, 79.5, 99.5)
    z0, z1 = 2.0, 5.0
    rect = (z0, z1, 1.5)
    one = torch.ones(1, H, W)
    one_band, three = (draw_ref(high, src, EYE, rect + (b,), torch.eye(4)[None], intr, one)[0] for b in (1, 3))
    out = draw_cpu(high, src, EYE, rect + (3,), torch.eye(4)[None], intr, one)[0]
    assert ((out - three).pow(2).mean() / three.pow(2).mean()).sqrt() < 1e-4
    ref = high[:, 101:].pow(2).mean()
    far = slice(103, 125)  # ground 7.4-46 m away: bands 1-2 (band 0's far edge is 5 m)
    assert three[:, far].pow(2).mean() > 0.4 * ref and one_band[:, far].pow(2).mean() < 0.2 * ref
    assert torch.equal(one_band[:, 185:], three[:, 185:])  # nearer than band 0's far edge: band 0 alone
