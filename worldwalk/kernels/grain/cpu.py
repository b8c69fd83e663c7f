"""The grain lookup on the CPU, compiled with numba: the same maths as kernels/grain/naive.py, one pass per pixel
(rows of every camera in parallel) instead of ~30 whole-array PyTorch passes. Compiled on first use, cached on disk."""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _lookup(table, n, R, intr, H, W, out):  # pragma: no cover - compiled
    N = R.shape[0]
    m = n + 1
    for job in nb.prange(N * H):
        i, v = job // H, job % H
        fx, fy, cx, cy = intr[i, 0], intr[i, 1], intr[i, 2], intr[i, 3]
        y = (v - cy) / fy
        for u in range(W):
            x = (u - cx) / fx
            d0 = R[i, 0, 0] * x + R[i, 0, 1] * y + R[i, 0, 2]
            d1 = R[i, 1, 0] * x + R[i, 1, 1] * y + R[i, 1, 2]
            d2 = R[i, 2, 0] * x + R[i, 2, 1] * y + R[i, 2, 2]
            a0, a1, a2 = abs(d0), abs(d1), abs(d2)
            if a0 >= a1 and a0 >= a2:  # ties to the lower axis, as argmax
                axis, major, o1, o2 = 0, d0, d1, d2
            elif a1 >= a2:
                axis, major, o1, o2 = 1, d1, d2, d0
            else:
                axis, major, o1, o2 = 2, d2, d0, d1
            face = 2 * axis + (1 if major < 0 else 0)
            s = 0.5 * n / abs(major)
            p = min(max(o1 * s + 0.5 * n, 0.0), float(n))
            q = min(max(o2 * s + 0.5 * n, 0.0), float(n))
            p0 = min(math.floor(p), n - 1)
            q0 = min(math.floor(q), n - 1)
            fp, fq = p - p0, q - q0
            b = face * m * m + int(q0) * m + int(p0)
            wa, wb, wc, wd = (1 - fp) * (1 - fq), fp * (1 - fq), (1 - fp) * fq, fp * fq
            val = wa * table[b] + wb * table[b + 1] + wc * table[b + m] + wd * table[b + m + 1]
            out[i, v, u] = val / math.sqrt(wa * wa + wb * wb + wc * wc + wd * wd)


def lookup_cpu(table: torch.Tensor, n: int, R: torch.Tensor, intr: torch.Tensor, H: int, W: int) -> torch.Tensor:
    out = np.empty((R.shape[0], H, W), np.float32)
    _lookup(table.numpy(), n, R.float().contiguous().numpy(), intr.float().contiguous().numpy(), H, W, out)
    return torch.from_numpy(out)
