"""Small building blocks: norms, modulation, timestep / caption / patch embedders, final layer (the DiT); SiLU (conv stacks)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    """RMS norm over the last dim; the mean square is taken in float32 whatever the input dtype."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.float().pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return x * self.weight


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm without affine parameters, eps 1e-6 (norm1, norm2 and the final norm)."""
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, T: int) -> torch.Tensor:
    """Per-frame adaLN: x (B, T*S, C), shift/scale (B, T, C) -> (B, T*S, C)."""
    B, N, C = x.shape
    x = x.view(B, T, N // T, C) * (1 + scale[:, :, None]) + shift[:, :, None]
    return x.view(B, N, C)


def per_frame(gate: torch.Tensor, x: torch.Tensor, T: int) -> torch.Tensor:
    """gate (B, T, C) * x (B, T*S, C)."""
    B, N, C = x.shape
    return (gate[:, :, None] * x.view(B, T, N // T, C)).view(B, N, C)


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding, cosines first: t (N,) -> (N, dim) float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    """256-d sinusoid -> Linear -> SiLU -> Linear (official keys `t_embedder.mlp.0`, `t_embedder.mlp.2`)."""

    def __init__(self, hidden: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t.flatten(), self.freq_dim).to(self.mlp[0].weight.dtype)
        return self.mlp(emb).unflatten(0, t.shape)


class Mlp(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CaptionEmbedder(nn.Module):
    """Gemma-2 hidden states (caption_channels) -> hidden, GELU-tanh MLP (keys `y_embedder.y_proj.fc1/fc2`)."""

    def __init__(self, caption_channels: int, hidden: int):
        super().__init__()
        self.y_proj = Mlp(caption_channels, hidden, hidden)

    def forward(self, y):
        return self.y_proj(y)


class PatchEmbed(nn.Module):
    """Conv3d with kernel = stride = (1, 1, 1): (B, C, T, H, W) -> tokens (B, T*H*W, hidden), frame-major."""

    def __init__(self, c_in: int, hidden: int):
        super().__init__()
        self.proj = nn.Conv3d(c_in, hidden, kernel_size=1, stride=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A 1x1x1 conv is a per-token linear map; written as one so it runs as a single matmul.
        w = self.proj.weight.flatten(1)  # (hidden, C)
        x = x.flatten(2).transpose(1, 2)  # (B, N, C)
        return F.linear(x.to(w.dtype), w, self.proj.bias)


class FinalLayer(nn.Module):
    """LayerNorm -> per-frame modulate with a (2, hidden) table + the timestep embedding -> Linear to latent channels."""

    def __init__(self, hidden: int, c_out: int):
        super().__init__()
        self.linear = nn.Linear(hidden, c_out)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden) / hidden**0.5)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        # x (B, N, C), t_emb (B, T, C)
        T = t_emb.shape[1]
        shift, scale = (self.scale_shift_table[None, None] + t_emb[:, :, None]).unbind(2)  # (B, T, C) each
        return self.linear(modulate(layer_norm(x), shift, scale, T))


class SiLU(nn.Module):
    """SiLU after a convolution, in place when autograd records nothing: on the CPU this saves a full-size copy per
    layer (about a sixth of a decode). The state dict is nn.SiLU's (none)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x, inplace=not (torch.is_grad_enabled() and x.requires_grad))
