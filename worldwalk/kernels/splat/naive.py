"""Z-buffered point splatting with a hole-filling pyramid, pull-push hole filling and a mask's feathered edge, in
plain PyTorch: the references (any device).

    rgb, depth, conf, level, owner = splat_ref(xyz, rgb, conf, steps, R, t, intrinsics, (W, H), levels=4,
                                               level_weight=(1, .85, .7, .55), occlusion=0.08, magnified=1.5,
                                               near=0.05, support=5, support_ratio=1.5, crack=1.05)
    filled = pull_push_ref(img (N, C, H, W), weight (N, 1, H, W))   # holes (weight 0) filled from the rest
    weight = feather_ref(mask (N, 1, H, W), feather)                 # a mask eroded, then blurred: a blend weight
    mark_ref(seen (M,), owner (N, H, W), value)                       # seen[owner] = value where owner >= 0

Points (M slots; a slot with conf <= 0 is free and skipped): xyz (M, 3) world positions, rgb (M, 3) uint8, conf (M,),
steps (M, 2, 3) the two surface steps (offsets to the points of the right and lower neighbour pixels where the point
was seen). Cameras: R (N, 3, 3), t (N, 3) camera-to-world (OpenCV), one shared pinhole [fx, fy, cx, cy].

Per camera and level l (pixels 2^l wide, the grid ceil(H / 2^l) x ceil(W / 2^l)), a point at pixel coordinates
(u, v) = (fx x/z + cx, fy y/z + cy) falls in cell (floor((u + 0.5) / 2^l), floor((v + 0.5) / 2^l)); the nearest
point of each cell wins (ties: the higher slot). Its footprint in this camera is the larger of its two surface
steps projected through the Jacobian of the projection (pixels): 1 where the point was seen, more where the camera
came closer or round to a surface first seen at a grazing angle.

Composite, coarsest level first: the coarser result is brought to the next level (colours bilinearly, weighted by
coverage; depth, confidence, level and footprint by nearest); a pixel keeps its own point where it has one and no
coarser surface covers it, or the coarser surface lies within `occlusion` (relative depth) of it, or the coarser
point is drawn narrower than `magnified` pixels (it does not leave gaps, so it must not grow over its neighbours),
unless (`crack` > 0) that point is drawn wider than `crack` pixels of this level (2^l full-resolution pixels each)
and the pixel's own point lies more than `occlusion` behind both of its neighbours' own points along a row, a column
or a diagonal (cracks_ref): the one-pixel gaps a point drawn a little wider than a pixel leaves, a grid of lines of
the background over a surface magnified 1.1-1.5x. Otherwise the pixel takes the coarser value: the gaps of a
magnified surface fill, and what they let through of the background is hidden. With `support` > 0 a coarser pixel
grows over a finer one's own point only where it is part of a surface: at least `support` of its 8 neighbours at its
level hold a depth within `support_ratio` times its own (those past the frame's edge count as holding one). A lone
fragment (a flying pixel off a depth edge, lifted) is then drawn where it lies, not as a square block the size of
the coarse cell it reached.

-> rgb (N, 3, H, W) float in [-1, 1] (0 where nothing), depth (N, H, W) (inf where nothing), conf (N, H, W) (the
point's conf times the level's weight; 0 where nothing), level (N, H, W) int8 (-1 where nothing), owner (N, H, W) long:
the slot drawn at full resolution in each pixel (-1 where none), before compositing (what a memory marks as seen).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def splat_ref(xyz, rgb, conf, steps, R, t, intrinsics, size_wh, levels=4, level_weight=(1.0, 0.85, 0.7, 0.55),
              occlusion=0.08, magnified=1.5, near=0.05, support=0, support_ratio=1.5, crack=0.0):
    W, H = size_wh
    dev = xyz.device
    N = R.shape[0]
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    pid = (conf > 0).nonzero()[:, 0]  # (M,) the occupied slots
    owner0 = torch.full((N, H, W), -1, dtype=torch.long, device=dev)
    if pid.numel() == 0:
        return (torch.zeros(N, 3, H, W, device=dev), torch.full((N, H, W), math.inf, device=dev),
                torch.zeros(N, H, W, device=dev), torch.full((N, H, W), -1, dtype=torch.int8, device=dev), owner0)
    M = pid.numel()
    R, t = R.float(), t.float()
    Rcat = R.permute(1, 0, 2).reshape(3, 3 * N)  # [R_0 | R_1 | ...]: one GEMM projects into every camera
    pc = (xyz[pid].float() @ Rcat).view(M, N, 3).transpose(0, 1) - (t[:, None] @ R)  # (N, M, 3): R^T (p - t)
    z = pc[..., 2]
    ok = z > near
    zs = torch.where(ok, z, torch.ones_like(z))
    uf, vf = fx * pc[..., 0] / zs + cx, fy * pc[..., 1] / zs + cy
    st = (steps[pid].float().reshape(2 * M, 3) @ Rcat).view(M, 2, N, 3).permute(2, 0, 1, 3)  # (N, M, 2, 3)
    x, y = pc[..., None, 0], pc[..., None, 1]
    du = fx * (st[..., 0] - x * st[..., 2] / zs[..., None]) / zs[..., None]
    dv = fy * (st[..., 1] - y * st[..., 2] / zs[..., None]) / zs[..., None]
    foot = torch.hypot(du, dv).amax(-1).reshape(-1)  # (N·M,)
    flat = torch.arange(N * M, device=dev)  # (frame, point) in slot order: ties go to the later one
    frame_base = torch.arange(N, device=dev)[:, None]
    zf = torch.where(ok, z, torch.full_like(z, math.inf)).reshape(-1)
    out = None
    for lvl in reversed(range(levels)):
        s = 2 ** lvl
        Hl, Wl = -(-H // s), -(-W // s)
        ul, vl = torch.floor((uf + 0.5) / s), torch.floor((vf + 0.5) / s)
        use = (ok & (ul >= 0) & (ul < Wl) & (vl >= 0) & (vl < Hl)).reshape(-1)
        dump = N * Hl * Wl  # one extra bin takes every point that misses the image
        key = (frame_base * (Hl * Wl) + vl.clamp(0, Hl - 1).long() * Wl + ul.clamp(0, Wl - 1).long()).reshape(-1)
        key = torch.where(use, key, torch.full_like(key, dump))
        zbuf = torch.full((dump + 1,), math.inf, device=dev).scatter_reduce_(0, key, zf, "amin")
        win = use & (zf <= zbuf.gather(0, key))
        owner = torch.full((dump + 1,), -1, dtype=torch.long, device=dev).scatter_reduce_(
            0, key, torch.where(win, flat, torch.full_like(flat, -1)), "amax")[:dump]  # nearest point per cell
        zbuf = zbuf[:dump]
        has = owner >= 0
        o = owner.clamp_min(0)
        p = pid[o % M]
        col = (rgb[p].float() / 127.5 - 1) * has[:, None]  # (N·Hl·Wl, 3)
        cf = torch.where(has, conf[p].float() * level_weight[lvl], torch.zeros_like(zbuf))
        fp = torch.where(has, foot[o], torch.zeros_like(zbuf))
        col = col.view(N, Hl, Wl, 3).permute(0, 3, 1, 2)
        zl, cl, fl = zbuf.view(N, Hl, Wl), cf.view(N, Hl, Wl), fp.view(N, Hl, Wl)
        ll = torch.where(has.view(N, Hl, Wl), torch.full_like(zl, lvl), torch.full_like(zl, -1))
        if lvl == 0:
            owner0 = torch.where(has, p, torch.full_like(p, -1)).view(N, H, W)
        if out is None:
            out = (col, zl, cl, ll, fl)
            continue
        cc, cz, ccf, clv, cfp = out
        w = (ccf > 0).float()[:, None]
        num = F.interpolate(cc * w, size=(Hl, Wl), mode="bilinear", align_corners=False)
        den = F.interpolate(w, size=(Hl, Wl), mode="bilinear", align_corners=False)
        up_col = num / den.clamp_min(1e-6)
        up_z, up_cf, up_lv, up_fp = (F.interpolate(v_[:, None], size=(Hl, Wl), mode="nearest")[:, 0]
                                     for v_ in (cz, ccf, clv, cfp))
        narrow = up_fp < magnified
        if crack > 0:  # ... but one drawn wider than a pixel of this level leaves one-pixel gaps, which it closes
            narrow &= ~((up_fp > crack * 2.0 ** lvl) & cracks_ref(zl, occlusion))
        keep = (up_cf <= 0) | (zl <= up_z * (1 + occlusion)) | narrow
        if support > 0:  # a lone coarser pixel (no surface around it) does not grow over this level's own points
            sup = supported_ref(cz, ccf, support, support_ratio)
            keep |= ~F.interpolate(sup[:, None].float(), size=(Hl, Wl), mode="nearest")[:, 0].bool()
        own = (cl > 0) & keep
        out = (torch.where(own[:, None], col, up_col), torch.where(own, zl, up_z), torch.where(own, cl, up_cf),
               torch.where(own, ll, up_lv), torch.where(own, fl, up_fp))
    col, zl, cl, ll, _ = out
    return col.contiguous(), zl, cl, ll.to(torch.int8), owner0


def cracks_ref(z: torch.Tensor, occlusion: float) -> torch.Tensor:
    """A level's own depths z (N, h, w) (inf where empty) -> (N, h, w) bool: the pixel's own point lies more than
    `occlusion` behind both own points of one of the 4 pairs of neighbours through it (left-right, up-down, the two
    diagonals): background seen through a one-pixel gap. Neighbours past the level's edge hold none."""
    N, h, w = z.shape
    zp = F.pad(z, (1, 1, 1, 1), value=math.inf)
    k = 1 + occlusion
    out = torch.zeros(N, h, w, dtype=torch.bool, device=z.device)
    for (ai, aj), (bi, bj) in (((0, -1), (0, 1)), ((-1, 0), (1, 0)), ((-1, -1), (1, 1)), ((-1, 1), (1, -1))):
        a = zp[:, 1 + ai:1 + ai + h, 1 + aj:1 + aj + w]
        b = zp[:, 1 + bi:1 + bi + h, 1 + bj:1 + bj + w]
        out |= (a * k < z) & (b * k < z)
    return out


