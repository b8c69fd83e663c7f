"""The start picture's sky laid over frames (world/sky.py), in PyTorch: the reference the numba kernel is tested against.

    s      = sin(elevation) of pixel (u, v)'s ray in camera i = -(R[1] . (x, y, 1)) / |(x, y, 1)|,   x = (u + 0.5 - cx) / fx
    t      = (s - lo) / step, clamped to [0, B - 1]; the table (B, 4) = [share, r, g, b] read linearly at t
    frames += weight · share · ([r, g, b] - frames)
"""
from __future__ import annotations

import numpy as np
import torch


def sin_elevation(c2w, intr, size_wh: tuple[int, int]) -> torch.Tensor:
    """c2w (N, 4, 4) (y down), intr [fx, fy, cx, cy] in pixels of size (W, H) -> (N, H, W) float32: the sine of each
    pixel centre's ray elevation above level."""
    W, H = int(size_wh[0]), int(size_wh[1])
    fx, fy, cx, cy = (float(v) for v in np.asarray(intr, dtype=np.float64).reshape(4))
    x = (torch.arange(W, dtype=torch.float64) + 0.5 - cx) / fx
    y = (torch.arange(H, dtype=torch.float64) + 0.5 - cy) / fy
    r1 = torch.as_tensor(np.asarray(c2w, dtype=np.float64)).reshape(-1, 4, 4)[:, 1, :3]  # (N, 3): the world's y row
    dy = r1[:, 0, None, None] * x[None, None, :] + r1[:, 1, None, None] * y[None, :, None] + r1[:, 2, None, None]
    return (-dy / torch.sqrt(x[None, :] ** 2 + y[:, None] ** 2 + 1)[None]).float()  # a rotation keeps lengths


def lookup(table: torch.Tensor, lo: float, step: float, s: torch.Tensor) -> torch.Tensor:
    """table (B, 4), s (...) -> (..., 4): the table read linearly at (s - lo) / step (clamped to its ends)."""
    t = ((s.double() - lo) / step).clamp(0, table.shape[0] - 1)
    i0 = t.floor().long()
    i1 = (i0 + 1).clamp_max(table.shape[0] - 1)
    f = (t - i0.double()).float()[..., None]
    return torch.lerp(table[i0], table[i1], f)


def sky_blend_ref(frames: torch.Tensor, table: torch.Tensor, lo: float, step: float, c2w, intr,
                  weight: torch.Tensor) -> torch.Tensor:
    """frames (N, 3, H, W) float32; table (B, 4); weight (N, H, W) in [0, 1] -> the frames with the sky laid over
    them (a new tensor)."""
    N, _, H, W = frames.shape
    v = lookup(table.float(), lo, step, sin_elevation(c2w, intr, (W, H)))  # (N, H, W, 4)
    k = (weight.float() * v[..., 0])[:, None]
    return torch.lerp(frames.float(), v[..., 1:].permute(0, 3, 1, 2), k)
