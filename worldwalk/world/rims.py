"""world.rims: the start picture's pixels on a depth edge, given to one side of it.

    rim, z = snap_rims(z (H, W) metres, rgb (3, H, W) in [-1, 1], far, rel, inv)

The memory does not lift a pixel on a depth edge (memory.py, kernels/lift.depth_edges): a smooth depth map puts it
between the two surfaces, where it would float. For the start picture that leaves a one- to two-pixel rim round
every object unlifted, and the render fills it from a coarser level of its pyramid: the start frame is the picture
with every outline blurred (on the embedded default's first scene 4 % of the pixels, a tree's crown and a box's edge
visibly soft), and so is every frame that walks on from it.

Each rim pixel instead takes the depth of the pixel within `radius` (not on a rim itself) whose colour is nearest its
own, ties to the nearer pixel: a pixel of a tree's crown goes with the crown, one of the sky beside it with the sky.
A pixel the front surface matches nearly as well (within FRONT_MATCH x, squared distances) goes with the front: an
outline's antialiased blend of both colours left on the far side would stay behind as a line when the object moves.
The session lifts those pixels with that depth and a footprint of one pixel (memory.add(rims=True)), so the start
frame is the picture and outlines move with their object. A rim pixel with no such pixel within `radius` stays out.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from worldwalk.kernels.lift import depth_edges

__all__ = ["rim_pixels", "snap_rims"]

FRONT = 0.1  # a neighbour within this (relative) of the nearest depth round a rim pixel is on the front surface
FRONT_MATCH = 4.0  # the front surface takes a rim pixel whose colour it matches within this x the best match's
MATCH = 1.0  # a rim pixel whose best match is farther than this (squared colour distance, [-1, 1]) stays out


def rim_pixels(z: torch.Tensor, far: float, rel: float, inv: float) -> torch.Tensor:
    """z (H, W) metres -> (H, W) bool: the pixels the memory's lift leaves out as on a depth edge (its own test, with
    the far field at `far`, as kernels/lift does)."""
    zc = torch.where(torch.isfinite(z) & (z < far), z, torch.full_like(z, far))
    return depth_edges(zc, rel, inv)


def snap_rims(z: torch.Tensor, rgb: torch.Tensor, far: float, rel: float, inv: float, radius: int = 2
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """z (H, W) metres (inf or >= far: the far field); rgb (3, H, W) the picture at the same size, in [-1, 1];
    rel, inv: the memory's depth-edge test. -> (rim (H, W) bool: the rim pixels that found a side, z with each of
    them given that side's depth)"""
    H, W = z.shape
    rim = rim_pixels(z, far, rel, inv)
    if not bool(rim.any()):
        return rim, z
    r = radius
    k = 2 * r + 1
    c = rgb.float()[None]  # (1, 3, H, W)
    pc = F.pad(c, (r, r, r, r), mode="replicate")
    pz = F.pad(z.float()[None, None], (r, r, r, r), mode="replicate")
    ok = F.pad((~rim).float()[None, None], (r, r, r, r))  # (outside the picture: no side)
    inf = float("inf")
    offsets = [(dy, dx) for dy in range(k) for dx in range(k) if (dy, dx) != (r, r)]
    zs = torch.stack([pz[0, 0, dy:dy + H, dx:dx + W] for dy, dx in offsets])  # (k² − 1, H, W)
    valid = torch.stack([ok[0, 0, dy:dy + H, dx:dx + W] > 0 for dy, dx in offsets])
    d2 = torch.stack([(pc[0, :, dy:dy + H, dx:dx + W] - c[0]).pow(2).sum(0) + 1e-4 * ((dy - r) ** 2 + (dx - r) ** 2)
                      for dy, dx in offsets])  # colour distance, ties to the nearer pixel
    d2 = torch.where(valid, d2, torch.full_like(d2, inf))
    front = zs <= torch.where(valid, zs, torch.full_like(zs, inf)).amin(0) * (1 + FRONT)  # the nearest surface's
    best, i_best = d2.min(0)
    best_front, i_front = torch.where(front & valid, d2, torch.full_like(d2, inf)).min(0)
    # a pixel that the front surface matches nearly as well goes with it: a blend of both colours (an outline's
    # antialiasing) left behind on the far side would stay as a line where the object has moved on
    use_front = best_front <= FRONT_MATCH * best + 1e-3
    pick = torch.where(use_front, i_front, i_best)
    depth = zs.gather(0, pick[None])[0]
    found = rim & (torch.where(use_front, best_front, best) <= MATCH)
    return found, torch.where(found, depth.to(z.dtype), z)
