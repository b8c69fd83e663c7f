"""The ground detail lookup on the CPU, compiled with numba: the same maths as kernels/ground/naive.py, one pass per
pixel (rows of every camera in parallel) instead of ~30 whole-array PyTorch passes. Compiled on first use, cached on
disk."""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch


@nb.njit(inline="always")
def _fold(x, lo, span2, inv_span2):  # pragma: no cover - compiled
    u = (x - lo) - span2 * math.floor((x - lo) * inv_span2)
    return lo + (span2 - u if u > 0.5 * span2 else u)


@nb.njit(inline="always")
def _row(c2w, i, ry, eye):  # pragma: no cover - compiled
    """Camera i's pixel row at ry: the ray's world direction along it, d = a·rx + b per axis (ax, bx, ay, by, az, bz),
    the camera's height above the level ground and its x and z (worked out once a row, not once a pixel)."""
    return (c2w[i, 0, 0], c2w[i, 0, 1] * ry + c2w[i, 0, 2], c2w[i, 1, 0], c2w[i, 1, 1] * ry + c2w[i, 1, 2],
            c2w[i, 2, 0], c2w[i, 2, 1] * ry + c2w[i, 2, 2], eye - c2w[i, 1, 3], c2w[i, 0, 3], c2w[i, 2, 3])


@nb.njit(inline="always")
def _source(sfx, sfy, scx, scy, eye, z0, z1, w, rx, row, fx):  # pragma: no cover - compiled
    """Where the ray (rx, ry, 1) of a camera's row (its terms from _row) reads the start picture: (su, sv, fade);
    fade 0 off the ground. Two divisions a pixel: t = h / dy and 1 / sz (the rest multiplies by reciprocals)."""
    ax, bx, ay, by, az, bz, h, tx, tz = row
    dy = ay * rx + by
    if dy <= 1e-6 or h <= 0.0:
        return 0.0, 0.0, 0.0
    t = h / dy
    if t >= 1e4:
        return 0.0, 0.0, 0.0
    sx = _fold(tx + t * (ax * rx + bx), -w, 4.0 * w, 0.25 / w)
    sz = _fold(tz + t * (az * rx + bz), z0, 2.0 * (z1 - z0), 0.5 / (z1 - z0))
    iz = 1.0 / sz
    return sfx * sx * iz + scx, sfy * eye * iz + scy, min(max(sz * (fx / sfx) * dy / h, 0.0), 1.0)


@nb.njit(inline="always")
def _bilinear(high, su, sv):  # pragma: no cover - compiled
    """high (Hs, Ws, 3) at (su, sv), zero outside (grid_sample, align_corners=True, zeros padding) -> 3 floats."""
    Hs, Ws = high.shape[0], high.shape[1]
    x0, y0 = math.floor(su), math.floor(sv)
    ax, ay = su - x0, sv - y0
    xi, yi = int(x0), int(y0)
    if xi >= 0 and yi >= 0 and xi + 1 < Ws and yi + 1 < Hs:  # all four taps inside (nearly every pixel)
        w00, w01, w10, w11 = (1.0 - ax) * (1.0 - ay), ax * (1.0 - ay), (1.0 - ax) * ay, ax * ay
        p, q = high[yi], high[yi + 1]
        return (w00 * p[xi, 0] + w01 * p[xi + 1, 0] + w10 * q[xi, 0] + w11 * q[xi + 1, 0],
                w00 * p[xi, 1] + w01 * p[xi + 1, 1] + w10 * q[xi, 1] + w11 * q[xi + 1, 1],
                w00 * p[xi, 2] + w01 * p[xi + 1, 2] + w10 * q[xi, 2] + w11 * q[xi + 1, 2])
    r = g = b = 0.0
    for dyi in range(2):
        yy = yi + dyi
        if yy < 0 or yy >= Hs:
            continue
        wy = ay if dyi else 1.0 - ay
        for dxi in range(2):
            xx = xi + dxi
            if xx < 0 or xx >= Ws:
                continue
            k = (ax if dxi else 1.0 - ax) * wy
            r += k * high[yy, xx, 0]
            g += k * high[yy, xx, 1]
            b += k * high[yy, xx, 2]
    return r, g, b


@nb.njit(inline="always")
def _pixel(high, sfx, sfy, scx, scy, eye, z0, z1, w, fx, cx, weight, i, v, u, row):  # pragma: no cover
    """The detail of pixel (u, v) of camera i, weighted: (drawn, r, g, b); drawn False where there is none."""
    wt = weight[i, v, u]
    if wt <= 0.0:
        return False, 0.0, 0.0, 0.0
    su, sv, fade = _source(sfx, sfy, scx, scy, eye, z0, z1, w, (u - cx) / fx, row, fx)
    if fade <= 0.0:
        return False, 0.0, 0.0, 0.0
    r, g, b = _bilinear(high, su, sv)
    k = wt * fade
    return True, k * r, k * g, k * b


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=True)
def _draw(high, sfx, sfy, scx, scy, eye, z0, z1, w, c2w, fx, fy, cx, cy, weight, out):  # pragma: no cover
    N, H, W = weight.shape
    for job in nb.prange(N * H):
        i, v = job // H, job % H
        row = _row(c2w, i, (v - cy) / fy, eye)
        for u in range(W):
            drawn, r, g, b = _pixel(high, sfx, sfy, scx, scy, eye, z0, z1, w, fx, cx, weight, i, v, u, row)
            if drawn:
                out[i, 0, v, u] = r
                out[i, 1, v, u] = g
                out[i, 2, v, u] = b


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=True)
def _add_u8(high, sfx, sfy, scx, scy, eye, z0, z1, w, c2w, fx, fy, cx, cy, weight, frames):  # pragma: no cover
    N, H, W = weight.shape
    for job in nb.prange(N * H):
        i, v = job // H, job % H
        row = _row(c2w, i, (v - cy) / fy, eye)
        for u in range(W):
            drawn, r, g, b = _pixel(high, sfx, sfy, scx, scy, eye, z0, z1, w, fx, cx, weight, i, v, u, row)
            if drawn:
                for c in range(3):
                    x = frames[i, v, u, c] + 127.5 * (r if c == 0 else (g if c == 1 else b))
                    frames[i, v, u, c] = 0 if x <= 0.0 else (255 if x >= 255.0 else int(x + 0.5))


def _args(high, src, eye, rect, c2w, intr):
    sfx, sfy, scx, scy = (float(v) for v in src)
    fx, fy, cx, cy = (float(v) for v in intr)
    z0, z1, w = (float(v) for v in rect)
    return (high.float().permute(1, 2, 0).contiguous().numpy(), sfx, sfy, scx, scy, float(eye), z0, z1, w,
            c2w.double().contiguous().numpy(), fx, fy, cx, cy)


def draw_cpu(high, src, eye: float, rect, c2w, intr, weight) -> torch.Tensor:
    N, H, W = weight.shape
    out = np.zeros((N, 3, H, W), np.float32)
    _draw(*_args(high, src, eye, rect, c2w, intr), weight.float().contiguous().numpy(), out)
    return torch.from_numpy(out)


def add_u8_cpu(frames: np.ndarray, high, src, eye: float, rect, c2w, intr, weight) -> np.ndarray:
    """frames (N, H, W, 3) uint8, changed in place: + 127.5 x the detail, rounded and clipped."""
    _add_u8(*_args(high, src, eye, rect, c2w, intr), weight.float().contiguous().numpy(), frames)
    return frames
