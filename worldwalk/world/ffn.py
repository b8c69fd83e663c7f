"""GLUMBConvTemp: the block's feed-forward — a gated inverted-bottleneck conv per frame plus a temporal conv.

    x (B, T*S, C) -> 1x1 conv C->2h (+bias, SiLU) -> 3x3 depthwise conv (+bias) -> value·SiLU(gate) (h channels)
      -> 1x1 conv h->C (no bias) = y;   out = y + t_conv(y), t_conv a 3-tap conv over frames (C->C, no bias)

Spatial convs run per latent frame on the (H, W) grid. The temporal conv sees frames t-1, t, t+1; in chunk-causal
mode frame t+1 counts only inside t's chunk (frame t-1 may come from the previous chunk).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from worldwalk.world.attention import Layout, _shift_time, same_chunk_ahead, with_tail


class _Conv(nn.Module):
    """Holds a Conv2d under the official name `<name>.conv`."""

    def __init__(self, c_in: int, c_out: int, k: int, groups: int = 1, bias: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, groups=groups, bias=bias)


class GLUMBConvTemp(nn.Module):
    def __init__(self, hidden: int, ffn_hidden: int, t_kernel: int = 3):
        super().__init__()
        if t_kernel != 3:
            raise ValueError(f"t_kernel={t_kernel}: only the official 3-tap temporal conv is supported")
        self.h = ffn_hidden
        self.inverted_conv = _Conv(hidden, 2 * ffn_hidden, 1)
        self.depth_conv = _Conv(2 * ffn_hidden, 2 * ffn_hidden, 3, groups=2 * ffn_hidden)
        self.point_conv = _Conv(ffn_hidden, hidden, 1, bias=False)
        self.t_conv = nn.Conv2d(hidden, hidden, (t_kernel, 1), padding=(t_kernel // 2, 0), bias=False)

    def spatial(self, x: torch.Tensor, L: Layout) -> torch.Tensor:
        """The per-frame gated conv: (B, N, C) -> (B, N, C)."""
        B, N, C = x.shape
        ic, dc, pc = self.inverted_conv.conv, self.depth_conv.conv, self.point_conv.conv
        y = F.silu(F.linear(x, ic.weight.flatten(1), ic.bias))  # 1x1 conv as a matmul: (B, N, 2h)
        y = y.view(B * L.T, L.H, L.W, 2 * self.h).permute(0, 3, 1, 2)
        y = F.conv2d(y, dc.weight, dc.bias, padding=1, groups=2 * self.h)  # (B*T, 2h, H, W)
        value, gate = y.permute(0, 2, 3, 1).reshape(B, N, 2 * self.h).chunk(2, dim=-1)
        return F.linear(value * F.silu(gate), pc.weight.flatten(1))

    def temporal(self, y: torch.Tensor, L: Layout, tail: torch.Tensor | None = None):
        """y + t_conv(y) over frames: (B, N, C) -> ((B, N, C), new tail: the last frame of y, (B, 1, S, C))."""
        B, N, C = y.shape
        y4 = y.view(B, L.T, L.S, C)
        past, new_tail = with_tail(y4, tail, 1)
        prev, nxt = _shift_time(past, 1)[:, 1:], _shift_time(y4, -1)
        if L.causal:
            nxt = nxt * same_chunk_ahead(L, 1, y.device).view(1, -1, 1, 1).to(y.dtype)
        w = self.t_conv.weight[..., 0]  # (C_out, C_in, 3): taps on t-1, t, t+1
        out = F.linear(prev, w[:, :, 0]) + F.linear(y4, w[:, :, 1]) + F.linear(nxt, w[:, :, 2])
        return (y4 + out).view(B, N, C), new_tail

    def forward(self, x: torch.Tensor, L: Layout, cache: dict | None = None, write: bool = False) -> torch.Tensor:
        out, tail = self.temporal(self.spatial(x, L), L, None if cache is None else cache.get("ffn_tail"))
        if write and cache is not None:
            cache["ffn_tail"] = tail
        return out
