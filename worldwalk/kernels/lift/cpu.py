"""Lifting a view's pixels to surface points on the CPU, compiled with numba: the same result as
kernels/lift/naive.py. The reference makes some forty whole-frame PyTorch passes (two edge maps, the keep mask, the
points and their neighbours' points, gathered and scattered); here the logs and inverses are taken once in PyTorch
(the reference's own functions, so every edge test sees the same float32 values), and two compiled loops do the rest:
one over the rows for the edge maps and the keep mask, one over the lifted pixels for their points and steps.
Compiled on first use and cached on disk by numba."""
from __future__ import annotations


import numba as nb
import numpy as np
import torch


@nb.njit(inline="always", error_model="numpy")
def _jump(lz, iz, i0, j0, i1, j1, rel, inv):  # pragma: no cover - compiled
    return abs(lz[i1, j1] - lz[i0, j0]) > rel and abs(iz[i1, j1] - iz[i0, j0]) > inv


@nb.njit(inline="always", error_model="numpy")
def _on_edge(lz, iz, i, j, H, W, rel, inv):  # pragma: no cover - compiled
    return ((j + 1 < W and _jump(lz, iz, i, j, i, j + 1, rel, inv))
            or (j > 0 and _jump(lz, iz, i, j - 1, i, j, rel, inv))
            or (i + 1 < H and _jump(lz, iz, i, j, i + 1, j, rel, inv))
            or (i > 0 and _jump(lz, iz, i - 1, j, i, j, rel, inv)))


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _masks(depth, mask, lz1, iz1, lz2, iz2, near, rel, inv, keep, edge2):  # pragma: no cover - compiled
    """keep: lifted pixels; edge2: depth edges of the stored depth (where a neighbour's step is not taken)."""
    H, W = depth.shape
    inf = np.float32(np.inf)
    for i in nb.prange(H):
        for j in range(W):
            d = depth[i, j]
            ok = (np.isfinite(d) and d > near) or d == inf
            keep[i, j] = ok and mask[i, j] and not _on_edge(lz1, iz1, i, j, H, W, rel, inv)
            edge2[i, j] = _on_edge(lz2, iz2, i, j, H, W, rel, inv)


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _points(idx, z, far, edge2, fx, fy, cx, cy, cam, steps):  # pragma: no cover - compiled
    H, W = z.shape
    zero = np.float32(0.0)
    for k in nb.prange(idx.shape[0]):
        p = idx[k]
        i, j = p // W, p % W
        zi = z[i, j]
        x = (np.float32(j) - cx) / fx * zi
        y = (np.float32(i) - cy) / fy * zi
        cam[k, 0], cam[k, 1], cam[k, 2] = x, y, zi
        # right neighbour: its point minus this one, or a pixel's width across the ray
        steps[k, 0, 0], steps[k, 0, 1], steps[k, 0, 2] = zi / fx, zero, zero
        if j + 1 < W and not (edge2[i, j + 1] or far[i, j + 1] or far[i, j]):
            zn = z[i, j + 1]
            steps[k, 0, 0] = (np.float32(j + 1) - cx) / fx * zn - x
            steps[k, 0, 1] = (np.float32(i) - cy) / fy * zn - y
            steps[k, 0, 2] = zn - zi
        steps[k, 1, 0], steps[k, 1, 1], steps[k, 1, 2] = zero, zi / fy, zero
        if i + 1 < H and not (edge2[i + 1, j] or far[i + 1, j] or far[i, j]):
            zn = z[i + 1, j]
            steps[k, 1, 0] = (np.float32(j) - cx) / fx * zn - x
            steps[k, 1, 1] = (np.float32(i + 1) - cy) / fy * zn - y
            steps[k, 1, 2] = zn - zi


def lift_cpu(depth, mask, intrinsics, near, far, far_store, edge, edge_inv, max_step=0.0):
    """The same call and result as naive.lift_ref, for CPU tensors."""
    depth = depth.float().contiguous()
    H, W = depth.shape
    f32 = np.float32
    fx, fy, cx, cy = (f32(float(v)) for v in intrinsics)
    finite = torch.isfinite(depth)
    z = torch.where(finite, depth, torch.full_like(depth, far_store))
    is_far = z >= far
    z = torch.where(is_far, torch.full_like(z, far_store), z)
    # the edge tests' inputs, as naive.depth_edges takes them: on the depth with far at `far`, and on the stored one
    # (which differs only where far: one value there)
    zc = torch.where(is_far, torch.full_like(z, far), z).clamp_min(1e-6)
    lz1, iz1 = zc.log(), 1 / zc
    fs = torch.full((1,), far_store, dtype=torch.float32).clamp_min(1e-6)
    lz2, iz2 = torch.where(is_far, fs.log(), lz1), torch.where(is_far, 1 / fs, iz1)
    m = np.ones((H, W), np.bool_) if mask is None else np.ascontiguousarray(mask.cpu().numpy(), dtype=np.bool_)
    keep, edge2 = np.empty((H, W), np.bool_), np.empty((H, W), np.bool_)
    n = lambda t: np.ascontiguousarray(t.numpy())  # noqa: E731
    _masks(n(depth), m, n(lz1), n(iz1), n(lz2), n(iz2), f32(near), f32(edge), f32(edge_inv), keep, edge2)
    idx = np.flatnonzero(keep)
    cam, steps = np.empty((idx.size, 3), np.float32), np.empty((idx.size, 2, 3), np.float32)
    _points(idx, n(z), n(is_far), edge2, fx, fy, cx, cy, cam, steps)
    idx, cam, steps = torch.from_numpy(idx).long(), torch.from_numpy(cam), torch.from_numpy(steps)
    if max_step > 0:  # (as the reference)
        iso = (cam[:, 2] / float(intrinsics[0]))[:, None, None] * max_step
        steps = steps * (iso / steps.norm(dim=-1, keepdim=True).clamp_min(1e-9)).clamp(max=1.0)
    return idx, cam, steps
