"""Z-buffered point splatting, pull-push hole filling, feathered masks and seen-stamps on the CPU, compiled with
numba: the same maths as kernels/splat/naive.py.

The reference splat runs ~100 whole-array PyTorch passes over (cameras x points); here one compiled loop per camera
projects every point once (culled first when it misses every level's grid) into its finest grid cell, the coarser
levels take the nearest of their finer cells, and a second pass composites the pyramid pixel by pixel (the
reference's bilinear and nearest upsampling, index for index), rows of every camera in parallel, working out a
winning point's footprint only where the composite reads it. Compiled on first use and cached on disk by numba.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _zbuffer(xyz, conf, R, t, fx, fy, cx, cy, near, offs, hs, ws, zb, own):  # pragma: no cover - compiled
    """Per camera and pyramid level, the nearest point of each cell (ties: the later slot). Each point is written
    once, at the finest level whose grid it lands on (level 0 but for points just past a frame whose size is not a
    multiple of 2^level); a coarser cell then takes the nearest of its own and its (up to) four finer cells' points,
    the same as the nearest of every point in it."""
    N, M, levels = R.shape[0], xyz.shape[0], hs.shape[0]
    u_end, v_end = -0.5, -0.5  # a point lands on some level's grid iff -0.5 <= u < u_end (and v likewise)
    for lvl in range(levels):
        u_end = max(u_end, ws[lvl] * 2.0 ** lvl - 0.5)
        v_end = max(v_end, hs[lvl] * 2.0 ** lvl - 0.5)
    u_in, v_in = ws[0] - 0.5, hs[0] - 0.5  # ... and on level 0's iff u < u_in and v < v_in
    for n in nb.prange(N):
        for lvl in range(levels):
            base = offs[lvl] + n * hs[lvl] * ws[lvl]
            zb[base:base + hs[lvl] * ws[lvl]] = np.inf  # (slices: filled as memset, twice as fast as a loop)
            own[base:base + hs[lvl] * ws[lvl]] = -1
        r00, r01, r02 = R[n, 0, 0], R[n, 0, 1], R[n, 0, 2]
        r10, r11, r12 = R[n, 1, 0], R[n, 1, 1], R[n, 1, 2]
        r20, r21, r22 = R[n, 2, 0], R[n, 2, 1], R[n, 2, 2]
        t0, t1, t2 = t[n, 0], t[n, 1], t[n, 2]
        W0, base0 = ws[0], offs[0] + n * hs[0] * ws[0]
        for m in range(M):
            if conf[m] <= 0:
                continue
            px, py, pz = xyz[m, 0] - t0, xyz[m, 1] - t1, xyz[m, 2] - t2
            z = r02 * px + r12 * py + r22 * pz  # R^T (p - t)
            if not z > near:
                continue
            u = fx * (r00 * px + r10 * py + r20 * pz) / z + cx
            if not (u >= -0.5 and u < u_end):
                continue
            v = fy * (r01 * px + r11 * py + r21 * pz) / z + cy
            if not (v >= -0.5 and v < v_end):
                continue
            z32 = np.float32(z)
            if u < u_in and v < v_in:
                idx = base0 + int(math.floor(v + 0.5)) * W0 + int(math.floor(u + 0.5))
                if z32 <= zb[idx]:  # slots run in order: a tie goes to this, the later one
                    zb[idx], own[idx] = z32, m
                continue
            for lvl in range(1, levels):  # off level 0's grid: the first level whose grid it lands on
                s = 2.0 ** lvl
                ul, vl = math.floor((u + 0.5) / s), math.floor((v + 0.5) / s)
                if ul < ws[lvl] and vl < hs[lvl]:
                    idx = offs[lvl] + n * hs[lvl] * ws[lvl] + int(vl) * ws[lvl] + int(ul)
                    if z32 <= zb[idx]:
                        zb[idx], own[idx] = z32, m
                    break
        for lvl in range(1, levels):  # each coarser cell: the nearest of its own point and its finer cells' ones
            Hl, Wl, Hf, Wf = hs[lvl], ws[lvl], hs[lvl - 1], ws[lvl - 1]
            base, fine = offs[lvl] + n * Hl * Wl, offs[lvl - 1] + n * Hf * Wf
            for i in range(Hl):
                whole = 2 * i + 2 <= Hf
                for j in range(Wl):
                    k = base + i * Wl + j
                    bz, bm = zb[k], own[k]
                    if whole and 2 * j + 2 <= Wf:  # a whole 2 x 2 cell (all but an odd size's last row / column)
                        f = fine + 2 * i * Wf + 2 * j
                        for q in (f, f + 1, f + Wf, f + Wf + 1):
                            fz, fm = zb[q], own[q]
                            if fm >= 0 and (fz < bz or (fz == bz and fm > bm)):
                                bz, bm = fz, fm
                    else:
                        for fi in range(2 * i, min(2 * i + 2, Hf)):
                            for fj in range(2 * j, min(2 * j + 2, Wf)):
                                fz, fm = zb[fine + fi * Wf + fj], own[fine + fi * Wf + fj]
                                if fm >= 0 and (fz < bz or (fz == bz and fm > bm)):
                                    bz, bm = fz, fm
                    zb[k], own[k] = bz, bm


@nb.njit(inline="always", error_model="numpy")
def _footprint(xyz, steps, R, t, n, m, fx, fy):  # pragma: no cover - compiled
    """Pixels point m spans in camera n: the larger of its two surface steps through the projection's Jacobian."""
    px, py, pz = xyz[m, 0] - t[n, 0], xyz[m, 1] - t[n, 1], xyz[m, 2] - t[n, 2]
    x = R[n, 0, 0] * px + R[n, 1, 0] * py + R[n, 2, 0] * pz
    y = R[n, 0, 1] * px + R[n, 1, 1] * py + R[n, 2, 1] * pz
    z = R[n, 0, 2] * px + R[n, 1, 2] * py + R[n, 2, 2] * pz
    foot = 0.0
    for k in range(2):
        sx, sy, sz = steps[m, k, 0], steps[m, k, 1], steps[m, k, 2]
        a0 = R[n, 0, 0] * sx + R[n, 1, 0] * sy + R[n, 2, 0] * sz
        a1 = R[n, 0, 1] * sx + R[n, 1, 1] * sy + R[n, 2, 1] * sz
        a2 = R[n, 0, 2] * sx + R[n, 1, 2] * sy + R[n, 2, 2] * sz
        du, dv = fx * (a0 - x * a2 / z) / z, fy * (a1 - y * a2 / z) / z
        foot = max(foot, math.sqrt(du * du + dv * dv))
    return foot


