"""kernels.sky: the numba sky blend against the PyTorch reference on odd shapes, cameras that turn, roll, look up and
down, weights with zeros, fractions and ones, and frames given as a strided view (changed in place); pixels without
weight or without sky are left exactly as they were."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from worldwalk.kernels.sky import sin_elevation, sky_blend_ref

numba = pytest.importorskip("numba")
from worldwalk.kernels.sky.cpu import sky_blend_cpu  # noqa: E402


def cameras(N, seed):
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (N, 1, 1))
    angles = np.stack([rng.uniform(-0.5, 0.5, N), rng.uniform(-3, 3, N), rng.uniform(-0.2, 0.2, N)], 1)
    angles[0] = 0
    if N > 1:
        angles[1] = [-1.2, 0.4, 0.0]  # looking up past the table's top rows
    c2w[:, :3, :3] = Rotation.from_euler("xyz", angles).as_matrix()
    c2w[:, :3, 3] = rng.uniform(-3, 3, (N, 3))
    return c2w


def table(B, seed):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(B, 4, generator=g) * 2 - 1
    t[:, 0] = torch.rand(B, generator=g)
    t[: B // 2, 0] = 0  # no sky below the horizon
    t[B // 2: B // 2 + 3, 0] = 1
    return t


@pytest.mark.parametrize("N, W, H, B, seed", [(1, 5, 3, 7, 0), (3, 37, 23, 61, 1), (6, 64, 48, 231, 2)])
def test_numba_matches_the_reference(N, W, H, B, seed):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(N, 3, H, W, generator=g) * 2 - 1
    tab = table(B, seed)
    lo, step = -1.0, 2.0 / (B - 1)
    intr = (0.7 * W, 0.75 * W, W / 2 + 0.2, H / 2 - 0.4)
    c2w = cameras(N, seed)
    weight = torch.rand(N, H, W, generator=g)
    weight[weight < 0.3] = 0
    weight[weight > 0.8] = 1
    ref = sky_blend_ref(frames, tab, lo, step, c2w, intr, weight)
    strided = frames.transpose(0, 1).contiguous().transpose(0, 1)  # (N, 3, H, W) as a view of (3, N, H, W)
    out = sky_blend_cpu(strided, tab, lo, step, c2w, intr, weight)
    assert out.data_ptr() == strided.data_ptr()  # in place
    assert out.shape == ref.shape == (N, 3, H, W) and torch.isfinite(out).all()
    rel = ((out - ref).pow(2).mean() / ref.pow(2).mean()).sqrt()
    assert rel < 1e-5, float(rel)
    untouched = (weight == 0)[:, None].expand_as(out)
    assert torch.equal(out[untouched], frames[untouched])
    below = (sin_elevation(c2w, intr, (W, H)) < -0.05)[:, None].expand_as(out)  # the table's share is 0 there
    assert torch.equal(out[below], frames[below])
    if N > 1:
        assert not torch.equal(out, frames)
