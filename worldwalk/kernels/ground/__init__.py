"""The world memory's ground detail (world/detail.py): `draw(high, src, eye, rect, c2w, intr, weight)` reads the start
picture's ground texture, folded over the level ground, along each pixel's ray; `add_u8(frames, ...)` adds it to
uint8 frames in place (the display's last step). The numba kernels run on the CPU (when numba imports and
WORLDWALK_KERNELS is not "reference"), the PyTorch reference otherwise. See naive.py for the maths."""
from __future__ import annotations

from worldwalk.kernels.ground.naive import add_u8_ref, draw_ref, fold
from worldwalk.kernels.splat import splat_backend

__all__ = ["draw", "draw_ref", "add_u8", "add_u8_ref", "fold"]


def draw(high, src, eye: float, rect, c2w, intr, weight):
    if splat_backend(high.device) == "numba":
        from worldwalk.kernels.ground.cpu import draw_cpu

        return draw_cpu(high, src, eye, rect, c2w, intr, weight)
    return draw_ref(high, src, eye, rect, c2w, intr, weight)


def add_u8(frames, high, src, eye: float, rect, c2w, intr, weight):
    """frames (N, H, W, 3) uint8 numpy, changed in place: + 127.5 x draw(...), rounded and clipped."""
    if splat_backend(high.device) == "numba" and frames.flags.c_contiguous:
        from worldwalk.kernels.ground.cpu import add_u8_cpu

        return add_u8_cpu(frames, high, src, eye, rect, c2w, intr, weight)
    return add_u8_ref(frames, high, src, eye, rect, c2w, intr, weight)
