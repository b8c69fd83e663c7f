"""Z-buffered point splatting on the CPU, compiled with numba: the same maths as kernels/splat/naive.py.

The reference runs ~100 whole-array PyTorch passes over (cameras x points); here one compiled loop per camera
projects every point once, keeps the nearest per cell at every pyramid level, and a second loop composites the
pyramid pixel by pixel (the reference's bilinear and nearest upsampling, index for index). Cameras run in parallel.
Compiled on first use and cached on disk by numba.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch


@nb.njit(parallel=True, cache=True)
def _zbuffer(xyz, steps, conf, R, t, fx, fy, cx, cy, near, offs, hs, ws, zb, own, fp):  # pragma: no cover - compiled
    N, M, levels = R.shape[0], xyz.shape[0], hs.shape[0]
    for n in nb.prange(N):
        for m in range(M):
            if conf[m] <= 0:
                continue
            px, py, pz = xyz[m, 0] - t[n, 0], xyz[m, 1] - t[n, 1], xyz[m, 2] - t[n, 2]
            x = R[n, 0, 0] * px + R[n, 1, 0] * py + R[n, 2, 0] * pz  # R^T (p - t)
            y = R[n, 0, 1] * px + R[n, 1, 1] * py + R[n, 2, 1] * pz
            z = R[n, 0, 2] * px + R[n, 1, 2] * py + R[n, 2, 2] * pz
            if not z > near:
                continue
            u, v = fx * x / z + cx, fy * y / z + cy
            foot = 0.0
            for k in range(2):
                sx, sy, sz = steps[m, k, 0], steps[m, k, 1], steps[m, k, 2]
                a0 = R[n, 0, 0] * sx + R[n, 1, 0] * sy + R[n, 2, 0] * sz
                a1 = R[n, 0, 1] * sx + R[n, 1, 1] * sy + R[n, 2, 1] * sz
                a2 = R[n, 0, 2] * sx + R[n, 1, 2] * sy + R[n, 2, 2] * sz
                du, dv = fx * (a0 - x * a2 / z) / z, fy * (a1 - y * a2 / z) / z
                foot = max(foot, math.sqrt(du * du + dv * dv))
            for lvl in range(levels):
                s = 2.0 ** lvl
                ul, vl = math.floor((u + 0.5) / s), math.floor((v + 0.5) / s)
                if ul < 0 or vl < 0 or ul >= ws[lvl] or vl >= hs[lvl]:
                    continue
                idx = offs[lvl] + n * hs[lvl] * ws[lvl] + int(vl) * ws[lvl] + int(ul)
                if z < zb[idx] or (z == zb[idx] and m > own[idx]):
                    zb[idx], own[idx], fp[idx] = z, m, foot


@nb.njit(inline="always")
def _nearest(i, n_out, n_in):  # pragma: no cover - compiled; torch's "nearest" index
    if n_out == n_in:
        return i
    if n_out == 2 * n_in:
        return i >> 1
    return min(int(math.floor(i * (np.float32(n_in) / np.float32(n_out)))), n_in - 1)


@nb.njit(inline="always")
def _linear(i, n_out, n_in):  # pragma: no cover - compiled; torch's bilinear, align_corners=False
    src = max((i + 0.5) * (np.float32(n_in) / np.float32(n_out)) - 0.5, 0.0)
    i0 = int(src)
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    l1 = src - i0
    return i0, i1, 1.0 - l1, l1


@nb.njit(cache=True)
def _level_buffers(H, W):  # pragma: no cover - compiled
    """One pyramid level's empty composite: colour (3, H, W), depth (inf), confidence, level (-1), footprint."""
    return (np.zeros((3, H, W), np.float32), np.full((H, W), np.inf, np.float32), np.zeros((H, W), np.float32),
            np.full((H, W), -1.0, np.float32), np.zeros((H, W), np.float32))


