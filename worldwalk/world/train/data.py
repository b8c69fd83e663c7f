"""Stage `data`: render training clips of procedural worlds into shards (resumable: a shard already written is kept).

A clip is 1 + chunks·chunk_frames·stride frames, (F, H, W, 3) uint8, with its poses c2w (F, 4, 4) and its intrinsics
(4,); shard_<i>.npz holds --shard-size of them stacked: frames (n, F, H, W, 3), c2w (n, F, 4, 4), intrinsics (n, 4).
common.ClipData reads them back.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldwalk.world.presets import get_preset


def cmd_data(a) -> int:
    from worldwalk.world.procedural.clips import make_clip

    cfg = get_preset(a.preset)
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    # clips of 1 + chunks·chunk_frames latents: --chunks 2 -> 7 latents, chunks [0, 4) and [4, 7)
    n_frames = 1 + a.chunks * cfg.chunk_frames * cfg.temporal_stride
    size = (cfg.resolution[1], cfg.resolution[0])
    per = a.shard_size
    n_shards = math.ceil(a.clips / per)
    for s in tqdm(range(n_shards), desc="data shards", unit="shard"):
        path = d / f"shard_{s:04d}.npz"
        if path.exists():
            continue
        clips = [make_clip(a.seed * 1_000_003 + s * per + i, n_frames, size) for i in range(per)]
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, frames=np.stack([c["frames"] for c in clips]), c2w=np.stack([c["c2w"] for c in clips]),
                 intrinsics=np.stack([c["intrinsics"] for c in clips]))
        tmp.replace(path)
    print(f"{d}: {len(list(d.glob('shard_*.npz')))} shards of {per} clips, {n_frames} frames of {size} each")
    return 0
