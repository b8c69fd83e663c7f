"""kernels.grain: the numba lookup against the PyTorch reference on odd shapes and cameras looking along every cube
face and across its edges; the values are unit-variance noise whatever the sub-cell offset."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from worldwalk.kernels.grain import lookup_ref

numba = pytest.importorskip("numba")
from worldwalk.kernels.grain.cpu import lookup_cpu  # noqa: E402


def cameras(N, W, H, seed):
    R = torch.from_numpy(Rotation.random(N, random_state=seed).as_matrix()).float()
    R[0] = torch.eye(3)  # straight down a face's axis, and (below) exactly at a cube edge
    if N > 1:
        R[1] = torch.from_numpy(Rotation.from_euler("y", 45, degrees=True).as_matrix()).float()
    f = 0.7 * W
    intr = torch.tensor([[f, f * 1.1, W / 2 - 0.3, H / 2 + 0.4]]).expand(N, 4).contiguous()
    return R, intr, f


@pytest.mark.parametrize("N, W, H, seed", [(1, 5, 3, 0), (3, 37, 23, 1), (6, 64, 48, 2)])
def test_numba_matches_the_reference(N, W, H, seed):
    R, intr, f = cameras(N, W, H, seed)
    n = int(np.ceil(2 * f))
    table = torch.randn(6 * (n + 1) ** 2, generator=torch.Generator().manual_seed(seed))
    ref = lookup_ref(table, n, R, intr, H, W)
    out = lookup_cpu(table, n, R, intr, H, W)
    assert out.shape == ref.shape == (N, H, W) and torch.isfinite(out).all()
    rel = ((out - ref).pow(2).mean() / ref.pow(2).mean()).sqrt()
    assert rel < 1e-4, float(rel)


def test_unit_variance_at_every_offset():
    """A plain bilinear read halves the variance between lattice points; the normalised one does not: the per-column
    variance stays near 1 across the cell offsets a half-pixel focal length puts every column at."""
    R, intr, _ = cameras(64, 96, 96, 3)
    n = 61  # not matched to the focal length: every column sits at a different offset in its cell
    table = torch.randn(6 * (n + 1) ** 2, generator=torch.Generator().manual_seed(0))
    g = lookup_cpu(table, n, R, intr, 96, 96)
    assert abs(float(g.mean())) < 0.05 and abs(float(g.std()) - 1) < 0.05
    col = g[:, 40:56, :].reshape(-1, 96).std(0)  # near the centre: one face mostly
    assert float(col.min()) > 0.8, col
