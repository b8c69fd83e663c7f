"""Lifting a view's pixels to surface points for the world memory, in plain PyTorch: the reference (any device).

    idx, cam, steps = lift_ref(depth (H, W) z-depth in metres, mask (H, W) bool or None, (fx, fy, cx, cy),
                               near, far, far_store, edge, edge_inv, max_step)

A pixel is lifted where its depth is finite and beyond `near` (or +inf: sky), not on a depth edge and inside the mask.
Depth at or beyond `far` (and +inf) is stored `far_store` along its ray. Depth edges (depth_edges): a 4-neighbour's
depth differs by more than `edge` in log depth and by more than `edge_inv` in inverse depth (1/metres), measured with
far depth at `far` (so the far field's edge against the sky is not one).

-> idx (n,) long: the lifted pixels' flat indices (row-major, ascending); cam (n, 3) float32: their points in the
camera (x = (u - cx) / fx z, y = (v - cy) / fy z, z); steps (n, 2, 3) float32: the offsets to the points of the right
and the lower neighbour pixel on the same surface, or where that neighbour is across an edge (depth_edges on the
stored depth), far, beyond the frame, or the pixel itself is far, a pixel's width across the ray (z/fx, 0, 0) and
(0, z/fy, 0); a step longer than `max_step` pixel widths (z/fx) is shortened to that (0: no limit).
"""
from __future__ import annotations

import torch


def depth_edges(depth: torch.Tensor, rel: float, inv: float) -> torch.Tensor:
    """(H, W) z-depth -> (H, W) bool: pixels on a depth edge, where the depth to a 4-neighbour changes by more than
    `rel` in log depth and by more than `inv` (1/metres) in inverse depth. Inverse depth is what moving the camera
    turns into pixels (parallax), so the far ground near the horizon, steep in log depth, is not an edge."""
    z = depth.clamp_min(1e-6)
    lz, iz = z.log(), 1 / z
    e = torch.zeros_like(lz, dtype=torch.bool)
    dx = ((lz[:, 1:] - lz[:, :-1]).abs() > rel) & ((iz[:, 1:] - iz[:, :-1]).abs() > inv)
    dy = ((lz[1:] - lz[:-1]).abs() > rel) & ((iz[1:] - iz[:-1]).abs() > inv)
    e[:, 1:] |= dx
    e[:, :-1] |= dx
    e[1:] |= dy
    e[:-1] |= dy
    return e


def lift_ref(depth, mask, intrinsics, near, far, far_store, edge, edge_inv, max_step=0.0):
    depth = depth.float()
    H, W = depth.shape
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    keep = torch.isfinite(depth) & (depth > near) | (depth == float("inf"))
    z = torch.where(torch.isfinite(depth), depth, torch.full_like(depth, far_store))
    is_far = z >= far
    z = torch.where(is_far, torch.full_like(z, far_store), z)
    keep &= ~depth_edges(torch.where(is_far, torch.full_like(z, far), z), edge, edge_inv)
    if mask is not None:
        keep &= mask.to(depth.device)
    idx = keep.flatten().nonzero()[:, 0]
    zf, on_edge, farf = z.reshape(-1), depth_edges(z, edge, edge_inv).reshape(-1), is_far.reshape(-1)
    u, v = idx % W, idx // W

    def point(i, du, dv):  # (k,) flat pixel indices -> (k, 3), each shifted by (du, dv) pixels
        zi = zf[i]
        return torch.stack([((u + du).float() - cx) / fx * zi, ((v + dv).float() - cy) / fy * zi, zi], -1)

    cam = point(idx, 0, 0)
    zi = cam[:, 2]
    zero = torch.zeros_like(zi)
    sx, sy = torch.stack([zi / fx, zero, zero], -1), torch.stack([zero, zi / fy, zero], -1)
    for step, ok, nb, du, dv in ((sx, u < W - 1, idx + 1, 1, 0), (sy, v < H - 1, idx + W, 0, 1)):
        nb = torch.where(ok, nb, idx)
        ok = ok & ~(on_edge[nb] | farf[nb] | farf[idx])
        step[ok] = (point(nb, du, dv) - cam)[ok]
    if max_step > 0:
        iso = (zi / fx)[:, None] * max_step
        sx = sx * (iso / sx.norm(dim=-1, keepdim=True).clamp_min(1e-9)).clamp(max=1.0)
        sy = sy * (iso / sy.norm(dim=-1, keepdim=True).clamp_min(1e-9)).clamp(max=1.0)
    return idx, cam, torch.stack([sx, sy], 1)
