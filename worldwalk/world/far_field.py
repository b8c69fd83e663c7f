"""world.far_field: the start picture's far field (sky) kept only where it can be sky.

    z = open_sky(z (H, W) metres, far)      # the same, its enclosed far regions given their surroundings' depth
    z = sky_edges(z, rgb (3, H, W), far, band)  # the same, the far field's edge put where the picture's colours are

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

The networks' far field also ends a few pixels off the picture's own edge between an object and the sky (their output
is at half resolution): on held-out scene 1,000,100 the right side of a pillar, 4 pixels wide, is sky in the
network's depth, and a sky-blue fringe elsewhere is an object's. Those pixels are lifted into the memory as points of
the wrong depth: a pillar's sliver 1,000 m away floats off it as soon as the camera moves (white specks and streaks
beside pillars and trees), and a fringe of sky hangs round the object. `sky_edges` gives every pixel within `band`
pixels of both the far field and a nearer surface to whichever side's colour it is nearer: the mean colour of the far
and of the near pixels round it that lie farther than `band` from the edge (a window of 4 band + 1 pixels), where
those two colours differ (by `CONTRAST`, and by more than the colours vary on either side), then to the side most of
its 3 x 3 neighbours took. A pixel that joins the near side takes the depth of the nearest pixel that stays near; one
that joins the far field, the far field's depth.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from worldwalk.kernels.splat import pull_push

__all__ = ["enclosed_far", "open_sky", "sky_edges"]

HALO = 3  # pixels around an enclosed far region that are filled with it
CONTRAST = 0.1  # sky_edges: the least squared distance (colours in [-1, 1]) between the two sides' mean colours


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


def sky_edges(z: torch.Tensor, rgb: torch.Tensor, far: float, band: int = 4) -> torch.Tensor:
    """z (H, W) metres; rgb (3, H, W) the picture (any scale); far: the far field's near bound (metres); band: how far
    (pixels) from the edge between the far field and nearer surfaces a pixel may change sides. -> z with each pixel of
    that band given to the side whose colour round it it is nearer (unchanged where a side has no pixel clear of the
    band within the window)."""
    if band <= 0:
        return z
    f = (~torch.isfinite(z) | (z >= far)).cpu()
    near = ~f
    if not bool(f.any()) or not bool(near.any()):
        return z
    fn = f.numpy()
    ball = np.ones((2 * band + 1, 2 * band + 1), bool)
    near_close = ndimage.binary_dilation(~fn, ball)  # within band of a near pixel
    far_close = ndimage.binary_dilation(fn, ball)
    edge = torch.from_numpy(near_close & far_close)
    if not bool(edge.any()):
        return z
    sure_far = torch.from_numpy(fn & ~near_close).float()[None]  # (1, H, W)
    sure_near = torch.from_numpy(~fn & ~far_close).float()[None]
    col = rgb.detach().float().cpu()
    k = 4 * band + 1

    def local_mean(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> the mean colour (3, H, W) of the pixels w marks round each, their variance summed over the channels
        (H, W), and whether there are any (H, W)."""
        den = F.avg_pool2d(w[None], k, stride=1, padding=k // 2, count_include_pad=False)[0]  # (1, H, W)
        both = torch.cat([col * w, col.square() * w])[None]
        num = F.avg_pool2d(both, k, stride=1, padding=k // 2, count_include_pad=False)[0] / den.clamp_min(1e-12)
        mean = num[:3]
        return mean, (num[3:] - mean.square()).sum(0).clamp_min(0), den[0] > 0

    c_far, v_far, has_far = local_mean(sure_far)
    c_near, v_near, has_near = local_mean(sure_near)
    d_far = (col - c_far).square().sum(0)
    d_near = (col - c_near).square().sum(0)
    # only where the two sides' colours round the pixel differ, by more than they vary within each side (sky against
    # an object, not texture against texture)
    contrast = (c_far - c_near).square().sum(0)
    decided = edge & has_far & has_near & (contrast > CONTRAST) & (contrast > v_far + v_near)
    # each pixel of the band to the side it is nearer to in colour, then the majority of its 3 x 3 (a lone pixel
    # that changed sides would stand out in depth: not lifted, a hole in the memory's render)
    side = torch.where(decided, d_far < d_near, f).numpy()  # True: the far field
    side = torch.from_numpy(ndimage.median_filter(side.astype(np.uint8), size=3, mode="nearest").astype(bool))
    to_far = decided & near & side
    to_near = decided & f & ~side
    if not bool(to_far.any()) and not bool(to_near.any()):
        return z
    out = z.clone()
    if bool(to_near.any()):  # the depth of the nearest pixel that stays near
        keep = (near & ~to_far).numpy()
        _, (iy, ix) = ndimage.distance_transform_edt(~keep, return_indices=True)
        nearest = z[torch.from_numpy(iy).to(z.device), torch.from_numpy(ix).to(z.device)]
        out = torch.where(to_near.to(z.device), nearest, out)
    if bool(to_far.any()):
        far_z = z[f.to(z.device) & torch.isfinite(z)]  # the far field's depths
        out = torch.where(to_far.to(z.device), far_z.max() if far_z.numel() else torch.tensor(float("inf")), out)
    return out
