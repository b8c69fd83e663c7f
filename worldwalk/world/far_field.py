"""world.far_field: the start picture's far field (sky) kept only where it can be sky.

    z = open_sky(z (H, W) metres, far)      # the same, its enclosed far regions given their surroundings' depth

The depth networks learn from procedural worlds, where what lies beyond `far` is the sky: light, smooth, above the
horizon, open to the top of the frame. On a photograph they also send some near things there: the white rim of a cup,
a lion's open mouth, strands of a cheetah's white fur, a pale wall beside a person's face. Walking in, the near
surfaces around such a region magnify and move outwards while the region stays put, 100 metres away: the surfaces
tear around it, and the model fills the hole with whatever it draws (on a photograph: blobs, which are then lifted
and kept).

A region of the far field that the frame's top row does not reach, nor a side column above the frame's middle row, is
enclosed by nearer things, and the sky seldom is: its pixels take a smooth extension of the depth of the pixels around
them that are not far (pull-push in log depth, kernels/splat), and so do the `HALO` pixels around them (the network's
blend of the two depths). The rest of the far field stays as predicted.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from worldwalk.kernels.splat import pull_push

__all__ = ["enclosed_far", "open_sky"]

HALO = 3  # pixels around an enclosed far region that are filled with it


def enclosed_far(z: torch.Tensor, far: float) -> torch.Tensor:
    """z (H, W) metres (inf: no surface) -> (H, W) bool: the far pixels (z >= far or not finite) of the 8-connected
    far regions that reach neither the top row nor the left or right column above the middle row."""
    f = (~torch.isfinite(z) | (z >= far)).cpu().numpy()
    labels, n = ndimage.label(f, structure=np.ones((3, 3), bool))
    if n == 0:
        return torch.zeros(z.shape, dtype=torch.bool)
    H = f.shape[0]
    half = max(H // 2, 1)
    open_ = np.unique(np.concatenate([labels[0], labels[:half, 0], labels[:half, -1]]))
    return torch.from_numpy(f & ~np.isin(labels, open_[open_ > 0]))


def open_sky(z: torch.Tensor, far: float) -> torch.Tensor:
    """z (H, W) metres -> the same with its enclosed far regions (enclosed_far) filled from the nearer pixels around
    them; unchanged where there are none, or nothing nearer to fill from."""
    closed = enclosed_far(z, far)
    if not bool(closed.any()):
        return z
    # with the band around them: the network's depth passes from the near surface to the far field over a few
    # pixels (its half-resolution output, brought up in log depth), and that band is part of the same mistake
    closed = ndimage.binary_dilation(closed.numpy(), np.ones((3, 3), bool), iterations=HALO)
    closed = torch.from_numpy(closed).to(z.device)
    near = torch.isfinite(z) & (z < far) & ~closed
    if not bool(near.any()):
        return z
    log = torch.where(near, z, torch.ones_like(z)).float().log()[None, None]  # (1, 1, H, W)
    filled = pull_push(log, near[None, None].float())[0, 0].exp()
    return torch.where(closed, filled.to(z.dtype), z)

