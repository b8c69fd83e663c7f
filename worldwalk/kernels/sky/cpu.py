"""The start picture's sky laid over frames on the CPU, compiled with numba: the same maths as kernels/sky/naive.py, one
pass over the pixels (rows of every camera in parallel), in place, changing only pixels with weight and sky. Compiled
on first use, cached on disk."""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=True)
def _blend(frames, table, lo, inv_step, r1, fx, fy, cx, cy, weight):  # pragma: no cover - compiled
    N, _, H, W = frames.shape
    B = table.shape[0]
    for job in nb.prange(N * H):
        i, v = job // H, job % H
        y = (v + 0.5 - cy) / fy
        base = r1[i, 1] * y + r1[i, 2]
        ts = np.empty(W)
        for u in range(W):  # each pixel's elevation, as a table position: one loop without branches (it vectorises;
            # pixel by pixel, the square root and division cost more than working out every pixel's)
            x = (u + 0.5 - cx) / fx
            s = -(r1[i, 0] * x + base) / math.sqrt(x * x + y * y + 1.0)
            ts[u] = min(max((s - lo) * inv_step, 0.0), B - 1.0)
        for u in range(W):
            k = weight[i, v, u]
            if k <= 0.0:
                continue
            t = ts[u]
            i0 = min(int(t), B - 1)
            i1 = min(i0 + 1, B - 1)
            f = t - i0
            share = table[i0, 0] + f * (table[i1, 0] - table[i0, 0])
            a = k * share
            if a <= 0.0:
                continue
            for c in range(3):
                col = table[i0, c + 1] + f * (table[i1, c + 1] - table[i0, c + 1])
                frames[i, c, v, u] += a * (col - frames[i, c, v, u])


def sky_blend_cpu(frames: torch.Tensor, table: torch.Tensor, lo: float, step: float, c2w, intr,
                  weight: torch.Tensor) -> torch.Tensor:
    """As sky_blend_ref, in place into frames when they are float32 (any strides), else into a float32 copy."""
    out = frames if frames.dtype == torch.float32 else frames.float()
    fx, fy, cx, cy = (float(v) for v in np.asarray(intr, dtype=np.float64).reshape(4))
    r1 = np.ascontiguousarray(np.asarray(c2w, dtype=np.float64).reshape(-1, 4, 4)[:, 1, :3])
    _blend(out.numpy(), table.double().contiguous().numpy(), float(lo), 1.0 / float(step), r1, fx, fy, cx, cy,
           weight.float().contiguous().numpy())
    return out
