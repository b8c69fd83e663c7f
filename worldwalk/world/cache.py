"""The streaming cache of the world model: constant size, whatever the length of the walk.

Per GDN block: forward recurrent states S_num (D×D), S_den (D×1), S_cam (D×D) per head, in float32; the last 3 input
frames of the K short convs (k_tail, kc_tail) and the last frame of the FFN's temporal conv input (ffn_tail).
Per softmax block: keys/values (main and camera; after RoPE / UCPE) of the sink chunk (chunk 0) and of a rolling
window of the most recent `window_chunks` chunks.

It is written by one forward per chunk, and read by every denoising forward: the clean (t = 0) forward of each finished
chunk, or, for a model with cfg.recycle, the sampler's last denoising forward itself (one forward per chunk).
"""
from __future__ import annotations

import torch

from worldwalk.world.presets import ModelConfig


class StreamCache:
    def __init__(self, cfg: ModelConfig, window_chunks: int | None = 1):
        if window_chunks is not None and window_chunks < 1:
            raise ValueError(f"window_chunks: expected >= 1 or None (keep all), got {window_chunks}")
        self.cfg = cfg
        self.window_chunks = window_chunks
        self.blocks: list[dict[str, torch.Tensor]] = [{} for _ in range(cfg.depth)]
        self.frames = 0  # latent frames written so far (= absolute index of the next chunk's first frame)
        self.chunks = 0

    def window_tokens(self, tokens_per_frame: int) -> int | None:
        return None if self.window_chunks is None else self.window_chunks * self.cfg.chunk_frames * tokens_per_frame

    def advance(self, frames: int) -> None:
        self.frames += frames
        self.chunks += 1

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for b in self.blocks for t in b.values())

    # ---- serialisation (snapshots): flat name -> tensor, plus two integers
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"blocks.{i}.{k}": t for i, b in enumerate(self.blocks) for k, t in b.items()}

    def meta(self) -> dict:
        return {"frames": self.frames, "chunks": self.chunks, "window_chunks": self.window_chunks}

    @classmethod
    def from_state(cls, cfg: ModelConfig, tensors: dict[str, torch.Tensor], meta: dict) -> "StreamCache":
        c = cls(cfg, meta["window_chunks"])
        c.frames, c.chunks = int(meta["frames"]), int(meta["chunks"])
        for name, t in tensors.items():
            _, i, k = name.split(".", 2)
            if not 0 <= int(i) < cfg.depth:
                raise ValueError(f"cache tensor {name!r}: block index out of range for depth {cfg.depth}")
            c.blocks[int(i)][k] = t
        return c

    def clone(self) -> "StreamCache":
        c = StreamCache(self.cfg, self.window_chunks)
        c.frames, c.chunks = self.frames, self.chunks
        c.blocks = [{k: t.clone() for k, t in b.items()} for b in self.blocks]
        return c
