"""Colour matching of decoded frames to the start image.

A small VAE loses colour in a scene-dependent way (saturated reds come back olive, a bright sky comes back grey), and
every frame of a walk goes through the same decoder, so the loss is the same all walk long. The session knows one
frame exactly: the start image. At start it fits one affine colour map from the decoded start frame to the image

    A = argmin_A ||[x, 1] A - y||² + λ·P·||A - A_id||²         x, y: (P, 3) decoded / true pixels in [-1, 1]

(ridge towards the identity, so a flat or single-colour image gives back about the identity) and applies it to every
decoded frame of the walk: 12 numbers, fitted once, a few milliseconds per chunk.
"""
from __future__ import annotations

import torch

RIDGE = 1e-3


def identity_map(device=None) -> torch.Tensor:
    """(4, 3): rows 0-2 the colour matrix, row 3 the offset."""
    return torch.cat([torch.eye(3), torch.zeros(1, 3)]).to(device)


def fit_colour_map(decoded: torch.Tensor, target: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """decoded, target: (3, H, W) in [-1, 1] (the same view) -> (4, 3) float32 map (identity if the fit fails)."""
    x = decoded.detach().double().reshape(3, -1).T  # (P, 3)
    y = target.detach().double().reshape(3, -1).T  # (P, 3)
    if x.shape != y.shape:
        raise ValueError(f"colour map: decoded {tuple(decoded.shape)} and target {tuple(target.shape)} differ")
    X = torch.cat([x, torch.ones_like(x[:, :1])], 1)  # (P, 4)
    lam = ridge * X.shape[0]
    a_id = identity_map(X.device).double()
    A = torch.linalg.solve(X.T @ X + lam * torch.eye(4, dtype=X.dtype, device=X.device), X.T @ y + lam * a_id)
    if not torch.isfinite(A).all():
        return identity_map(decoded.device)
    return A.float()


def apply_colour_map(frames: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """frames (B, 3, F, H, W) in [-1, 1], A (4, 3) -> (B, 3, F, H, W) float32 (not clamped)."""
    f = frames.float()
    A = A.to(f.device, torch.float32)
    return torch.einsum("bcfhw,cd->bdfhw", f, A[:3]) + A[3].view(1, 3, 1, 1, 1)
