"""Stage `data`: render training clips of procedural worlds into shards (resumable: a shard already written is kept).

A clip is 1 + chunks·chunk_frames·stride frames, (F, H, W, 3) uint8, with its poses c2w (F, 4, 4) and its intrinsics
(4,); shard_<i>.npz holds --shard-size of them stacked: frames (n, F, H, W, 3), c2w (n, F, 4, 4), intrinsics (n, 4).
common.ClipData reads them back. --workers N renders N clips at a time, one process (and one torch thread) each; a
clip's seed fixes it, so the shards are the same for any N.
"""
from __future__ import annotations

import math
import multiprocessing as mp
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldwalk.world.presets import get_preset


def _render(job: tuple[int, int, tuple[int, int]]) -> dict:
    from worldwalk.world.procedural.clips import make_clip

    return make_clip(*job)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def cmd_data(a) -> int:
    if a.workers < 1:
        raise ValueError(f"--workers {a.workers}: expected at least 1 process")
    cfg = get_preset(a.preset)
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    # clips of 1 + chunks·chunk_frames latents: --chunks 2 -> 7 latents, chunks [0, 4) and [4, 7)
    n_frames = 1 + a.chunks * cfg.chunk_frames * cfg.temporal_stride
    size = (cfg.resolution[1], cfg.resolution[0])
    per = a.shard_size
    todo = [s for s in range(math.ceil(a.clips / per)) if not (d / f"shard_{s:04d}.npz").exists()]
    jobs = [(a.seed * 1_000_003 + s * per + i, n_frames, size) for s in todo for i in range(per)]
    pool = mp.get_context("fork").Pool(a.workers, initializer=_one_thread) if a.workers > 1 and jobs else None
    clips = pool.imap(_render, jobs) if pool else map(_render, jobs)  # in order: shard by shard
    try:
        for s in tqdm(todo, desc="data shards", unit="shard"):
            got = [next(clips) for _ in range(per)]
            path = d / f"shard_{s:04d}.npz"
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, frames=np.stack([c["frames"] for c in got]), c2w=np.stack([c["c2w"] for c in got]),
                     intrinsics=np.stack([c["intrinsics"] for c in got]))
            tmp.replace(path)
    finally:
        if pool:
            pool.terminate()
    print(f"{d}: {len(list(d.glob('shard_*.npz')))} shards of {per} clips, {n_frames} frames of {size} each")
    return 0
