"""How well a world model walks through procedural worlds it never saw: every generated frame against the exact view.

    python benchmarks/world_quality.py --weights assets/default_world.safetensors --scenes 4 --long 60

For held-out scene seeds: the start image is the exact view at the identity pose; the model walks the built-in
trajectories (and random human-like walks); each generated frame is compared with the renderer's exact frame at the
same pose (PSNR, SSIM), per second of rollout, beside the copy-the-first-frame baseline. A long random walk measures
drift (first 10 s vs last 10 s); the out-and-back loop measures memory (the frame on return vs the first frame).
Writes a markdown table to stdout and a grid image (generated above, exact below) to --grid.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worldwalk.controls.builtin import load_builtin  # noqa: E402
from worldwalk.controls.intrinsics import from_fov  # noqa: E402
from worldwalk.world.bundle import load_bundle, random_world  # noqa: E402
from worldwalk.world.checkpoint import CheckpointError  # noqa: E402
from worldwalk.world.colour import apply_colour_map, fit_colour_map  # noqa: E402
from worldwalk.world.procedural.scene import Scene  # noqa: E402
from worldwalk.world.procedural.walks import random_walk  # noqa: E402
from worldwalk.world.sampler import SamplerConfig, reproject_level, with_reproject  # noqa: E402
from worldwalk.world.session import DEFAULT_FOV, Session  # noqa: E402

HELD_OUT = 1_000_000  # scene seeds from here on are never used for training data


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255))


def walk(session: Session, scene: Scene, c2w: np.ndarray):
    """Generate along c2w (F, 4, 4) (frame 0 = start). -> generated (F, H, W, 3), exact (F, H, W, 3), seconds."""
    W, H = session.size_wh
    intr = from_fov(W, H, DEFAULT_FOV)
    exact = scene.render(c2w, intr, (W, H))
    session.start(exact[0], frame_intrinsics=intr)
    n = session.frames_per_step
    gen = [exact[:1]]
    t0 = time.perf_counter()
    rest = c2w[1:]
    for i in range(0, len(rest), n):
        p = rest[i:i + n]
        if len(p) < n:
            p = np.concatenate([p, np.repeat(p[-1:], n - len(p), 0)])
        gen.append(session.step(p)[: len(rest) - i])
    return np.concatenate(gen)[: len(c2w)], exact, time.perf_counter() - t0


def vae_round_trip(vae, frames: np.ndarray, colour_match: bool = False) -> np.ndarray:
    """Exact frames (F, H, W, 3) through the VAE and back (the first 1 + stride·k of them): what any world model
    decoding through this VAE could at best show. colour_match: through the colour map fitted on frame 0, as the
    session does."""
    s = vae.temporal_stride
    n = 1 + (len(frames) - 1) // s * s
    x = torch.from_numpy(frames[:n]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.inference_mode():
        y = vae.decode_video(vae.encode_video(x))
        if colour_match:
            y = apply_colour_map(y, fit_colour_map(y[0, :, 0], x[0, :, 0]))
    return ((y[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def channel_means(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) -> (F, 3): each frame's mean of each colour channel."""
    return frames.reshape(len(frames), -1, 3).mean(1)


