"""Frame metrics shared by the quality benchmarks: PSNR, SSIM, and the sharpness ratio that blur cannot win.

PSNR rewards fog (the mean of what could be there scores well), so every quality figure comes with sharpness:
the mean gradient energy of a frame (grey levels, forward differences) divided by that of the frame it should match.
A copy blurred by a 4-pixel Gaussian scores about 0.05; a frame as sharp as the truth scores 1. At 1/4 resolution
(both frames box-shrunk 4x first) the ratio asks only for the coarse structure: objects, edges, shadows.
A decoder can also win the sharpness ratio with a pattern repeated on its 16-px latent cells (a lattice over grass
and crowns), so the lattice figure measures that: how far the spectrum stands out at the cells' harmonics above its
neighbourhood, in dB, the generated frame's minus the exact frame's (0: no more lattice than the truth).
"""
from __future__ import annotations

import os

import numpy as np
from skimage.metrics import structural_similarity

FOGGY = 0.3  # a frame whose sharpness ratio is below this counts as fog
FLAT = 25.0  # an exact frame with less gradient energy than this (grey levels², an RMS step of 5 levels: a plain wall
# filling the view) has no detail to lose; its sharpness ratio divides by almost nothing (65 on one fresh walk), so
# world_quality.py leaves such frames out of the sharpness figures and the foggy share (0.5 % of exact frames have
# less than 123; the least of 2,734 cached ones had 5.6)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255))


