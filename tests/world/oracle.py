"""Build diffusers' SanaWMTransformer3DModel (an independent port of the official bidirectional model) beside ours.

Used only as a test oracle. Our parameter names are the official release's; diffusers renames two of them
(`t_embedder.mlp.0/2` -> `t_embedder.linear_1/2`), which `to_diffusers_key` undoes.
"""
from __future__ import annotations

import contextlib

import torch

from worldwalk.world.presets import ModelConfig

_RENAMES = {"t_embedder.mlp.0.": "t_embedder.linear_1.", "t_embedder.mlp.2.": "t_embedder.linear_2."}


def to_diffusers_key(k: str) -> str:
    for a, b in _RENAMES.items():
        if k.startswith(a):
            return b + k[len(a):]
    return k


def build_oracle(cfg: ModelConfig):
    from diffusers import SanaWMTransformer3DModel

    return SanaWMTransformer3DModel(
        in_channels=cfg.latent_channels, num_layers=cfg.depth, hidden_size=cfg.hidden,
        num_attention_heads=cfg.heads, linear_head_dim=cfg.head_dim, softmax_every_n=cfg.softmax_every,
        caption_channels=cfg.caption_channels or 2304, chunk_plucker_channels=cfg.plucker_channels,
        chunk_plucker_post_attn_blocks=cfg.depth, mlp_ratio=cfg.ffn_ratio, conv_kernel_size=cfg.conv_kernel,
        t_kernel_size=cfg.t_kernel,
    )


@contextlib.contextmanager
def exact_softmax_attention():
    """The port casts float32 q/k/v to bfloat16 before softmax attention (a FlashAttention speed habit). That cast is
    rounding, not the model's maths; inside this context `.bfloat16()` is the identity, so the oracle stays float32."""
    original = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = original
