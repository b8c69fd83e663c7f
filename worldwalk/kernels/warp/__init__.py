"""The start view's backward warp (world/start_view.py): `solve(...)` follows each pixel's ray to the start surface,
`colour(...)` reads the start image there. Both run the numba kernels on CPU tensors (when numba imports and
WORLDWALK_KERNELS is not "reference") and the PyTorch references elsewhere. See naive.py for the maths."""
from __future__ import annotations

from worldwalk.kernels.splat import splat_backend
from worldwalk.kernels.warp.naive import colour_ref, sample_ref, solve_ref

__all__ = ["solve", "solve_ref", "colour", "colour_ref", "sample_ref"]


def solve(R, t, intrinsics, start_intrinsics, inv, edges, depth, covered, **kw):
    """-> qx, qy (N, H, W) start pixel coordinates, valid (N, H, W) bool (naive.solve_ref)"""
    if splat_backend(depth.device) == "numba":
        from worldwalk.kernels.warp.cpu import solve_cpu

        return solve_cpu(R, t, intrinsics, start_intrinsics, inv, edges, depth, covered, **kw)
    return solve_ref(R, t, intrinsics, start_intrinsics, inv, edges, depth, covered, **kw)


def colour(qx, qy, valid, covered, img, hi, **kw):
    """solve's output on every grid-th pixel of covered's (N, H, W) (grid=2 unless given) -> rgb (N, 3, H, W),
    weight (N, H, W) (naive.colour_ref)"""
    if splat_backend(qx.device) == "numba":
        from worldwalk.kernels.warp.cpu import colour_cpu

        return colour_cpu(qx, qy, valid, covered, img, hi, **kw)
    return colour_ref(qx, qy, valid, covered, img, hi, **kw)
