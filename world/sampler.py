"""Few-step flow-matching sampling of one chunk.

Flow matching: x_σ = (1 − σ)·x0 + σ·ε, the model predicts v = ε − x0 at timestep input t = 1000·σ.
The distilled streaming release denoises each chunk in 4 steps at t = 1000, 960, 889, 727: a uniform schedule shifted
by 8, σ(u) = 8u / (1 + 7u) for u = 1, 3/4, 1/2, 1/4. Any step count and shift are allowed, or an explicit schedule.

Two update rules:
- "renoise" (few-step generators distilled with self-forcing / DMD): predict x0 = x − σ·v, then start the next step
  from fresh noise at the next level, x ← (1 − σ')·x0 + σ'·ε'. The last step returns x0.
- "euler": the flow ODE, x ← x + (σ' − σ)·v, ending at σ = 0.
"""
from __future__ import annotations

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
        return self

    def sigmas(self) -> list[float]:
        """Noise levels of each step, then 0."""
        if self.timesteps is not None:
            return [t / 1000.0 for t in self.timesteps] + [0.0]
        u = [1 - i / self.steps for i in range(self.steps)]
        return [self.shift * x / (1 + (self.shift - 1) * x) for x in u] + [0.0]

    def to_dict(self) -> dict:
        return asdict(self)


def sample_chunk(velocity: Callable[[torch.Tensor, float], torch.Tensor], noise: torch.Tensor, cfg: SamplerConfig,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoise one chunk from pure noise. velocity(x, sigma) -> v, same shape as x."""
    sig = cfg.sigmas()
    x = noise
    for s, s_next in zip(sig[:-1], sig[1:]):
        v = velocity(x, s)
        if cfg.kind == "euler":
            x = x + (s_next - s) * v
        else:
            x0 = x - s * v
            if s_next == 0:
                x = x0
            else:
                eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = (1 - s_next) * x0 + s_next * eps
    return x
