"""The reference of kernels/behind: a hole along a row between a near and a far surface takes the far surface's colour
(world/disocclusion.py says why), in whole-array PyTorch passes.

    out, filled = fill_behind_ref(rgb (N, C, H, W) float, depth (N, H, W) metres where seen, seen (N, H, W) bool,
                                  max_gap, tol)

A pixel is filled when it is unseen, its row has a seen pixel before it (a) and after it (b) with at most max_gap
unseen pixels between them, and max(z_a, z_b) > min(z_a, z_b) (1 + tol); it takes the colour of the farther of the
two (b when z_b > z_a, else a). Everything else is copied; the inputs are not changed.
"""
from __future__ import annotations

import torch

__all__ = ["fill_behind_ref"]


def _ends(seen: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """seen (N, H, W) bool -> the index along `dim` of the nearest seen pixel at or before each pixel (-1: none), and
    at or after it (the length along dim: none)."""
    L = seen.shape[dim]
    shape = [1, 1, 1]
    shape[dim] = L
    ar = torch.arange(L, device=seen.device).view(shape).expand_as(seen)
    before = torch.where(seen, ar, -1).cummax(dim).values
    after = torch.where(seen, ar, L).flip(dim).cummin(dim).values.flip(dim)
    return before, after


def fill_behind_ref(rgb: torch.Tensor, depth: torch.Tensor, seen: torch.Tensor, max_gap: int = 24,
                    tol: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """rgb (N, C, H, W) float; depth (N, H, W) z-depth in metres where seen; seen (N, H, W) bool; max_gap: the
    longest run of unseen pixels along a row that is filled; tol: the ends' depths must differ by more than this share
    of the nearer. -> (rgb with the holes behind objects filled (a new tensor), filled (N, H, W) bool)."""
    N, C, H, W = rgb.shape
    a, b = _ends(seen, 2)  # (N, H, W): the seen pixel before and after each, along its row
    run = b - a - 1
    filled = ~seen & (a >= 0) & (b < W) & (run <= max_gap)
    if not bool(filled.any()):
        return rgb.clone(), filled
    z = depth.float()
    za, zb = z.gather(2, a.clamp(0, W - 1)), z.gather(2, b.clamp(0, W - 1))
    filled &= torch.maximum(za, zb) > torch.minimum(za, zb) * (1 + tol)
    far = torch.where(zb > za, b, a).clamp(0, W - 1)  # (N, H, W) column of the farther end
    pick = rgb.gather(3, far[:, None].expand(N, C, H, W))
    return torch.where(filled[:, None], pick, rgb), filled
