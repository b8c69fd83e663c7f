"""How many walks this machine can serve at real time: the default of `launch.py web --max-walks`.

Measured at start on the engine itself (the world, sampler and device the demo runs): a probe walk steps a few chunks,
walking and turning, with every CPU thread; the slowest of them (after the first, which warms up) gives the engine's
real-time factor r = video seconds made per second. Walks share the machine, so about r of them run at real time; a
margin of 25% is kept for JPEG encoding, the pages and the HTTP server:

    max_walks = max(1, floor(r / 1.25))

On two CPU cores the embedded default world makes 1.4-2.1x real time alone, so it picks one walk; the others wait in
line with their place shown. A walk slower than real time at the first chunk stops the measurement there (one walk).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

MARGIN = 1.25
MAX_MEASURED_WALKS = 16


@dataclass
class Capacity:
    max_walks: int
    realtime: float  # video seconds the engine makes per second, one walk alone (the slowest chunk measured)
    chunk_s: float  # seconds for that chunk
    seconds: float  # how long the measurement took

    def describe(self) -> str:
        n = self.max_walks
        return (f"{n} walk{'s' * (n != 1)} at a time (the engine makes {self.realtime:.2f}x real time here, "
                f"{1000 * self.chunk_s:.0f} ms per chunk; --max-walks N to change)")


def _poses(n: int, k: int, kind: str) -> np.ndarray:
    """Chunk k of n frames: walking forward 1.3 m/s at 16 fps, or turning 3 degrees a frame."""
    out = np.repeat(np.eye(4)[None], n, 0)
    i = np.arange(k * n + 1, (k + 1) * n + 1)
    if kind == "walk":
        out[:, 2, 3] = 0.08 * i
    else:
        a = np.radians(3.0 * i)
        out[:, 0, 0], out[:, 0, 2], out[:, 2, 0], out[:, 2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    return out


def measure(session, image, chunks: int = 3) -> Capacity:
    """Step `session` (a world.Session, not started) from `image` for up to `chunks` chunks after a warm-up one."""
    t_start = time.perf_counter()
    n, fps = session.frames_per_step, float(session.cfg.fps)
    video_s = n / fps
    session.start(image, seed=0)
    times = []
    for k in range(chunks + 1):
        kind = "turn" if k % 2 == 0 else "walk"  # turning is the slow case (reprojection)
        t0 = time.perf_counter()
        session.step(_poses(n, k, kind))
        dt = time.perf_counter() - t0
        if k == 0:
            if dt > 2 * video_s:  # even warming up it is far slower than real time: one walk, no need to go on
                times.append(dt)
                break
            continue
        times.append(dt)
        if dt > video_s:  # slower than real time: one walk
            break
    chunk_s = max(times)
    realtime = video_s / chunk_s
    walks = max(1, min(MAX_MEASURED_WALKS, math.floor(realtime / MARGIN)))
    return Capacity(walks, realtime, chunk_s, time.perf_counter() - t_start)
