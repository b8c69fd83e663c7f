"""kernels.median: the numba k x k median (a pruned sorting network per row) against the PyTorch reference and scipy
on odd shapes, sizes 3 to 9, frames smaller than the window, ties and infinities; the network sorts what it keeps."""
import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

from worldwalk.kernels.median import median, median_ref

numba = pytest.importorskip("numba")
from worldwalk.kernels.median.cpu import median_cpu, median_network  # noqa: E402


@pytest.mark.parametrize("shape, k", [((3, 1, 37, 53), 5), ((2, 1, 9, 11), 3), ((1, 1, 5, 4), 7), ((1, 1, 1, 1), 5),
                                      ((2, 1, 20, 31), 9), ((1, 1, 64, 64), 5)])
def test_numba_is_the_reference_exactly(shape, k):
    g = torch.Generator().manual_seed(k * 100 + shape[-1])
    x = torch.randn(shape, generator=g)
    x[0, 0, : shape[2] // 2, : shape[3] // 2] = 0.5  # ties
    x[0, 0, -1, -1] = float("inf")
    x[-1, 0, 0, -1] = -float("inf")
    out = median_cpu(x, k)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.equal(out, median_ref(x, k))
    assert np.array_equal(out.numpy(), ndimage.median_filter(x.numpy(), size=(1, 1, k, k), mode="nearest"))


@pytest.mark.parametrize("n", [9, 25, 49])
def test_the_pruned_network_puts_the_median_in_the_middle_wire(n):
    """Any input (0/1 inputs decide a comparator network: the zero-one principle, on every 0/1 vector for n = 9,
    random ones above)."""
    pairs = median_network(n)
    assert (pairs[:, 0] < pairs[:, 1]).all() and (pairs[:, 1] < n).all()
    rng = np.random.default_rng(n)
    vecs = (np.array(list(itertools.product((0, 1), repeat=n)), np.int8) if n <= 9 else rng.integers(0, 2, (20000, n)))
    v = vecs.T.copy()  # (n, cases)
    for a, b in pairs:
        v[a], v[b] = np.minimum(v[a], v[b]), np.maximum(v[a], v[b])
    assert np.array_equal(v[n // 2], np.sort(vecs, 1)[:, n // 2])


def test_the_dispatch_falls_back_on_nan_and_gradients():
    """NaN goes to the reference (torch.median puts NaN first; min and max do not order it), as does a tensor that
    needs its gradient; both give torch's answer."""
    x = torch.randn(1, 1, 8, 8)
    x[0, 0, 3, 3] = float("nan")
    out, ref = median(x, 3), median_ref(x, 3)
    assert torch.isnan(out).sum() > 0 and torch.equal(torch.isnan(out), torch.isnan(ref))
    assert torch.equal(out[~torch.isnan(out)], ref[~torch.isnan(ref)])
    y = torch.randn(1, 1, 8, 8, requires_grad=True)
    median(y, 3).sum().backward()
    assert y.grad is not None and y.grad.sum() == 64
