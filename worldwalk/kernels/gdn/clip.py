"""Frame-wise GDN, whole-clip kernels: transitions in parallel, a short serial scan, outputs in parallel.

For a long clip (bidirectional or chunk-causal forwards: 121 frames × 880 tokens) the serial part must be small.
Every frame's affine map S ↦ γ_t (S − M_t S) + B_t is built independently,

    phase 1 (grid: column block × frame × batch·head)   M_t = Kᵀ diag β K  (Dk×Dk),  B_t = Kᵀ diag β V  (Dk×Dv)
    phase 2 (grid: Dv block × batch·head, frames serial) S_t = γ_t (S_{t−1} − M_t S_{t−1}) + B_t, every S_t stored
    phase 3 (grid: token block × frame × batch·head)     O_t = Q_t S_t   (reverse, exclusive: S of frames t+1 … T−1)

so the serial loop costs one (Dk×Dk)·(Dk×BV) product per frame instead of a pass over the frame's tokens. Float32
state, transitions and accumulators whatever the input dtype (bf16 or float32). Scratch per batch·head:
T·Dk·(Dk+Dv)·4 bytes of [M|B] plus T·Dk·Dv·4 bytes of states — 0.24 GB + 0.12 GB for 20 heads × 121 frames at D = 112.

Shapes as in naive.py: q, k (B,H,T,S,Dk), v (B,H,T,S,Dv), beta (B,H,T,S), decay (B,H,T), state (B,H,Dk,Dv) float32.
Any strides, except that the feature (last) axis of q, k, v must be contiguous.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from worldwalk.kernels._runtime import dot_precision, lowp_dot, new_buffer, pow2_block


# Kernels use Triton builtins only (tl.full, not tl.zeros): see the note in prep.py.

@triton.jit
def _gdn_clip_transition_kernel(
    k, x, beta, mb,
    sk_b, sk_h, sk_t, sk_s,
    sx_b, sx_h, sx_t, sx_s,
    sb_b, sb_h, sb_t, sb_s,
    H, T, S, DK, DX, COL0, MB_COLS,
    BK: tl.constexpr, BJ: tl.constexpr, BS: tl.constexpr, LOWP: tl.constexpr, PREC: tl.constexpr,
):
    """mb[bh, t, :, COL0 + j-block] = Σ_s β_s k_sᵀ x_s[j-block], x = k (M columns) or v (B columns)."""
    i_j = tl.program_id(0)
    i_t = tl.program_id(1)
    i_bh = tl.program_id(2)
    i_b = (i_bh // H).to(tl.int64)
    i_h = (i_bh % H).to(tl.int64)

    offs_k = tl.arange(0, BK)
    offs_j = i_j * BJ + tl.arange(0, BJ)
    offs_s = tl.arange(0, BS)
    mask_k = offs_k < DK
    mask_j = offs_j < DX

    k_f = k + i_b * sk_b + i_h * sk_h + i_t * sk_t
    x_f = x + i_b * sx_b + i_h * sx_h + i_t * sx_t
    b_f = beta + i_b * sb_b + i_h * sb_h + i_t * sb_t

    acc = tl.full([BK, BJ], 0.0, tl.float32)
    for s0 in range(0, S, BS):
        rows = s0 + offs_s
        m_s = rows < S
        kb = tl.load(k_f + rows[:, None] * sk_s + offs_k[None, :], mask=m_s[:, None] & mask_k[None, :], other=0.0)
        xb = tl.load(x_f + rows[:, None] * sx_s + offs_j[None, :], mask=m_s[:, None] & mask_j[None, :], other=0.0)
        bb = tl.load(b_f + rows * sb_s, mask=m_s, other=0.0).to(tl.float32)
        kbeta = kb.to(tl.float32) * bb[:, None]
        if LOWP:  # bf16 / fp16 operands straight into the tensor cores, float32 accumulation
            acc += tl.dot(tl.trans(kbeta.to(kb.dtype)), xb)
        else:
            acc += tl.dot(tl.trans(kbeta), xb.to(tl.float32), input_precision=PREC)

    out = mb + i_bh.to(tl.int64) * T * DK * MB_COLS + i_t * DK * MB_COLS
    tl.store(out + offs_k[:, None] * MB_COLS + COL0 + offs_j[None, :], acc, mask=mask_k[:, None] & mask_j[None, :])


@triton.jit
def _gdn_clip_scan_kernel(
    mb, decay, h0, states, ht,
    sd_b, sd_h, sd_t,
    H, T, DK, DV, MB_COLS,
    BK: tl.constexpr, BV: tl.constexpr, REVERSE: tl.constexpr, HAS_H0: tl.constexpr, PREC: tl.constexpr,
):
    """Serial over frames: states[bh, t] = state after frame t (forward) / before frame t (reverse)."""
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = (i_bh // H).to(tl.int64)
    i_h = (i_bh % H).to(tl.int64)

    offs_k = tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    mask_k = offs_k < DK
    mask_v = offs_v < DV
    mask_kk = mask_k[:, None] & mask_k[None, :]
    mask_kv = mask_k[:, None] & mask_v[None, :]
    st_off = offs_k[:, None] * DV + offs_v[None, :]
    bh64 = i_bh.to(tl.int64)

    if HAS_H0:
        h = tl.load(h0 + bh64 * DK * DV + st_off, mask=mask_kv, other=0.0).to(tl.float32)
    else:
        h = tl.full([BK, BV], 0.0, tl.float32)

    mb_bh = mb + bh64 * T * DK * MB_COLS
    st_bh = states + bh64 * T * DK * DV
    d_bh = decay + i_b * sd_b + i_h * sd_h
    for it in range(0, T):
        if REVERSE:
            t = T - 1 - it
        else:
            t = it
        g = tl.load(d_bh + t * sd_t).to(tl.float32)
        m_t = tl.load(mb_bh + t * DK * MB_COLS + offs_k[:, None] * MB_COLS + offs_k[None, :], mask=mask_kk, other=0.0)
        b_t = tl.load(mb_bh + t * DK * MB_COLS + offs_k[:, None] * MB_COLS + DK + offs_v[None, :], mask=mask_kv,
                      other=0.0)
        if REVERSE:  # exclusive
            tl.store(st_bh + t * DK * DV + st_off, h, mask=mask_kv)
        h = g * (h - tl.dot(m_t, h, input_precision=PREC)) + b_t
        if not REVERSE:  # inclusive
            tl.store(st_bh + t * DK * DV + st_off, h, mask=mask_kv)

    tl.store(ht + bh64 * DK * DV + st_off, h, mask=mask_kv)


@triton.jit
def _gdn_clip_output_kernel(
    q, states, o,
    sq_b, sq_h, sq_t, sq_s,
    so_b, so_h, so_t, so_s,
    H, T, S, DK, DV,
    BK: tl.constexpr, BV: tl.constexpr, BS: tl.constexpr, PREC: tl.constexpr,
):
    """o[b, h, t, s-block, :] = q[b, h, t, s-block, :] @ states[bh, t]."""
    i_s = tl.program_id(0)
    i_t = tl.program_id(1)
    i_bh = tl.program_id(2)
    i_b = (i_bh // H).to(tl.int64)
    i_h = (i_bh % H).to(tl.int64)

    offs_k = tl.arange(0, BK)
    rows = i_s * BS + tl.arange(0, BS)
    mask_k = offs_k < DK
    m_s = rows < S
    qb = tl.load(q + i_b * sq_b + i_h * sq_h + i_t * sq_t + rows[:, None] * sq_s + offs_k[None, :],
                 mask=m_s[:, None] & mask_k[None, :], other=0.0).to(tl.float32)
    st = states + (i_bh.to(tl.int64) * T + i_t) * DK * DV
    o_f = o + i_b * so_b + i_h * so_h + i_t * so_t
    for v0 in range(0, DV, BV):
        offs_v = v0 + tl.arange(0, BV)
        mask_v = offs_v < DV
        h = tl.load(st + offs_k[:, None] * DV + offs_v[None, :], mask=mask_k[:, None] & mask_v[None, :], other=0.0)
        ob = tl.dot(qb, h, input_precision=PREC)
        tl.store(o_f + rows[:, None] * so_s + offs_v[None, :], ob.to(o.dtype.element_ty),
                 mask=m_s[:, None] & mask_v[None, :])


def _feature_contiguous(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def clip_config(dtype: torch.dtype, DK: int, DV: int, precision: str | None = None) -> dict:
    """Per-phase block sizes and warps (picked from sm_90 register/spill counts, see tests/kernels/compile_check.py)."""
    prec = dot_precision(dtype, precision)
    lowp = lowp_dot(dtype)
    BK = pow2_block(DK)
    return dict(
        transition=dict(BK=BK, BJ=min(64, pow2_block(max(DK, DV))), BS=64 if lowp else 32, PREC=prec, num_warps=8),
        scan=dict(BK=BK, BV=16, PREC=prec, num_warps=8, num_stages=2),
        output=dict(BK=BK, BV=min(pow2_block(DV), 32 if prec == "tf32x3" else 64), BS=64, PREC=prec, num_warps=8),
    )


def gdn_clip(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, decay: torch.Tensor,
             state: torch.Tensor | None = None, reverse: bool = False, *, out: torch.Tensor | None = None,
             precision: str | None = None, config: dict | None = None):
    """Whole-clip frame-wise GDN scan on Triton -> (out (B,H,T,S,Dv) in v.dtype, state (B,H,Dk,Dv) float32).

    Same maths and shapes as `kernels.gdn.naive.gdn_recurrent`; three launches (transitions, scan, outputs).
    `config` overrides entries of `clip_config` per phase, e.g. {"scan": {"BV": 32}}.
    """
    B, H, T, S, DK = q.shape
    DV = v.shape[-1]
    q, k, v = _feature_contiguous(q), _feature_contiguous(k), _feature_contiguous(v)
    dev = v.device
    if out is None:
        out = new_buffer((B, H, T, S, DV), v.dtype, dev)
    if out.stride(-1) != 1:
        raise ValueError("gdn_clip: out must be contiguous along its last axis")
    h0 = None if state is None else state.to(torch.float32).contiguous()
    cfg = clip_config(k.dtype, DK, DV, precision)
    for phase, over in (config or {}).items():
        cfg[phase].update(over)
    cols = DK + DV
    mb = new_buffer((B * H, T, DK, cols), torch.float32, dev)  # [M_t | B_t] per frame
    states = new_buffer((B * H, T, DK, DV), torch.float32, dev)
    ht = new_buffer((B, H, DK, DV), torch.float32, dev)

    # phase 1: M columns from k, B columns from v
    c1 = cfg["transition"]
    for x, dx, col0 in ((k, DK, 0), (v, DV, DK)) if T else ():
        _gdn_clip_transition_kernel[(triton.cdiv(dx, c1["BJ"]), T, B * H)](
            k, x, beta, mb, *k.stride()[:4], *x.stride()[:4], *beta.stride(),
            H, T, S, DK, dx, col0, cols, LOWP=lowp_dot(k.dtype) and x.dtype == k.dtype, **c1,
        )
    # phase 2: serial over frames
    c2 = cfg["scan"]
    _gdn_clip_scan_kernel[(triton.cdiv(DV, c2["BV"]), B * H)](
        mb, decay, h0 if h0 is not None else ht, states, ht, *decay.stride(),
        H, T, DK, DV, cols, REVERSE=bool(reverse), HAS_H0=h0 is not None, **c2,
    )
    # phase 3: outputs
    c3 = cfg["output"]
    if T * S == 0:  # nothing to read out (grids must not be empty)
        return out, ht
    _gdn_clip_output_kernel[(triton.cdiv(S, c3["BS"]), T, B * H)](
        q, states, out, *q.stride()[:4], *out.stride()[:4], H, T, S, DK, DV, **c3,
    )
    return out, ht
