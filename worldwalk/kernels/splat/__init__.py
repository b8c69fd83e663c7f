"""Point splatting for the world memory: `splat(...)` runs the numba kernel on CPU tensors (when numba imports and
WORLDWALK_KERNELS is not "reference") and the PyTorch reference elsewhere (CUDA, or without numba). See naive.py for
the maths and the call."""
from __future__ import annotations

import os

from worldwalk.kernels.splat.naive import splat_ref

__all__ = ["splat", "splat_ref", "splat_backend"]


def splat_backend(device) -> str:
    """"numba" or "reference" for tensors on `device`."""
    if str(device).startswith("cpu") and os.environ.get("WORLDWALK_KERNELS", "auto").lower() != "reference":
        try:
            import numba  # noqa: F401
        except ImportError:
            return "reference"
        return "numba"
    return "reference"


def splat(xyz, rgb, conf, steps, R, t, intrinsics, size_wh, **kw):
    if splat_backend(xyz.device) == "numba":
        from worldwalk.kernels.splat.cpu import splat_cpu

        return splat_cpu(xyz, rgb, conf, steps, R, t, intrinsics, size_wh, **kw)
    return splat_ref(xyz, rgb, conf, steps, R, t, intrinsics, size_wh, **kw)
