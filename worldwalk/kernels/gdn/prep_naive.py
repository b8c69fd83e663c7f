"""PyTorch references of the GDN input preparation: q/k RMSNorm + ReLU + key scale, and the β / γ gates.

These are the twins of kernels/gdn/prep.py and compute what world/attention.py computes today, in float32:

    qk_norm_relu_ref:  y = relu(x · rsqrt(mean_c x² + eps) · weight) · scale        over all C = heads·D channels
    gdn_gates_ref:     β = sigmoid(x Wβᵀ + bβ)                                       per token   -> (B, H, T, S)
                       γ = exp(−exp(A_log) · softplus(mean_s(x) Wgᵀ + bg + dt_bias))  per frame   -> (B, H, T)

(The model's bf16 RMSNorm rounds the normalised x to bf16 before the weight; these keep float32 until the output cast.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def qk_norm_relu_ref(x: torch.Tensor, weight: torch.Tensor, eps: float, scale: float = 1.0, *, relu: bool = True,
                     out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """x (..., C), weight (C,) -> (..., C) in out_dtype (default x.dtype)."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.float()
    if relu:
        y = F.relu(y)
    return (y * scale).to(out_dtype or x.dtype)


def gdn_gates_ref(x: torch.Tensor, w_beta: torch.Tensor, b_beta: torch.Tensor | None, w_gate: torch.Tensor,
                  b_gate: torch.Tensor | None, A_log: torch.Tensor, dt_bias: torch.Tensor):
    """x (B, T, S, C); w_* (H, C); b_* (H,) or None; A_log, dt_bias (H,) -> beta (B,H,T,S), decay (B,H,T) float32."""
    xf = x.float()
    logit = xf @ w_beta.float().t()  # (B, T, S, H)
    if b_beta is not None:
        logit = logit + b_beta.float()
    beta = logit.sigmoid().permute(0, 3, 1, 2).contiguous()
    g = xf.mean(2) @ w_gate.float().t()  # (B, T, H)
    if b_gate is not None:
        g = g + b_gate.float()
    decay = torch.exp(-A_log.float().exp() * F.softplus(g + dt_bias.float()))
    return beta, decay.transpose(1, 2).contiguous()
