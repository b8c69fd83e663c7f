"""Human-like camera walks for training: random input programs played through the app's own Rig.

A program is a list of segments (held input for a while): walk, walk while turning, turn in place, look around with
the mouse, strafe, stop, step back, sprint; sometimes the program then plays its own motion backwards (come back).
"""
from __future__ import annotations

import numpy as np

from worldwalk.controls.rig import InputState, Rig, RigConfig

SEGMENTS = {
    "walk": ({"w"}, (0, 0)),
    "walk_left": ({"w", "left"}, (0, 0)),
    "walk_right": ({"w", "right"}, (0, 0)),
    "turn_left": ({"left"}, (0, 0)),
    "turn_right": ({"right"}, (0, 0)),
    "look": (set(), None),  # mouse drags
    "strafe_left": ({"a"}, (0, 0)),
    "strafe_right": ({"d"}, (0, 0)),
    "stop": (set(), (0, 0)),
    "back": ({"s"}, (0, 0)),
    "sprint": ({"w", "shift"}, (0, 0)),
}
WEIGHTS = {"walk": 4, "walk_left": 2, "walk_right": 2, "turn_left": 1.5, "turn_right": 1.5, "look": 2,
           "strafe_left": 1, "strafe_right": 1, "stop": 1, "back": 0.7, "sprint": 0.5}


def random_walk(n_frames: int, rng: np.random.Generator, fps: int = 16, come_back_p: float = 0.15) -> np.ndarray:
    """(n_frames, 4, 4) c2w starting at the identity, driven by random held inputs through the Rig."""
    rig = Rig(RigConfig(fps=fps))
    names = list(WEIGHTS)
    p = np.array([WEIGHTS[n] for n in names])
    p = p / p.sum()
    poses = [rig.pose.copy()]
    come_back = rng.random() < come_back_p
    target = n_frames // 2 + 1 if come_back else n_frames
    while len(poses) < target:
        name = names[rng.choice(len(names), p=p)]
        keys, mouse = SEGMENTS[name]
        frames = int(rng.integers(fps // 2, 2 * fps))
        for _ in range(frames):
            if len(poses) >= target:
                break
            if mouse is None:
                dx, dy = rng.normal(0, 25), rng.normal(0, 8)
            else:
                dx, dy = mouse
            rig.update(InputState(keys=frozenset(keys), mouse_dx=dx, mouse_dy=dy), 0.0)
            poses.append(rig.advance(1, fps)[0])
    poses = np.stack(poses)
    if come_back:  # retrace the path to the start
        poses = np.concatenate([poses, poses[-2::-1]])[:n_frames]
    return poses[:n_frames]
