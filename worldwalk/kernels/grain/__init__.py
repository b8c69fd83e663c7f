"""World-anchored grain for the VAE decoder (world/grain.py): `lookup(table, n, R, intrinsics, H, W)` reads a cube
of lattice noise along each pixel's ray, with the numba kernel on the CPU (when numba imports and WORLDWALK_KERNELS
is not "reference") and the PyTorch reference otherwise. See naive.py for the maths."""
from __future__ import annotations

from worldwalk.kernels.grain.naive import lookup_ref
from worldwalk.kernels.splat import splat_backend

__all__ = ["lookup", "lookup_ref"]


def lookup(table, n: int, R, intr, H: int, W: int):
    if splat_backend(table.device) == "numba":
        from worldwalk.kernels.grain.cpu import lookup_cpu

        return lookup_cpu(table, n, R, intr, H, W)
    return lookup_ref(table, n, R, intr, H, W)
