"""Positional encodings inside attention heads: 3-D rotary embedding and the UCPE per-ray transforms.

RoPE acts on interleaved channel pairs (2i, 2i+1). For head dim D the D/2 pairs are split over (time, height, width) as
(D/2 - 2*(D//6), D//6, D//6), each axis with its own frequency ladder theta^(-2j/d_axis). Positions are absolute: a
streaming chunk that starts at latent frame f0 uses times f0, f0+1, ...

UCPE (camera branch): per token a rigid 4x4 world->ray transform P. The first half of each head's channels is taken as
groups of 4 and multiplied by a 4x4 matrix (Pᵀ for queries, P⁻¹ for keys and values, P for outputs); the second half
gets RoPE re-sliced to D/2 (the first entries of each axis' ladder), inverse-rotated on the output.
"""
from __future__ import annotations

import torch


def _axis_freqs(dim: int, theta: float) -> torch.Tensor:
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32)[: dim // 2] / dim))


def rope_axis_split(head_dim: int) -> tuple[int, int, int]:
    """Number of rotated pairs per axis (t, h, w)."""
    return head_dim // 2 - 2 * (head_dim // 6), head_dim // 6, head_dim // 6


def rope_angles(head_dim: int, thw: tuple[int, int, int], theta: float = 10000.0, frame_offset: int = 0,
                pairs: tuple[int, int, int] | None = None, device=None) -> torch.Tensor:
    """Rotation angles (N, pairs) for tokens ordered frame, row, column.

    `pairs` selects how many leading frequencies of each axis to keep (for the camera branch's D/2 re-slice); the
    ladders themselves are always those of `head_dim`.
    """
    T, H, W = thw
    nt, nh, nw = rope_axis_split(head_dim)
    ft = _axis_freqs(2 * nt, theta)  # t ladder over its 2*nt real dims
    fh = _axis_freqs(2 * (head_dim // 6), theta)
    fw = _axis_freqs(2 * (head_dim // 6), theta)
    if pairs is not None:
        ft, fh, fw = ft[: pairs[0]], fh[: pairs[1]], fw[: pairs[2]]
    at = torch.outer(torch.arange(frame_offset, frame_offset + T), ft)  # (T, nt)
    ah = torch.outer(torch.arange(H), fh)
    aw = torch.outer(torch.arange(W), fw)
    ang = torch.cat([
        at[:, None, None].expand(T, H, W, -1),
        ah[None, :, None].expand(T, H, W, -1),
        aw[None, None, :].expand(T, H, W, -1),
    ], dim=-1)
    return ang.reshape(T * H * W, -1).to(device)


class Rope:
    """cos/sin tables (N, D/2) of one token layout, applied to (..., N, D) tensors."""

    def __init__(self, angles: torch.Tensor):
        self.cos, self.sin = angles.cos(), angles.sin()

    def apply(self, x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        xf = x.float().unflatten(-1, (-1, 2))
        x0, x1 = xf[..., 0], xf[..., 1]
        sin = -self.sin if inverse else self.sin
        out = torch.stack([x0 * self.cos - x1 * sin, x0 * sin + x1 * self.cos], dim=-1)
        return out.flatten(-2).to(x.dtype)


def camera_rope(head_dim: int, thw, theta: float = 10000.0, frame_offset: int = 0, device=None) -> Rope:
    """The D/2-wide RoPE of the camera branch (leading frequencies of each axis of the D-wide ladders)."""
    return Rope(rope_angles(head_dim, thw, theta, frame_offset, pairs=rope_axis_split(head_dim // 2), device=device))


def ucpe_apply(x: torch.Tensor, M: torch.Tensor, rope: Rope, inverse_rope: bool = False) -> torch.Tensor:
    """x (B, H, N, D), M (B, N, 4, 4) -> (B, H, N, D): first half by M in groups of 4, second half rotated."""
    B, Hh, N, D = x.shape
    proj, rot = x.split(D // 2, dim=-1)
    proj = (M[:, None].float() @ proj.float().reshape(B, Hh, N, D // 8, 4).transpose(-1, -2)).transpose(-1, -2)
    return torch.cat([proj.reshape(B, Hh, N, D // 2).to(x.dtype), rope.apply(rot, inverse_rope)], dim=-1)


def downscale_to_reference_rms(ref: torch.Tensor, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Shrink x where its per-token channel RMS exceeds that of ref (never enlarges). Both (..., D)."""
    ref_rms = (ref.square().mean(-1, keepdim=True) + eps).sqrt()
    x_rms = (x.square().mean(-1, keepdim=True) + eps).sqrt()
    return x * (ref_rms / x_rms.clamp_min(eps)).clamp(max=1.0)


class UcpeTransforms:
    """P (world->ray), its transpose and inverse for every token, plus the camera-branch RoPE; shared by all blocks."""

    def __init__(self, P: torch.Tensor, rope: Rope):
        # P (B, N, 4, 4)
        self.P = P
        self.P_T = P.transpose(-1, -2)
        R_t = P[..., :3, :3].transpose(-1, -2)
        P_inv = torch.zeros_like(P)
        P_inv[..., :3, :3] = R_t
        P_inv[..., :3, 3] = -(R_t @ P[..., :3, 3:4])[..., 0]
        P_inv[..., 3, 3] = 1.0
        self.P_inv = P_inv
        self.rope = rope
