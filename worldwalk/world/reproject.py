"""Reprojection of what a walk has shown into the next camera poses: the guess a chunk's sampling may start from.

Without depth, a view moves exactly only under rotation; for the rest this module assumes the simplest world that a
walk through it has: a level ground `eye_height` metres below the start camera (world +Y is down, OpenCV) under the
horizon, and everything above the horizon far away. Each target pixel's ray is cut with that ground (or sent to
infinity) and projected into the source camera, whose pixel is read (bilinear; outside the source, its border).

    grid, seen = ground_plane_grid(src_c2w (4,4), tgt_c2w (N,4,4), intrinsics [fx,fy,cx,cy], (W, H))
    frames = warp(image (3,H,W), grid)                                     # (N, 3, H, W)
    frames, seen = reproject_chunk(start, last, last_c2w, poses, intrinsics, radius)   # the start image over the last
    sigmas = start_levels(last_c2w, latent_c2w (F,4,4), lowest, radius)    # (F,) per-latent start noise levels
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from worldwalk.kernels.splat import feather as feathered
from worldwalk.world.procedural.scene import EYE_HEIGHT  # metres from the eye to the ground: a standing person's (1.6)


def ground_plane_grid(src_c2w: np.ndarray, tgt_c2w: np.ndarray, intrinsics, size_wh: tuple[int, int],
                      eye_height: float = EYE_HEIGHT) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each pixel of each target camera looks in the source camera's image.

    src_c2w (4, 4), tgt_c2w (N, 4, 4) OpenCV camera-to-world in the start camera's frame; intrinsics (4,) of both
    (pixels, edges at 0 and W). -> grid (N, H, W, 2) in grid_sample's [-1, 1] coordinates, seen (N, H, W) bool: the
    point lies in front of the source camera and inside its image."""
    W, H = size_wh
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    src = torch.as_tensor(np.asarray(src_c2w), dtype=torch.float32)
    tgt = torch.as_tensor(np.asarray(tgt_c2w), dtype=torch.float32)
    N = tgt.shape[0]
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32) + 0.5, torch.arange(W, dtype=torch.float32) + 0.5,
                          indexing="ij")
    rays = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u)]).view(3, H * W)  # in the target camera
    dirs = tgt[:, :3, :3] @ rays  # (N, 3, HW): each pixel's ray in the world
    eye = tgt[:, :3, 3]  # (N, 3)
    down = dirs[:, 1]
    dist = (eye_height - eye[:, 1:2]) / torch.where(down > 1e-3, down, torch.ones_like(down))  # (N, HW) to the ground
    ground = (down > 1e-3) & (dist > 0)
    R_t, c = src[:3, :3].T, src[:3, 3]
    # in the source camera: R^T (eye + dist·d − c) on the ground, R^T d (a direction, at infinity) above the horizon
    d_src = R_t @ dirs  # (N, 3, HW)
    in_src = torch.where(ground[:, None], (R_t @ (eye - c)[..., None]) + dist[:, None] * d_src, d_src)
    z = in_src[:, 2]
    zs = z.clamp_min(1e-6)
    us, vs = fx * in_src[:, 0] / zs + cx, fy * in_src[:, 1] / zs + cy
    seen = (z > 1e-6) & (us >= 0) & (us <= W) & (vs >= 0) & (vs <= H)
    grid = torch.stack([2 * us / W - 1, 2 * vs / H - 1], -1).view(N, H, W, 2)
    return grid, seen.view(N, H, W)


def warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """image (3, H, W) float, grid (N, H, W, 2) -> (N, 3, H, W): the image read at the grid (border outside)."""
    src = image[None].expand(grid.shape[0], -1, -1, -1)
    return F.grid_sample(src, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def reproject_chunk(start: torch.Tensor, last: torch.Tensor, last_c2w: np.ndarray, poses: np.ndarray, intrinsics,
                    radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The guess for a chunk's raw frames: the start image (taken at the identity pose) where it sees and the camera
    is within `radius` metres of where it was taken, else the last frame shown, both reprojected.

    start, last (3, H, W) float; last_c2w (4, 4); poses (N, 4, 4). -> frames (N, 3, H, W), seen (N, H, W) bool: the
    pixels one of the two images saw (the rest is the last frame's border smeared outwards)."""
    H, W = start.shape[-2:]
    dev = start.device
    grid, seen = (t.to(dev) for t in ground_plane_grid(last_c2w, poses, intrinsics, (W, H)))
    out = warp(last, grid)
    near = np.linalg.norm(poses[:, :3, 3], axis=1) < radius
    if near.any():
        g0, seen0 = (t.to(dev) for t in ground_plane_grid(np.eye(4), poses[near], intrinsics, (W, H)))
        idx = torch.from_numpy(near).to(dev)
        out[idx] = torch.where(seen0[:, None], warp(start, g0), out[idx])
        seen[idx] |= seen0
    return out, seen


def start_levels(last_c2w: np.ndarray, latent_c2w: np.ndarray, lowest: float, radius: float) -> torch.Tensor:
    """(F,) noise levels a chunk's latents start from: `lowest` where the camera has only turned since the last frame
    shown, rising linearly to 1 (pure noise: nothing reprojected is trusted) at `radius` metres of travel."""
    moved = np.linalg.norm(latent_c2w[:, :3, 3] - last_c2w[:3, 3], axis=1)
    return torch.from_numpy(np.minimum(1.0, lowest + (1 - lowest) * moved / radius)).float()


OVERLAY_RADIUS = 0.25  # metres from where the start image was taken at which the overlay has faded out
OVERLAY_FEATHER = 6  # pixels: the overlay's edge (where the start image stops seeing) is eroded and blurred this much:
# a softer seam between the sharp image and the model's blurrier frame, for 0.03 dB (3 px -> 8 px on the tuning seeds)


def overlay_start(frames: torch.Tensor, start: torch.Tensor, poses: np.ndarray, intrinsics,
                  radius: float = OVERLAY_RADIUS, feather: int = OVERLAY_FEATHER) -> torch.Tensor:
    """Frames with the start image laid over them where it sees, near where it was taken: the one view the walk knows
    exactly. Reprojected (ground plane / infinity), it is exact under rotation and still close for a short step, so
    its weight falls linearly from 1 at the start position to 0 at `radius` metres; the mask's edge is feathered.

    frames (N, 3, H, W) float; start (3, H, W) float, the same range; poses (N, 4, 4) c2w in the start camera's frame.
    -> (N, 3, H, W), a new tensor where any frame is near, else `frames` itself."""
    poses = np.asarray(poses)
    if poses.shape != (frames.shape[0], 4, 4):
        raise ValueError(f"poses: {poses.shape}, expected ({frames.shape[0]}, 4, 4), one per frame")
    dist = np.linalg.norm(poses[:, :3, 3], axis=1)
    near = dist < radius
    if not near.any():
        return frames
    H, W = frames.shape[-2:]
    dev = frames.device
    grid, seen = (t.to(dev) for t in ground_plane_grid(np.eye(4), poses[near], intrinsics, (W, H)))
    weight = feathered(seen[:, None].float(), feather) * torch.from_numpy(1 - dist[near] / radius).to(dev, frames.dtype).view(-1, 1, 1, 1)
    out = frames.clone()
    idx = torch.from_numpy(near).to(dev)
    out[idx] = torch.lerp(frames[idx], warp(start.to(frames.dtype), grid), weight.to(frames.dtype))
    return out
