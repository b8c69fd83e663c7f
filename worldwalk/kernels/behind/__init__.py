"""The holes behind objects (world/disocclusion.py): `fill_behind(rgb, depth, seen, max_gap, tol)`, with the numba
kernel on the CPU (when numba imports and WORLDWALK_KERNELS is not "reference") and the PyTorch reference otherwise.
See naive.py for the rule."""
from __future__ import annotations

import torch

from worldwalk.kernels.behind.naive import fill_behind_ref
from worldwalk.kernels.splat import splat_backend

__all__ = ["fill_behind", "fill_behind_ref"]


def fill_behind(rgb: torch.Tensor, depth: torch.Tensor, seen: torch.Tensor, max_gap: int = 24, tol: float = 0.1
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """rgb (N, C, H, W) float; depth (N, H, W) z-depth in metres where seen; seen (N, H, W) bool -> (rgb with the
    holes behind objects filled (a new tensor), filled (N, H, W) bool)."""
    if splat_backend(rgb.device) == "numba" and not rgb.requires_grad:
        from worldwalk.kernels.behind.cpu import fill_behind_cpu

        return fill_behind_cpu(rgb, depth, seen, max_gap, tol)
    return fill_behind_ref(rgb, depth, seen, max_gap, tol)
