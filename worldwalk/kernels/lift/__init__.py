"""Lifting a view's pixels to the world memory's surface points (world/memory.py): `lift(...)` runs the numba kernel
on CPU tensors (when numba imports and WORLDWALK_KERNELS is not "reference") and the PyTorch reference elsewhere. See
naive.py for what it computes."""
from __future__ import annotations

from worldwalk.kernels.lift.naive import depth_edges, lift_ref
from worldwalk.kernels.splat import splat_backend

__all__ = ["lift", "lift_ref", "depth_edges"]


def lift(depth, mask, intrinsics, near, far, far_store, edge, edge_inv, max_step=0.0):
    """-> idx (n,) long, cam (n, 3), steps (n, 2, 3) (naive.lift_ref)"""
    if splat_backend(depth.device) == "numba":
        from worldwalk.kernels.lift.cpu import lift_cpu

        return lift_cpu(depth, mask, intrinsics, near, far, far_store, edge, edge_inv, max_step)
    return lift_ref(depth, mask, intrinsics, near, far, far_store, edge, edge_inv, max_step)
