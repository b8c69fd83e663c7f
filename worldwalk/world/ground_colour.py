"""The start picture's ground colour where the frame shows ground no frame has seen: its colour by elevation.

Where a turn or a long walk reveals ground, the generator draws the smooth average of what could be there, and its
colour drifts: chunk after chunk of unseen ground, each decoded from the last one's guess, the grass goes greener or
brighter than any ground the walk has shown (issue 25's "colours inside real renders"). Open level ground seen from
the rig's eye height looks the same at every azimuth, up to its texture: its colour, haze included, is a function of
how far below the horizon the ray points, as the sky's is of how high (world/sky.py). The start picture shows that
function over the elevations its ground spans, so this keeps, per elevation bin of the start camera's rays,

    share(e)   the part of the picture's pixels at elevation e that are open ground: below the horizon and not nearer
               than `object_ratio` of the level ground plane's depth along the ray (an object stands there), by the
               depth network's start depth; less than `min_ground` of the picture in all is none
    colour(e)  their mean colour

and moves the low frequencies of what the model drew towards it, as much as the share says: the frame's mean over
`scale` x `scale` blocks is compared with colour(e) at each block's centre, and the difference, brought up bilinearly,
is added, weighted (per pixel) by where neither the memory nor the start view draws. The model's own detail stays;
only its colour at the block scale is the start picture's ground. Below the picture's lowest ray its bottom row's
values hold; above the horizon there is no ground. A picture without open ground (a close-up, a portrait) gives
share 0: nothing changes.

    g = GroundColour(pixels (H, W, 3) uint8, depth (H, W), intrinsics, eye_height)   # once, at the walk's start
    g.correct(frames (N, 3, H, W), c2w (N, 4, 4), intrinsics, weight (N, H, W))       # in place
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from worldwalk.kernels.sky import lookup, sin_elevation
from worldwalk.world.sky import elevation_bins, nearest_with


class GroundColour:
    def __init__(self, pixels: torch.Tensor, depth: torch.Tensor, intrinsics, eye_height: float,
                 bin_deg: float = 0.5, object_ratio: float = 0.7, smooth: int = 5, min_ground: float = 0.01,
                 trim: float = 0.3, scale: int = 8):
        """pixels (H, W, 3) uint8: the start picture at the frame's size; depth (H, W) its z-depth (metres);
        intrinsics [fx, fy, cx, cy] in its pixels (a level camera); eye_height: metres from the camera down to the
        ground. bin_deg: the elevation bins' width at the horizon; object_ratio: a pixel nearer than this share of the
        ground plane's depth along its ray is an object; smooth: the bins (odd) over which colour and share are
        averaged; min_ground: the least share of the picture's pixels that are ground for it to have any; trim:
        ground pixels farther than this (a channel, in [-1, 1] units) from their bin's mean are left out of the
        colour (a shadow, a bright stone); scale: the block (pixels) whose mean colour is corrected."""
        H, W = depth.shape
        fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
        s = sin_elevation(torch.eye(4)[None], (fx, fy, cx, cy), (W, H))[0]  # (H, W)
        img = pixels.float().reshape(H, W, 3) / 127.5 - 1
        rows = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W) + 0.5
        below = rows - cy > 0.5  # rays that meet the ground plane
        plane = torch.where(below, eye_height * fy / (rows - cy).clamp_min(0.5), torch.inf)  # its z-depth
        ground = below & (depth.float().cpu() >= object_ratio * plane)
        if float(ground.float().mean()) < min_ground:
            ground = torch.zeros_like(ground)
        self.step = float(np.sin(np.deg2rad(bin_deg)))
        self.lo = -1.0
        self.scale = int(scale)
        colour, share, n, k = elevation_bins(img, s, ground, self.lo, self.step, smooth, trim)
        pos = torch.arange(share.shape[0])
        share[self.lo + self.step * pos >= 0] = 0  # the box does not carry ground above the horizon
        has = (k > 0) & (self.lo + self.step * pos < 0)
        self.usable = bool(has.any())
        if self.usable:
            # bins without ground take the colour of the nearest bin with ground (their share is 0 unless below the
            # picture's lowest ray, where its bottom values hold)
            colour = colour[nearest_with(has)]
            bottom = int(pos[n > 0].min())
            share[:bottom] = share[bottom]
            colour[:bottom] = colour[bottom]
        self.table = torch.cat([share[:, None], colour], 1).contiguous()  # (n_bins, 4): share, r, g, b

    @property
    def share(self) -> torch.Tensor:
        return self.table[:, 0]

    def correct(self, frames: torch.Tensor, c2w, intrinsics, weight: torch.Tensor) -> torch.Tensor:
        """frames (N, 3, H, W) float32 in [-1, 1] at c2w (N, 4, 4) (the start camera's frame), intrinsics [fx, fy,
        cx, cy] in their pixels; weight (N, H, W) in [0, 1]: how much of the correction to add where -> frames,
        changed in place: + weight x share x (colour - the block mean), brought up bilinearly."""
        if not self.usable:
            return frames
        N, _, H, W = frames.shape
        k = self.scale
        h, w = H // k, W // k
        if h < 1 or w < 1:
            return frames
        if H == h * k and W == w * k:  # whole blocks: their sums over the frames as they lie in memory (the
            # session's are a transposed view; adaptive_avg_pool2d copies them first: three times slower)
            low = frames.unflatten(2, (h, k)).sum(3).unflatten(3, (w, k)).sum(4).div_(k * k)  # (N, 3, h, w)
        else:
            low = F.adaptive_avg_pool2d(frames, (h, w))  # (N, 3, h, w)
        fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
        sx, sy = w / W, h / H
        small = (fx * sx, fy * sy, cx * sx, cy * sy)  # the same rays through the blocks' centres
        v = lookup(self.table, self.lo, self.step, sin_elevation(c2w, small, (w, h))).to(frames.device)  # (N, h, w, 4)
        corr = (v[..., 1:].permute(0, 3, 1, 2) - low).mul_(v[..., 0][:, None])  # (N, 3, h, w)
        corr = upsample_matrix(H, h).to(frames.device) @ corr @ upsample_matrix(W, w).to(frames.device).T
        return frames.addcmul_(corr, weight.to(frames.device, torch.float32)[:, None])


@functools.lru_cache(maxsize=8)
def upsample_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in) float32: bilinear resampling along one axis as F.interpolate(mode="bilinear",
    align_corners=False) does it (pixel centres, edges held), as a matrix: two small matmuls bring a (h, w) grid up
    to (H, W) four times faster than F.interpolate on two cores."""
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * n_in / n_out - 0.5).clamp_min(0)
    i0 = src.floor().long().clamp_max(n_in - 1)
    i1 = (i0 + 1).clamp_max(n_in - 1)
    f = src - i0
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, i0), 1 - f, accumulate=True)
    m.index_put_((rows, i1), f, accumulate=True)
    return m.float()
