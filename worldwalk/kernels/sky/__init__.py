"""The start picture's sky laid over frames (world/sky.py): `sky_blend(frames, table, lo, step, c2w, intr, weight)`
reads a table of [share, r, g, b] by the sine of each pixel's ray elevation and lerps the frames towards its colour by
weight x share. The numba kernel runs on the CPU (when numba imports and WORLDWALK_KERNELS is not "reference"), the
PyTorch reference otherwise. See naive.py for the maths."""
from __future__ import annotations

from worldwalk.kernels.sky.naive import lookup, sin_elevation, sky_blend_ref
from worldwalk.kernels.splat import splat_backend

__all__ = ["sky_blend", "sky_blend_ref", "sin_elevation", "lookup"]


def sky_blend(frames, table, lo: float, step: float, c2w, intr, weight):
    if splat_backend(frames.device) == "numba":
        from worldwalk.kernels.sky.cpu import sky_blend_cpu

        return sky_blend_cpu(frames, table, lo, step, c2w, intr, weight)
    return sky_blend_ref(frames, table, lo, step, c2w, intr, weight)
