"""Self-attention of one block: frame-wise Gated DeltaNet or softmax, each with its UCPE camera branch.

Both kinds share one parameter layout (the official one), so a checkpoint loads into either:
    qkv (3C x C, no bias), q_norm / k_norm (RMSNorm over all C channels), beta_proj / gate_proj (C -> heads),
    A_log, dt_bias (heads), output_gate (C -> C), proj (C -> C); camera branch q/k/v_proj_cam, out_proj_cam,
    q_norm_cam, k_norm_cam; GDN blocks add conv_k / conv_k_cam (depthwise temporal kernel 4 on K).

Token layout: x (B, N, C) with N = T*S tokens ordered frame, row, column; heads split C into (heads, D).

Two modes over the same weights (`Layout.mode`):
- "bidirectional": GDN forward scan (inclusive) + reverse scan (exclusive) over the whole clip; symmetric short conv;
  softmax attends to every token.
- "chunk_causal": latent frames are grouped in chunks ([0,4), [4,7), ...). The forward scan and the forward half of
  the short conv run across chunk boundaries (causal); the reverse scan and the backward half of the short conv stay
  inside the chunk; softmax attends to its own and earlier chunks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from worldwalk.kernels import frame_gdn_scan
from worldwalk.world.layers import RMSNorm
from worldwalk.world.posenc import Rope, UcpeTransforms, downscale_to_reference_rms, ucpe_apply


@dataclass
class Layout:
    """What every block needs to know about the token grid of one forward."""

    T: int
    H: int
    W: int
    mode: str  # "bidirectional" | "chunk_causal"
    chunk_of_frame: torch.Tensor  # (T,) chunk index of each latent frame (all zeros when bidirectional)
    rope: Rope  # main-branch RoPE, (N, D/2)
    ucpe: UcpeTransforms | None  # camera branch transforms, None when no camera is given
    window_tokens: int | None = None  # streaming: softmax keys kept after the sink (None: all)

    @property
    def S(self) -> int:
        return self.H * self.W

    @property
    def causal(self) -> bool:
        return self.mode == "chunk_causal"

    def chunk_starts(self) -> torch.Tensor:
        """(T,) bool: frame t opens a new chunk (t > 0)."""
        c = self.chunk_of_frame
        return torch.cat([torch.zeros(1, dtype=torch.bool, device=c.device), c[1:] != c[:-1]])

    def attention_mask(self, device) -> torch.Tensor | None:
        """(N, N) bool, True where a query token may attend to a key token; None when all may."""
        if not self.causal:
            return None
        c = self.chunk_of_frame.to(device).repeat_interleave(self.S)
        return c[None, :] <= c[:, None]


def _shift_time(x: torch.Tensor, j: int) -> torch.Tensor:
    """x (B, T, ...) -> y with y[:, t] = x[:, t - j] (zeros outside [0, T))."""
    if j == 0:
        return x
    T = x.shape[1]
    if abs(j) >= T:
        return torch.zeros_like(x)
    z = torch.zeros_like(x[:, : abs(j)])
    return torch.cat([z, x[:, :-j]], 1) if j > 0 else torch.cat([x[:, -j:], z], 1)


def with_tail(x: torch.Tensor, tail: torch.Tensor | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prepend the cached last frames of the previous chunk (zeros when there is none).

    x (B, T, ...) -> (x_ext (B, n + T, ...), new_tail: the last n frames of x_ext, for the next chunk)
    """
    if tail is None:
        tail = torch.zeros_like(x[:, :1]).expand(-1, n, *x.shape[2:])
    ext = torch.cat([tail.to(x.dtype), x], 1)
    return ext, ext[:, ext.shape[1] - n:].contiguous()


def same_chunk_ahead(layout: "Layout", j: int, device) -> torch.Tensor:
    """(T,) bool: frame t+j (j >= 1) exists and lies in t's chunk."""
    c = layout.chunk_of_frame.to(device)
    keep = torch.zeros_like(c, dtype=torch.bool)
    if j < len(c):
        keep[: len(c) - j] = c[j:] == c[:-j]
    return keep