def shrink(img: np.ndarray, k: int) -> np.ndarray:
    """(H, W, C) -> (H/k, W/k, C) box average (float64)."""
    H, W = img.shape[0] // k * k, img.shape[1] // k * k
    x = img[:H, :W].astype(np.float64)
    return x.reshape(H // k, k, W // k, k, -1).mean((1, 3))


def gradient_energy(img: np.ndarray) -> float:
    g = np.asarray(img, np.float64)
    g = g.mean(-1) if g.ndim == 3 else g
    return float(np.mean(np.diff(g, axis=0)[:, :-1] ** 2 + np.diff(g, axis=1)[:-1] ** 2))


def sharpness(gen: np.ndarray, ref: np.ndarray, k: int = 1) -> float:
    """Gradient energy of gen over ref's (k > 1: both shrunk k x first)."""
    if k > 1:
        gen, ref = shrink(gen, k), shrink(ref, k)
    return gradient_energy(gen) / max(gradient_energy(ref), 1e-9)


def lattice_db(img: np.ndarray, cell: int = 16) -> float:
    """How much the power spectrum (grey levels, Hann window) peaks at the harmonics of a cell x cell lattice: the mean
    over the harmonics (every multiple of H/cell, W/cell but the mean) of the strongest bin within 1 of the harmonic
    over the median bin 3-4 away from it, in dB."""
    g = np.asarray(img, np.float64)
    g = g.mean(-1) if g.ndim == 3 else g
    H, W = g.shape
    win = np.outer(np.hanning(H), np.hanning(W))
    P = np.abs(np.fft.fft2((g - g.mean()) * win)) ** 2
    y, x = np.mgrid[-4:5, -4:5]
    ring = np.maximum(abs(y), abs(x)) >= 3
    a, b = (v.ravel()[1:] for v in np.mgrid[0:cell, 0:cell])  # every harmonic but the mean
    blk = P[(a[:, None, None] * H // cell + y) % H, (b[:, None, None] * W // cell + x) % W]  # (harmonics, 9, 9)
    peak, floor = blk[:, 3:6, 3:6].max((1, 2)), np.median(blk[:, ring], axis=1)
    if not peak.any():  # a plain frame: no lattice (and no log of zero)
        return 0.0
    return float(np.mean(10 * np.log10(peak / np.maximum(floor, 1e-12))))


def magnified_ssim(frame: np.ndarray, start: np.ndarray, most: float = 4.0, steps: int = 29) -> float:
    """How much a frame of a walk straight in looks like its start picture magnified: the SSIM of the frame's middle
    half (H, W, 3 uint8, as start) against the start picture magnified about its centre, at the best of `steps`
    magnifications from 1 to `most` (geometric). A picture walked into as one surface scores high; one torn into
    blocks or fog, low. Parallax between near and far parts of the picture lowers it too, so it is a floor on how
    whole the picture stays, not a measure of the walk's geometry. A frame that does not move at all (the start
    picture copied) would score 1 at magnification 1: read it with the magnification found (magnified_match)."""
    return magnified_match(frame, start, most, steps)[0]


def magnified_match(frame: np.ndarray, start: np.ndarray, most: float = 4.0, steps: int = 29) -> tuple[float, float]:
    """magnified_ssim, with the magnification that gave it. -> (SSIM, magnification)"""
    from PIL import Image

    H, W = frame.shape[:2]
    mid = frame[H // 4: H - H // 4, W // 4: W - W // 4]
    img = Image.fromarray(start)
    cx, cy = W / 2, H / 2
    best, at = -1.0, 1.0
    for m in np.geomspace(1.0, most, steps):
        hw, hh = W / 4 / m, H / 4 / m  # the half size of the start's region that fills the middle half at m
        ref = np.asarray(img.resize((mid.shape[1], mid.shape[0]), Image.BICUBIC, box=(cx - hw, cy - hh, cx + hw,
                                                                                        cy + hh)))
        v = ssim(mid, ref)
        if v > best:
            best, at = v, float(m)
    return best, at


def turn_steadiness(frames: np.ndarray, c2w: np.ndarray, intrinsics) -> float:
    """How steadily a walk that only turns holds its picture: each frame (F, H, W, 3) uint8 after the first against
    the frame before it carried through the turn between them (c2w (F, 4, 4) with one position; intrinsics [fx, fy,
    cx, cy]; bilinear), PSNR over the pixels both frames see, averaged over the pairs. The exact frames score the
    resampling's loss; what the generated frames lose beyond that is their own flicker (noise drawn afresh each frame
    boils and scores lower; noise fixed to the world turns with it)."""
    fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
    F_, H, W = frames.shape[:3]
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1)  # (H, W, 3) in the current camera
    out = []
    for t in range(1, F_):
        rel = c2w[t - 1, :3, :3].T @ c2w[t, :3, :3]  # current camera's directions in the previous camera
        d = rays @ rel.T
        ok = d[..., 2] > 1e-6
        pu = np.where(ok, fx * d[..., 0] / np.maximum(d[..., 2], 1e-6) + cx, -1.0)
        pv = np.where(ok, fy * d[..., 1] / np.maximum(d[..., 2], 1e-6) + cy, -1.0)
        inside = ok & (pu >= 0) & (pu <= W - 1) & (pv >= 0) & (pv <= H - 1)
        if inside.mean() < 0.1:
            continue
        x0, y0 = np.clip(np.floor(pu), 0, W - 2).astype(int), np.clip(np.floor(pv), 0, H - 2).astype(int)
        a, b = (pu - x0)[..., None], (pv - y0)[..., None]
        prev = frames[t - 1].astype(np.float64)
        warped = ((1 - a) * (1 - b) * prev[y0, x0] + a * (1 - b) * prev[y0, x0 + 1] + (1 - a) * b * prev[y0 + 1, x0]
                  + a * b * prev[y0 + 1, x0 + 1])
        mse = float(np.mean((warped[inside] - frames[t].astype(np.float64)[inside]) ** 2))
        out.append(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
    return float(np.mean(out)) if out else float("nan")


def frame_metrics(gen: np.ndarray, exact: np.ndarray) -> dict:
    """One generated frame against the exact one."""
    return {"psnr": psnr(gen, exact), "ssim": ssim(gen, exact), "sharp": sharpness(gen, exact),
            "sharp4": sharpness(gen, exact, 4), "lattice": lattice_db(gen) - lattice_db(exact)}


def cpu_header() -> str:
    """The CPU model and its vector flags that matter for speed (AVX-512, native bf16, AMX)."""
    from worldwalk.kernels import cpu_info

    model, flags = cpu_info()
    keys = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"]
    shown = " ".join(f"{k}{'+' if k in flags else '-'}" for k in keys)
    # kernels held below what the CPU has (to stand in for a smaller CPU of this kind): say so, with what torch uses
    limits = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
              if os.environ.get(k)]
    if limits:
        import torch

        shown += f"; kernels limited: {' '.join(limits)}, torch uses {torch.backends.cpu.get_cpu_capability()}"
    from worldwalk.app.runtime import allocator_label

    # where large freed buffers go (app/runtime.py: the app keeps them in the heap; a quarter of the decoder's time)
    return f"{model} ({os.cpu_count()} cores; {shown}; malloc {allocator_label()})"


def contact_sheet(rows: list[tuple[np.ndarray, np.ndarray | None]], fps: int, every: float = 0.5) -> np.ndarray:
    """rows of (generated (F, H, W, 3), exact (F, H, W, 3) or None) -> one image: per row, the generated frames every
    `every` seconds above the exact ones (when given), frame 0 first."""
    out = []
    for gen, exact in rows:
        pick = np.arange(0, len(gen), max(1, int(round(every * fps))))
        out.append(np.concatenate(list(gen[pick]), 1))
        if exact is not None:
            out.append(np.concatenate(list(exact[pick]), 1))
    width = max(r.shape[1] for r in out)
    out = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in out]
    return np.concatenate(out, 0)
