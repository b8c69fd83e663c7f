"""kernels.behind: the numba fill against the PyTorch reference on odd shapes, random holes and depths (far field,
unseen pixels at inf, equal depths at the tolerance's edge)."""
import pytest
import torch

from worldwalk.kernels.behind import fill_behind_ref

numba = pytest.importorskip("numba")
from worldwalk.kernels.behind.cpu import fill_behind_cpu  # noqa: E402


@pytest.mark.parametrize("N, C, H, W, hole, gap, seed", [(1, 3, 1, 7, 0.5, 2, 0), (3, 3, 23, 37, 0.3, 5, 1),
                                                          (2, 4, 64, 48, 0.7, 24, 2), (12, 3, 16, 256, 0.2, 24, 3)])
def test_numba_matches_the_reference(N, C, H, W, hole, gap, seed):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randn(N, C, H, W, generator=g)
    z = torch.rand(N, H, W, generator=g).mul(3).exp()  # 1 to 20 m
    z[torch.rand(N, H, W, generator=g) < 0.1] = 1000.0  # the far field
    z[:, :, ::5] = 2.0  # some runs end on equal depths: no fill
    seen = torch.rand(N, H, W, generator=g) > hole
    z[~seen] = torch.inf
    ref_out, ref_filled = fill_behind_ref(rgb, z, seen, gap, 0.1)
    out, filled = fill_behind_cpu(rgb, z, seen, gap, 0.1)
    assert ref_filled.any() and not ref_filled.all()
    assert torch.equal(filled, ref_filled) and torch.equal(out, ref_out)
    # a view that is not contiguous (the guess's every s-th frame) reads the same
    sub = slice(0, N, 2)
    out2, filled2 = fill_behind_cpu(rgb[sub], z[sub], seen[sub], gap, 0.1)
    assert torch.equal(out2, ref_out[sub]) and torch.equal(filled2, ref_filled[sub])
