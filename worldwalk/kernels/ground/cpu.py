"""The ground detail lookup on the CPU, compiled with numba: the same maths as kernels/ground/naive.py, one pass per
row (rows of every camera in parallel: first where each pixel reads the picture, then the reads) instead of ~30
whole-array PyTorch passes. Compiled on first use, cached on disk."""
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
def _sources(sfx, sfy, scx, scy, eye, z0, z1, w, bands, c2w, fx, fy, cx, cy, weight, i, v):  # pragma: no cover
    """Where each ray (rx, ry, 1) of camera i's row v reads the start picture, in the two depth bands of its footprint
    (naive.py) -> su, sv, k (2, W) (k: the weight times the fade and the band's share; 0 off the ground, and all 0
    where the camera is not above it). One loop without branches over the row: without bands it vectorised, and with
    them it measured faster than a loop that skips the logarithm and the second band where they are not needed.
    Band b is the first band's rectangle r^b times as far and as wide: a ground point (x, z) reads in band b where
    (x, z) / r^b folds into the first, r^b times as far (the same column of the picture, the row r^b times nearer the
    horizon), with a fade r^b times larger."""
    W = weight.shape[2]
    su, sv, k = np.empty((2, W)), np.empty((2, W)), np.zeros((2, W))
    ax, bx, ay, by, az, bz, h, tx, tz = _row(c2w, i, (v - cy) / fy, eye)
    if h <= 0.0:  # the camera is not above the ground: no detail
        return su, sv, k
    span_x, inv_x, span_z, inv_z = 4.0 * w, 0.25 / w, 2.0 * (z1 - z0), 0.5 / (z1 - z0)  # _fold's terms, once
    log_r = math.log(z1 / z0)
    inv_log = 1.0 / log_r if bands > 1 else 0.0
    top, top_b = float(bands - 1), float(max(bands - 2, 0))
    k_fade, k_lvl = fx / sfx, sfx / (fx * z1)
    ry2 = ((v - cy) / fy) ** 2 + 1.0
    for u in range(W):
        rx = (u - cx) / fx
        dy = ay * rx + by
        ok = dy > 1e-6  # (the ray goes down; elsewhere its values are worked out, then weighted 0)
        t = h / (dy if ok else 1.0)
        ok = ok and t < 1e4
        xw, zw = tx + t * (ax * rx + bx), tz + t * (az * rx + bz)  # the ground point
        lvl = min(max(math.log(t * math.sqrt(rx * rx + ry2) * k_lvl) * inv_log, 0.0), top)
        b = min(math.floor(lvl), top_b)
        a = lvl - b
        share = 1.0 / math.sqrt((1.0 - a) * (1.0 - a) + a * a)
        s = math.exp(b * log_r)  # band b's scale
        kf = k_fade / t  # times the source's z-depth: the fade
        wk = weight[i, v, u] * share if ok else 0.0
        for j in range(2):  # (unrolled by the compiler)
            sj = s * (z1 / z0) if j else s
            x = _fold(xw / sj, -w, span_x, inv_x)
            z = _fold(zw / sj, z0, span_z, inv_z)
            iz = 1.0 / z
            su[j, u], sv[j, u] = sfx * x * iz + scx, sfy * eye * iz / sj + scy
            k[j, u] = wk * (a if j else 1.0 - a) * min(sj * z * kf, 1.0)
    return su, sv, k


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
def _read(high, su, sv, k, u):  # pragma: no cover - compiled
    """Pixel u's detail: its two bands' bilinear reads, each times its k -> 3 floats."""
    r = g = b = 0.0
    for j in range(2):
        if k[j, u] > 0.0:
            p, q, s = _bilinear(high, su[j, u], sv[j, u])
            r += k[j, u] * p
            g += k[j, u] * q
            b += k[j, u] * s
    return r, g, b


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=True)
def _draw(high, sfx, sfy, scx, scy, eye, z0, z1, w, bands, c2w, fx, fy, cx, cy, weight, out):  # pragma: no cover
    N, H, W = weight.shape
    for job in nb.prange(N * H):
        i, v = job // H, job % H
        su, sv, k = _sources(sfx, sfy, scx, scy, eye, z0, z1, w, bands, c2w, fx, fy, cx, cy, weight, i, v)
        for u in range(W):
            r, g, b = _read(high, su, sv, k, u)
            out[i, 0, v, u] = r
            out[i, 1, v, u] = g
            out[i, 2, v, u] = b


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=True)
def _add_u8(high, sfx, sfy, scx, scy, eye, z0, z1, w, bands, c2w, fx, fy, cx, cy, weight, frames):  # pragma: no cover
    N, H, W = weight.shape
    for job in nb.prange(N * H):
        i, v = job // H, job % H
        su, sv, k = _sources(sfx, sfy, scx, scy, eye, z0, z1, w, bands, c2w, fx, fy, cx, cy, weight, i, v)
        for u in range(W):
            if k[0, u] > 0.0 or k[1, u] > 0.0:
                r, g, b = _read(high, su, sv, k, u)
                for c in range(3):
                    x = frames[i, v, u, c] + 127.5 * (r if c == 0 else (g if c == 1 else b))
                    frames[i, v, u, c] = 0 if x <= 0.0 else (255 if x >= 255.0 else int(x + 0.5))


def _args(high, src, eye, rect, c2w, intr):
    sfx, sfy, scx, scy = (float(v) for v in src)
    fx, fy, cx, cy = (float(v) for v in intr)
    z0, z1, w = (float(v) for v in rect[:3])
    bands = int(rect[3]) if len(rect) > 3 else 1
    return (high.float().permute(1, 2, 0).contiguous().numpy(), sfx, sfy, scx, scy, float(eye), z0, z1, w, bands,
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