def temporal_short_conv(x: torch.Tensor, weight: torch.Tensor, layout: Layout,
                        tail: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise conv over frames, kernel w_0..w_{k-1} (w_{k-1} on the current frame), run both ways.

    y[t] = sum_j w_{k-1-j} (x[t-j] + x[t+j]) - w_{k-1} x[t]. Looking back crosses chunk boundaries (from `tail`, the
    last k-1 input frames of the previous chunk, when streaming); in chunk-causal mode x[t+j] counts only inside t's
    chunk. x (B, T, S, C), weight (C, 1, k) -> (y (B, T, S, C), new tail (B, k-1, S, C))
    """
    k = weight.shape[-1]
    w = weight[:, 0].to(x.dtype)  # (C, k)
    past, new_tail = with_tail(x, tail, k - 1)
    y = -w[:, k - 1] * x
    for j in range(k):
        wj = w[:, k - 1 - j]
        y = y + wj * _shift_time(past, j)[:, k - 1:]
        ahead = _shift_time(x, -j)
        if layout.causal and j > 0:
            ahead = ahead * same_chunk_ahead(layout, j, x.device).view(1, -1, 1, 1).to(x.dtype)
        y = y + wj * ahead
    return y, new_tail


class _AttentionParams(nn.Module):
    """The shared official parameter layout of GDN and softmax blocks."""

    def __init__(self, hidden: int, head_dim: int, norm_eps: float, legacy: bool):
        super().__init__()
        self.C, self.D, self.heads = hidden, head_dim, hidden // head_dim
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.proj = nn.Linear(hidden, hidden)
        self.q_norm = RMSNorm(hidden, norm_eps)
        self.k_norm = RMSNorm(hidden, norm_eps)
        self.beta_proj = nn.Linear(hidden, self.heads)
        self.gate_proj = nn.Linear(hidden, self.heads)
        self.A_log = nn.Parameter(torch.zeros(self.heads))
        self.dt_bias = nn.Parameter(torch.zeros(self.heads))
        self.output_gate = nn.Linear(hidden, hidden)
        self.q_proj_cam = nn.Linear(hidden, hidden)
        self.k_proj_cam = nn.Linear(hidden, hidden)
        self.v_proj_cam = nn.Linear(hidden, hidden)
        self.out_proj_cam = nn.Linear(hidden, hidden)
        self.q_norm_cam = RMSNorm(hidden, norm_eps)
        self.k_norm_cam = RMSNorm(hidden, norm_eps)
        if legacy:  # unused by the forward; present in the release's files
            self.register_buffer("recall_gate", torch.zeros(1))

    def heads_first(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, heads, N, D)"""
        B, N, _ = x.shape
        return x.view(B, N, self.heads, self.D).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, D) -> (B, N, C)"""
        B, _, N, _ = x.shape
        return x.transpose(1, 2).reshape(B, N, self.C)

    def finish(self, x: torch.Tensor, main: torch.Tensor, cam: torch.Tensor | None) -> torch.Tensor:
        """Shared output: (main + out_proj_cam(cam)) * SiLU(output_gate(x)) in float32 -> proj."""
        if cam is not None:
            main = main + self.out_proj_cam(cam)
        out = main * F.silu(self.output_gate(x).float())
        return self.proj(out.to(x.dtype))


class GDNAttention(_AttentionParams):
    """Frame-wise Gated DeltaNet: constant-size state per head, one recurrence step per latent frame."""

    def __init__(self, hidden: int, head_dim: int, norm_eps: float, conv_kernel: int, eps: float, legacy: bool):
        super().__init__(hidden, head_dim, norm_eps, legacy)
        self.eps = eps
        self.conv_k = _ConvWeight(hidden, conv_kernel)
        self.conv_k_cam = _ConvWeight(hidden, conv_kernel)

    def gates(self, x: torch.Tensor, L: Layout) -> tuple[torch.Tensor, torch.Tensor]:
        """beta (B, heads, T, S) per token; decay γ (B, heads, T) per frame, from the frame's mean token."""
        B = x.shape[0]
        beta = self.beta_proj(x).sigmoid().view(B, L.T, L.S, self.heads).permute(0, 3, 1, 2)
        g = self.gate_proj(x.view(B, L.T, L.S, self.C).mean(2)).float()  # (B, T, heads)
        decay = torch.exp(-self.A_log.float().exp() * F.softplus(g + self.dt_bias.float()))
        return beta, decay.transpose(1, 2)

    def _frames(self, t: torch.Tensor, L: Layout) -> torch.Tensor:
        """(B, heads, N, D) -> (B, heads, T, S, D) in float32 (the recurrence always runs in float32)."""
        B, Hh, _, D = t.shape
        return t.float().view(B, Hh, L.T, L.S, D)

    def scan_both_ways(self, q, k, v, beta, decay, L: Layout, state=None):
        """Forward (inclusive, from `state`) + reverse (exclusive; restarted at each chunk in chunk-causal mode).

        -> (out (B, h, T, S, Dv), forward state after the last frame)
        """
        out_f, state = frame_gdn_scan(q, k, v, beta, decay, state)
        if L.causal:
            keep = (~L.chunk_starts().to(decay.device)).to(decay.dtype)
            beta, decay = beta * keep.view(1, 1, -1, 1), decay * keep.view(1, 1, -1)
        out_b, _ = frame_gdn_scan(q, k, v, beta, decay, reverse=True)
        return out_f + out_b, state

    def forward(self, x: torch.Tensor, L: Layout, cache: dict | None = None, write: bool = False) -> torch.Tensor:
        """x (B, N, C) -> (B, N, C). `cache` (streaming): this block's carried states and tails, read always and
        overwritten with this chunk's when `write`."""
        B, N, C = x.shape
        c = cache if cache is not None else {}
        new = {}
        beta, decay = self.gates(x, L)
        beta = beta.float()
        key_scale = (self.D * L.S) ** -0.5

        # ---- main branch: qkv -> short conv on K -> RMSNorm -> ReLU -> GDN (RoPE on the numerator only)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        k, new["k_tail"] = temporal_short_conv(k.view(B, L.T, L.S, C), self.conv_k.weight, L, c.get("k_tail"))
        q = self.heads_first(F.relu(self.q_norm(q)))
        k = self.heads_first(F.relu(self.k_norm(k.view(B, N, C)))) * key_scale
        v = self.heads_first(v)
        q_rot, k_rot = L.rope.apply(q), L.rope.apply(k)
        f = lambda t: self._frames(t, L)  # noqa: E731
        num, new["S_num"] = self.scan_both_ways(f(q_rot), f(k_rot), f(v), beta, decay, L, c.get("S_num"))
        ones = torch.ones(*f(v).shape[:-1], 1, device=x.device)
        den, new["S_den"] = self.scan_both_ways(f(q), f(k), ones, beta, decay, L, c.get("S_den"))
        main = (num / (den + self.eps)).to(x.dtype).reshape(B, self.heads, N, self.D)
        main = self.merge_heads(main)

        cam = None
        if L.ucpe is not None:
            cam, new["kc_tail"], new["S_cam"] = self.camera_branch(x, beta, decay, key_scale, L, c)
        if write and cache is not None:
            cache.update(new)
        return self.finish(x, main, cam)

    def camera_branch(self, x, beta, decay, key_scale, L: Layout, c: dict):
        """UCPE branch: numerator-only GDN in per-ray frames; β discounted by the keys' UCPE inflation.

        -> (output (B, N, C), new K tail, forward state)
        """
        B, N, C = x.shape
        q = self.q_proj_cam(x)
        k, tail = temporal_short_conv(self.k_proj_cam(x).view(B, L.T, L.S, C), self.conv_k_cam.weight, L,
                                      c.get("kc_tail"))
        v = self.heads_first(self.v_proj_cam(x))
        q = self.heads_first(F.relu(self.q_norm_cam(q)))
        k = self.heads_first(F.relu(self.k_norm_cam(k.view(B, N, C)))) * key_scale
        U = L.ucpe
        q_u = downscale_to_reference_rms(q, ucpe_apply(q, U.P_T, U.rope))
        k_u = downscale_to_reference_rms(k, ucpe_apply(k, U.P_inv, U.rope))
        v_u = downscale_to_reference_rms(v, ucpe_apply(v, U.P_inv, U.rope))
        inflation = (k_u.norm(dim=-1).clamp_min(1e-6) / k.norm(dim=-1).clamp_min(1e-6)) ** 2  # (B, h, N)
        frame_inflation = inflation.view(B, self.heads, L.T, L.S).mean(-1)  # (B, h, T)
        beta_cam = beta / frame_inflation.clamp_min(1.0)[..., None].float()
        f = lambda t: self._frames(t, L)  # noqa: E731
        out, state = self.scan_both_ways(f(q_u), f(k_u), f(v_u), beta_cam, decay, L, c.get("S_cam"))
        out = out.to(x.dtype).reshape(B, self.heads, N, self.D)
        return self.merge_heads(ucpe_apply(out, U.P, U.rope, inverse_rope=True)), tail, state