def per_second(gen, exact, fps) -> list[tuple[float, float, float, float]]:
    """[(psnr, ssim, baseline psnr, baseline ssim)] for seconds 1, 2, … (frame 0 excluded)."""
    out = []
    for s in range(1, len(gen) // fps + 1):
        idx = range(max(1, (s - 1) * fps), min(len(gen), s * fps))
        g = [(psnr(gen[i], exact[i]), ssim(gen[i], exact[i]), psnr(exact[0], exact[i]), ssim(exact[0], exact[i]))
             for i in idx]
        out.append(tuple(np.mean(g, 0)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--long", type=float, default=60.0, help="seconds of the drift walk (0: skip)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--kind", default=None)
    ap.add_argument("--shift", type=float, default=None)
    ap.add_argument("--seconds", type=float, default=None,
                    help="cut every trajectory to this many seconds (quick comparisons: 4 gives the same s1-4 "
                         "figures; the out-and-back return is then not reached)")
    ap.add_argument("--reproject", type=reproject_level, default=None,
                    help="start level of chunks begun from a reprojection, or off (default: the bundle's)")
    ap.add_argument("--window", type=int, default=1, help="softmax window of the session, in chunks")
    ap.add_argument("--colour-match", choices=("on", "off"), default="on",
                    help="the session's colour map fitted to the start image (default on, as the app runs)")
    ap.add_argument("--start-overlay", choices=("on", "off"), default="on",
                    help="the start image, reprojected, laid over the frames near where it was taken (default on, as "
                         "the app runs)")
    ap.add_argument("--grid", default="benchmarks/world_quality_grid.jpg")
    a = ap.parse_args()
    if a.random_weights:
        model, vae = random_world("tiny")
        extra = {}
    else:
        try:
            model, vae, extra = load_bundle(a.weights or "assets/default_world.safetensors")
        except CheckpointError as e:
            sys.exit(f"error: {e}")
    sam = dict(extra.get("sampler", {}))
    for k in ("steps", "kind", "shift"):
        if getattr(a, k) is not None:
            sam[k] = getattr(a, k)
    sam = with_reproject(sam, a.reproject)
    session = Session(model, vae, SamplerConfig(**sam), window_chunks=a.window, colour_match=a.colour_match == "on",
                      start_overlay=a.start_overlay == "on")
    fps = model.cfg.fps
    print(f"world quality: {a.weights or ('random' if a.random_weights else 'default')} | sampler {sam} | "
          f"window {a.window} | colour match {a.colour_match} | start overlay {a.start_overlay} | "
          f"{f'walks cut to {a.seconds:g} s | ' if a.seconds else ''}"
          f"{platform.machine()} {torch.get_num_threads()} threads | {time.strftime('%Y-%m-%d')}")
    rows, grid_rows = [], []
    names = ["walk_forward", "orbit", "look_around", "strafe", "out_and_back", "random"]
    if a.seconds:  # the loop's return is not reached
        names.remove("out_and_back")
    gen_time, gen_frames = 0.0, 0
    ceiling = []  # VAE round trip of the exact frames, seconds 1-4, per moving walk
    real_means = []  # per-frame channel means of every exact frame rendered here (the range of real renders)
    for s in range(a.scenes):
        scene = Scene(HELD_OUT + s)
        for name in names:
            if name == "random":
                c2w = random_walk(4 * fps + 1, np.random.default_rng(HELD_OUT + s))
            else:
                c2w = load_builtin(name).relative_to_first().c2w
            if a.seconds:
                c2w = c2w[:int(a.seconds * fps) + 1]
            gen, exact, dt = walk(session, scene, c2w)
            gen_time += dt
            gen_frames += len(gen) - 1
            real_means.append(channel_means(exact))
            ps = per_second(gen, exact, fps)
            if name != "out_and_back":
                rt = vae_round_trip(vae, exact[:4 * fps + 1], session.colour_match)
                ceiling.append(np.mean([psnr(rt[i], exact[i]) for i in range(1, len(rt))]))
            if name == "out_and_back" and session.start_overlay:
                # the return pose is the start pose, where the overlay shows the start image itself: the model's own
                # memory is scored by the same walk without it
                plain = Session(model, vae, session.sampler, window_chunks=a.window, colour_match=session.colour_match,
                                start_overlay=False)
                model_return = walk(plain, scene, c2w)[0][-1]
            else:
                model_return = gen[-1]
            rows.append((s, name, ps, psnr(model_return, exact[0]) if name == "out_and_back" else None,
                         psnr(exact[-1], exact[0]) if name == "out_and_back" else None,
                         psnr(gen[-1], exact[0]) if name == "out_and_back" else None))
            if s == 0 and name in ("walk_forward", "orbit", "look_around"):
                pick = np.linspace(0, len(gen) - 1, 6).astype(int)
                grid_rows.append(np.concatenate([np.concatenate(list(gen[pick]), 1),
                                                 np.concatenate(list(exact[pick]), 1)], 0))
    print("\n| trajectory | s1 PSNR | s2 PSNR | s3 PSNR | s4 PSNR | mean s1-4 PSNR (copy-first) | "
          "mean s1-4 SSIM (copy-first) |\n|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        sel = [r[2] for r in rows if r[1] == name]
        k = min(len(x) for x in sel)
        m = np.mean([x[:min(k, 4)] for x in sel], 0)  # (seconds, 4)
        cells = " | ".join(f"{m[i, 0]:.2f}" if i < len(m) else "–" for i in range(4))
        print(f"| {name} | {cells} | {m[:, 0].mean():.2f} ({m[:, 2].mean():.2f}) | {m[:, 1].mean():.3f} "
              f"({m[:, 3].mean():.3f}) |")
    moving = [r[2] for r in rows if r[1] in ("walk_forward", "orbit", "look_around", "strafe", "random")]
    gm = np.mean([np.mean(x[:4], 0) for x in moving], 0)
    print(f"\nturning-and-moving walks, seconds 1-4: model {gm[0]:.2f} dB vs copy-first-frame {gm[2]:.2f} dB "
          f"({gm[0] - gm[2]:+.2f} dB); SSIM {gm[1]:.3f} vs {gm[3]:.3f}")
    undecoded = "; the start overlay shows pixels that are not decoded" if session.start_overlay else ""
    print(f"VAE round trip of the exact frames, same walks and seconds (the ceiling with this VAE, for decoded "
          f"pixels{undecoded}): {np.mean(ceiling):.2f} dB"
          f"{' (colour-matched as the session)' if session.colour_match else ''}")
    ob = [(r[3], r[4], r[5]) for r in rows if r[1] == "out_and_back"]
    if ob:
        print(f"out-and-back: generated frame on return vs first frame {np.mean([o[0] for o in ob]):.2f} dB "
              f"(exact return view vs first frame: {np.mean([o[1] for o in ob]):.2f} dB)"
              + (f"; with the start overlay off, as the model draws it (shown: the overlay, "
                 f"{np.mean([o[2] for o in ob]):.2f} dB)" if session.start_overlay else ""))
    print(f"generation: {gen_frames} frames in {gen_time:.1f} s = {gen_frames / gen_time:.1f} fps "
          f"({gen_frames / gen_time / fps:.2f}x real time)")
    if a.long > 0:
        scene = Scene(HELD_OUT + 999)
        c2w = random_walk(int(a.long * fps) + 1, np.random.default_rng(HELD_OUT + 999))
        gen, exact, dt = walk(session, scene, c2w)
        first = [psnr(gen[i], exact[i]) for i in range(1, min(len(gen), 10 * fps))]
        last = [psnr(gen[i], exact[i]) for i in range(max(1, len(gen) - 10 * fps), len(gen))]
        means, ex_means = channel_means(gen), channel_means(exact)
        print(f"{a.long:.0f} s walk: PSNR first 10 s {np.mean(first):.2f} dB, last 10 s {np.mean(last):.2f} dB "
              f"(difference {np.mean(last) - np.mean(first):+.2f} dB); NaN-free {np.isfinite(gen).all()}; "
              f"frame std min {gen.reshape(len(gen), -1).std(1).min():.1f}; mean colour range generated "
              f"{means.min():.0f}-{means.max():.0f} vs exact {ex_means.min():.0f}-{ex_means.max():.0f}; "
              f"{(len(gen) - 1) / dt:.1f} generated fps")
        real = np.concatenate(real_means + [ex_means])
        inside = real.min() <= means.min() and means.max() <= real.max()
        print(f"mean colour range of every exact frame of this benchmark ({len(real)} frames, {a.scenes + 1} "
              f"scenes): {real.min():.0f}-{real.max():.0f}; the {a.long:.0f} s walk's generated range is "
              f"{'inside' if inside else 'outside'} it")
    if grid_rows and a.grid:
        Image.fromarray(np.concatenate(grid_rows, 0)).save(a.grid)
        print(f"grid: {a.grid} (per trajectory: generated above, exact below; 6 moments from start to end)")


if __name__ == "__main__":
    main()
