"""Training clips from procedural worlds: (frames, poses, intrinsics) of a random walk in a random scene."""
from __future__ import annotations

import numpy as np

from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.procedural.scene import Scene
from worldwalk.world.procedural.walks import random_walk


def make_clip(seed: int, n_frames: int, size=(256, 256), fov_range=(50.0, 80.0), fps: int = 16):
    """-> dict(frames uint8 (F, H, W, 3), c2w (F, 4, 4) float32, intrinsics (4,) float32, seed)."""
    rng = np.random.default_rng(seed)
    scene = Scene(int(rng.integers(0, 2**31)))
    intr = from_fov(size[0], size[1], float(rng.uniform(*fov_range)))
    c2w = random_walk(n_frames, rng, fps)
    frames = scene.render(c2w, intr, size)
    return {"frames": frames, "c2w": c2w.astype(np.float32), "intrinsics": intr.astype(np.float32), "seed": seed}
