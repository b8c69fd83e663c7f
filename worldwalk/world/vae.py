"""Video VAEs behind one interface, and the embedded default's small causal VAE.

The engine needs three things of a VAE:
    encode_image(img (B, 3, H, W) in [-1, 1])         -> latent frame 0, normalised, (B, C, 1, h, w)
    new_decode_cache()                                 -> an empty per-walk decode cache (a dict)
    decode_chunk(latents (B, C, T, h, w), cache, cameras=None)
                                                       -> frames (B, 3, F, H, W) in [-1, 1], continuing the walk
(cameras: (c2w (F, 4, 4), intrinsics (4,)) of the frames; only a decoder with grain reads them, the others ignore them)
where F = 1 + stride·(T−1) for the very first chunk (latent 0 is the start frame alone, causal-first-frame) and
stride·T afterwards, so consecutive chunks join without seams: decoding chunk by chunk equals decoding the whole clip.

`CausalVAE` is the small one the `tiny` and `test` presets ship with: 2-D convs per frame for space, and causal
convolutions over latent frames (each sees the previous latent frame through the cache) for time. With
`VAEConfig.grain` its decoder also takes noise after each upsampling, times learnt per-channel scales, to draw texture
from: noise fixed to the world's directions (world/grain.py), so `decode_chunk` then takes the frames' cameras too.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.grain import GrainField
from worldwalk.world.layers import SiLU


class VideoVAE(nn.Module):
    """The interface; subclasses set these and implement the three methods."""

    latent_channels: int
    spatial_factor: int
    temporal_stride: int

    def encode_image(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_next(self, first: torch.Tensor, frames: torch.Tensor, still: bool = False) -> torch.Tensor:
        """The latents of frames that follow `first`, as encode_video gives them after a clip's first latent:
        first (B, 3, H, W), frames (B, 3, s·k, H, W) in [-1, 1] -> normalised latents (B, C, k, h, w).
        still: frames (B, 3, k, H, W) instead, each held still for its latent's s frames."""
        if still:
            frames = frames.repeat_interleave(self.temporal_stride, dim=2)
        return self.encode_video(torch.cat([first[:, :, None], frames], 2))[:, :, 1:]

    def new_decode_cache(self) -> dict:
        raise NotImplementedError

    def decode_chunk(self, latents: torch.Tensor, cache: dict, cameras=None) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class VAEConfig:
    name: str = "tiny-vae"
    latent_channels: int = 16
    spatial_factor: int = 16  # a power of two
    temporal_stride: int = 4
    latent_width: int = 128  # channels at the latent grid
    widths: tuple[int, ...] = (64, 48, 32, 16)  # channels after each 2x spatial upsampling (len = log2(factor))
    decoder_widths: tuple[int, ...] | None = None  # the decoder's own, if wider than the encoder's (same length)
    grain: bool = False  # world-anchored noise (world/grain.py) enters after each upsampling, times a learnt scale

    @property
    def dec_widths(self) -> tuple[int, ...]:
        return self.widths if self.decoder_widths is None else self.decoder_widths

    def validate(self) -> "VAEConfig":
        n = int(round(math.log2(self.spatial_factor)))
        if 2**n != self.spatial_factor or len(self.widths) != n:
            raise ValueError(f"VAEConfig {self.name!r}: spatial_factor must be 2**len(widths), got "
                             f"{self.spatial_factor} with {len(self.widths)} widths")
        if self.decoder_widths is not None and len(self.decoder_widths) != n:
            raise ValueError(f"VAEConfig {self.name!r}: decoder_widths {self.decoder_widths}: expected {n} widths "
                             f"like widths {self.widths}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        if d.get("decoder_widths") is not None:
            d["decoder_widths"] = tuple(d["decoder_widths"])
        return cls(**d).validate()


VAE_PRESETS = {
    "tiny-vae": VAEConfig(),
    "test-vae": VAEConfig(name="test-vae", latent_channels=4, spatial_factor=8, temporal_stride=2, latent_width=32,
                          widths=(16, 12, 8)),
}


class CausalTimeConv(nn.Module):
    """Conv over (latent time k=2, 3x3 space): frame t sees frames t−1 and t. x (B, C, T, h, w) -> (B, C', T, h, w)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, (2, 3, 3), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor, cache: dict, key: str) -> torch.Tensor:
        prev = cache.get(key)
        if prev is None:
            prev = torch.zeros_like(x[:, :, :1])
        ext = torch.cat([prev.to(x.dtype), x], dim=2)
        cache[key] = ext[:, :, -1:].detach()
        return self.conv(ext)


class CausalResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = CausalTimeConv(c, c)
        self.conv2 = CausalTimeConv(c, c)

    def forward(self, x, cache, key):
        h = self.conv1(F.silu(x), cache, key + ".1")
        return x + self.conv2(F.silu(h), cache, key + ".2")


class CausalVAE(VideoVAE):
    def __init__(self, cfg: VAEConfig | str = "tiny-vae"):
        super().__init__()
        cfg = VAE_PRESETS[cfg] if isinstance(cfg, str) else cfg.validate()
        self.cfg = cfg
        self.latent_channels, self.spatial_factor, self.temporal_stride = (cfg.latent_channels, cfg.spatial_factor,
                                                                           cfg.temporal_stride)
        C, W, s = cfg.latent_channels, cfg.latent_width, cfg.temporal_stride
        widths = cfg.widths
        # ---- encoder: per frame down to the latent grid, then frame 0 alone / groups of s frames -> one latent
        down, c = [], 3
        for w in reversed(widths):
            down += [nn.Conv2d(c, w, 3, stride=2, padding=1), SiLU()]
            c = w
        self.enc_frames = nn.Sequential(*down, nn.Conv2d(c, W, 3, padding=1))
        self.enc_first = nn.Conv2d(W, C, 1)
        self.enc_group = nn.Conv2d(W * s, C, 1)
        # ---- decoder: causal over latent time at the latent grid, then s frames per latent, then up in space
        self.dec_in = CausalTimeConv(C, W)
        self.dec_res = CausalResBlock(W)
        widths = cfg.dec_widths
        self.dec_time = nn.Conv2d(W, widths[0] * s, 1)
        ups, c = [], widths[0]
        for w in list(widths[1:]) + [widths[-1]]:
            ups += [nn.Conv2d(c, 4 * w, 3, padding=1), nn.PixelShuffle(2), SiLU()]
            c = w
        self.dec_space = nn.Sequential(*ups, nn.Conv2d(c, 3, 3, padding=1))
        if cfg.grain:  # per-channel scales of the grain after each upsampling (0: the decoder as without grain)
            self.dec_grain = nn.ParameterList([nn.Parameter(torch.zeros(w)) for w in list(widths[1:]) + [widths[-1]]])
            self.grain_field = GrainField(0)
        # per-frame convs keep channels last: oneDNN runs these thin, wide layers ~1.6x faster on the CPU that way
        self.enc_frames.to(memory_format=torch.channels_last)
        self.dec_space.to(memory_format=torch.channels_last)
        # latent normalisation (per channel), fixed after training
        self.register_buffer("latent_mean", torch.zeros(C))
        self.register_buffer("latent_std", torch.ones(C))

    # ------------------------------------------------------------------ encoder
    def _norm(self, z):
        return (z - self.latent_mean.view(1, -1, 1, 1, 1)) / self.latent_std.view(1, -1, 1, 1, 1)

    def _denorm(self, z):
        return z * self.latent_std.view(1, -1, 1, 1, 1) + self.latent_mean.view(1, -1, 1, 1, 1)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, F, H, W) in [-1, 1], F = 1 + s·k -> normalised latents (B, C, 1 + k, h, w)."""
        B, _, Fr, H, W = frames.shape
        s = self.temporal_stride
        if (Fr - 1) % s:
            raise ValueError(f"frames: expected 1 + {s}·k frames, got {Fr}")
        if H % self.spatial_factor or W % self.spatial_factor:
            raise ValueError(f"frames: height and width must be multiples of {self.spatial_factor}, got {H}x{W}")
        x = frames.transpose(1, 2).reshape(B * Fr, 3, H, W).contiguous(memory_format=torch.channels_last)
        feats = self.enc_frames(x).contiguous()  # (B*F, Wl, h, w)
        feats = feats.view(B, Fr, *feats.shape[1:])
        z0 = self.enc_first(feats[:, 0])[:, :, None]
        k = (Fr - 1) // s
        if k:
            g = feats[:, 1:].reshape(B * k, s * feats.shape[2], *feats.shape[3:])
            zk = self.enc_group(g).view(B, k, self.latent_channels, *feats.shape[3:]).transpose(1, 2)
            z0 = torch.cat([z0, zk], dim=2)
        return self._norm(z0)

    def encode_next(self, first: torch.Tensor, frames: torch.Tensor, still: bool = False) -> torch.Tensor:
        """VideoVAE.encode_next without the first frame's pass: here a latent after the first reads its own s frames
        only, each through the per-frame encoder (a still frame's once)."""
        B, _, Fr, H, W = frames.shape
        s = self.temporal_stride
        if not still and Fr % s:
            raise ValueError(f"frames: expected s·k = {s}·k frames after the first, got {Fr}")
        x = frames.transpose(1, 2).reshape(B * Fr, 3, H, W).contiguous(memory_format=torch.channels_last)
        feats = self.enc_frames(x).contiguous()  # (B*F, Wl, h, w)
        k = Fr if still else Fr // s
        g = feats.view(B * k, -1, *feats.shape[2:])  # (B*k, s·Wl, h, w): a latent's frames side by side
        if still:
            g = g.repeat(1, s, 1, 1)
        return self._norm(self.enc_group(g).view(B, k, self.latent_channels, *feats.shape[2:]).transpose(1, 2))

    def encode_image(self, img: torch.Tensor) -> torch.Tensor:
        return self.encode_video(img[:, :, None])

    # ------------------------------------------------------------------ decoder
    def new_decode_cache(self) -> dict:
        return {}

    def decode_chunk(self, latents: torch.Tensor, cache: dict, cameras=None) -> torch.Tensor:
        """Continue decoding a walk: latents (B, C, T, h, w) -> frames (B, 3, F, H, W) (see module doc).
        cameras: (c2w (F, 4, 4), intrinsics (4,)) of the frames, for a decoder with grain (its noise is fixed to the
        world's directions, world/grain.py); without them such a decoder draws its grain as seen by a camera at the
        identity pose with a 60° field of view, fixed to the screen."""
        x = self.decode_time(latents, cache)
        grain = None
        if self.cfg.grain and cameras is not None:
            B, Fr = x.shape[:2]
            c2w = np.asarray(cameras[0], dtype=np.float64).reshape(-1, 4, 4)
            if c2w.shape[0] != Fr:
                raise ValueError(f"cameras: {c2w.shape[0]} poses for {Fr} frames")
            size = (x.shape[-1] * self.spatial_factor, x.shape[-2] * self.spatial_factor)
            grain = [g.repeat(B, 1, 1, 1) for g in self.grain_maps(c2w, cameras[1], size, x.device)]
        return self.decode_space(x, grain)

    def grain_maps(self, c2w, intrinsics, size: tuple[int, int], device=None) -> list[torch.Tensor]:
        """The grain after each upsampling for frames at c2w (N, 4, 4) of size (W, H): [(N, 1, H_k, W_k)]."""
        n = len(self.dec_grain)
        return self.grain_field.stages(c2w, intrinsics, size, [2 ** (n - 1 - k) for k in range(n)], device)

    def decode_time(self, latents: torch.Tensor, cache: dict) -> torch.Tensor:
        """The decoder's causal stage at the latent grid: latents (B, C, T, h, w) -> per-frame features
        (B, F, widths[0], h, w), s frames per latent (one for the walk's first latent)."""
        B, _, T, h, w = latents.shape
        s = self.temporal_stride
        first = not cache.get("started", False)
        x = self.dec_in(self._denorm(latents), cache, "in")
        x = self.dec_res(x, cache, "res")  # (B, Wl, T, h, w)
        x = self.dec_time(F.silu(x).transpose(1, 2).reshape(B * T, -1, h, w))  # (B*T, w0*s, h, w)
        x = x.view(B, T, s, -1, h, w).reshape(B, T * s, -1, h, w)  # s frames per latent, in order
        if first:  # causal first frame: latent 0 stands for one frame (the last of its s slots)
            x = x[:, s - 1:]
        cache["started"] = True
        return x

    def decode_space(self, x: torch.Tensor, grain: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Per-frame upsampling: features (B, F, widths[0], h, w) -> frames (B, 3, F, H, W) in [-1, 1].
        grain (a decoder with grain only): [(B*F or 1, 1, H_k, W_k)] per upsampling, added times the learnt scales."""
        B, Fr, _, h, w = x.shape
        y = x.reshape(B * Fr, -1, h, w).contiguous(memory_format=torch.channels_last)
        if not self.cfg.grain:
            y = self.dec_space(y)
        else:
            if grain is None:  # a camera at the identity pose with a 60° field of view, fixed to the screen: one map
                H, W = h * self.spatial_factor, w * self.spatial_factor  # per stage, broadcast over the frames
                grain = self.grain_maps(np.eye(4)[None], from_fov(W, H, 60.0), (W, H), x.device)
            if len(grain) != len(self.dec_grain):
                raise ValueError(f"decode_space: this decoder takes {len(self.dec_grain)} grain maps")
            k = 0
            for m in self.dec_space:
                y = m(y)
                if isinstance(m, (SiLU, nn.SiLU)):  # after each upsampling (conv, shuffle, SiLU)
                    g, sc = grain[k].to(y.dtype), self.dec_grain[k].view(1, -1, 1, 1)
                    if torch.is_grad_enabled() and (y.requires_grad or sc.requires_grad):
                        y = (y + sc * g).contiguous(memory_format=torch.channels_last)
                    else:  # in place: keeps the channels-last layout the next convolution runs fast in
                        y.addcmul_(sc, g)
                    k += 1
        y = y.contiguous()
        return y.view(B, Fr, 3, *y.shape[-2:]).transpose(1, 2)

    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """The whole clip at once (same result as chunk by chunk)."""
        return self.decode_chunk(latents, self.new_decode_cache())
