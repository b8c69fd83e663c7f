"""The start picture's sky where the frame shows sky no frame has seen: its colour by elevation.

What the generator draws where a turn or a long walk reveals sky is the smooth average of what could be there: a haze
of sky and ground colours, in vertical bands where each chunk drew its own. Open sky looks the same at every azimuth,
up to the sun: its colour is a function of how high the ray points. The start picture shows that function over the
elevations it spans, so this keeps, per elevation bin of the start camera's rays (the start camera is level: the rig
stands it on the ground),

    share(e)   the part of the picture's pixels at elevation e that are sky: at the depth network's far limit, above
               the horizon, and joined to the picture's top (its top 5 % of rows: a far patch inside a close-up,
               such as the dark rim of a cup the network puts far away, is not sky); less than `min_sky` of the
               picture in all is none
    colour(e)  their mean colour

and for a pixel of another view whose ray points at elevation e, it gives colour(e) with the weight share(e): where
the picture's sky at that height was open (high up), the sky; near the horizon, where trees and buildings stood in
front of part of it, as much as the picture says is sky there. Above the picture's top, the top row's values hold;
below the horizon there is no sky. A picture without sky (a close-up, a room) gives share 0 everywhere: nothing.

    s = SkyProfile(pixels (H, W, 3) uint8, depth (H, W), intrinsics, far)    # once, at the walk's start
    colour, share = s.render(c2w (N, 4, 4), intrinsics, (W, H))              # (N, 3, H, W) in [-1, 1], (N, H, W)
    frames = s.blend(frames (N, 3, H, W), c2w, intrinsics, weight (N, H, W)) # lerped towards colour by weight x share

The bins are even steps of the sine of the elevation (half a degree wide at the horizon), so that a pixel's bin needs
no arcsine; the lookup and the blend are one numba pass over the pixels (worldwalk/kernels/sky/).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from worldwalk.kernels.sky import lookup, sin_elevation, sky_blend


def elevation(c2w, intrinsics, size: tuple[int, int]) -> torch.Tensor:
    """c2w (N, 4, 4) in the start camera's frame (y down); intrinsics [fx, fy, cx, cy] in pixels of size (W, H)
    -> (N, H, W) float32: each pixel centre's ray elevation above level, in degrees."""
    return torch.rad2deg(torch.asin(sin_elevation(c2w, intrinsics, size).clamp(-1, 1)))


