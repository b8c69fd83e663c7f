"""The k x k median filter in PyTorch (the reference; kernels/median/cpu.py is the same result, compiled).

    median_ref(x (N, 1, H, W), k odd) -> (N, 1, H, W): each pixel the median of its k x k neighbourhood, the image's
    edges replicated (scipy.ndimage.median_filter with mode="nearest")
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def median_ref(x: torch.Tensor, k: int) -> torch.Tensor:
    r = k // 2
    N, _, H, W = x.shape
    cols = F.pad(x, (r, r, r, r), mode="replicate")[:, 0].unfold(1, k, 1).unfold(2, k, 1)  # (N, H, W, k, k) view
    return cols.reshape(N, H, W, k * k).median(-1).values[:, None]
