"""Named model sizes (DiT-style registry): the official release, the embedded default, and a seconds-fast test size."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    name: str = "custom"
    depth: int = 20
    hidden: int = 2240
    head_dim: int = 112  # GDN / softmax head dim; heads = hidden // head_dim
    latent_channels: int = 128
    softmax_every: int = 4  # block i is softmax when (i + 1) % softmax_every == 0
    ffn_ratio: float = 3.0
    conv_kernel: int = 4  # temporal short conv on K (GDN blocks)
    t_kernel: int = 3  # FFN temporal conv
    caption_channels: int | None = 2304  # None: no text branch
    rope_theta: float = 10000.0
    # the VAE this backbone is paired with (camera branches need it)
    temporal_stride: int = 8
    spatial_factor: int = 32
    # first chunk holds the image latent plus (chunk_frames - 1); later chunks hold chunk_frames latents
    first_chunk_frames: int = 4
    chunk_frames: int = 3
    # the official release reads its timestep input through `.long()`: t = 972.6 is seen as 972
    integer_timesteps: bool = True
    # tensors the release carries only for checkpoint compatibility (raymap_embedder, attn.recall_gate)
    legacy_tensors: bool = True
    # GDN numerics (official values)
    gdn_eps: float = 1e-8
    qk_norm_eps: float = 1e-5
    fps: int = 16
    # one forward per chunk (issue 25): each chunk's one denoising forward also writes the streaming cache, and reads
    # the previous chunk's generated latents as extra input (recycle_embedder), so no clean forward is needed
    recycle: bool = False
    resolution: tuple[int, int] = (704, 1280)  # (H, W) of decoded frames

    @property
    def heads(self) -> int:
        return self.hidden // self.head_dim

    @property
    def plucker_channels(self) -> int:
        return 6 * self.temporal_stride

    @property
    def ffn_hidden(self) -> int:
        return int(self.hidden * self.ffn_ratio)

    @property
    def latent_hw(self) -> tuple[int, int]:
        return self.resolution[0] // self.spatial_factor, self.resolution[1] // self.spatial_factor

    def is_softmax(self, i: int) -> bool:
        return self.softmax_every > 0 and (i + 1) % self.softmax_every == 0

    def validate(self) -> "ModelConfig":
        problems = []
        if self.hidden % self.head_dim:
            problems.append(f"hidden {self.hidden} is not a multiple of head_dim {self.head_dim}")
        if self.head_dim % 4 or self.head_dim // 2 % 4:
            problems.append(f"head_dim {self.head_dim} must be a multiple of 8 (UCPE groups of 4 on half the channels)")
        if self.head_dim // 2 - 2 * (self.head_dim // 6) <= 0:
            problems.append(f"head_dim {self.head_dim} too small for 3-D RoPE")
        if self.depth < 1:
            problems.append("depth must be >= 1")
        if problems:
            raise ValueError(f"ModelConfig {self.name!r}: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config fields {unknown}; expected a subset of {sorted(known)}")
        d = dict(d)
        if "resolution" in d:
            d["resolution"] = tuple(d["resolution"])
        return cls(**d).validate()


PRESETS: dict[str, ModelConfig] = {
    # The released SANA-WM backbone (2.6B parameters with its camera branches).
    "sana-wm-1600m": ModelConfig(name="sana-wm-1600m"),
    # The embedded default: ~5M parameters, 256x256 frames from a 16x16x16 latent grid (spatial 16x, temporal 4x),
    # sized so a 3-latent chunk (12 frames, 0.75 s at 16 fps) is generated faster than real time on 2 CPU cores.
    "tiny": ModelConfig(
        name="tiny", depth=6, hidden=192, head_dim=64, latent_channels=16, ffn_ratio=2.5, caption_channels=None,
        temporal_stride=4, spatial_factor=16, integer_timesteps=False, legacy_tensors=False, resolution=(256, 256),
    ),
    # Seconds-fast for tests: 4 blocks (block 3 is softmax), 64 wide.
    "test": ModelConfig(
        name="test", depth=4, hidden=64, head_dim=32, latent_channels=4, ffn_ratio=2.0, caption_channels=None,
        temporal_stride=2, spatial_factor=8, integer_timesteps=False, legacy_tensors=False, resolution=(64, 96),
    ),
}


def get_preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides).validate()