@nb.njit(inline="always", error_model="numpy")
def _nearest(i, n_out, n_in):  # pragma: no cover - compiled; torch's "nearest" index
    if n_out == n_in:
        return i
    if n_out == 2 * n_in:
        return i >> 1
    return min(int(math.floor(i * (np.float32(n_in) / np.float32(n_out)))), n_in - 1)


@nb.njit(inline="always", error_model="numpy")
def _linear(i, n_out, n_in):  # pragma: no cover - compiled; torch's bilinear, align_corners=False
    src = max((i + 0.5) * (np.float32(n_in) / np.float32(n_out)) - 0.5, 0.0)
    i0 = int(src)
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    l1 = src - i0
    return i0, i1, 1.0 - l1, l1


@nb.njit(inline="always", error_model="numpy")
def _lone(cz, ccf, n, i, j, support, ratio):  # pragma: no cover - compiled
    """A level's composited pixel (n, i, j), drawn, is not part of a surface: fewer than `support` of its 8
    neighbours hold a depth within `ratio` times its own, those outside the level counting as holding one (the
    surface may go on past the frame's edge; naive.supported_ref)."""
    Hc, Wc = cz.shape[1], cz.shape[2]
    i0, i1, j0, j1 = max(i - 1, 0), min(i + 2, Hc), max(j - 1, 0), min(j + 2, Wc)
    z, cnt = cz[n, i, j], 9 - (i1 - i0) * (j1 - j0)
    for ii in range(i0, i1):
        for jj in range(j0, j1):
            if (ii != i or jj != j) and ccf[n, ii, jj] > 0 and z <= cz[n, ii, jj] * ratio \
                    and cz[n, ii, jj] <= z * ratio:
                cnt += 1
    return cnt < support



