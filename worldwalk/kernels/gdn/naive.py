"""Frame-wise Gated DeltaNet: the PyTorch reference, in two forms that must agree.

One step of the recurrence is one whole latent frame of S tokens (per batch and head):

    S_t = γ_t (I − K_tᵀ diag(β_t) K_t) S_{t−1} + K_tᵀ diag(β_t) V_t        state S_t: (Dk, Dv)
    o_t = Q_t S_t                                                           (forward scan, inclusive)

The reverse scan runs from the last frame to the first and is *exclusive*: frame t reads the state built from frames
t+1 … T−1 (plus any incoming state, which stands for frames after the clip), i.e. o_t = Q_t R_t with
R_t = A_{t+1} R_{t+1} + b_{t+1}. Both return the state after absorbing every frame of the call.

Shapes (all functions):
    q, k    (B, H, T, S, Dk)
    v       (B, H, T, S, Dv)
    beta    (B, H, T, S)      per-token write strength
    decay   (B, H, T)         per-frame γ in (0, 1]
    state   (B, H, Dk, Dv) or None (zeros)
    returns (out (B, H, T, S, Dv), state (B, H, Dk, Dv))

`gdn_recurrent` is the readable one-frame-at-a-time form (O(S·Dk·Dv) per frame, no Dk×Dk matrices).
`gdn_chunked` builds each frame's Dk×Dk transition in parallel, composes them inside a chunk with a log-depth
associative scan, carries the state across chunks, and reads all outputs of a chunk at once.
"""
from __future__ import annotations

import torch


def _zeros_state(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    B, H, _, _, Dk = k.shape
    return torch.zeros(B, H, Dk, v.shape[-1], dtype=k.dtype, device=k.device)


def _step(S: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """One frame: S (B,H,Dk,Dv), k (B,H,S,Dk), v (B,H,S,Dv), beta (B,H,S), decay (B,H) -> new S."""
    kb = k * beta[..., None]  # (B,H,S,Dk)
    # γ (S − Kᵀ B (K S)) + Kᵀ B V
    return decay[..., None, None] * (S - kb.transpose(-1, -2) @ (k @ S)) + kb.transpose(-1, -2) @ v


def gdn_recurrent(q, k, v, beta, decay, state=None, reverse: bool = False):
    S = _zeros_state(k, v) if state is None else state
    T = q.shape[2]
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=v.dtype, device=v.device)
    frames = range(T - 1, -1, -1) if reverse else range(T)
    for t in frames:
        if reverse:  # exclusive: read first, then absorb frame t
            out[:, :, t] = q[:, :, t] @ S
            S = _step(S, k[:, :, t], v[:, :, t], beta[:, :, t], decay[:, :, t])
        else:  # inclusive: absorb frame t, then read
            S = _step(S, k[:, :, t], v[:, :, t], beta[:, :, t], decay[:, :, t])
            out[:, :, t] = q[:, :, t] @ S
    return out, S


def _transitions(k, v, beta, decay):
    """Per-frame affine maps S ↦ A_t S + b_t, built for all frames at once.

    k (B,H,T,S,Dk), v (B,H,T,S,Dv) -> A (B,H,T,Dk,Dk), b (B,H,T,Dk,Dv)
    """
    kb = k * beta[..., None]
    eye = torch.eye(k.shape[-1], dtype=k.dtype, device=k.device)
    A = decay[..., None, None] * (eye - kb.transpose(-1, -2) @ k)
    b = kb.transpose(-1, -2) @ v
    return A, b


def _prefix_compose(A: torch.Tensor, b: torch.Tensor):
    """Inclusive prefix of affine maps along dim 2 (Hillis–Steele, log2(C) rounds).

    After it, (A[t], b[t]) maps the state before frame 0 of the chunk to the state after frame t.
    """
    C = A.shape[2]
    off = 1
    while off < C:
        A_new, b_new = A.clone(), b.clone()
        # (A_t, b_t) ∘ (A_{t-off}, b_{t-off}) = (A_t A_{t-off}, A_t b_{t-off} + b_t)
        A_new[:, :, off:] = A[:, :, off:] @ A[:, :, :-off]
        b_new[:, :, off:] = A[:, :, off:] @ b[:, :, :-off] + b[:, :, off:]
        A, b = A_new, b_new
        off *= 2
    return A, b


def _chunked_forward(q, k, v, beta, decay, state, inclusive: bool, chunk_size: int):
    S = _zeros_state(k, v) if state is None else state
    T = q.shape[2]
    A_all, b_all = _transitions(k, v, beta, decay)
    outs = []
    for c0 in range(0, T, chunk_size):
        c1 = min(T, c0 + chunk_size)
        A, b = _prefix_compose(A_all[:, :, c0:c1], b_all[:, :, c0:c1])
        states = A @ S[:, :, None] + b  # (B,H,C,Dk,Dv): state after each frame of the chunk
        if inclusive:
            read = states
        else:  # exclusive: frame t reads the state before it
            read = torch.cat([S[:, :, None], states[:, :, :-1]], dim=2)
        outs.append(q[:, :, c0:c1] @ read)  # (B,H,C,S,Dk) @ (B,H,C,Dk,Dv)
        S = states[:, :, -1]
    return torch.cat(outs, dim=2), S


def gdn_chunked(q, k, v, beta, decay, state=None, reverse: bool = False, chunk_size: int = 16):
    if not reverse:
        return _chunked_forward(q, k, v, beta, decay, state, True, chunk_size)
    flip = lambda x: x.flip(2)  # noqa: E731
    out, S = _chunked_forward(flip(q), flip(k), flip(v), flip(beta), flip(decay), state, False, chunk_size)
    return out.flip(2), S
