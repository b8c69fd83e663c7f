"""The start view's backward warp on the CPU, compiled with numba: the same maths as kernels/warp/naive.py.

The reference makes many whole-array PyTorch passes and grid_samples over every pixel of a chunk's cameras; here one
compiled pass per row follows each solved pixel's ray to the start surface (its bilinear depth reads inlined), and a
second, at full resolution, interpolates between the solved pixels (every grid-th one) and reads the colours
(bicubic) where they are valid and magnified. Rows of every camera in parallel. Compiled on first use and cached on
disk by numba.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from worldwalk.kernels.warp.naive import check_grid


@nb.njit(inline="always", cache=True)
def _coord(q, n_out, n_in):  # pragma: no cover - compiled; frame coordinate -> clamped image coordinate
    x = (q + 0.5) * (n_in / n_out) - 0.5
    return min(max(x, 0.0), n_in - 1.0)


@nb.njit(inline="always", cache=True)
def _bilerp(a, c, x, y):  # pragma: no cover - compiled; a (C, h, w), x / y image coordinates inside it
    h, w = a.shape[1], a.shape[2]
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = a[c, y0, x0] * (1 - fx) + a[c, y0, x1] * fx
    bot = a[c, y1, x0] * (1 - fx) + a[c, y1, x1] * fx
    return top * (1 - fy) + bot * fy


@nb.njit(inline="always", cache=True)
def _cubic(t):  # pragma: no cover - compiled; the 4 tap weights of cubic convolution (A = -0.75) at fraction t
    A = -0.75
    x0, x3 = t + 1.0, 2.0 - t
    w0 = ((A * x0 - 5 * A) * x0 + 8 * A) * x0 - 4 * A
    w1 = ((A + 2) * t - (A + 3)) * t * t + 1
    u = 1.0 - t
    w2 = ((A + 2) * u - (A + 3)) * u * u + 1
    w3 = ((A * x3 - 5 * A) * x3 + 8 * A) * x3 - 4 * A
    return w0, w1, w2, w3


@nb.njit(inline="always", cache=True)
def _bicubic(a, c, x, y):  # pragma: no cover - compiled; a (C, h, w), x / y image coordinates, each tap clamped
    h, w = a.shape[1], a.shape[2]
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    wx, wy = _cubic(x - x0), _cubic(y - y0)
    out = 0.0
    for m in range(4):
        yy = min(max(y0 - 1 + m, 0), h - 1)
        row = 0.0
        for k in range(4):
            xx = min(max(x0 - 1 + k, 0), w - 1)
            row += wx[k] * a[c, yy, xx]
        out += wy[m] * row
    return out


@nb.njit(inline="always", cache=True)
def _bicubic3(a, x, y):  # pragma: no cover - compiled; _bicubic of channels 0, 1, 2 at once (taps and weights once)
    h, w = a.shape[1], a.shape[2]
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    wx, wy = _cubic(x - x0), _cubic(y - y0)
    o0 = o1 = o2 = 0.0
    for m in range(4):
        yy = min(max(y0 - 1 + m, 0), h - 1)
        r0 = r1 = r2 = 0.0
        for k in range(4):
            xx = min(max(x0 - 1 + k, 0), w - 1)
            r0 += wx[k] * a[0, yy, xx]
            r1 += wx[k] * a[1, yy, xx]
            r2 += wx[k] * a[2, yy, xx]
        o0 += wy[m] * r0
        o1 += wy[m] * r1
        o2 += wy[m] * r2
    return o0, o1, o2


@nb.njit(inline="always", cache=True, fastmath=True)
def _at(z, o0, o1, o2, d0, d1, d2, f0x, f0y, c0x, c0y, inv, W0, H0):  # pragma: no cover - compiled
    X, Y, Z = o0 + z * d0, o1 + z * d1, o2 + z * d2
    Zc = max(Z, 1e-3)
    qx, qy = f0x * X / Zc + c0x, f0y * Y / Zc + c0y
    iv = _bilerp(inv, 0, _coord(qx, W0, inv.shape[2]), _coord(qy, H0, inv.shape[1]))
    return qx, qy, Z, iv


@nb.njit(inline="always", cache=True, fastmath=True)
def _first(R, t, n, i, j, fx, fy, cx, cy, f0x, f0y, c0x, c0y, depth, covered):  # pragma: no cover - compiled
    """pixel (i, j)'s start coordinates at the memory's depth (1 where it has none)"""
    ru, rv = (j - cx) / fx, (i - cy) / fy
    z = min(max(depth[n, i, j] if covered[n, i, j] else 1.0, 1e-2), 1e4)
    X = t[n, 0] + z * (R[n, 0, 0] * ru + R[n, 0, 1] * rv + R[n, 0, 2])
    Y = t[n, 1] + z * (R[n, 1, 0] * ru + R[n, 1, 1] * rv + R[n, 1, 2])
    Z = max(t[n, 2] + z * (R[n, 2, 0] * ru + R[n, 2, 1] * rv + R[n, 2, 2]), 1e-3)
    return f0x * X / Z + c0x, f0y * Y / Z + c0y


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=True)
def _solve(R, t, fx, fy, cx, cy, f0x, f0y, c0x, c0y, inv, edges, depth, covered, steps, tolerance, agree, min_mag,
           miss, qx_out, qy_out, valid_out):  # pragma: no cover - compiled
    N, H, W = depth.shape
    H0, W0 = inv.shape[1], inv.shape[2]
    for r in nb.prange(N * H):
        n, i = r // H, r % H
        rv = (i - cy) / fy
        o0, o1, o2 = t[n, 0], t[n, 1], t[n, 2]
        # the first coordinates of this row and of the next (at the last row, the one before), each projected once:
        # naive.grid_step's neighbours
        wm = W if min_mag > 0 else 0
        ax, ay, bx, by = np.empty(wm), np.empty(wm), np.empty(wm), np.empty(wm)
        if min_mag > 0:
            i2 = i + 1 if i + 1 < H else i - 1
            for j in range(W):
                ax[j], ay[j] = _first(R, t, n, i, j, fx, fy, cx, cy, f0x, f0y, c0x, c0y, depth, covered)
                if H > 1:
                    bx[j], by[j] = _first(R, t, n, i2, j, fx, fy, cx, cy, f0x, f0y, c0x, c0y, depth, covered)
        for j in range(W):
            cov = covered[n, i, j]
            dep = depth[n, i, j]
            z_a = min(max(dep if cov else 1.0, 1e-2), 1e4)
            if min_mag > 0:  # too little magnified is not followed (the pixel's first coordinates, its right / lower
                # neighbour's, or at the last column / row the one before)
                gx = gy = 0.0
                if W > 1:
                    j2 = j + 1 if j + 1 < W else j - 1
                    gx = math.sqrt((ax[j2] - ax[j]) ** 2 + (ay[j2] - ay[j]) ** 2)
                if H > 1:
                    gy = math.sqrt((bx[j] - ax[j]) ** 2 + (by[j] - ay[j]) ** 2)
                if 1 / max(max(gx, gy), 1e-4) < min_mag:
                    qx_out[n, i, j], qy_out[n, i, j], valid_out[n, i, j] = ax[j], ay[j], False
                    continue
            ru = (j - cx) / fx
            d0 = R[n, 0, 0] * ru + R[n, 0, 1] * rv + R[n, 0, 2]
            d1 = R[n, 1, 0] * ru + R[n, 1, 1] * rv + R[n, 1, 2]
            d2 = R[n, 2, 0] * ru + R[n, 2, 1] * rv + R[n, 2, 2]
            qx, qy, Z, iv = _at(z_a, o0, o1, o2, d0, d1, d2, f0x, f0y, c0x, c0y, inv, W0, H0)
            h_a = 1 / max(Z, 1e-3) - iv
            if miss > 0 and abs(h_a) > miss * iv:  # the memory shows another surface than the start picture's
                qx_out[n, i, j], qy_out[n, i, j], valid_out[n, i, j] = qx, qy, False
                continue
            dz = d2 if abs(d2) >= 1e-6 else 1e-6
            z_b = (1 / max(iv, 1e-4) - o2) / dz
            if not z_b > 1e-2:
                z_b = z_a * 1.01
            for _ in range(steps):
                qx, qy, Z, iv = _at(z_b, o0, o1, o2, d0, d1, d2, f0x, f0y, c0x, c0y, inv, W0, H0)
                h_b = 1 / max(Z, 1e-3) - iv
                den = h_b - h_a
                z_c = z_b - h_b * (z_b - z_a) / den if abs(den) > 1e-9 else z_b
                z_a, h_a, z_b = z_b, h_b, min(max(z_c, z_b * 0.5), z_b * 2.0)
            qx, qy, Z, iv = _at(z_b, o0, o1, o2, d0, d1, d2, f0x, f0y, c0x, c0y, inv, W0, H0)
            Zs = 1 / max(iv, 1e-4)
            ok = (cov and Z > 1e-2 and abs(Z - Zs) <= tolerance * Zs and abs(z_b - dep) <= agree * max(dep, 1e-3)
                  and -0.5 <= qx <= W0 - 0.5 and -0.5 <= qy <= H0 - 0.5)
            if ok:
                ok = _bilerp(edges, 0, _coord(qx, W0, W0), _coord(qy, H0, H0)) <= 0
            qx_out[n, i, j], qy_out[n, i, j], valid_out[n, i, j] = qx, qy, ok


@nb.njit(inline="always", cache=True)
def _up(i, n2, grid):  # pragma: no cover - compiled; naive.upsample_index for one row / column
    a, k = i // grid, i % grid
    if k == 0 or n2 == 1:
        a = min(a, n2 - 1)
        return a, a, 0.0
    if a + 1 < n2:
        return a, a + 1, k / grid
    return a - 1, a, 1.0 + k / grid


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=True)
def _colour(qx, qy, valid, covered, img, hi, scale, from_mag, full_at, H0, W0, grid, rgb,
            weight):  # pragma: no cover - compiled
    N, H, W = covered.shape
    h2, w2 = qx.shape[1], qx.shape[2]
    for r in nb.prange(N * H):
        n, i = r // H, r % H
        r0, r1, rt = _up(i, h2, grid)
        a = i // grid
        for j in range(W):
            c0, c1, ct = _up(j, w2, grid)
            ok = covered[n, i, j] and valid[n, r0, c0]
            if ok and rt != 0:
                ok = valid[n, r1, c0]
            if ok and ct != 0:
                ok = valid[n, r0, c1] and (rt == 0 or valid[n, r1, c1])
            mag = 0.0
            if ok:
                b = j // grid
                gx = gy = 0.0
                if w2 > 1:
                    b0, b1 = (b, b + 1) if b + 1 < w2 else (b - 1, b)
                    gx = math.sqrt((qx[n, a, b1] - qx[n, a, b0]) ** 2 + (qy[n, a, b1] - qy[n, a, b0]) ** 2) / grid
                if h2 > 1:
                    a0, a1 = (a, a + 1) if a + 1 < h2 else (a - 1, a)
                    gy = math.sqrt((qx[n, a1, b] - qx[n, a0, b]) ** 2 + (qy[n, a1, b] - qy[n, a0, b]) ** 2) / grid
                mag = 1 / max(max(gx, gy), 1e-4)
            if not ok or mag <= from_mag:  # (weight 0)
                weight[n, i, j] = 0.0
                for c in range(3):
                    rgb[n, c, i, j] = 0.0
                continue
            xa = qx[n, r0, c0] + ct * (qx[n, r0, c1] - qx[n, r0, c0])
            xb = qx[n, r1, c0] + ct * (qx[n, r1, c1] - qx[n, r1, c0])
            ya = qy[n, r0, c0] + ct * (qy[n, r0, c1] - qy[n, r0, c0])
            yb = qy[n, r1, c0] + ct * (qy[n, r1, c1] - qy[n, r1, c0])
            x, y = xa + rt * (xb - xa), ya + rt * (yb - ya)
            cx, cy = (x + 0.5) * (img.shape[2] / W0) - 0.5, (y + 0.5) * (img.shape[1] / H0) - 0.5
            al = min(max((mag - 1) / (scale - 1), 0.0), 1.0) if scale > 1 else 0.0
            hx, hy = (x + 0.5) * (hi.shape[2] / W0) - 0.5, (y + 0.5) * (hi.shape[1] / H0) - 0.5
            if al >= 1:  # the kept image's alone (the mix would give it, up to rounding)
                v0, v1, v2 = _bicubic3(hi, hx, hy)
            else:
                v0, v1, v2 = _bicubic3(img, cx, cy)
                if al > 0:
                    p0, p1, p2 = _bicubic3(hi, hx, hy)
                    v0, v1, v2 = v0 + al * (p0 - v0), v1 + al * (p1 - v1), v2 + al * (p2 - v2)
            rgb[n, 0, i, j], rgb[n, 1, i, j], rgb[n, 2, i, j] = v0, v1, v2
            weight[n, i, j] = min(max((mag - from_mag) / (full_at - from_mag), 0.0), 1.0)


def _np32(x):
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)


def solve_cpu(R, t, intrinsics, start_intrinsics, inv, edges, depth, covered, steps: int = 3,
              tolerance: float = 0.02, agree: float = 0.08, min_mag: float = 0.0, miss: float = 0.0):
    N, H, W = depth.shape
    qx, qy = np.empty((N, H, W), np.float32), np.empty((N, H, W), np.float32)
    valid = np.empty((N, H, W), np.bool_)
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    f0x, f0y, c0x, c0y = (float(v) for v in start_intrinsics)
    _solve(_np32(R), _np32(t), fx, fy, cx, cy, f0x, f0y, c0x, c0y, _np32(inv)[None], _np32(edges)[None],
           _np32(depth), np.ascontiguousarray(covered.cpu().numpy(), dtype=np.bool_), int(steps), float(tolerance),
           float(agree), float(min_mag), float(miss), qx, qy, valid)
    return torch.from_numpy(qx), torch.from_numpy(qy), torch.from_numpy(valid)


def colour_cpu(qx, qy, valid, covered, img, hi, from_mag: float = 1.0, full_at: float = 1.5, grid: int = 2):
    N, H, W = covered.shape
    check_grid(qx.shape[1:], (H, W), grid)
    H0, W0 = img.shape[1:]
    hi_a = _np32(hi) if hi is not None else np.zeros((3, 1, 1), np.float32)
    scale = min(hi_a.shape[1] / H0, hi_a.shape[2] / W0) if hi is not None else 1.0
    rgb, weight = np.empty((N, 3, H, W), np.float32), np.empty((N, H, W), np.float32)
    _colour(_np32(qx), _np32(qy), np.ascontiguousarray(valid.cpu().numpy(), dtype=np.bool_),
            np.ascontiguousarray(covered.cpu().numpy(), dtype=np.bool_), _np32(img), hi_a, float(scale),
            float(from_mag), float(full_at), H0, W0, int(grid), rgb, weight)
    return torch.from_numpy(rgb), torch.from_numpy(weight)
