"""worldwalk: walk through the world one image opens onto.

The package holds the four rooms of the house (see ../shared/docs/ARCHITECTURE.md), data flowing one way:

    worldwalk.controls  ->  worldwalk.world (with worldwalk.kernels under it)  ->  worldwalk.app

`assets_dir()` finds the shipped assets (the embedded default world, start scenes, built-in trajectories).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["assets_dir"]

_HERE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """The folder holding `default_world.safetensors`, `scenes/` and `trajectories/`.

    Looked up in this order: `worldwalk/assets/` inside an installed package (a plain `pip install .` ships the
    checkout's `assets/` there as package data); `assets/` beside the package (a run from the checkout, or an
    editable install). When none exists, the checkout's path is returned, so a message that
    names a missing asset names the place it was expected.
    """
    for d in (_HERE / "assets", _HERE.parent / "assets"):
        if d.is_dir():
            return d
    return _HERE.parent / "assets"