@nb.njit(inline="always", error_model="numpy")
def _lone_once(lone, cz, ccf, n, i, j, support, ratio):  # pragma: no cover - compiled
    """_lone, kept in lone ((N, Hc, Wc) int8; -1: not yet asked) for the (up to four) finer pixels that ask it; rows
    in parallel may both work it out, and store the same value."""
    v = lone[n, i, j]
    if v < 0:
        v = np.int8(1) if _lone(cz, ccf, n, i, j, support, ratio) else np.int8(0)
        lone[n, i, j] = v
    return v == 1


@nb.njit(inline="always", error_model="numpy")
def _crack(zb, base, i, j, Hl, Wl, occlusion):  # pragma: no cover - compiled
    """This level's own point at (i, j) (zb[base + j], base = the row's start) lies more than `occlusion` behind both
    own points of one of the 4 pairs of neighbours through it (left-right, up-down, the two diagonals): background
    seen through a one-pixel gap (naive.cracks_ref). Neighbours past the level's edge hold none."""
    z = zb[base + j]
    k = 1.0 + occlusion
    left, right, up, down = j > 0, j + 1 < Wl, i > 0, i + 1 < Hl
    if left and right and zb[base + j - 1] * k < z and zb[base + j + 1] * k < z:
        return True
    if up and down:
        if zb[base - Wl + j] * k < z and zb[base + Wl + j] * k < z:
            return True
        if left and right:
            if zb[base - Wl + j - 1] * k < z and zb[base + Wl + j + 1] * k < z:
                return True
            if zb[base - Wl + j + 1] * k < z and zb[base + Wl + j - 1] * k < z:
                return True
    return False


