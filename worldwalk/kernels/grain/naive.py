"""The grain lookup in PyTorch (the reference; cpu.py is the same maths compiled with numba).

    lookup_ref(table (6 (n+1)^2,), n, R (N, 3, 3), intrinsics (N, 4), H, W) -> (N, H, W) float32

Pixel (u, v) of camera i looks along R_i ((u − cx)/fx, (v − cy)/fy, 1). The direction's largest component picks a cube
face (2·axis, +1 when negative); the next two components (cyclically), over the largest's magnitude, are the face
coordinates in [−1, 1], scaled to [0, n] on the face's (n+1) x (n+1) lattice. The four lattice neighbours are mixed
bilinearly and divided by the root of the squared weights, so the result has the lattice values' variance at any
offset in the cell.
"""
from __future__ import annotations

import torch


def lookup_ref(table: torch.Tensor, n: int, R: torch.Tensor, intr: torch.Tensor, H: int, W: int) -> torch.Tensor:
    R, intr = R.float(), intr.float()
    x = (torch.arange(W, dtype=torch.float32)[None, None, :] - intr[:, 2, None, None]) / intr[:, 0, None, None]
    y = (torch.arange(H, dtype=torch.float32)[None, :, None] - intr[:, 3, None, None]) / intr[:, 1, None, None]
    d = torch.stack([R[:, i, 0, None, None] * x + R[:, i, 1, None, None] * y + R[:, i, 2, None, None]
                     for i in range(3)], 0)  # (3, N, H, W) world directions
    axis = d.abs().argmax(0)  # (N, H, W)
    major = torch.gather(d, 0, axis[None])[0]
    face = 2 * axis + (major < 0).long()
    s = 0.5 * n / major.abs()
    p = (torch.gather(d, 0, ((axis + 1) % 3)[None])[0] * s + 0.5 * n).clamp(0, n)
    q = (torch.gather(d, 0, ((axis + 2) % 3)[None])[0] * s + 0.5 * n).clamp(0, n)
    p0, q0 = p.floor().clamp(max=n - 1), q.floor().clamp(max=n - 1)
    fp, fq = p - p0, q - q0
    base = face * (n + 1) ** 2 + q0.long() * (n + 1) + p0.long()
    wa, wb, wc, wd = (1 - fp) * (1 - fq), fp * (1 - fq), (1 - fp) * fq, fp * fq
    val = wa * table[base] + wb * table[base + 1] + wc * table[base + n + 1] + wd * table[base + n + 2]
    return val / (wa * wa + wb * wb + wc * wc + wd * wd).sqrt()