def supported_ref(z: torch.Tensor, cf: torch.Tensor, support: int, ratio: float) -> torch.Tensor:
    """A level's composite depth z and confidence cf (N, h, w) -> (N, h, w) bool: nothing there, or at least `support`
    of the 8 neighbours hold a depth within `ratio` times its own, those outside the level counting as holding one
    (the surface may go on past the frame's edge)."""
    N, h, w = z.shape
    has = cf > 0
    zp = F.pad(torch.where(has, z, torch.full_like(z, math.nan)), (1, 1, 1, 1), value=math.nan)
    inside = F.pad(torch.ones(1, h, w, dtype=torch.bool, device=z.device), (1, 1, 1, 1), value=False)
    count = torch.zeros(N, h, w, dtype=torch.int32, device=z.device)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            nb = zp[:, 1 + di:1 + di + h, 1 + dj:1 + dj + w]  # (NaN where empty: every comparison is False)
            out = ~inside[:, 1 + di:1 + di + h, 1 + dj:1 + dj + w]
            count += (((z <= nb * ratio) & (nb <= z * ratio)) | out).int()
    return ~has | (count >= support)


def pull_push_ref(img: torch.Tensor, weight: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Fill the pixels of img (N, C, H, W) where weight (N, 1, H, W) is 0 with a smooth extension of the rest: the
    weighted image is averaged down a pyramid to 1 x 1 and brought back up, each level filling the holes of the one
    above it (pull-push). Pixels with weight keep their value. out: written with the result and returned."""
    levels = [(img * weight, weight)]
    while max(levels[-1][0].shape[-2:]) > 1:
        c, w = levels[-1]
        levels.append((F.avg_pool2d(c, 2, ceil_mode=True), F.avg_pool2d(w, 2, ceil_mode=True)))
    c, w = levels[-1]
    filled = c / w.clamp_min(1e-8)
    for c, w in reversed(levels[:-1]):
        up = F.interpolate(filled, size=c.shape[-2:], mode="bilinear", align_corners=False)
        filled = torch.where(w > 0, c / w.clamp_min(1e-8), up)
    res = torch.where(weight > 0, img, filled)
    return res if out is None else out.copy_(res)


def _box_sum(x: torch.Tensor, r: int, dim: int, pad: float) -> torch.Tensor:
    """Sum over the window [i - r, i + r] along `dim` (-1 or -2), the outside counting as `pad`: two reads of a
    cumulative sum per pixel, whatever r (pooling layers cost ~r times more on the CPU)."""
    pads = (r + 1, r, 0, 0) if dim == -1 else (0, 0, r + 1, r)
    c = F.pad(x, pads, value=pad).cumsum(dim)
    n = x.shape[dim]
    hi, lo = c.narrow(dim, 2 * r + 1, n), c.narrow(dim, 0, n)
    if pad:  # the leading pad entry is `pad`, not 0: take it back out of every window that reaches it
        hi, lo = hi - pad, lo - pad
    return hi - lo


def feather_ref(mask: torch.Tensor, feather: int) -> torch.Tensor:
    """(N, 1, H, W) float mask in [0, 1] -> the same eroded by `feather` pixels, then box-blurred as wide: a blend
    weight that reaches 1 only inside the mask and falls smoothly to 0 at its edge. The frame's own border is not
    eroded (outside counts as inside), and the blur averages over the pixels inside the frame only."""
    if feather <= 0:
        return mask
    r, k = feather, 2 * feather + 1
    m = mask
    for dim in (-1, -2):  # erode: a pixel stays where its whole window is (nearly) 1
        m = (_box_sum(m, r, dim, 1.0) >= k - 1e-3).to(mask.dtype)
    ones = torch.ones_like(m[:1, :1])
    for dim in (-1, -2):  # blur: the mean over the window's pixels that lie inside the frame
        m = _box_sum(m, r, dim, 0.0) / _box_sum(ones, r, dim, 0.0)
    return m


def mark_ref(seen: torch.Tensor | None, owner: torch.Tensor, value: int, pinned: torch.Tensor | None = None
             ) -> torch.Tensor | None:
    """seen[slot] = value, in place, for every slot in owner (any shape; -1: none; seen None: nothing stamped).
    pinned (per slot, bool): -> (owner's shape) bool, where owner holds a pinned slot."""
    if seen is not None:
        seen[owner[owner >= 0]] = value
    if pinned is not None:
        return (owner >= 0) & pinned[owner.clamp_min(0)]
    return None