# fastmath without its no-NaN / no-infinity assumptions: empty pixels hold an infinite depth, and the tests compare
# against it
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FAST)
def _composite(xyz, steps, R, t, fx, fy, rgb, conf, zb, own, offs, hs, ws, level_weight, occlusion, magnified,
               support, ratio, crack, out_col, out_z, out_cf, out_lv, owner0):  # pragma: no cover - compiled
    """Coarsest level first, each level's rows of every camera in parallel (one camera's alone runs in parallel
    too). Per level: colour (N, 3, H, W), depth, confidence, level, footprint; the finest level's are the outputs,
    written directly (with the level and the owner; no footprint there: nothing reads it). Each level's nearest and
    bilinear source columns are worked out once, not per pixel."""
    N, levels = out_z.shape[0], hs.shape[0]
    top = levels - 1
    Hc, Wc = hs[top], ws[top]
    ccol = np.empty((N, 3, Hc, Wc), np.float32)
    cz, ccf, clv, cfp = (np.empty((N, Hc, Wc), np.float32), np.empty((N, Hc, Wc), np.float32),
                         np.empty((N, Hc, Wc), np.float32), np.empty((N, Hc, Wc), np.float32))
    if top == 0:
        ccol, cz, ccf = out_col, out_z, out_cf
    for row in nb.prange(N * Hc):
        n, i = row // Hc, row % Hc
        for j in range(Wc):
            idx = offs[top] + n * Hc * Wc + i * Wc + j
            m = own[idx]
            if m >= 0:
                for c in range(3):
                    ccol[n, c, i, j] = rgb[m, c] / 127.5 - 1.0
                cz[n, i, j], ccf[n, i, j], clv[n, i, j] = zb[idx], conf[m] * level_weight[top], top
                cfp[n, i, j] = _footprint(xyz, steps, R, t, n, m, fx, fy) if top > 0 else 0.0
            else:
                for c in range(3):
                    ccol[n, c, i, j] = 0.0
                cz[n, i, j], ccf[n, i, j], clv[n, i, j], cfp[n, i, j] = np.inf, 0.0, -1.0, 0.0
            if top == 0:  # a one-level pyramid: this is the finest level
                out_lv[n, i, j], owner0[n, i, j] = np.int8(clv[n, i, j]), m
    for lvl in range(top - 1, -1, -1):
        Hl, Wl = hs[lvl], ws[lvl]
        last = lvl == 0
        # per column of this level: its nearest and bilinear source columns in the coarser one (as _nearest, _linear)
        njs, x0s, x1s = np.empty(Wl, np.int64), np.empty(Wl, np.int64), np.empty(Wl, np.int64)
        lx0s, lx1s = np.empty(Wl, np.float64), np.empty(Wl, np.float64)
        for j in range(Wl):
            njs[j] = _nearest(j, Wl, Wc)
            x0s[j], x1s[j], lx0s[j], lx1s[j] = _linear(j, Wl, Wc)
        if last:  # the finest level is the result
            ncol, nz, ncf = out_col, out_z, out_cf
            nlv, nfp = clv, cfp  # (not written)
        else:
            ncol, nz, ncf = np.empty((N, 3, Hl, Wl), np.float32), np.empty((N, Hl, Wl), np.float32), \
                np.empty((N, Hl, Wl), np.float32)
            nlv, nfp = np.empty((N, Hl, Wl), np.float32), np.empty((N, Hl, Wl), np.float32)
        lw = level_weight[lvl]
        gap = crack * 2.0 ** lvl  # a coarser point drawn wider than this leaves one-pixel gaps at this level
        lone = np.full((N, Hc, Wc), -1, np.int8)  # the coarser level's _lone, worked out once where first asked
        for row in nb.prange(N * Hl):
            n, i = row // Hl, row % Hl
            ni = _nearest(i, Hl, Hc)
            y0, y1, ly0, ly1 = _linear(i, Hl, Hc)
            base = offs[lvl] + n * Hl * Wl + i * Wl
            for j in range(Wl):
                nj = njs[j]
                m = own[base + j]
                cl = conf[m] * lw if m >= 0 else 0.0
                upcf = ccf[n, ni, nj]
                if m >= 0 and cl > 0 and (upcf <= 0 or zb[base + j] <= cz[n, ni, nj] * (1 + occlusion)
                                          or (cfp[n, ni, nj] < magnified
                                              and not (crack > 0 and cfp[n, ni, nj] > gap
                                                       and _crack(zb, base, i, j, Hl, Wl, occlusion)))
                                          or (support > 0 and _lone_once(lone, cz, ccf, n, ni, nj, support, ratio))):
                    for c in range(3):
                        ncol[n, c, i, j] = rgb[m, c] / 127.5 - 1.0
                    nz[n, i, j], ncf[n, i, j] = zb[base + j], cl
                    if last:
                        out_lv[n, i, j] = np.int8(lvl)
                    else:
                        nlv[n, i, j] = lvl
                        nfp[n, i, j] = _footprint(xyz, steps, R, t, n, m, fx, fy)
                else:
                    x0, x1, lx0, lx1 = x0s[j], x1s[j], lx0s[j], lx1s[j]
                    w00 = 1.0 if ccf[n, y0, x0] > 0 else 0.0
                    w01 = 1.0 if ccf[n, y0, x1] > 0 else 0.0
                    w10 = 1.0 if ccf[n, y1, x0] > 0 else 0.0
                    w11 = 1.0 if ccf[n, y1, x1] > 0 else 0.0
                    den = ly0 * (lx0 * w00 + lx1 * w01) + ly1 * (lx0 * w10 + lx1 * w11)
                    for c in range(3):
                        num = ly0 * (lx0 * w00 * ccol[n, c, y0, x0] + lx1 * w01 * ccol[n, c, y0, x1]) + \
                            ly1 * (lx0 * w10 * ccol[n, c, y1, x0] + lx1 * w11 * ccol[n, c, y1, x1])
                        ncol[n, c, i, j] = num / max(den, 1e-6)
                    nz[n, i, j], ncf[n, i, j] = cz[n, ni, nj], upcf
                    if last:
                        out_lv[n, i, j] = np.int8(clv[n, ni, nj])
                    else:
                        nlv[n, i, j], nfp[n, i, j] = clv[n, ni, nj], cfp[n, ni, nj]
                if last:
                    owner0[n, i, j] = m
        ccol, cz, ccf, clv, cfp, Hc, Wc = ncol, nz, ncf, nlv, nfp, Hl, Wl