class _ConvWeight(nn.Module):
    """Holds a depthwise temporal kernel under the official name `<conv>.weight`, shape (C, 1, k)."""

    def __init__(self, channels: int, k: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels, 1, k))


def camera_softmax_scale(head_dim: int) -> float:
    """Softmax scale of the camera branch, as the release computes it.

    The release zero-pads camera q/k/v to a FlashAttention head size (128 or 256) before attention and leaves the scale
    to the default, so the logits are scaled by 1/sqrt(padded size) — 1/sqrt(128) for head dim 112, not 1/sqrt(112).
    The weights were trained that way; we keep the scale and skip the padding.
    """
    if head_dim in (32, 64, 128, 256) or head_dim >= 256:
        return head_dim**-0.5
    return (128 if head_dim <= 128 else 256) ** -0.5


class SoftmaxAttention(_AttentionParams):
    """Plain scaled-dot-product attention (RoPE on q and k) with a UCPE camera branch; no ReLU, key scale or conv."""

    def __init__(self, hidden: int, head_dim: int, norm_eps: float, legacy: bool):
        super().__init__(hidden, head_dim, norm_eps, legacy)
        self.cam_scale = camera_softmax_scale(head_dim)

    def forward(self, x: torch.Tensor, L: Layout, cache: dict | None = None, write: bool = False) -> torch.Tensor:
        """x (B, N, C) -> (B, N, C). Streaming (`cache` given): the chunk's queries see the cached sink and window
        keys (stored after RoPE / UCPE) plus the whole chunk, with no mask; `write` appends this chunk's keys."""
        mask = None if cache is not None else L.attention_mask(x.device)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = L.rope.apply(self.heads_first(self.q_norm(q)))
        k = L.rope.apply(self.heads_first(self.k_norm(k)))
        v = self.heads_first(v)
        cur = {"k": k, "v": v}
        k, v = self._with_cached(cache, "k", k), self._with_cached(cache, "v", v)
        main = self.merge_heads(F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask))
        cam = None
        if L.ucpe is not None:
            U = L.ucpe
            qc = self.heads_first(self.q_norm_cam(self.q_proj_cam(x)))
            kc = self.heads_first(self.k_norm_cam(self.k_proj_cam(x)))
            vc = self.heads_first(self.v_proj_cam(x))
            qc = downscale_to_reference_rms(qc, ucpe_apply(qc, U.P_T, U.rope))
            kc = downscale_to_reference_rms(kc, ucpe_apply(kc, U.P_inv, U.rope))
            vc = downscale_to_reference_rms(vc, ucpe_apply(vc, U.P_inv, U.rope))
            cur.update(kc=kc, vc=vc)
            kc, vc = self._with_cached(cache, "kc", kc), self._with_cached(cache, "vc", vc)
            oc = F.scaled_dot_product_attention(qc, kc.to(qc.dtype), vc.to(qc.dtype), attn_mask=mask,
                                                scale=self.cam_scale)
            cam = self.merge_heads(ucpe_apply(oc.to(x.dtype), U.P, U.rope, inverse_rope=True))
        if write and cache is not None:
            self._write(cache, cur, L)
        return self.finish(x, main, cam)

    @staticmethod
    def _with_cached(cache: dict | None, name: str, cur: torch.Tensor) -> torch.Tensor:
        """Keys or values (B, h, n, D) of the cached sink chunk and window, then the current chunk's."""
        if not cache or f"{name}_sink" not in cache:
            return cur
        return torch.cat([cache[f"{name}_sink"].to(cur.dtype), cache[f"{name}_win"].to(cur.dtype), cur], dim=2)

    @staticmethod
    def _write(cache: dict, cur: dict, L: Layout) -> None:
        """The first chunk becomes the sink; later chunks roll through a window of `L.window_tokens` tokens."""
        keep = L.window_tokens  # None: keep every chunk
        for name, t in cur.items():
            if f"{name}_sink" not in cache:
                cache[f"{name}_sink"] = t
                cache[f"{name}_win"] = t[:, :, :0]
            else:
                win = torch.cat([cache[f"{name}_win"], t], dim=2)
                cache[f"{name}_win"] = win if keep is None else win[:, :, max(0, win.shape[2] - keep):]
