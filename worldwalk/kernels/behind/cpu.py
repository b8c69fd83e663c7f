"""kernels/behind on the CPU, compiled with numba: the rule of naive.py in one pass along each row (the rows of every
frame in parallel) instead of a dozen whole-array PyTorch passes. Compiled on first use, cached on disk."""
from __future__ import annotations

import numba as nb
import numpy as np
import torch


@nb.njit(parallel=True, cache=True)
def _fill(rgb, z, seen, max_gap, tol, out, filled):  # pragma: no cover - compiled
    N, C, H, W = rgb.shape
    for job in nb.prange(N * H):
        i, v = job // H, job % H
        last = -1  # the last seen pixel of the row so far
        for u in range(W):
            if not seen[i, v, u]:
                continue
            run = u - last - 1
            if last >= 0 and 0 < run <= max_gap:
                za, zb = z[i, v, last], z[i, v, u]
                if max(za, zb) > min(za, zb) * (1 + tol):
                    src = u if zb > za else last
                    for k in range(last + 1, u):
                        filled[i, v, k] = True
                        for c in range(C):
                            out[i, c, v, k] = rgb[i, c, v, src]
            last = u


def fill_behind_cpu(rgb: torch.Tensor, depth: torch.Tensor, seen: torch.Tensor, max_gap: int = 24, tol: float = 0.1
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """As kernels.behind.fill_behind_ref (float32 arithmetic on the depths)."""
    src = rgb.detach().float().contiguous()
    out = src.clone()
    filled = torch.zeros(seen.shape, dtype=torch.bool)
    _fill(src.numpy(), depth.detach().float().contiguous().numpy(), seen.contiguous().numpy(), int(max_gap),
          np.float32(tol), out.numpy(), filled.numpy())
    return out.to(rgb.dtype), filled