def splat_cpu(xyz, rgb, conf, steps, R, t, intrinsics, size_wh, levels=4, level_weight=(1.0, 0.85, 0.7, 0.55),
              occlusion=0.08, magnified=1.5, near=0.05, support=0, support_ratio=1.5, crack=0.0):
    """The same call and result as naive.splat_ref, for CPU tensors."""
    W, H = size_wh
    N = R.shape[0]
    hs = np.array([-(-H // 2**lvl) for lvl in range(levels)], np.int64)
    ws = np.array([-(-W // 2**lvl) for lvl in range(levels)], np.int64)
    offs = np.concatenate([[0], np.cumsum(N * hs * ws)[:-1]]).astype(np.int64)
    total = int((N * hs * ws).sum())
    zb = np.empty(total, np.float32)  # filled by _zbuffer
    own = np.empty(total, np.int32)
    f = lambda a: np.ascontiguousarray(a.detach().cpu().numpy())  # noqa: E731
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    xyz_, conf_, R_, t_ = f(xyz.float()), f(conf.float()), f(R.double()), f(t.double())
    _zbuffer(xyz_, conf_, R_, t_, fx, fy, cx, cy, float(near), offs, hs, ws, zb, own)
    out_col = np.empty((N, 3, H, W), np.float32)
    out_z = np.empty((N, H, W), np.float32)
    out_cf = np.empty((N, H, W), np.float32)
    out_lv = np.empty((N, H, W), np.int8)
    owner0 = np.empty((N, H, W), np.int64)
    lw = np.asarray(level_weight[:levels], np.float32)
    _composite(xyz_, f(steps.float()), R_, t_, fx, fy, f(rgb), conf_, zb, own, offs, hs, ws, lw,
               float(occlusion), float(magnified), int(support), float(support_ratio), float(crack), out_col, out_z,
               out_cf, out_lv, owner0)
    return (torch.from_numpy(out_col), torch.from_numpy(out_z), torch.from_numpy(out_cf), torch.from_numpy(out_lv),
            torch.from_numpy(owner0))


@nb.njit(inline="always", error_model="numpy")
def _bilerp(a, c, base, Wc, y0, y1, x0, x1, ly0, ly1, lx0, lx1):  # pragma: no cover - compiled
    """Channel c of a flat (Hc, Wc) level starting at `base` in a (C, ...) buffer, read bilinearly."""
    return ly0 * (lx0 * a[c, base + y0 * Wc + x0] + lx1 * a[c, base + y0 * Wc + x1]) + \
        ly1 * (lx0 * a[c, base + y1 * Wc + x0] + lx1 * a[c, base + y1 * Wc + x1])


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _pull_push(img, weight, out):  # pragma: no cover - compiled
    N, C, H, W = img.shape
    L, h, w = 1, H, W  # levels down to 1 x 1
    while max(h, w) > 1:
        h, w, L = (h + 1) // 2, (w + 1) // 2, L + 1
    hs, ws, offs = np.empty(L, np.int64), np.empty(L, np.int64), np.zeros(L + 1, np.int64)
    h, w = H, W
    for lvl in range(L):  # level 0 is the input itself: offs[0] = offs[1] = 0
        hs[lvl], ws[lvl], offs[lvl + 1] = h, w, offs[lvl] + (h * w if lvl > 0 else 0)
        h, w = (h + 1) // 2, (w + 1) // 2
    x0s, x1s = np.empty(W, np.int64), np.empty(W, np.int64)
    lx0s, lx1s = np.empty(W, np.float64), np.empty(W, np.float64)
    if L > 1:  # level 0's columns in level 1 (bilinear), the same for every frame
        for j in range(W):
            x0s[j], x1s[j], lx0s[j], lx1s[j] = _linear(j, W, ws[1])
    for n in nb.prange(N):
        cb, wb = np.empty((C, max(offs[L], 1)), np.float32), np.empty(max(offs[L], 1), np.float32)  # levels 1 ...
        if L > 1:  # pull level 1 from the input: 2 x 2 means (the last row / column of an odd size: its own mean);
            # its own loop, not a branch in the one below: the pull-push a third faster
            W1 = ws[1]
            for i in range(hs[1]):
                a1 = min(2 * i + 2, H)
                if a1 == 2 * i + 2:  # whole 2 x 2 cells (all but an odd size's last column): the same sums, unrolled
                    for j in range(W // 2):
                        a, b = 2 * i, 2 * j
                        w00, w01, w10, w11 = weight[n, a, b], weight[n, a, b + 1], weight[n, a + 1, b], \
                            weight[n, a + 1, b + 1]
                        sw = np.float32(0.0)
                        sw += w00
                        sw += w01
                        sw += w10
                        sw += w11
                        wb[i * W1 + j] = sw / np.float32(4.0)
                        for c in range(C):
                            sc = np.float32(0.0)
                            sc += img[n, c, a, b] * w00
                            sc += img[n, c, a, b + 1] * w01
                            sc += img[n, c, a + 1, b] * w10
                            sc += img[n, c, a + 1, b + 1] * w11
                            cb[c, i * W1 + j] = sc / np.float32(4.0)
                    j_from = W // 2
                else:
                    j_from = 0
                for j in range(j_from, W1):
                    b1 = min(2 * j + 2, W)
                    k = np.float32((a1 - 2 * i) * (b1 - 2 * j))
                    sw = np.float32(0.0)
                    for a in range(2 * i, a1):
                        for b in range(2 * j, b1):
                            sw += weight[n, a, b]
                    wb[i * W1 + j] = sw / k
                    for c in range(C):
                        sc = np.float32(0.0)
                        for a in range(2 * i, a1):
                            for b in range(2 * j, b1):
                                sc += img[n, c, a, b] * weight[n, a, b]
                        cb[c, i * W1 + j] = sc / k
        for lvl in range(2, L):  # pull the coarser levels from the one above
            Hf, Wf, Hl, Wl, f0, o = hs[lvl - 1], ws[lvl - 1], hs[lvl], ws[lvl], offs[lvl - 1], offs[lvl]
            for i in range(Hl):
                i1 = min(2 * i + 2, Hf)
                for j in range(Wl):
                    j1 = min(2 * j + 2, Wf)
                    k = np.float32((i1 - 2 * i) * (j1 - 2 * j))
                    sw = np.float32(0.0)
                    for a in range(2 * i, i1):
                        for b in range(2 * j, j1):
                            sw += wb[f0 + a * Wf + b]
                    wb[o + i * Wl + j] = sw / k
                    for c in range(C):
                        sc = np.float32(0.0)
                        for a in range(2 * i, i1):
                            for b in range(2 * j, j1):
                                sc += cb[c, f0 + a * Wf + b]
                        cb[c, o + i * Wl + j] = sc / k
        if L == 1:  # a 1 x 1 image: kept where weighted, else its own (empty) mean, 0
            for c in range(C):
                out[n, 0, 0, c] = img[n, c, 0, 0] if weight[n, 0, 0] > 0 else np.float32(0.0)
            continue
        fb = np.empty((C, offs[L]), np.float32)  # push: the filled pyramid (levels 1 ...), coarsest first
        top = offs[L - 1]
        for c in range(C):
            fb[c, top] = cb[c, top] / max(wb[top], np.float32(1e-8))
        for lvl in range(L - 2, 0, -1):
            Hl, Wl, Hc, Wc, o, oc = hs[lvl], ws[lvl], hs[lvl + 1], ws[lvl + 1], offs[lvl], offs[lvl + 1]
            for i in range(Hl):
                y0, y1, ly0, ly1 = _linear(i, Hl, Hc)
                for j in range(Wl):
                    wt = wb[o + i * Wl + j]
                    if wt > 0:
                        for c in range(C):
                            fb[c, o + i * Wl + j] = cb[c, o + i * Wl + j] / max(wt, np.float32(1e-8))
                        continue
                    x0, x1, lx0, lx1 = _linear(j, Wl, Wc)
                    for c in range(C):
                        fb[c, o + i * Wl + j] = _bilerp(fb, c, oc, Wc, y0, y1, x0, x1, ly0, ly1, lx0, lx1)
        Wc, oc = ws[1], offs[1]  # level 0: the input where weighted, level 1 brought up elsewhere
        for i in range(H):
            y0, y1, ly0, ly1 = _linear(i, H, hs[1])
            for j in range(W):
                if weight[n, i, j] > 0:
                    for c in range(C):
                        out[n, i, j, c] = img[n, c, i, j]
                    continue
                for c in range(C):
                    out[n, i, j, c] = _bilerp(fb, c, oc, Wc, y0, y1, x0s[j], x1s[j], ly0, ly1, lx0s[j], lx1s[j])


def pull_push_cpu(img: torch.Tensor, weight: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The same call and result as naive.pull_push_ref, for CPU tensors; the result is channels-last (written
    into `out` when given: (N, C, H, W) float32)."""
    N, C, H, W = img.shape
    direct = out is not None and out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    res = out if direct else torch.empty((N, C, H, W), dtype=torch.float32, memory_format=torch.channels_last)
    _pull_push(np.ascontiguousarray(img.detach().float().numpy()),
               np.ascontiguousarray(weight.detach().float().reshape(N, H, W).numpy()),
               res.permute(0, 2, 3, 1).numpy())  # (N, H, W, C), contiguous
    if out is not None:
        return out if direct else out.copy_(res)
    return res.to(img.dtype)


@nb.njit(cache=True, error_model="numpy")
def _box_rows(src, dst, r, pad, erode, k, count, buf):  # pragma: no cover - compiled
    """Along each row of a (H, W) plane: the sum over [j - r, j + r], the outside counting as `pad`; erode: 1 where
    the sum reaches k - 1e-3, else 0; else the sum over the window's pixels inside the plane times 1 / their number
    (count[j]). The row is copied into a padded buffer and its 2r + 1 shifts summed, a whole row per shift (no
    running sum: the loops over a row vectorise)."""
    H, W = src.shape
    buf[:r] = pad
    buf[r + W:] = pad
    for i in range(H):
        buf[r:r + W] = src[i]
        row = dst[i]
        row[:] = buf[:W]
        for d in range(1, 2 * r + 1):
            for j in range(W):
                row[j] += buf[j + d]
        if erode:
            for j in range(W):
                row[j] = np.float32(1.0) if row[j] >= k - 1e-3 else np.float32(0.0)
        else:
            for j in range(W):
                row[j] = row[j] * count[j]


@nb.njit(cache=True, error_model="numpy")
def _box_cols(src, dst, r, pad, erode, k, count):  # pragma: no cover - compiled
    """_box_rows along each column, a row at a time (one running sum per column, in float64: float32's would drift
    by its rounding)."""
    H, W = src.shape
    acc = np.full(W, pad * (r + max(r - H, 0)))
    for i in range(min(r, H)):
        for j in range(W):
            acc[j] += src[i, j]
    for i in range(H):
        if i + r < H:
            for j in range(W):
                acc[j] += src[i + r, j]
        else:
            for j in range(W):
                acc[j] += pad
        if erode:
            for j in range(W):
                dst[i, j] = np.float32(1.0) if acc[j] >= k - 1e-3 else np.float32(0.0)
        else:
            for j in range(W):
                dst[i, j] = acc[j] * count[i]
        if i >= r:
            for j in range(W):
                acc[j] -= src[i - r, j]
        else:
            for j in range(W):
                acc[j] -= pad


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _feather(mask, r, out):  # pragma: no cover - compiled
    N, H, W = mask.shape
    k = np.float32(2 * r + 1)
    cw, ch = np.empty(W, np.float32), np.empty(H, np.float64)  # 1 / the in-frame pixels per window, along rows /
    # columns (multiplied by: a division per pixel cost a fifth of the pass)
    for i in range(W):
        cw[i] = np.float32(1.0) / np.float32(min(i + r, W - 1) - max(i - r, 0) + 1)
    for i in range(H):
        ch[i] = 1.0 / (min(i + r, H - 1) - max(i - r, 0) + 1)
    for n in nb.prange(N):
        a, b = np.empty((H, W), np.float32), np.empty((H, W), np.float32)
        buf = np.empty(W + 2 * r, np.float32)
        _box_rows(mask[n], a, r, np.float32(1.0), True, k, cw, buf)
        _box_cols(a, b, r, 1.0, True, k, ch)
        _box_rows(b, a, r, np.float32(0.0), False, k, cw, buf)
        _box_cols(a, out[n], r, 0.0, False, k, ch)


def feather_cpu(mask: torch.Tensor, feather: int) -> torch.Tensor:
    """The same call and result as naive.feather_ref, for CPU tensors."""
    if feather <= 0:
        return mask
    N, _, H, W = mask.shape
    out = np.empty((N, H, W), np.float32)
    _feather(np.ascontiguousarray(mask.detach().float().reshape(N, H, W).numpy()), int(feather), out)
    return torch.from_numpy(out).to(mask.dtype).reshape(N, 1, H, W)


@nb.njit(parallel=True, cache=True)
def _mark(seen, owner, value, stamp, pinned, out):  # pragma: no cover - compiled
    """stamp: seen[slot] = value for every slot drawn; out (with pinned of a slot or more): drawn from a pinned one"""
    for i in nb.prange(owner.shape[0]):
        m = owner[i]
        if m >= 0:
            if stamp:
                seen[m] = value  # racing writes store the same value
            if out.shape[0]:
                out[i] = pinned[m]
        elif out.shape[0]:
            out[i] = False


def mark_cpu(seen: torch.Tensor | None, owner: torch.Tensor, value: int, pinned: torch.Tensor | None = None
             ) -> torch.Tensor | None:
    """The same as naive.mark_ref, for CPU tensors: one pass over owner."""
    flat = np.ascontiguousarray(owner.reshape(-1).numpy())
    out = np.empty(flat.shape[0] if pinned is not None else 0, np.bool_)
    _mark(seen.numpy() if seen is not None else np.empty(0, np.int32), flat, value, seen is not None,
          pinned.numpy() if pinned is not None else np.empty(0, np.bool_), out)
    return torch.from_numpy(out).reshape(owner.shape) if pinned is not None else None
