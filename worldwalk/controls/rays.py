"""Ray geometry the world model reads: camera conditions, Plücker raymaps and UCPE ray frames.

Conventions (as the official SANA-WM release):
- poses are OpenCV camera-to-world 4x4 (+X right, +Y down, +Z forward), metric, made relative to frame 0;
- intrinsics are (fx, fy, cx, cy) in pixels *of the grid they are used on* (the latent grid for the model);
- a latent frame k stands for raw frame k*stride (the causal VAE's first latent is raw frame 0 alone).

Everything here is plain torch on whatever device/dtype the inputs have; nothing here knows the model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def relative_to_first(c2w: torch.Tensor) -> torch.Tensor:
    """(..., F, 4, 4) c2w -> the same poses expressed in the frame of pose 0 (so pose 0 is the identity)."""
    first_inv = invert_se3(c2w[..., :1, :, :])
    rel = first_inv @ c2w
    rel[..., 0, :, :] = torch.eye(4, dtype=c2w.dtype, device=c2w.device)
    return rel


def invert_se3(T: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of rigid 4x4 transforms (..., 4, 4)."""
    R_t = T[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = R_t
    out[..., :3, 3] = -(R_t @ T[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def latent_frame_indices(num_raw: int, stride: int) -> torch.Tensor:
    """Raw frame index of each latent frame: 0, s, 2s, ... ((F-1)//s + 1 of them)."""
    return torch.arange(0, (num_raw - 1) // stride * stride + 1, stride)


def camera_conditions(c2w: torch.Tensor, intrinsics: torch.Tensor, stride: int) -> torch.Tensor:
    """Per latent frame the 20-vector [c2w (16, row-major), fx, fy, cx, cy].

    c2w:        (B, F, 4, 4) raw-frame poses, already relative to frame 0
    intrinsics: (B, F, 4) latent-grid intrinsics per raw frame
    returns     (B, T, 20) with T = (F-1)//stride + 1, taken at raw frames 0, s, 2s, ...
    """
    idx = latent_frame_indices(c2w.shape[1], stride).to(c2w.device)
    B, T = c2w.shape[0], idx.numel()
    return torch.cat([c2w[:, idx].reshape(B, T, 16), intrinsics[:, idx]], dim=-1)


def pixel_rays(c2w: torch.Tensor, intrinsics: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space unit ray directions and origins at integer pixel coordinates.

    c2w (..., 4, 4), intrinsics (..., 4) -> (dirs (..., H, W, 3), origins (..., H, W, 3))
    """
    H, W = hw
    dt, dev = c2w.dtype, c2w.device
    v, u = torch.meshgrid(torch.arange(H, dtype=dt, device=dev), torch.arange(W, dtype=dt, device=dev), indexing="ij")
    fx, fy, cx, cy = (intrinsics[..., i, None, None] for i in range(4))
    d_cam = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u).expand_as(u - cx)], dim=-1)  # (...,H,W,3)
    R = c2w[..., None, None, :3, :3]
    d_world = F.normalize((R @ d_cam[..., None])[..., 0], dim=-1)
    origins = c2w[..., None, None, :3, 3].expand_as(d_world)
    return d_world, origins


def plucker_raymaps(c2w: torch.Tensor, intrinsics: torch.Tensor, hw: tuple[int, int], stride: int) -> torch.Tensor:
    """Plücker raymaps of the raw frames each latent frame summarises.

    Latent frame k covers raw frames k*s - (s-1) ... k*s (clamped at 0, so latent 0 covers frames 0 ... s-1); a window
    that runs past the last raw frame repeats the last one. Per raw frame 6 channels (direction d, moment m = o x d),
    stacked frame-major.

    c2w (B, F, 4, 4), intrinsics (B, F, 4) on the latent grid -> (B, 6*s, T, H, W)
    """
    B, Fr = c2w.shape[:2]
    idx = latent_frame_indices(Fr, stride)
    starts = (idx - (stride - 1)).clamp(min=0)
    window = (starts[:, None] + torch.arange(stride)[None, :]).clamp(max=Fr - 1)  # (T, s)
    window = window.to(c2w.device)
    d, o = pixel_rays(c2w[:, window], intrinsics[:, window], hw)  # (B, T, s, H, W, 3)
    pl = torch.cat([d, torch.cross(o, d, dim=-1)], dim=-1)  # (B, T, s, H, W, 6)
    T = idx.numel()
    return pl.permute(0, 2, 5, 1, 3, 4).reshape(B, stride * 6, T, *hw)


def ucpe_ray_frames(cam_cond: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Per latent pixel the world->ray rigid transform P used by the UCPE camera branch.

    The ray frame has z along the world ray direction, x = normalize(camera_y x z), y = z x x, origin at the camera.
    cam_cond (B, T, 20) -> P (B, T, H, W, 4, 4)
    """
    B, T = cam_cond.shape[:2]
    c2w = cam_cond[..., :16].reshape(B, T, 4, 4)
    z, _ = pixel_rays(c2w, cam_cond[..., 16:20], hw)  # (B, T, H, W, 3)
    cam_y = c2w[:, :, None, None, :3, 1].expand_as(z)
    x = F.normalize(torch.cross(cam_y, z, dim=-1), dim=-1, eps=1e-6)
    y = F.normalize(torch.cross(z, x, dim=-1), dim=-1, eps=1e-6)
    R_w2r = torch.stack([x, y, z], dim=-2)  # rows are the ray axes: (B, T, H, W, 3, 3)
    t = c2w[:, :, None, None, :3, 3].expand_as(z)
    P = torch.zeros(*z.shape[:-1], 4, 4, dtype=z.dtype, device=z.device)
    P[..., :3, :3] = R_w2r
    P[..., :3, 3] = -(R_w2r @ t[..., None])[..., 0]
    P[..., 3, 3] = 1.0
    return P