def elevation_bins(img: torch.Tensor, s: torch.Tensor, keep: torch.Tensor, lo: float, step: float, smooth: int,
                   trim: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A picture's kept pixels by the sine of their ray's elevation. img (H, W, 3) in [-1, 1]; s (H, W) the sines;
    keep (H, W) bool; bins of width step from lo up to 1; smooth: the bins (odd) over which sums are taken; trim:
    kept pixels farther than this (a channel) from their bin's mean colour are left out of the colour (a bright spot
    would otherwise tint its elevation all the way round). -> colour (B, 3): the kept pixels' mean (that of all kept
    where trimming leaves none), share (B,): the kept part of the bin's pixels (0 where the picture has none),
    n (B,) and k (B,): the bin's pixels and kept pixels, summed over the smoothing box."""
    n_bins = int(np.ceil((1.0 - lo) / step)) + 1
    idx = ((s - lo) / step).round().long().clamp(0, n_bins - 1).reshape(-1)
    px = img.reshape(-1, 3)
    r = smooth // 2
    box = torch.ones(1, 1, smooth)

    def smoothed(v: torch.Tensor) -> torch.Tensor:  # (n_bins, C) sums -> summed over a box of neighbouring bins
        return F.conv1d(v.T[:, None], box, padding=r)[:, 0].T if r else v

    def colour_of(kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # mean colour of kept pixels by bin
        kk = smoothed(torch.zeros(n_bins, 1).index_add_(0, idx, kept[:, None].float()))[:, 0]
        cc = smoothed(torch.zeros(n_bins, 3).index_add_(0, idx, px * kept[:, None].float()))
        return cc / kk.clamp_min(1e-6)[:, None], kk

    n = smoothed(torch.zeros(n_bins, 1).index_add_(0, idx, torch.ones(idx.numel(), 1)))[:, 0]
    flat = keep.reshape(-1)
    mean, k = colour_of(flat)
    colour, kept = colour_of(flat & ((px - mean[idx]).abs().amax(1) <= trim))
    colour = torch.where((kept > 0)[:, None], colour, mean)
    share = torch.where(n > 0, k / n.clamp_min(1e-6), torch.zeros(()))
    return colour, share, n, k


def nearest_with(has: torch.Tensor) -> torch.Tensor:
    """has (B,) bool, some True -> (B,) long: for each bin, the nearest bin where has is True (itself where it is)."""
    pos = torch.arange(has.shape[0])
    where = pos[has]
    return where[(pos[:, None] - where[None, :]).abs().argmin(1)]


class SkyProfile:
    def __init__(self, pixels: torch.Tensor, depth: torch.Tensor, intrinsics, far: float, bin_deg: float = 0.5,
                 far_share: float = 0.95, smooth: int = 5, min_sky: float = 0.01, trim: float = 0.2):
        """pixels (H, W, 3) uint8: the start picture at the frame's size; depth (H, W) its z-depth (metres, the
        depth network's: sky at its far limit); intrinsics [fx, fy, cx, cy] in its pixels; far: the depth network's
        far limit (metres). bin_deg: the elevation bins' width at the horizon; far_share: a pixel this share of far or
        farther is sky; smooth: the bins (odd) over which colour and share are averaged; min_sky: the least share of
        the picture's pixels that are sky for it to have any; trim: sky pixels farther than this (a channel, in
        [-1, 1] units) from their bin's mean colour are left out of it."""
        H, W = depth.shape
        s = sin_elevation(torch.eye(4)[None], intrinsics, (W, H))[0]  # (H, W)
        img = pixels.float().reshape(H, W, 3) / 127.5 - 1
        sky = ((depth.float().cpu() >= far_share * far) & (s > 0)).numpy()
        labels, _ = ndimage.label(sky)  # 4-connected regions
        top = np.setdiff1d(np.unique(labels[: max(1, H // 20)]), [0])  # (a network's edge rows may miss the top)
        sky = torch.from_numpy(np.isin(labels, top))
        if float(sky.float().mean()) < min_sky:
            sky = torch.zeros_like(sky)
        self.step = float(np.sin(np.deg2rad(bin_deg)))
        self.lo = -1.0
        colour, share, n, k = elevation_bins(img, s, sky, self.lo, self.step, smooth, trim)
        n_bins, seen = share.shape[0], n > 0
        share[self.lo + self.step * torch.arange(n_bins) <= 0] = 0  # the box does not carry sky below the horizon
        has = k > 0
        self.usable = bool(has.any())
        if self.usable:
            # bins without sky take the colour of the nearest bin with sky (their share is 0 unless above the top)
            pos = torch.arange(n_bins)
            colour = colour[nearest_with(has)]
            top = int(pos[seen].max())  # above the picture's highest ray: its values hold
            share[top + 1:] = share[top]
            colour[top + 1:] = colour[top]
        self.table = torch.cat([share[:, None], colour], 1).contiguous()  # (n_bins, 4): share, r, g, b

    @property
    def share(self) -> torch.Tensor:
        return self.table[:, 0]

    def render(self, c2w, intrinsics, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """c2w (N, 4, 4) in the start camera's frame; intrinsics [fx, fy, cx, cy] in pixels of size (W, H) -> the
        sky's colour (N, 3, H, W) in [-1, 1] and its share (N, H, W) in [0, 1] (0 where the picture had no sky)."""
        v = lookup(self.table, self.lo, self.step, sin_elevation(c2w, intrinsics, size))  # (N, H, W, 4)
        return v[..., 1:].permute(0, 3, 1, 2), v[..., 0]

    def blend(self, frames: torch.Tensor, c2w, intrinsics, weight: torch.Tensor) -> torch.Tensor:
        """frames (N, 3, H, W) in [-1, 1] at c2w (N, 4, 4) -> the same lerped towards the sky's colour by weight
        (N, H, W) x its share (on the CPU with numba: frames itself, changed in place when float32)."""
        return sky_blend(frames, self.table, self.lo, self.step, c2w, intrinsics, weight)
