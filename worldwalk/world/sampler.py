"""Few-step flow-matching sampling of one chunk.

Flow matching: x_σ = (1 − σ)·x0 + σ·ε, the model predicts v = ε − x0 at timestep input t = 1000·σ.
The distilled streaming release denoises each chunk in 4 steps at t = 1000, 960, 889, 727: a uniform schedule shifted
by 8, σ(u) = 8u / (1 + 7u) for u = 1, 3/4, 1/2, 1/4. Any step count and shift are allowed, or an explicit schedule.

Two update rules:
- "renoise" (few-step generators distilled with self-forcing / DMD): predict x0 = x − σ·v, then start the next step
  from fresh noise at the next level, x ← (1 − σ')·x0 + σ'·ε'. The last step returns x0.
- "euler": the flow ODE, x ← x + (σ' − σ)·v, ending at σ = 0.

Reprojection start (`reproject`, off by default): instead of pure noise, a chunk may start from a guess of its
latents noised to a per-frame level σ_k ≤ 1 (SDEdit): x = (1 − σ_k)·guess + σ_k·ε, and every level of the schedule is
scaled by σ_k. The session builds the guess by reprojecting what the walk has shown (world/reproject.py); where
no frame saw a latent cell, the guess is the model's own plain prediction for it (one extra pass). σ_k is `reproject`
where the camera has only turned and rises to 1 (pure noise, the plain path) as it moves by `reproject_radius`
metres, since a reprojection without depth is exact for rotation only.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Callable

import torch

KINDS = ("renoise", "euler")


@dataclass(frozen=True)
class SamplerConfig:
    steps: int = 4
    shift: float = 8.0
    kind: str = "renoise"
    timesteps: tuple[float, ...] | None = None  # explicit schedule (t = 1000·σ, decreasing), overrides steps/shift
    reproject: float | None = None  # lowest start level σ of a chunk latent begun from a reprojection; None: off
    reproject_radius: float = 0.25  # metres of camera travel over which that level rises to 1

    def validate(self) -> "SamplerConfig":
        if self.kind not in KINDS:
            raise ValueError(f"sampler kind {self.kind!r}: expected one of {KINDS}")
        if self.timesteps is not None:
            ts = list(self.timesteps)
            if not ts or any(not 0 < t <= 1000 for t in ts) or any(b >= a for a, b in zip(ts, ts[1:])):
                raise ValueError(f"sampler timesteps {ts}: expected decreasing values in (0, 1000]")
        elif self.steps < 1:
            raise ValueError(f"sampler steps: expected >= 1, got {self.steps}")
        if self.shift <= 0:
            raise ValueError(f"sampler shift: expected > 0, got {self.shift}")
        if self.reproject is not None and not 0 < self.reproject <= 1:
            raise ValueError(f"sampler reproject: expected a noise level in (0, 1] or off, got {self.reproject}")
        if not self.reproject_radius > 0:
            raise ValueError(f"sampler reproject_radius: expected > 0 metres, got {self.reproject_radius}")
        return self

    def sigmas(self) -> list[float]:
        """Noise levels of each step, then 0."""
        if self.timesteps is not None:
            return [t / 1000.0 for t in self.timesteps] + [0.0]
        u = [1 - i / self.steps for i in range(self.steps)]
        return [self.shift * x / (1 + (self.shift - 1) * x) for x in u] + [0.0]

    def to_dict(self) -> dict:
        return asdict(self)


def reproject_level(text: str) -> float | str:
    """Command-line value of --reproject: a start noise level in (0, 1], or "off"."""
    if text == "off":
        return text
    try:
        v = float(text)
    except ValueError:
        v = None
    if v is None or not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a noise level in (0, 1] (e.g. 0.5) or off")
    return v


def with_reproject(sampler: dict, level: float | str | None) -> dict:
    """Sampler settings with a --reproject value (reproject_level's) applied: a level sets it, "off" turns the
    reprojection start off, None (the flag not given) keeps what the settings say."""
    if level is None:
        return sampler
    return {**sampler, "reproject": None if level == "off" else level}


def sample_chunk(velocity: Callable[[torch.Tensor, float], torch.Tensor], noise: torch.Tensor, cfg: SamplerConfig,
                 generator: torch.Generator | None = None, guess: torch.Tensor | None = None,
                 start_sigmas: torch.Tensor | None = None, final: Callable | None = None) -> torch.Tensor:
    """Denoise one chunk (B, C, F, h, w) from pure noise, or with `guess` (same shape) and `start_sigmas` (F,) from
    the guess noised to each frame's level. velocity(x, sigma) -> v, same shape as x; sigma is a float, or an (F,)
    tensor of per-frame levels when starting from a guess. `final`, when given, is called instead of velocity for the
    last step (one forward per chunk: the forward that also writes the streaming cache)."""
    sig = cfg.sigmas()
    x = noise
    if guess is not None:
        k = start_sigmas.to(noise.dtype)
        sig = [k * s for s in sig]  # every frame follows the schedule scaled to its start level
        x = (1 - _frames(k)) * guess + _frames(k) * noise
    for i, (s, s_next) in enumerate(zip(sig[:-1], sig[1:])):
        v = (final if final is not None and i == len(sig) - 2 else velocity)(x, s)
        s_, n_ = (_frames(s), _frames(s_next)) if torch.is_tensor(s) else (s, s_next)
        if cfg.kind == "euler":
            x = x + (n_ - s_) * v
        else:
            x0 = x - s_ * v
            if i == len(sig) - 2:  # the last step returns x0
                x = x0
            else:
                eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = (1 - n_) * x0 + n_ * eps
    return x


def _frames(s: torch.Tensor) -> torch.Tensor:
    """(F,) per-frame levels -> broadcastable over (B, C, F, h, w)."""
    return s.view(1, 1, -1, 1, 1)
