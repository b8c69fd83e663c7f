"""Fused GDN input preparation on Triton (twins of kernels/gdn/prep_naive.py).

- `qk_norm_relu`: one pass per token row: RMSNorm over all C channels (float32 statistics), weight, ReLU, key scale and
  the cast to the scan's dtype — instead of the float copy, square, mean, two multiplies, ReLU, scale and cast that
  eager PyTorch runs as separate passes over the (B, N, C) tensor.
- `gdn_gates`: one pass over x (B, T, S, C) computes both projections per token block: β = sigmoid(x Wβᵀ + bβ) is
  stored straight in the scan's (B, H, T, S) layout, and the gate logits are summed over the block's tokens (the frame
  mean commutes with the projection); a tiny second kernel finishes γ = exp(−exp(A_log) softplus(mean + bg + dt_bias)).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from worldwalk.kernels._runtime import dot_precision, lowp_dot, new_buffer, pow2_block


# Only Triton builtins and this file's own @triton.jit functions inside kernels — no @jit helpers of triton's standard
# library (tl.zeros, tl.sum, tl.sigmoid, ...): when triton was imported before TRITON_INTERPRET=1 was set (another
# test folder imported it first), those stay compiled-mode functions that the interpreter cannot call.
@triton.jit
def _sum(x, axis: tl.constexpr):
    """tl.sum from builtins: the interpreter recognises _sum_combine and reduces with numpy."""
    return tl.reduce(x, axis, tl.standard._sum_combine)


@triton.jit
def _qk_norm_relu_kernel(x, w, y, n_rows, C, sx_row, sy_row, eps, scale,
                         BR: tl.constexpr, BC: tl.constexpr, RELU: tl.constexpr):
    rows = tl.program_id(0) * BR + tl.arange(0, BR)
    cols = tl.arange(0, BC)
    m_r = rows < n_rows
    m_c = cols < C
    m = m_r[:, None] & m_c[None, :]
    rows64 = rows.to(tl.int64)
    xb = tl.load(x + rows64[:, None] * sx_row + cols[None, :], mask=m, other=0.0).to(tl.float32)
    inv = 1.0 / tl.sqrt(_sum(xb * xb, axis=1) / C + eps)  # (BR,)
    wb = tl.load(w + cols, mask=m_c, other=0.0).to(tl.float32)
    yb = xb * inv[:, None] * wb[None, :]
    if RELU:
        yb = tl.maximum(yb, 0.0)
    yb = yb * scale
    tl.store(y + rows64[:, None] * sy_row + cols[None, :], yb.to(y.dtype.element_ty), mask=m)


def norm_config(C: int) -> dict:
    """One row (or a few short rows) per program, the whole padded row in registers."""
    BC = pow2_block(C, 16)
    return dict(BR=max(1, min(16, 4096 // BC)), BC=BC, num_warps=4 if BC <= 2048 else 8)


def qk_norm_relu(x: torch.Tensor, weight: torch.Tensor, eps: float, scale: float = 1.0, *, relu: bool = True,
                 out_dtype: torch.dtype | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """x (..., C), weight (C,) -> relu(rmsnorm(x) · weight) · scale, shape (..., C), in out_dtype (default x.dtype)."""
    C = x.shape[-1]
    x2 = x.reshape(-1, C)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    n = x2.shape[0]
    if out is None:
        out = new_buffer(x.shape, out_dtype or x.dtype, x.device)
    y2 = out.view(-1, C)
    cfg = norm_config(C)
    if n:
        _qk_norm_relu_kernel[(triton.cdiv(n, cfg["BR"]),)](
            x2, weight.contiguous(), y2, n, C, x2.stride(0), y2.stride(0), float(eps), float(scale),
            RELU=bool(relu), **cfg,
        )
    return out


@triton.jit
def _gates_token_kernel(
    x, wb, bb, wg, beta, gsum,
    sx_b, sx_t, sx_s,
    T, S, C, NH,
    sbe_b, sbe_h, sbe_t,
    BS: tl.constexpr, BC: tl.constexpr, BH: tl.constexpr, HAS_BB: tl.constexpr, LOWP: tl.constexpr,
    PREC: tl.constexpr,
):
    """Per token block: beta = sigmoid(x Wβᵀ + bβ) stored (B,H,T,S); Σ_tokens x Wgᵀ stored per block."""
    i_s = tl.program_id(0)
    i_t = tl.program_id(1)
    i_b = tl.program_id(2).to(tl.int64)
    rows = i_s * BS + tl.arange(0, BS)
    heads = tl.arange(0, BH)
    m_s = rows < S
    m_h = heads < NH
    x_f = x + i_b * sx_b + i_t * sx_t
    acc_b = tl.full([BS, BH], 0.0, tl.float32)
    acc_g = tl.full([BS, BH], 0.0, tl.float32)
    for c0 in range(0, C, BC):
        cols = c0 + tl.arange(0, BC)
        m_c = cols < C
        xb = tl.load(x_f + rows[:, None] * sx_s + cols[None, :], mask=m_s[:, None] & m_c[None, :], other=0.0)
        # weights are (H, C) row-major: load the (BC, BH) transposed tile
        w_off = heads[None, :] * C + cols[:, None]
        w_m = m_c[:, None] & m_h[None, :]
        wbt = tl.load(wb + w_off, mask=w_m, other=0.0)
        wgt = tl.load(wg + w_off, mask=w_m, other=0.0)
        if LOWP:
            acc_b += tl.dot(xb, wbt.to(xb.dtype))
            acc_g += tl.dot(xb, wgt.to(xb.dtype))
        else:
            xf = xb.to(tl.float32)
            acc_b += tl.dot(xf, wbt.to(tl.float32), input_precision=PREC)
            acc_g += tl.dot(xf, wgt.to(tl.float32), input_precision=PREC)
    if HAS_BB:
        acc_b += tl.load(bb + heads, mask=m_h, other=0.0).to(tl.float32)[None, :]
    sig = 1.0 / (1.0 + tl.exp(-acc_b))
    tl.store(beta + i_b * sbe_b + heads[None, :] * sbe_h + i_t * sbe_t + rows[:, None], sig,
             mask=m_s[:, None] & m_h[None, :])
    part = _sum(tl.where(m_s[:, None], acc_g, 0.0), axis=0)  # (BH,)
    n_sb = tl.num_programs(0)
    tl.store(gsum + ((i_b * T + i_t) * n_sb + i_s) * BH + heads, part)


@triton.jit
def _gates_frame_kernel(gsum, bg, A_log, dt_bias, decay, T, S, NH, NSB,
                        sd_b, sd_h, sd_t,
                        BN: tl.constexpr, BH: tl.constexpr, HAS_BG: tl.constexpr):
    """γ[b, :, t] = exp(−exp(A_log) · softplus(Σ_blocks gsum / S + bg + dt_bias))."""
    i_t = tl.program_id(0)
    i_b = tl.program_id(1).to(tl.int64)
    heads = tl.arange(0, BH)
    m_h = heads < NH
    tot = tl.full([BH], 0.0, tl.float32)
    base = gsum + (i_b * T + i_t) * NSB * BH
    for n0 in range(0, NSB, BN):
        nb = n0 + tl.arange(0, BN)
        part = tl.load(base + nb[:, None] * BH + heads[None, :], mask=(nb < NSB)[:, None], other=0.0)
        tot += _sum(part, axis=0)
    z = tot / S + tl.load(dt_bias + heads, mask=m_h, other=0.0).to(tl.float32)
    if HAS_BG:
        z += tl.load(bg + heads, mask=m_h, other=0.0).to(tl.float32)
    e = tl.exp(-tl.abs(z))  # softplus(z) = max(z, 0) + log1p(exp(−|z|)), log1p by series when tiny
    sp = tl.maximum(z, 0.0) + tl.where(e < 1e-4, e * (1.0 - 0.5 * e), tl.log(1.0 + e))
    a = tl.exp(tl.load(A_log + heads, mask=m_h, other=0.0).to(tl.float32))
    tl.store(decay + i_b * sd_b + heads * sd_h + i_t * sd_t, tl.exp(-a * sp), mask=m_h)


def gates_config(dtype: torch.dtype, C: int, NH: int, precision: str | None = None) -> dict:
    """Token block, channel block and warps of the token kernel (from sm_90 register counts, see
    tests/kernels/compile_check.py)."""
    prec = dot_precision(dtype, precision)
    return dict(BS=32, BC=min(32 if prec == "tf32x3" else 64, pow2_block(C, 16)), BH=pow2_block(NH, 16), PREC=prec,
                num_warps=8)


def gdn_gates(x: torch.Tensor, w_beta: torch.Tensor, b_beta: torch.Tensor | None, w_gate: torch.Tensor,
              b_gate: torch.Tensor | None, A_log: torch.Tensor, dt_bias: torch.Tensor, *, block_s: int | None = None,
              block_c: int | None = None, num_warps: int | None = None, precision: str | None = None):
    """x (B, T, S, C); w_* (H, C); b_* (H,) or None; A_log, dt_bias (H,) -> beta (B,H,T,S), decay (B,H,T) float32."""
    B, T, S, C = x.shape
    NH = w_beta.shape[0]
    if x.stride(-1) != 1:
        x = x.contiguous()
    dev = x.device
    cfg = gates_config(x.dtype, C, NH, precision)
    block_s = block_s or cfg["BS"]
    BC = min(block_c or cfg["BC"], pow2_block(C, 16))
    num_warps = num_warps or cfg["num_warps"]
    BH = cfg["BH"]
    nsb = triton.cdiv(S, block_s) if S else 0
    beta = new_buffer((B, NH, T, S), torch.float32, dev)
    decay = new_buffer((B, NH, T), torch.float32, dev)
    gsum = new_buffer((B, T, max(nsb, 1), BH), torch.float32, dev)
    if B * T == 0 or S == 0:
        return beta, decay
    wb, wg = w_beta.contiguous(), w_gate.contiguous()
    _gates_token_kernel[(nsb, T, B)](
        x, wb, b_beta if b_beta is not None else wb, wg, beta, gsum,
        x.stride(0), x.stride(1), x.stride(2), T, S, C, NH, *beta.stride()[:3],
        BS=block_s, BC=BC, BH=BH, HAS_BB=b_beta is not None,
        LOWP=lowp_dot(x.dtype) and wb.dtype == x.dtype, PREC=cfg["PREC"], num_warps=num_warps,
    )
    _gates_frame_kernel[(T, B)](
        gsum, b_gate if b_gate is not None else dt_bias, A_log, dt_bias, decay, T, S, NH, nsb, *decay.stride(),
        BN=min(64, pow2_block(nsb, 1)), BH=BH, HAS_BG=b_gate is not None, num_warps=1,
    )
    return beta, decay
