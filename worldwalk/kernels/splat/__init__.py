"""Point splatting, pull-push hole filling and feathered masks for the world memory: `splat(...)`, `pull_push(...)`,
`feather(...)` and `mark(...)` run the numba kernels on CPU tensors (when numba imports and WORLDWALK_KERNELS is not
"reference") and the PyTorch references elsewhere (CUDA, or without numba). See naive.py for the maths and the
calls."""
from __future__ import annotations

import os

from worldwalk.kernels.splat.naive import feather_ref, mark_ref, pull_push_ref, splat_ref

__all__ = ["splat", "splat_ref", "pull_push", "pull_push_ref", "feather", "feather_ref", "mark", "mark_ref",
           "splat_backend"]


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


def pull_push(img, weight, out=None):
    """img (N, C, H, W) with holes where weight (N, 1, H, W) is 0 -> the holes filled from the rest (pull-push),
    written into `out` when given."""
    if splat_backend(img.device) == "numba" and not (img.requires_grad or weight.requires_grad):
        from worldwalk.kernels.splat.cpu import pull_push_cpu

        return pull_push_cpu(img, weight, out)
    return pull_push_ref(img, weight, out)


def feather(mask, feather: int):
    """(N, 1, H, W) mask in [0, 1] -> the blend weight of its inside: eroded by `feather` pixels, then box-blurred as
    wide (naive.feather_ref)."""
    if splat_backend(mask.device) == "numba" and not mask.requires_grad:
        from worldwalk.kernels.splat.cpu import feather_cpu

        return feather_cpu(mask, feather)
    return feather_ref(mask, feather)


def mark(seen, owner, value: int, pinned=None):
    """seen[slot] = value, in place, for every slot in owner (-1: none): the points a render drew (seen None:
    nothing stamped). pinned (per slot, bool): -> (owner's shape) bool, drawn from a pinned slot; else None."""
    if splat_backend(owner.device) == "numba" and all(
            t is None or (t.is_contiguous() and t.device == owner.device) for t in (seen, pinned)):
        from worldwalk.kernels.splat.cpu import mark_cpu

        return mark_cpu(seen, owner, value, pinned)
    return mark_ref(seen, owner, value, pinned)
