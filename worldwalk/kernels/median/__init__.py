"""The k x k median filter the depth network's predictions go through (world/depth.py): `median(x, k)` runs the
numba kernel on CPU tensors (when numba imports and WORLDWALK_KERNELS is not "reference"; NaN-free input: a sorting
network's min and max do not order NaN as torch.median does) and the PyTorch reference otherwise. See naive.py."""
from __future__ import annotations

import torch

from worldwalk.kernels.median.naive import median_ref
from worldwalk.kernels.splat import splat_backend

__all__ = ["median", "median_ref"]


def median(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, 1, H, W) -> the median of each pixel's k x k neighbourhood (k odd; edges replicated)."""
    if k > 1 and splat_backend(x.device) == "numba" and not x.requires_grad and not bool(torch.isnan(x).any()):
        from worldwalk.kernels.median.cpu import median_cpu

        return median_cpu(x, k)
    return median_ref(x, k)
