"""The official SANA-WM action strings: "w-30,jw-10,none-5" -> camera-to-world poses.

Grammar: comma-separated segments ``<keys>-<frames>``; ``<keys>`` is any combination of w a s d (move) and i j k l
(look), or ``none``; ``<frames>`` a positive integer. Whitespace is ignored and a full-width comma counts as a comma.
Per frame, from the identity (OpenCV c2w, +Y down):
- pitch: i looks up, k looks down by ``rotation_speed_deg``; a step that would leave +-``pitch_limit_deg`` is skipped;
- yaw: l turns right, j turns left about the world Y axis; R <- R_y(yaw) @ R @ R_x(pitch);
- move: w/s along, d/a across the new heading, both projected onto the ground plane (XZ) and normalised, by
  ``translation_speed`` metres each.
N frames of actions give N + 1 poses (the start pose first). This reproduces ``action_string_to_c2w`` of the official
pipeline (float64 here, float32 there).
"""
from __future__ import annotations

import math
import re

import numpy as np

from worldwalk.controls.se3 import make_pose

DEFAULT_TRANSLATION_SPEED = 0.05  # metres per frame (0.8 m/s at 16 fps)
DEFAULT_ROTATION_SPEED_DEG = 1.2  # degrees per frame
DEFAULT_PITCH_LIMIT_DEG = 85.0
ACTION_KEYS = frozenset("wasdijkl")

_SEGMENT = re.compile(r"^([a-z]*)-(\d+)$")
#: Text made of what action strings are made of, with at least one "-<digits>": meant as an action string.
_ACTION_LIKE = re.compile(r"(?=.*-\s*\d)[\sA-Za-z0-9,\uff0c-]+", re.DOTALL)


def parse_actions(action: str) -> list[frozenset[str]]:
    """Action string -> one frozenset of held keys per frame. Raises ValueError naming the bad segment."""
    cleaned = "".join(action.replace("\uff0c", ",").split()).lower()
    if not cleaned:
        raise ValueError("the action string is empty, expected segments like 'w-30,jw-10,none-5'")
    frames: list[frozenset[str]] = []
    for segment in cleaned.split(","):
        m = _SEGMENT.match(segment)
        if m is None:
            raise ValueError(f"action segment {segment!r} is not '<keys>-<frames>' (e.g. 'w-30', 'jw-10', 'none-5')")
        keys, count = m.group(1), int(m.group(2))
        if count <= 0:
            raise ValueError(f"action segment {segment!r} has {count} frames, expected a positive count")
        held = frozenset() if keys == "none" else frozenset(keys)
        unknown = sorted(held - ACTION_KEYS)
        if unknown:
            raise ValueError(f"action segment {segment!r} uses keys {unknown}, expected only w a s d i j k l or 'none'")
        frames.extend([held] * count)
    return frames


def looks_like_actions(text: str) -> bool:
    """True when ``text`` parses as an action string (used to tell action files from RealEstate10K files)."""
    try:
        parse_actions(text)
    except ValueError:
        return False
    return True


def meant_as_actions(text: str) -> bool:
    """True when ``text`` is made of action-string characters only (letters, digits, '-', commas, whitespace) with
    a "-<frames>" in it: an action string, well formed or not, rather than a file name or other text. Its problems
    are then best told with ``parse_actions``'s message."""
    return _ACTION_LIKE.fullmatch(text) is not None


def actions_to_c2w(
    action: str,
    *,
    translation_speed: float = DEFAULT_TRANSLATION_SPEED,
    rotation_speed_deg: float = DEFAULT_ROTATION_SPEED_DEG,
    pitch_limit_deg: float = DEFAULT_PITCH_LIMIT_DEG,
) -> np.ndarray:
    """Roll an action string out into (N + 1, 4, 4) float64 OpenCV c2w poses (N = total frames of the string)."""
    step = math.radians(rotation_speed_deg)
    limit = math.radians(pitch_limit_deg)
    R = np.eye(3)
    t = np.zeros(3)
    pitch = 0.0
    poses = [make_pose(R, t)]
    for held in parse_actions(action):
        d_pitch = step * (("i" in held) - ("k" in held))
        if abs(pitch + d_pitch) <= limit:
            pitch += d_pitch
        else:
            d_pitch = 0.0
        d_yaw = step * (("l" in held) - ("j" in held))
        R = _rot_y(d_yaw) @ R @ _rot_x(d_pitch)

        forward = _ground_unit(R[:, 2])
        right = _ground_unit(R[:, 0])
        along, across = ("w" in held) - ("s" in held), ("d" in held) - ("a" in held)
        t = t + translation_speed * (along * forward + across * right)
        poses.append(make_pose(R, t))
    return np.stack(poses)


def _ground_unit(v: np.ndarray) -> np.ndarray:
    """Project a direction onto the ground plane (drop Y) and normalise it (a vertical one stays zero)."""
    g = np.array([v[0], 0.0, v[2]])
    n = np.linalg.norm(g)
    return g / n if n > 0 else g


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
