"""The start view's backward warp in PyTorch (the reference; kernels/warp/cpu.py is its compiled twin).

    qx, qy, valid = solve_ref(R, t, intrinsics, start_intrinsics, inv, edges, depth, covered,
                              steps=2, tolerance=0.02, agree=0.08)
    rgb, weight = colour_ref(qx, qy, valid, covered_full, img, hi, from_mag=1.1, full_at=1.5)

For every pixel (u, v) of camera n (R (N, 3, 3), t (N, 3): camera to start camera; intrinsics [fx, fy, cx, cy] of
depth's (N, H, W) pixels) its ray X(z) = t + z·R·((u − cx)/fx, (v − cy)/fy, 1) is followed to the start camera's
surface: inverse depth inv (H0, W0) (start_intrinsics; bilinear, border-clamped like grid_sample) where the point
projects. From z_a = depth (the world memory's render; 1 where not covered), z_b solves Z(z) = 1/inv(q(z_a)); then
`steps` secant steps on h(z) = 1/Z(z) − inv(q(z)), each new z clamped to [z/2, 2z]. At the last z: the start pixel
q = (qx, qy), the point's start depth Z and the surface's Zs = 1/inv(q). Valid: covered, Z > 0.01,
|Z − Zs| <= tolerance·Zs, |z − depth| <= agree·depth, q inside the start frame (±0.5 px), and no start depth edge
(edges (H0, W0) > 0, bilinear) at q, and the move magnifies the pixel at least min_mag times, judged before the steps
from the memory's depth alone (grid_step of the first q; a pixel below it is not followed). That is `solve`, run on
every grid-th pixel of the frame (rows and columns 0, grid, 2 grid, ...: intrinsics divided by grid).

`colour` brings that to full resolution: q interpolated between the samples (exact on planes, where inverse depth is
affine in the image), valid where every sample read is (and covered_full), the magnification (frame pixels per start
pixel) 1 / the larger of the samples' forward differences / grid, per grid x grid block. Colour: img (3, H0, W0) at q,
bicubic (sharper than bilinear where a pixel is magnified), mixed towards hi (3, h, w; the same view at scale
s = h / H0 > 1, or None) by clamp((mag − 1) / (s − 1), 0, 1). weight = valid · clamp((mag − from_mag) /
(full_at − from_mag), 0, 1); rgb is 0 where the weight is.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_ref(img: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor, W: int, H: int,
               mode: str = "bilinear") -> torch.Tensor:
    """img (C, h, w) covering W x H frame pixels; qx, qy (N, H', W') frame pixel coordinates (integer centres)
    -> (N, C, H', W') bilinear or bicubic (grid_sample, border, align_corners=False: bilinear clamps the coordinate
    to the image, bicubic each of its 4 x 4 taps; cubic convolution with A = -0.75)."""
    g = torch.stack([(qx + 0.5) * (2 / W) - 1, (qy + 0.5) * (2 / H) - 1], -1)
    return F.grid_sample(img[None].expand(qx.shape[0], -1, -1, -1), g, mode=mode, padding_mode="border",
                         align_corners=False)


def solve_ref(R, t, intrinsics, start_intrinsics, inv, edges, depth, covered, steps: int = 3,
              tolerance: float = 0.02, agree: float = 0.08, min_mag: float = 0.0, miss: float = 0.0):
    """-> qx, qy (N, H, W) float32 start pixel coordinates, valid (N, H, W) bool.
    miss > 0: a ray whose first read, at the memory's depth, finds the start surface's inverse depth more than this
    (relative) off the point's is not followed: what the memory shows there is not the start picture's surface."""
    N, H, W = depth.shape
    H0, W0 = inv.shape
    dev = depth.device
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    f0x, f0y, c0x, c0y = (float(v) for v in start_intrinsics)
    u = torch.arange(W, dtype=torch.float32, device=dev)
    v = torch.arange(H, dtype=torch.float32, device=dev)
    ru, rv = ((u - cx) / fx).view(1, 1, W), ((v - cy) / fy).view(1, H, 1)
    d = [R[:, i, 0].view(N, 1, 1) * ru + R[:, i, 1].view(N, 1, 1) * rv + R[:, i, 2].view(N, 1, 1) for i in range(3)]
    o = [t[:, i].view(N, 1, 1) for i in range(3)]
    inv_ = inv[None]

    def at(z):  # -> start pixel (qx, qy), the point's start depth Z, the start surface's inverse depth there
        X, Y, Z = (o[i] + z * d[i] for i in range(3))
        Zc = Z.clamp_min(1e-3)
        qx, qy = f0x * X / Zc + c0x, f0y * Y / Zc + c0y
        return qx, qy, Z, sample_ref(inv_, qx, qy, W0, H0)[:, 0]

    z_a = torch.where(covered, depth, torch.ones_like(depth)).clamp(1e-2, 1e4)
    qx, qy, Z, iv = at(z_a)
    est = 1 / grid_step(qx, qy).clamp_min(1e-4)  # how much the move magnifies, from the memory's depth alone
    h_a = 1 / Z.clamp_min(1e-3) - iv
    near = h_a.abs() <= miss * iv if miss > 0 else torch.ones_like(covered)  # (the first read finds the surface)
    dz = torch.where(d[2].abs() < 1e-6, torch.full_like(d[2], 1e-6), d[2])
    z_b = (1 / iv.clamp_min(1e-4) - o[2]) / dz
    z_b = torch.where(z_b > 1e-2, z_b, z_a * 1.01)
    for _ in range(steps):
        qx, qy, Z, iv = at(z_b)
        h_b = 1 / Z.clamp_min(1e-3) - iv
        den = h_b - h_a
        ok = den.abs() > 1e-9
        z_c = torch.where(ok, z_b - h_b * (z_b - z_a) / torch.where(ok, den, torch.ones_like(den)), z_b)
        z_a, h_a, z_b = z_b, h_b, torch.minimum(torch.maximum(z_c, z_b * 0.5), z_b * 2.0)
    qx, qy, Z, iv = at(z_b)
    Zs = 1 / iv.clamp_min(1e-4)
    valid = (covered & (Z > 1e-2) & ((Z - Zs).abs() <= tolerance * Zs)
             & ((z_b - depth).abs() <= agree * depth.clamp_min(1e-3))
             & (qx >= -0.5) & (qx <= W0 - 0.5) & (qy >= -0.5) & (qy <= H0 - 0.5))
    valid &= (sample_ref(edges[None], qx, qy, W0, H0)[:, 0] <= 0) & (est >= min_mag) & near
    return qx, qy, valid


def grid_step(qx, qy):
    """(N, h, w) start coordinates -> (N, h, w): the larger of the forward steps to the right and lower neighbour
    (the last column / row: the one before)."""
    gx = torch.stack([qx[:, :, 1:] - qx[:, :, :-1], qy[:, :, 1:] - qy[:, :, :-1]]).norm(dim=0)
    gy = torch.stack([qx[:, 1:] - qx[:, :-1], qy[:, 1:] - qy[:, :-1]]).norm(dim=0)
    gx = torch.cat([gx, gx[:, :, -1:]], 2) if qx.shape[2] > 1 else torch.zeros_like(qx)
    gy = torch.cat([gy, gy[:, -1:]], 1) if qx.shape[1] > 1 else torch.zeros_like(qx)
    return torch.maximum(gx, gy)


def upsample_index(n: int, n2: int, grid: int = 2):
    """Full-resolution rows (or columns) 0..n-1 from every grid-th one (n2 of them, at 0, grid, 2 grid, ...): -> (a0,
    a1, t) with value = v[a0] + t (v[a1] - v[a0]): a sampled row its own sample (t = 0), the rows between two samples
    linearly between them (t = k / grid for the k-th), and the rows past the last sample extrapolated from the two
    before it (t = 1 + k / grid)."""
    a0, a1, t = [], [], []
    for i in range(n):
        a, k = divmod(i, grid)
        if k == 0 or n2 == 1:
            a0.append(min(a, n2 - 1)), a1.append(min(a, n2 - 1)), t.append(0.0)
        elif a + 1 < n2:
            a0.append(a), a1.append(a + 1), t.append(k / grid)
        else:
            a0.append(a - 1), a1.append(a), t.append(1 + k / grid)
    return torch.tensor(a0), torch.tensor(a1), torch.tensor(t)


def check_grid(samples_hw, size_hw, grid: int) -> None:
    """colour's samples (h2, w2) must be those of every grid-th pixel of its (H, W) frames: ceil(H / grid) x
    ceil(W / grid). Else a one-line ValueError."""
    (h2, w2), (H, W) = samples_hw, size_hw
    if grid < 1 or h2 != -(-H // grid) or w2 != -(-W // grid):
        raise ValueError(f"start view colour: samples {h2}x{w2} for {H}x{W} pixels at grid {grid}: expected "
                         f"ceil(H / grid) x ceil(W / grid)")


def colour_ref(qx, qy, valid, covered, img, hi, from_mag: float = 1.0, full_at: float = 1.5, grid: int = 2):
    """qx, qy, valid (N, h2, w2): solved on every grid-th pixel of covered's (N, H, W) (the rows and columns 0, grid,
    2 grid, ...: h2 = ceil(H / grid), alike W) -> rgb (N, 3, H, W), weight (N, H, W) at full resolution; 0 in both
    where not valid or not magnified. The start coordinates in between are interpolated (upsample_index), a pixel is
    valid where every sample it reads is valid and covered says so; the magnification is its grid x grid block's,
    from the samples' forward differences."""
    N, H, W = covered.shape
    h2, w2 = qx.shape[1:]
    H0, W0 = img.shape[1:]
    check_grid(qx.shape[1:], (H, W), grid)
    r0, r1, rt = upsample_index(H, h2, grid)
    c0, c1, ct = upsample_index(W, w2, grid)
    rt, ct = rt.to(qx).view(1, H, 1), ct.to(qx).view(1, 1, W)

    def up(x):  # (N, h2, w2) -> (N, H, W)
        x = x[:, r0] + rt * (x[:, r1] - x[:, r0])
        return x[:, :, c0] + ct * (x[:, :, c1] - x[:, :, c0])
    ok = valid[:, r0] & ((rt == 0) | valid[:, r1])
    ok = ok[:, :, c0] & ((ct == 0) | ok[:, :, c1]) & covered
    fx, fy = up(qx), up(qy)
    mag = 1 / (grid_step(qx, qy) / grid).clamp_min(1e-4)
    mag = mag[:, torch.arange(H) // grid][:, :, torch.arange(W) // grid]
    rgb = sample_ref(img, fx, fy, W0, H0, "bicubic")
    if hi is not None:
        s = min(hi.shape[1] / H0, hi.shape[2] / W0)
        if s > 1:
            a = ((mag - 1) / (s - 1)).clamp(0, 1)[:, None]
            rgb = torch.lerp(rgb, sample_ref(hi, fx, fy, W0, H0, "bicubic"), a)
    weight = ok.float() * ((mag - from_mag) / (full_at - from_mag)).clamp(0, 1)
    return rgb * (weight > 0)[:, None], weight
