"""Hot ops behind one call per op on every device.

`frame_gdn_scan` runs the frame-wise Gated DeltaNet scan (see kernels/gdn/naive.py for the maths and shapes).
The PyTorch reference runs everywhere; set WORLDWALK_KERNELS=reference to force it, =chunked to use the chunked
reference form (parallel over frames inside a chunk).
"""
from __future__ import annotations

import os

import torch

from kernels.gdn.naive import gdn_chunked, gdn_recurrent

__all__ = ["frame_gdn_scan", "gdn_recurrent", "gdn_chunked", "backend"]


def backend() -> str:
    choice = os.environ.get("WORLDWALK_KERNELS", "auto").lower()
    if choice not in ("auto", "reference", "chunked"):
        raise ValueError(f"WORLDWALK_KERNELS={choice!r}: expected one of auto, reference, chunked")
    return "chunked" if choice == "chunked" else "reference"


def _check(q, k, v, beta, decay, state):
    if q.ndim != 5 or k.shape != q.shape:
        raise ValueError(f"frame_gdn_scan: q and k must both be (B, H, T, S, Dk); got {tuple(q.shape)}, {tuple(k.shape)}")
    B, H, T, S, _ = q.shape
    if v.ndim != 5 or v.shape[:4] != (B, H, T, S):
        raise ValueError(f"frame_gdn_scan: v must be (B={B}, H={H}, T={T}, S={S}, Dv); got {tuple(v.shape)}")
    if beta.shape != (B, H, T, S):
        raise ValueError(f"frame_gdn_scan: beta must be {(B, H, T, S)}; got {tuple(beta.shape)}")
    if decay.shape != (B, H, T):
        raise ValueError(f"frame_gdn_scan: decay must be {(B, H, T)}; got {tuple(decay.shape)}")
    if state is not None and state.shape != (B, H, q.shape[-1], v.shape[-1]):
        raise ValueError(f"frame_gdn_scan: state must be {(B, H, q.shape[-1], v.shape[-1])}; got {tuple(state.shape)}")


def frame_gdn_scan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, decay: torch.Tensor,
                   state: torch.Tensor | None = None, reverse: bool = False):
    """Forward (inclusive) or reverse (exclusive) frame-wise GDN scan -> (out (B,H,T,S,Dv), state (B,H,Dk,Dv))."""
    _check(q, k, v, beta, decay, state)
    if backend() == "chunked":
        return gdn_chunked(q, k, v, beta, decay, state, reverse)
    return gdn_recurrent(q, k, v, beta, decay, state, reverse)