@nb.njit(parallel=True, cache=True)
def _composite(rgb, conf, zb, own, fp, offs, hs, ws, level_weight, occlusion, magnified,
               out_col, out_z, out_cf, out_lv, owner0):  # pragma: no cover - compiled
    N, levels = out_z.shape[0], hs.shape[0]
    for n in nb.prange(N):
        top = levels - 1
        Hc, Wc = hs[top], ws[top]
        ccol, cz, ccf, clv, cfp = _level_buffers(Hc, Wc)
        for i in range(Hc):
            for j in range(Wc):
                idx = offs[top] + n * Hc * Wc + i * Wc + j
                m = own[idx]
                if m >= 0:
                    for c in range(3):
                        ccol[c, i, j] = rgb[m, c] / 127.5 - 1.0
                    cz[i, j], ccf[i, j], clv[i, j], cfp[i, j] = zb[idx], conf[m] * level_weight[top], top, fp[idx]
        for lvl in range(top - 1, -1, -1):
            Hl, Wl = hs[lvl], ws[lvl]
            ncol, nz, ncf, nlv, nfp = _level_buffers(Hl, Wl)
            for i in range(Hl):
                ni = _nearest(i, Hl, Hc)
                y0, y1, ly0, ly1 = _linear(i, Hl, Hc)
                for j in range(Wl):
                    nj = _nearest(j, Wl, Wc)
                    x0, x1, lx0, lx1 = _linear(j, Wl, Wc)
                    idx = offs[lvl] + n * Hl * Wl + i * Wl + j
                    m = own[idx]
                    cl = conf[m] * level_weight[lvl] if m >= 0 else 0.0
                    upcf = ccf[ni, nj]
                    if m >= 0 and cl > 0 and (upcf <= 0 or zb[idx] <= cz[ni, nj] * (1 + occlusion)
                                              or cfp[ni, nj] < magnified):
                        for c in range(3):
                            ncol[c, i, j] = rgb[m, c] / 127.5 - 1.0
                        nz[i, j], ncf[i, j], nlv[i, j], nfp[i, j] = zb[idx], cl, lvl, fp[idx]
                    else:
                        w00 = 1.0 if ccf[y0, x0] > 0 else 0.0
                        w01 = 1.0 if ccf[y0, x1] > 0 else 0.0
                        w10 = 1.0 if ccf[y1, x0] > 0 else 0.0
                        w11 = 1.0 if ccf[y1, x1] > 0 else 0.0
                        den = ly0 * (lx0 * w00 + lx1 * w01) + ly1 * (lx0 * w10 + lx1 * w11)
                        for c in range(3):
                            num = ly0 * (lx0 * w00 * ccol[c, y0, x0] + lx1 * w01 * ccol[c, y0, x1]) + \
                                ly1 * (lx0 * w10 * ccol[c, y1, x0] + lx1 * w11 * ccol[c, y1, x1])
                            ncol[c, i, j] = num / max(den, 1e-6)
                        nz[i, j], ncf[i, j], nlv[i, j], nfp[i, j] = cz[ni, nj], upcf, clv[ni, nj], cfp[ni, nj]
            ccol, cz, ccf, clv, cfp, Hc, Wc = ncol, nz, ncf, nlv, nfp, Hl, Wl
        out_col[n], out_z[n], out_cf[n] = ccol, cz, ccf
        for i in range(Hc):
            for j in range(Wc):
                out_lv[n, i, j] = np.int8(clv[i, j])
                owner0[n, i, j] = own[offs[0] + n * Hc * Wc + i * Wc + j]


def splat_cpu(xyz, rgb, conf, steps, R, t, intrinsics, size_wh, levels=4, level_weight=(1.0, 0.85, 0.7, 0.55),
              occlusion=0.08, magnified=1.5, near=0.05):
    """The same call and result as naive.splat_ref, for CPU tensors."""
    W, H = size_wh
    N = R.shape[0]
    hs = np.array([-(-H // 2**lvl) for lvl in range(levels)], np.int64)
    ws = np.array([-(-W // 2**lvl) for lvl in range(levels)], np.int64)
    offs = np.concatenate([[0], np.cumsum(N * hs * ws)[:-1]]).astype(np.int64)
    total = int((N * hs * ws).sum())
    zb = np.full(total, np.inf, np.float64)
    own = np.full(total, -1, np.int64)
    fp = np.zeros(total, np.float64)
    f = lambda a: np.ascontiguousarray(a.detach().cpu().numpy())  # noqa: E731
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    _zbuffer(f(xyz.double()), f(steps.double()), f(conf.float()), f(R.double()), f(t.double()), fx, fy, cx, cy,
             float(near), offs, hs, ws, zb, own, fp)
    out_col = np.zeros((N, 3, H, W), np.float32)
    out_z = np.zeros((N, H, W), np.float32)
    out_cf = np.zeros((N, H, W), np.float32)
    out_lv = np.zeros((N, H, W), np.int8)
    owner0 = np.zeros((N, H, W), np.int64)
    lw = np.asarray(level_weight[:levels], np.float32)
    _composite(f(rgb), f(conf.float()), zb.astype(np.float32), own, fp.astype(np.float32), offs, hs, ws, lw,
               float(occlusion), float(magnified), out_col, out_z, out_cf, out_lv, owner0)
    return (torch.from_numpy(out_col), torch.from_numpy(out_z), torch.from_numpy(out_cf), torch.from_numpy(out_lv),
            torch.from_numpy(owner0))
