"""The world model: a SANA-WM hybrid DiT (frame-wise Gated DeltaNet + a few softmax blocks), camera-conditioned.

    latents (B, C, T, H, W) ──x_embedder──► tokens (B, N=T·H·W, D)     (frame-major, then row, then column)
    timesteps (B, T) ──sinusoid──► t_embedder ──► t (B, T, D) ──t_block──► t0 (B, T, 6, D)   (adaLN-single per frame)
    camera_conditions (B, T, 20) ──controls.rays──► UCPE ray frames P (B, N, 4, 4)          (camera branch, every block)
    plucker (B, 6·s, T, H, W) ──plucker_embedder──► (B, N, D), added after self-attention in every block
    text (B, L, caption_channels) ──y_embedder, RMSNorm──► cross-attention (optional)
    blocks × depth ──► final_layer (modulated by t) ──► velocity (B, C, T, H, W)

Parameter names and shapes of the `sana-wm-1600m` preset are the official release's.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from worldwalk.controls.rays import ucpe_ray_frames
from worldwalk.world.attention import GDNAttention, Layout, SoftmaxAttention
from worldwalk.world.cache import StreamCache
from worldwalk.world.ffn import GLUMBConvTemp
from worldwalk.world.layers import (CaptionEmbedder, FinalLayer, PatchEmbed, RMSNorm, TimestepEmbedder, layer_norm, modulate,
                          per_frame)
from worldwalk.world.posenc import Rope, UcpeTransforms, camera_rope, rope_angles
from worldwalk.world.presets import ModelConfig, get_preset

MODES = ("bidirectional", "chunk_causal")


class CrossAttention(nn.Module):
    """Image tokens attend to caption tokens; q and k RMS-normed (eps 1e-6)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_linear = nn.Linear(hidden, hidden)
        self.kv_linear = nn.Linear(hidden, 2 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.q_norm = RMSNorm(hidden, 1e-6)
        self.k_norm = RMSNorm(hidden, 1e-6)

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # x (B, N, C), y (B, L, C), mask (B, L) bool (True = real token)
        B, N, C = x.shape
        split = lambda t: t.view(B, -1, self.heads, C // self.heads).transpose(1, 2)  # noqa: E731
        k, v = self.kv_linear(y).chunk(2, dim=-1)
        q, k, v = split(self.q_norm(self.q_linear(x))), split(self.k_norm(k)), split(v)
        attn_mask = None if mask is None else mask[:, None, None, :]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(o.transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    """norm → per-frame modulate → self-attention (GDN or softmax, + UCPE branch) → gated residual
    → + plucker_proj(plücker embedding) → + cross-attention → norm → modulate → GLUMBConvTemp → gated residual."""

    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        C = cfg.hidden
        self.scale_shift_table = nn.Parameter(torch.randn(6, C) / C**0.5)
        if cfg.is_softmax(index):
            self.attn = SoftmaxAttention(C, cfg.head_dim, cfg.qk_norm_eps, cfg.legacy_tensors)
        else:
            self.attn = GDNAttention(C, cfg.head_dim, cfg.qk_norm_eps, cfg.conv_kernel, cfg.gdn_eps, cfg.legacy_tensors)
        self.plucker_proj = nn.Linear(C, C)
        self.cross_attn = CrossAttention(C, cfg.heads) if cfg.caption_channels else None
        self.mlp = GLUMBConvTemp(C, cfg.ffn_hidden, cfg.t_kernel)

    def forward(self, x, t0, L: Layout, plucker_emb=None, y=None, y_mask=None, cache=None, write=False):
        # x (B, N, C); t0 (B, T, 6, C); cache: this block's streaming cache (dict) or None
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (self.scale_shift_table + t0).unbind(2)
        h = self.attn(modulate(layer_norm(x), shift_msa, scale_msa, L.T), L, cache, write)
        x = x + per_frame(gate_msa, h, L.T)
        if plucker_emb is not None:
            x = x + self.plucker_proj(plucker_emb)
        if y is not None:
            x = x + self.cross_attn(x, y, y_mask)
        h = self.mlp(modulate(layer_norm(x), shift_mlp, scale_mlp, L.T), L, cache, write)
        return x + per_frame(gate_mlp, h, L.T)


class WorldModel(nn.Module):
    def __init__(self, cfg: ModelConfig | str):
        super().__init__()
        cfg = get_preset(cfg) if isinstance(cfg, str) else cfg.validate()
        self.cfg = cfg
        C = cfg.hidden
        self.x_embedder = PatchEmbed(cfg.latent_channels, C)
        self.t_embedder = TimestepEmbedder(C)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))
        self.plucker_embedder = PatchEmbed(cfg.plucker_channels, C)
        if cfg.recycle:  # the previous chunk's latents, frame for frame (one forward per chunk)
            self.recycle_embedder = PatchEmbed(cfg.latent_channels, C)
        if cfg.caption_channels:
            self.y_embedder = CaptionEmbedder(cfg.caption_channels, C)
            self.attention_y_norm = RMSNorm(C, 1e-5)
        if cfg.legacy_tensors:  # the release's pre-Plücker absmap embedder; unused
            self.raymap_embedder = PatchEmbed(3, C)
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.depth)])
        self.final_layer = FinalLayer(C, cfg.latent_channels)

    # ------------------------------------------------------------------ initialisation (for training from scratch)
    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> "WorldModel":
        """Xavier linears; camera and temporal injections zero (the model starts as a plain video DiT); GDN gates
        as in the release (β bias 5, gate weight 0, dt_bias −5, A_log 0); output gate ≈ 1."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for blk in self.blocks:
            a = blk.attn
            nn.init.zeros_(a.beta_proj.weight)
            nn.init.constant_(a.beta_proj.bias, 5.0)
            nn.init.zeros_(a.gate_proj.weight)
            nn.init.zeros_(a.gate_proj.bias)
            nn.init.constant_(a.dt_bias, -5.0)
            nn.init.zeros_(a.A_log)
            nn.init.zeros_(a.output_gate.weight)
            nn.init.constant_(a.output_gate.bias, 1.2785)  # SiLU(1.2785) ≈ 1
            nn.init.zeros_(a.out_proj_cam.weight)
            nn.init.zeros_(a.out_proj_cam.bias)
            nn.init.zeros_(blk.plucker_proj.weight)
            nn.init.zeros_(blk.plucker_proj.bias)
            nn.init.zeros_(blk.mlp.t_conv.weight)
            if isinstance(a, GDNAttention):
                # a short conv that starts as the identity on the current frame
                for conv in (a.conv_k, a.conv_k_cam):
                    conv.weight.zero_()
                    conv.weight[:, 0, -1] = 1.0
        nn.init.zeros_(self.plucker_embedder.proj.weight)
        nn.init.zeros_(self.plucker_embedder.proj.bias)
        if self.cfg.recycle:
            nn.init.zeros_(self.recycle_embedder.proj.weight)
            nn.init.zeros_(self.recycle_embedder.proj.bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)
        return self

    # ------------------------------------------------------------------ inputs
    def chunk_of_frame(self, T: int, frame_offset: int = 0) -> torch.Tensor:
        """Chunk index of latent frames frame_offset … frame_offset+T-1: [0, first), then every chunk_frames."""
        f = torch.arange(frame_offset, frame_offset + T)
        first, size = self.cfg.first_chunk_frames, self.cfg.chunk_frames
        return torch.where(f < first, torch.zeros_like(f), 1 + (f - first).div(size, rounding_mode="floor"))

    def _check_inputs(self, latents, timesteps, camera_conditions, plucker, text, text_mask, mode):
        cfg = self.cfg
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: expected one of {MODES}")
        if not torch.is_tensor(latents) or latents.ndim != 5:
            raise ValueError(f"latents: expected a (B, C, T, H, W) tensor, got "
                             f"{tuple(latents.shape) if torch.is_tensor(latents) else type(latents).__name__}")
        B, Cl, T, H, W = latents.shape
        if Cl != cfg.latent_channels:
            raise ValueError(f"latents: expected {cfg.latent_channels} channels for preset {cfg.name!r}, got {Cl}")
        if not torch.isfinite(latents).all():
            raise ValueError("latents: contains NaN or Inf")
        if timesteps.shape not in ((B, T), (B,)):
            raise ValueError(f"timesteps: expected shape (B, T) = {(B, T)} or (B,), got {tuple(timesteps.shape)}")
        if not torch.isfinite(timesteps).all():
            raise ValueError("timesteps: contains NaN or Inf")
        if camera_conditions is not None:
            if camera_conditions.shape != (B, T, 20):
                raise ValueError(f"camera_conditions: expected (B, T, 20) = {(B, T, 20)}, "
                                 f"got {tuple(camera_conditions.shape)}")
            if not torch.isfinite(camera_conditions).all():
                raise ValueError("camera_conditions: contains NaN or Inf")
        if plucker is not None:
            want = (B, cfg.plucker_channels, T, H, W)
            if tuple(plucker.shape) != want:
                raise ValueError(f"plucker: expected (B, 6·stride, T, H, W) = {want}, got {tuple(plucker.shape)}")
            if not torch.isfinite(plucker).all():
                raise ValueError("plucker: contains NaN or Inf")
        if text is not None:
            if not cfg.caption_channels:
                raise ValueError(f"text: preset {cfg.name!r} has no text branch; pass text=None")
            if text.ndim != 3 or text.shape[0] != B or text.shape[2] != cfg.caption_channels:
                raise ValueError(f"text: expected (B, L, {cfg.caption_channels}) with B={B}, got {tuple(text.shape)}")
            if text_mask is not None and tuple(text_mask.shape) != tuple(text.shape[:2]):
                raise ValueError(f"text_mask: expected (B, L) = {tuple(text.shape[:2])}, got {tuple(text_mask.shape)}")

    def _check_chunk(self, cache: StreamCache, T: int, frame_offset: int, mode: str) -> None:
        if mode != "chunk_causal":
            raise ValueError(f"cache: streaming needs mode='chunk_causal', got {mode!r}")
        if frame_offset != cache.frames:
            raise ValueError(f"frame_offset: the cache holds {cache.frames} latent frames, so the next chunk starts "
                             f"at {cache.frames}, got {frame_offset}")
        chunks = self.chunk_of_frame(T, frame_offset)
        if chunks[0] != chunks[-1] or (frame_offset > 0 and T != self.cfg.chunk_frames) or \
                (frame_offset == 0 and T != self.cfg.first_chunk_frames):
            want = self.cfg.first_chunk_frames if frame_offset == 0 else self.cfg.chunk_frames
            raise ValueError(f"latents: a streamed chunk starting at latent frame {frame_offset} has {want} frames, "
                             f"got {T}")

    def layout(self, B, T, H, W, camera_conditions, mode, frame_offset, device) -> Layout:
        cfg = self.cfg
        rope = Rope(rope_angles(cfg.head_dim, (T, H, W), cfg.rope_theta, frame_offset, device=device))
        ucpe = None
        if camera_conditions is not None:
            with torch.autocast(device.type, enabled=False):  # camera geometry in float32, also under bf16 autocast
                P = ucpe_ray_frames(camera_conditions.float(), (H, W)).reshape(B, T * H * W, 4, 4)
            ucpe = UcpeTransforms(P, camera_rope(cfg.head_dim, (T, H, W), cfg.rope_theta, frame_offset, device))
        chunks = self.chunk_of_frame(T, frame_offset) if mode == "chunk_causal" else torch.zeros(T, dtype=torch.long)
        return Layout(T, H, W, mode, chunks, rope, ucpe)

    # ------------------------------------------------------------------ forward
    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, camera_conditions: torch.Tensor | None = None,
                plucker: torch.Tensor | None = None, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None, *, mode: str = "bidirectional",
                frame_offset: int = 0, cache: StreamCache | None = None, write_cache: bool = False,
                recycled: torch.Tensor | None = None) -> torch.Tensor:
        """Flow velocity (B, C, T, H, W) for latents (B, C, T, H, W) at per-frame timesteps (B, T) (t = σ·1000).

        camera_conditions (B, T, 20) feed the UCPE branch, plucker (B, 6·stride, T, H, W) the post-attention branch,
        text (B, L, caption_channels) with text_mask (B, L) the cross-attention; each is skipped when None.
        frame_offset: absolute latent index of the first frame (RoPE and chunk boundaries).
        cache: streaming (chunk-causal, one chunk at a time): the chunk sees the cached past of earlier chunks
        instead of their tokens; `write_cache` stores this chunk's states in it (the clean t = 0 forward, or with
        cfg.recycle the denoising forward itself).
        recycled (B, C, T, H, W), cfg.recycle only: each frame's latent one chunk earlier (zeros where there is none,
        and when None), the model's own generation when streaming; see recycled_inputs.
        """
        self._check_inputs(latents, timesteps, camera_conditions, plucker, text, text_mask, mode)
        B, _, T, H, W = latents.shape
        if cache is not None:
            self._check_chunk(cache, T, frame_offset, mode)
        dtype = self.x_embedder.proj.weight.dtype
        if timesteps.ndim == 1:
            timesteps = timesteps[:, None].expand(B, T)
        if self.cfg.integer_timesteps:
            timesteps = timesteps.long()
        L = self.layout(B, T, H, W, camera_conditions, mode, frame_offset, latents.device)
        if cache is not None:
            L.window_tokens = cache.window_tokens(H * W)

        x = self.x_embedder(latents.to(dtype))  # (B, N, C)
        if self.cfg.recycle:
            r = torch.zeros_like(latents) if recycled is None else recycled
            if r.shape != latents.shape:
                raise ValueError(f"recycled: expected the latents' shape {tuple(latents.shape)}, got {tuple(r.shape)}")
            x = x + self.recycle_embedder(r.to(dtype))
        elif recycled is not None:
            raise ValueError(f"recycled: preset {self.cfg.name!r} has no recycled input (cfg.recycle is off)")
        t = self.t_embedder(timesteps.float())  # (B, T, C)
        t0 = self.t_block(t).unflatten(-1, (6, -1))  # (B, T, 6, C)
        plucker_emb = None if plucker is None else self.plucker_embedder(plucker.to(dtype))
        y = None
        if text is not None:
            y = self.attention_y_norm(self.y_embedder(text.to(dtype)))
            text_mask = None if text_mask is None else text_mask.bool()
        for i, blk in enumerate(self.blocks):
            x = blk(x, t0, L, plucker_emb, y, text_mask, None if cache is None else cache.blocks[i], write_cache)
        if cache is not None and write_cache:
            cache.advance(T)
        out = self.final_layer(x, t)  # (B, N, C_latent)
        return out.transpose(1, 2).reshape(B, -1, T, H, W)


def recycled_inputs(cfg: ModelConfig, z: torch.Tensor) -> torch.Tensor:
    """The recycled input of a whole clip in chunks (one-shot chunk-causal forward, cfg.recycle): z (B, C, T, h, w)
    -> (B, C, T, h, w) where chunk k's j-th latent gets chunk k−1's j-th new latent (chunk 0's new latents are
    1 … first−1, after the start latent), and chunk 0 gets zeros."""
    out = torch.zeros_like(z)
    first, step = cfg.first_chunk_frames, cfg.chunk_frames
    prev = (1, first)  # chunk 0's generated latents
    b = first
    while b + step <= z.shape[2]:
        n = min(step, prev[1] - prev[0])
        out[:, :, b:b + n] = z[:, :, prev[0]:prev[0] + n]
        prev = (b, b + step)
        b += step
    return out


def count_parameters(cfg: ModelConfig | str) -> int:
    """Exact parameter count, built on the meta device (allocates nothing)."""
    with torch.device("meta"):
        m = WorldModel(cfg)
    return sum(p.numel() for p in m.parameters())


def describe(cfg: ModelConfig | str) -> str:
    cfg = get_preset(cfg) if isinstance(cfg, str) else cfg
    n = count_parameters(cfg)
    kinds = "".join("S" if cfg.is_softmax(i) else "G" for i in range(cfg.depth))
    h, w = cfg.latent_hw
    return (f"{cfg.name}: {n:,} parameters ({n / 1e9:.3f} B) | depth {cfg.depth} [{kinds}] (G = GDN, S = softmax) | "
            f"hidden {cfg.hidden} = {cfg.heads} heads x {cfg.head_dim} | latent {cfg.latent_channels} ch, "
            f"{h}x{w} grid for {cfg.resolution[0]}x{cfg.resolution[1]} frames, stride t{cfg.temporal_stride} "
            f"s{cfg.spatial_factor} | text {'Gemma-2 ' + str(cfg.caption_channels) + ' ch' if cfg.caption_channels else 'off'}"
            f" | {math.ceil(cfg.fps)} fps")
