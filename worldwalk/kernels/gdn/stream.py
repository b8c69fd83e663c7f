"""Frame-wise GDN, streaming kernel: carried state + one chunk of frames -> outputs and the new state.

One program owns one (batch, head) and one block of BV state columns. The state columns evolve independently
(S_t[:, j] only mixes rows), so the Dv axis splits across programs with no communication; Dk stays whole in a
power-of-two block (112 -> 128, masked). Frames run serially inside the program; each frame is two passes over its
tokens in blocks of BS:

    update:  W = (V − γ K S_{t−1}) ⊙ β ;  S_t = γ S_{t−1} + Kᵀ W      (= γ (I − Kᵀ diag β K) S_{t−1} + Kᵀ diag β V)
    output:  O_t = Q_t S_t                     forward, inclusive: after the update
             O_t = Q_t S_{t+1→}               reverse, exclusive: before the update, frames walked T−1 … 0

So each program reads its frame's q and k tiles once per frame (the programs of the other Dv blocks read the same
tiles, mostly from L2), v and β once; the state never leaves registers and nothing D×D is materialised. This is the
kernel for short chunks: the streaming step, the denominator stream (Dv = 1), the camera branch. Long clips are better
served by clip.py, which is parallel over frames.

Shapes as in naive.py: q, k (B,H,T,S,Dk), v (B,H,T,S,Dv), beta (B,H,T,S), decay (B,H,T), state (B,H,Dk,Dv) float32.
Any strides, except that the feature (last) axis of q, k, v must be contiguous.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from worldwalk.kernels._runtime import dot_precision, new_buffer, pow2_block


# Kernels use Triton builtins only (tl.full, not tl.zeros): see the note in prep.py.

@triton.jit
def _read_out(q_ptr, o_ptr, h, offs_s, offs_k, offs_v, mask_k, mask_v, S, sq_s, so_s,
              BS: tl.constexpr, PREC: tl.constexpr):
    """O[s, v-block] = Q[s, :] @ h for every token of one frame (q_ptr / o_ptr point at the frame)."""
    for s0 in range(0, S, BS):
        rows = s0 + offs_s
        m_s = rows < S
        qb = tl.load(q_ptr + rows[:, None] * sq_s + offs_k[None, :], mask=m_s[:, None] & mask_k[None, :],
                     other=0.0).to(tl.float32)
        ob = tl.dot(qb, h, input_precision=PREC)
        tl.store(o_ptr + rows[:, None] * so_s + offs_v[None, :], ob.to(o_ptr.dtype.element_ty),
                 mask=m_s[:, None] & mask_v[None, :])


@triton.jit
def _gdn_stream_kernel(
    q, k, v, beta, decay, h0, o, ht,
    sq_b, sq_h, sq_t, sq_s,
    sk_b, sk_h, sk_t, sk_s,
    sv_b, sv_h, sv_t, sv_s,
    so_b, so_h, so_t, so_s,
    sb_b, sb_h, sb_t, sb_s,
    sd_b, sd_h, sd_t,
    H, T, S, DK, DV,
    BK: tl.constexpr, BV: tl.constexpr, BS: tl.constexpr,
    REVERSE: tl.constexpr, HAS_H0: tl.constexpr, PREC: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = (i_bh // H).to(tl.int64)
    i_h = (i_bh % H).to(tl.int64)

    offs_k = tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    offs_s = tl.arange(0, BS)
    mask_k = offs_k < DK
    mask_v = offs_v < DV
    mask_kv = mask_k[:, None] & mask_v[None, :]
    st_off = i_bh.to(tl.int64) * DK * DV + offs_k[:, None] * DV + offs_v[None, :]  # state is (B,H,DK,DV) contiguous

    if HAS_H0:
        h = tl.load(h0 + st_off, mask=mask_kv, other=0.0).to(tl.float32)
    else:
        h = tl.full([BK, BV], 0.0, tl.float32)

    q_bh = q + i_b * sq_b + i_h * sq_h
    k_bh = k + i_b * sk_b + i_h * sk_h
    v_bh = v + i_b * sv_b + i_h * sv_h
    o_bh = o + i_b * so_b + i_h * so_h
    b_bh = beta + i_b * sb_b + i_h * sb_h
    d_bh = decay + i_b * sd_b + i_h * sd_h

    for it in range(0, T):
        if REVERSE:
            t = T - 1 - it
        else:
            t = it
        g = tl.load(d_bh + t * sd_t).to(tl.float32)
        if REVERSE:  # exclusive: read the state of the frames after t first
            _read_out(q_bh + t * sq_t, o_bh + t * so_t, h, offs_s, offs_k, offs_v, mask_k, mask_v, S, sq_s, so_s,
                      BS, PREC)
        dh = tl.full([BK, BV], 0.0, tl.float32)
        for s0 in range(0, S, BS):
            rows = s0 + offs_s
            m_s = rows < S
            kb = tl.load(k_bh + t * sk_t + rows[:, None] * sk_s + offs_k[None, :],
                         mask=m_s[:, None] & mask_k[None, :], other=0.0).to(tl.float32)
            vb = tl.load(v_bh + t * sv_t + rows[:, None] * sv_s + offs_v[None, :],
                         mask=m_s[:, None] & mask_v[None, :], other=0.0).to(tl.float32)
            bb = tl.load(b_bh + t * sb_t + rows * sb_s, mask=m_s, other=0.0).to(tl.float32)
            w = (vb - g * tl.dot(kb, h, input_precision=PREC)) * bb[:, None]
            dh += tl.dot(tl.trans(kb), w, input_precision=PREC)
        h = g * h + dh
        if not REVERSE:  # inclusive: read the state that includes frame t
            _read_out(q_bh + t * sq_t, o_bh + t * so_t, h, offs_s, offs_k, offs_v, mask_k, mask_v, S, sq_s, so_s,
                      BS, PREC)

    tl.store(ht + st_off, h, mask=mask_kv)


def _feature_contiguous(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def stream_config(dtype: torch.dtype, DK: int, DV: int, n_bh: int, device: torch.device,
                  precision: str | None = None) -> dict:
    """Block sizes and warps of the streaming kernel (picked from sm_90 register/spill counts, see
    tests/kernels/compile_check.py): BK = Dk padded; BV = 32, or 16 when that is needed to give every SM a program;
    fewer tokens per block (BS) for the register-hungry tf32x3 dots of float32 inputs."""
    prec = dot_precision(dtype, precision)
    BV = min(pow2_block(DV), 32)
    if device.type == "cuda" and BV > 16:
        n_sm = torch.cuda.get_device_properties(device).multi_processor_count
        if n_bh * triton.cdiv(DV, BV) < n_sm:
            BV = 16
    BS = 16 if prec == "tf32x3" else 32
    return dict(BK=pow2_block(DK), BV=BV, BS=BS, PREC=prec, num_warps=8)


def gdn_stream(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, decay: torch.Tensor,
               state: torch.Tensor | None = None, reverse: bool = False, *, out: torch.Tensor | None = None,
               block_v: int | None = None, block_s: int | None = None, num_warps: int | None = None,
               precision: str | None = None):
    """Streaming frame-wise GDN scan on Triton -> (out (B,H,T,S,Dv) in v.dtype, state (B,H,Dk,Dv) float32).

    Same maths and shapes as `kernels.gdn.naive.gdn_recurrent`. `out` may be given (contiguous last axis); block
    sizes, warps and tl.dot precision (see kernels._runtime.dot_precision) are tuning knobs over `stream_config`.
    """
    B, H, T, S, DK = q.shape
    DV = v.shape[-1]
    q, k, v = _feature_contiguous(q), _feature_contiguous(k), _feature_contiguous(v)
    if out is None:
        out = new_buffer((B, H, T, S, DV), v.dtype, v.device)
    if out.stride(-1) != 1:
        raise ValueError("gdn_stream: out must be contiguous along its last axis")
    h0 = None if state is None else state.to(torch.float32).contiguous()
    ht = new_buffer((B, H, DK, DV), torch.float32, v.device)
    cfg = stream_config(k.dtype, DK, DV, B * H, v.device, precision)
    cfg["BV"] = block_v or cfg["BV"]
    cfg["BS"] = block_s or cfg["BS"]
    cfg["num_warps"] = num_warps or cfg["num_warps"]
    grid = (triton.cdiv(DV, cfg["BV"]), B * H)
    if B * H * DV == 0:
        return out, ht
    _gdn_stream_kernel[grid](
        q, k, v, beta, decay, h0 if h0 is not None else ht, out, ht,
        *q.stride()[:4], *k.stride()[:4], *v.stride()[:4], *out.stride()[:4], *beta.stride(), *decay.stride(),
        H, T, S, DK, DV, REVERSE=bool(reverse), HAS_H0=h0 is not None, **cfg,
    )
    return out, ht
