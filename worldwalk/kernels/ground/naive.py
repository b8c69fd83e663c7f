"""The ground detail lookup in PyTorch (the reference; kernels/ground/cpu.py is the same maths, compiled).

For each pixel (u, v) of camera i with weight w > 0: its ray d = R_i K^-1 [u, v, 1] (z-depth 1 in the camera) from the
camera centre o_i meets the level ground y = eye (world +Y down) at z-depth t = (eye - o_y) / d_y (only where d_y > 0,
0 < t < 1e4); the ground point (x, z) = o + t d is folded into the source rectangle (x in [-w, w], z in [z0, z1]: a
mirror at each edge) and projected into the start picture, (su, sv) = (sfx x / z + scx, sfy eye / z + scy); the
high-pass there (bilinear, zero outside the picture, as grid_sample with align_corners=True) times
fade = clamp((z / sfx) / (t / fx), 0, 1) (the source's metres per pixel against this view's) times w is the result.

Depth bands (rect's fourth value, B >= 1; 1 is the above): band b is the rectangle r^b times as far and as wide (r =
z1 / z0), so the picture shows its ground r^b times smaller. A ground point at distance D from the camera (rotations
leave it as it is) has the level l = log_r(D sfx / (fx z1)), clamped to [0, B - 1]: 0 up to where this view's metres
per pixel are those of the first band's far edge in the picture (so the start camera reads its own texture there), b
at band b's far edge. It reads bands b = min(floor(l), B - 2) and b + 1, mixed (1 - a, a), a
= l - b, over sqrt((1 - a)^2 + a^2) (two unrelated textures mixed keep their contrast), each with its own fade.

    draw_ref(high (3, Hs, Ws), src (sfx, sfy, scx, scy), eye, rect (z0, z1, w[, B]), c2w (N, 4, 4),
             intr (fx, fy, cx, cy), weight (N, H, W)) -> (N, 3, H, W) float32
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def fold(x: torch.Tensor, lo, hi) -> torch.Tensor:
    """Mirror-tile [lo, hi] (floats, or tensors: each element its own) over the line: x inside is itself, x just past
    an edge its reflection, and so on."""
    span = hi - lo
    u = torch.remainder(x - lo, 2 * span)
    return lo + torch.where(u > span, 2 * span - u, u)


def draw_ref(high, src, eye: float, rect, c2w, intr, weight) -> torch.Tensor:
    N, H, W = weight.shape
    z0, z1, w = (float(v) for v in rect[:3])
    bands = int(rect[3]) if len(rect) > 3 else 1
    sfx, sfy, scx, scy = (float(v) for v in src)
    fx, fy, cx, cy = (float(v) for v in intr)
    Hs, Ws = high.shape[-2:]
    c2w = c2w.double()  # far ground points (t up to 1e4) need the precision
    out = torch.zeros((N, H, W, 3))  # channels-last: one row of 3 per pixel to write
    kinv = torch.tensor([[1 / fx, 0, -cx / fx], [0, 1 / fy, -cy / fy], [0, 0, 1]], dtype=torch.float64)
    coef = torch.cat([(c2w[:, :3, :3] @ kinv).reshape(N, 9), c2w[:, :3, 3]], 1)  # (N, 12): A = R K^-1, then o
    uu = torch.arange(W, dtype=torch.float64)
    vv = torch.arange(H, dtype=torch.float64)[:, None]
    down = coef[:, 3, None, None] * uu + coef[:, 4, None, None] * vv + coef[:, 5, None, None] > 1e-6  # (N, H, W)
    flat = ((weight > 0) & down).reshape(-1).nonzero()[:, 0]  # only the pixels to draw, below the horizon
    n, rem = flat // (H * W), flat % (H * W)
    u, v = (rem % W).double(), (rem // W).double()
    c = torch.index_select(coef, 0, n)  # (P, 12)
    dx, dy, dz = (c[:, 3 * i] * u + c[:, 3 * i + 1] * v + c[:, 3 * i + 2] for i in range(3))
    ox, oy, oz = c[:, 9], c[:, 10], c[:, 11]
    t = (eye - oy) / dy.clamp_min(1e-6)
    hit = (t > 0) & (t < 1e4)
    t = torch.where(hit, t, torch.ones_like(t))  # (a finite stand-in where it misses: drawn as 0 below)
    dist = t * torch.sqrt(((u - cx) / fx) ** 2 + ((v - cy) / fy) ** 2 + 1)  # the ground point's distance
    lvl = (torch.log(dist * sfx / (fx * z1)) / math.log(z1 / z0)).clamp(0, bands - 1)
    b = lvl.floor().clamp(max=max(bands - 2, 0))
    a = lvl - b
    val = torch.zeros((3, len(t)), dtype=torch.float64)
    for j, share in ((0, 1 - a), (1, a)):
        s = (z1 / z0) ** (b + j)
        sx, sz = fold(ox + t * dx, -w * s, w * s), fold(oz + t * dz, z0 * s, z1 * s)
        gx = (sfx * sx / sz + scx) * (2 / (Ws - 1)) - 1
        gy = (sfy * eye / sz + scy) * (2 / (Hs - 1)) - 1
        read = F.grid_sample(high.double()[None], torch.stack([gx, gy], -1)[None, None], mode="bilinear",
                             padding_mode="zeros", align_corners=True)[0, :, 0]  # (3, P)
        val += read * share * ((sz / sfx) / (t / fx)).clamp(0, 1)
    keep = torch.where(hit, 1 / torch.sqrt((1 - a) ** 2 + a ** 2), torch.zeros_like(t))  # (the contrast of one)
    keep = keep * weight.reshape(-1)[flat].double()
    out.view(-1, 3)[flat] = (val * keep).T.float()
    return out.permute(0, 3, 1, 2)


def add_u8_ref(frames, high, src, eye: float, rect, c2w, intr, weight):
    """frames (N, H, W, 3) uint8 numpy, changed in place: + 127.5 x the detail (draw_ref), rounded and clipped."""
    d = draw_ref(high, src, eye, rect, c2w, intr, weight).permute(0, 2, 3, 1).double()
    frames[...] = (torch.from_numpy(frames).double() + 127.5 * d).round().clamp(0, 255).to(torch.uint8).numpy()
    return frames
