"""Softmax attention of a streaming query chunk against a sink + rolling-window K/V cache.

At streaming time the query chunk sees its own chunk fully plus every cached token (the sink chunk — chunk 0 — and the
last `window` chunks), so no mask is needed and `torch.nn.functional.scaled_dot_product_attention` can pick its fused
backends (FlashAttention / cuDNN / memory-efficient on a GPU; head dim 112 is a multiple of 8, fine for all of them).

Scale: SDPA's default is 1/sqrt(head_dim). The release zero-pads the camera branch's 112-d heads to 128 for
FlashAttention and keeps the default scale, i.e. its logits are scaled by 1/sqrt(128). We never pad; callers pass
that scale explicitly (`world.attention.camera_softmax_scale`), and `scale` is always honoured here.

Keys are order-free for softmax attention without a mask, so the cache keeps its tokens in one fixed buffer
[sink | scratch | slot 0 … slot W−1]: a new chunk overwrites the oldest slot in place (a ring), and the query chunk's
own K/V are written into the scratch slot so one contiguous view feeds SDPA — no concatenation, constant memory.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sink_window_attention(q: torch.Tensor, k_cache: torch.Tensor | None, v_cache: torch.Tensor | None,
                          k_new: torch.Tensor, v_new: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(q [k_cache; k_new]ᵀ · scale) [v_cache; v_new], no mask.

    q (B,H,Nq,D); k_cache, v_cache (B,H,L,D) or None (empty cache); k_new, v_new (B,H,Nn,D) -> (B,H,Nq,D) in q.dtype.
    scale None means 1/sqrt(D) (SDPA's default).
    """
    if k_cache is None or k_cache.shape[2] == 0:
        k, v = k_new, v_new
    else:
        k = torch.cat([k_cache.to(q.dtype), k_new.to(q.dtype)], dim=2)
        v = torch.cat([v_cache.to(q.dtype), v_new.to(q.dtype)], dim=2)
    return F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), scale=scale)


class SinkWindowCache:
    """Constant-size K/V cache of one softmax branch: the sink chunk (first push) plus the last `window` chunks.

    Use per chunk: `attend(q, k, v)` for every denoising forward (read-only: the cache is unchanged), then
    `push(k, v)` once with the clean forward's K/V (after `attend` of that forward). Chunks after the sink must all
    have the same length (the streaming chunk); the sink may differ (chunk 0 holds the image latent too).
    Tensors (B, H, L, D); the cache takes dtype and device from the first push.
    """

    def __init__(self, window: int = 1):
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        self.window = window
        self.reset()

    def reset(self) -> None:
        self._k = self._v = None  # buffers (B, H, Ls + Lc + W·Lc, D) once the chunk length is known
        self._sink_k = self._sink_v = None  # the sink until the buffers exist
        self.sink_len = 0
        self.chunk_len = 0
        self.filled = 0  # ring slots holding a chunk
        self.next_slot = 0
        self.pushed = 0  # chunks pushed in all

    # ---- layout
    def _slot(self, i: int) -> slice:
        start = self.sink_len + self.chunk_len * (1 + i)
        return slice(start, start + self.chunk_len)

    def _scratch(self) -> slice:
        return slice(self.sink_len, self.sink_len + self.chunk_len)

    def _ensure_buffers(self, chunk_len: int) -> bool:
        """Allocate the buffers for chunks of `chunk_len` tokens; False when they exist for another length."""
        if self._k is not None:
            return chunk_len == self.chunk_len
        B, H, Ls, D = self._sink_k.shape
        self.chunk_len = chunk_len
        n = Ls + chunk_len * (1 + self.window)
        self._k = self._sink_k.new_zeros(B, H, n, D)
        self._v = self._sink_v.new_zeros(B, H, n, self._sink_v.shape[-1])
        self._k[:, :, :Ls] = self._sink_k
        self._v[:, :, :Ls] = self._sink_v
        self._sink_k = self._sink_v = None
        return True

    @property
    def kept_tokens(self) -> int:
        return 0 if self.pushed == 0 else self.sink_len + self.filled * self.chunk_len

    def kept(self) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
        """(k, v) of every kept token (B, H, kept_tokens, D), in buffer order (sink first, then ring slots)."""
        if self.pushed == 0:
            return None, None
        if self._k is None:
            return self._sink_k, self._sink_v
        idx = torch.cat([torch.arange(self.sink_len)] + [torch.arange(self._slot(i).start, self._slot(i).stop)
                                                         for i in range(self.filled)]).to(self._k.device)
        return self._k.index_select(2, idx), self._v.index_select(2, idx)

    # ---- the two operations
    def attend(self, q: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor, scale: float | None = None):
        """Attention of the query chunk to the kept tokens plus its own (k_new, v_new): (B,H,Nq,D) in q.dtype."""
        if self.pushed == 0:
            return sink_window_attention(q, None, None, k_new, v_new, scale)
        if self.window == 0 or not self._ensure_buffers(k_new.shape[2]):
            k, v = self.kept()
            return sink_window_attention(q, k, v, k_new, v_new, scale)
        sl = self._scratch()
        self._k[:, :, sl] = k_new
        self._v[:, :, sl] = v_new
        n = sl.stop + self.filled * self.chunk_len  # sink, scratch, then the filled slots: one contiguous prefix
        k, v = self._k[:, :, :n], self._v[:, :, :n]
        return F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), scale=scale)

    def push(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Commit one chunk's K/V: the first becomes the sink, later ones overwrite the oldest window slot."""
        if self.pushed == 0:
            self._sink_k, self._sink_v = k.detach().clone(), v.detach().clone()
            self.sink_len = k.shape[2]
            self.pushed = 1
            return
        self.pushed += 1
        if self.window == 0:
            return
        if not self._ensure_buffers(k.shape[2]):
            raise ValueError(f"SinkWindowCache: chunks after the sink must all have {self.chunk_len} tokens, "
                             f"got {k.shape[2]}")
        sl = self._slot(self.next_slot)
        self._k[:, :, sl] = k
        self._v[:, :, sl] = v
        self.filled = min(self.filled + 1, self.window)
        self.next_slot = (self.next_slot + 1) % self.window

    # ---- bookkeeping
    def nbytes(self) -> int:
        ts = [t for t in (self._k, self._v, self._sink_k, self._sink_v) if t is not None]
        return sum(t.numel() * t.element_size() for t in ts)

    def clone(self) -> "SinkWindowCache":
        c = SinkWindowCache(self.window)
        c.__dict__.update({n: (t.clone() if isinstance(t, torch.Tensor) else t) for n, t in self.__dict__.items()})
        return c
