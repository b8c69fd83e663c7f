"""How well a world model walks through procedural worlds it never saw: every generated frame against the exact view.

    python benchmarks/world_quality.py --weights assets/default_world.safetensors --scenes 4 --long 60

For held-out scene seeds: the start image is the exact view at the identity pose; the model walks the built-in
trajectories (and random human-like walks); each frame the app would show is compared with the renderer's exact
frame at the same pose: PSNR and SSIM beside the copy-the-first-frame baseline, and the sharpness ratio (mean
gradient energy of the frame over the exact frame's, at full and 1/4 resolution: blur cannot win it, see
benchmarks/metrics.py) with the share of foggy frames (ratio < 0.3), and how much more the frames peak at the 16-px
latent cells' harmonics than the exact ones (lattice, dB: a decoder's repeated pattern wins sharpness too). Two
memory tests: the out-and-back loop's return frame against the true start view (start overlay off), and a look-left /
look-right / look-left-again walk whose frames at the same pose are compared with each other, and whose consecutive
frames, carried through the turn between them, are compared too (turn steadiness: flicker, such as noise that boils).
A long random walk measures drift and collapse (first vs last 10 s). Writes markdown to stdout and a contact sheet
(generated over exact, every 0.5 s) to --sheet.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import (FLAT, FOGGY, contact_sheet, cpu_header, frame_metrics, gradient_energy, psnr, ssim,  # noqa: E402
                     turn_steadiness)
from worldwalk.app.runtime import keep_freed_memory  # noqa: E402
from worldwalk.controls.builtin import load_builtin  # noqa: E402
from worldwalk.controls.intrinsics import from_fov  # noqa: E402
from worldwalk.controls.se3 import make_pose, rotation_from_angles  # noqa: E402
from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth, random_world  # noqa: E402
from worldwalk.world.checkpoint import CheckpointError  # noqa: E402
from worldwalk.world.colour import apply_colour_map, fit_colour_map  # noqa: E402
from worldwalk.world.images import Picture  # noqa: E402
from worldwalk.world.memory import MemorySettings  # noqa: E402
from worldwalk.world.procedural.scene import Scene  # noqa: E402
from worldwalk.world.procedural.walks import random_walk  # noqa: E402
from worldwalk.world.sampler import SamplerConfig, reproject_level, with_reproject  # noqa: E402
from worldwalk.world.session import DEFAULT_FOV, Session  # noqa: E402

HELD_OUT = 1_000_000  # scene seeds from here on are never used for training data
MOVING = ("walk_forward", "orbit", "look_around", "strafe", "random")


EXACT_CACHE: Path | None = None  # --exact-cache: exact renders kept on disk between runs (they cost the most here)
START_SCALE = 1.0  # --start-scale: the start image the session is given, rendered at this x the frame's resolution
START_DEPTH = "network"  # --start-depth: "exact" gives the session the start view's own depth (world/images.Picture)


def exact_frames(scene: Scene, c2w: np.ndarray, intr, size) -> np.ndarray:
    if EXACT_CACHE is None:
        return scene.render(c2w, intr, size)
    key = hashlib.sha1(np.ascontiguousarray(c2w, np.float64).tobytes() + np.asarray(intr, np.float64).tobytes()
                       + repr(size).encode()).hexdigest()[:16]
    path = EXACT_CACHE / f"scene{scene.seed}_{key}.npy"
    if path.is_file():
        return np.load(path)
    frames = scene.render(c2w, intr, size)
    EXACT_CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, frames)
    return frames


def walk(session: Session, scene: Scene, c2w: np.ndarray):
    """Generate along c2w (F, 4, 4) (frame 0 = start). -> generated (F, H, W, 3), exact (F, H, W, 3), seconds."""
    W, H = session.size_wh
    intr = from_fov(W, H, DEFAULT_FOV)
    exact = exact_frames(scene, c2w, intr, (W, H))
    start = exact[0]
    if START_SCALE != 1:  # a larger picture of the same view, as a photograph is larger than the frame
        s = START_SCALE
        Ws, Hs = int(round(W * s)), int(round(H * s))
        fx, fy, cx, cy = intr
        # the same pixel-centre grid: frame pixel u covers big pixels s(u + 0.5) - 0.5 +- s/2
        intr_s = np.array([fx * Ws / W, fy * Hs / H, (cx + 0.5) * Ws / W - 0.5, (cy + 0.5) * Hs / H - 0.5])
        start = exact_frames(scene, c2w[:1], intr_s, (Ws, Hs))[0]
    if START_DEPTH == "exact":  # an RGB-D start picture: the renderer's own depth of the start view
        start = Picture(start, scene.render(c2w[:1], intr, (W, H), depth=True)[1][0])
    session.start(start, frame_intrinsics=intr)
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


def look_left_right_left(fps: int, angle: float = 40.0, seconds: float = 5.0, replay: bool = False
                         ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Turn in place: left by `angle` (1/5 of the time), right to +angle (2/5), left to -angle again (2/5), with eased
    turns. -> c2w (F, 4, 4) and pairs of frame indices at the same pose (the first look left and the second), up to
    half a degree apart. replay: the last 2/5 go back to the start view and then repeat the first turn's poses
    exactly (pairs at exactly the same pose)."""
    def ease(n):
        return (1 - np.cos(np.linspace(0, np.pi, n + 1)[1:])) / 2
    n = max(4, int(round(seconds * fps / 5)))
    yaw = [np.zeros(1)]
    yaw.append(-angle * ease(n))
    yaw.append(-angle + 2 * angle * ease(2 * n))
    if replay:
        yaw.append(angle - angle * ease(n))
        yaw.append(yaw[1])
    else:
        yaw.append(angle - 2 * angle * ease(2 * n))
    yaw = np.concatenate(yaw)
    c2w = make_pose(rotation_from_angles(yaw), np.zeros((len(yaw), 3)))
    first = np.arange(1, n + 1)  # turning left the first time
    second = 3 * n + 1 + np.arange(2 * n)  # the last turn, right -> left
    pairs = []
    for i in first[n // 4:]:  # poses well away from the start view (which the memory knows from the image)
        j = second[np.argmin(np.abs(yaw[second] - yaw[i]))]
        if abs(yaw[j] - yaw[i]) < (1e-9 if replay else 0.5):
            pairs.append((int(i), int(j)))
    return c2w, pairs


def vae_round_trip(vae, frames: np.ndarray, colour_match: bool = False) -> np.ndarray:
    """Exact frames (F, H, W, 3) through the VAE and back (the first 1 + stride·k of them). colour_match: through the
    colour map fitted on frame 0, as the session does."""
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


def per_frame(gen, exact) -> dict[str, np.ndarray]:
    """Metrics of every frame (frame 0 included) and the copy-first-frame baseline's."""
    rows = [frame_metrics(g, e) for g, e in zip(gen, exact)]
    out = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    out["base_psnr"] = np.array([psnr(exact[0], e) for e in exact])
    out["base_ssim"] = np.array([ssim(exact[0], e) for e in exact])
    out["flat"] = np.array([gradient_energy(e) < FLAT for e in exact], dtype=float)  # no detail to lose
    return out


def window(m: dict, fps: int, lo: float, hi: float) -> dict[str, float]:
    """Means over frames in seconds [lo, hi) (frame 0 excluded), and the share of foggy frames. The sharpness ratios
    and the foggy share leave out frames whose exact frame is flat (metrics.FLAT: no detail to lose; NaN if all are);
    "flat" is the share left out."""
    idx = np.arange(max(1, int(lo * fps)), min(len(m["psnr"]), int(hi * fps)))
    out = {k: float(np.mean(v[idx])) for k, v in m.items()}
    detail = idx[m["flat"][idx] == 0]
    for k in ("sharp", "sharp4"):
        out[k] = float(np.mean(m[k][detail])) if len(detail) else float("nan")
    out["foggy"] = float(np.mean(m["sharp"][detail] < FOGGY)) if len(detail) else float("nan")
    return out


def with_settings(settings: MemorySettings, items: list[str]) -> MemorySettings:
    """settings with each KEY=VALUE of --memory-setting (VALUE a number, or on / off for a switch) put in; exits 2
    with one line when one does not fit."""
    d = settings.to_dict()
    for item in items:
        key, eq, value = item.partition("=")
        at, name = (d["config"], key[7:]) if key.startswith("config.") else (d, key)  # config.KEY: the memory's own
        if not eq or name not in at or name == "config" or isinstance(at[name], (list, tuple)):
            keys = [k for k in d if k != "config"] + [f"config.{k}" for k, v in d["config"].items()
                                                      if not isinstance(v, (list, tuple))]
            sys.exit(f"error: --memory-setting {item!r}: expected KEY=VALUE with KEY one of {sorted(keys)}")
        if isinstance(at[name], bool):  # a switch: on / off (true / false, 1 / 0)
            flag = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}.get(value.lower())
            if flag is None:
                sys.exit(f"error: --memory-setting {item!r}: expected on or off for {key}")
            at[name] = flag
            continue
        try:
            at[name] = type(at[name])(float(value)) if isinstance(at[name], (int, float)) else float(value)
        except ValueError:
            sys.exit(f"error: --memory-setting {item!r}: {value!r} is not a number")
    try:
        return MemorySettings.from_dict(d)
    except ValueError as e:
        sys.exit(f"error: --memory-setting: {e}")


def main():
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--first-scene", type=int, default=0,
                    help="held-out scenes from this one on (default 0: the figures in RESULTS.md; others, such as 100, "
                         "check a setting on scenes it was not chosen on)")
    ap.add_argument("--long", type=float, default=60.0, help="seconds of the drift walk (0: skip)")
    ap.add_argument("--long-scene", type=int, default=999,
                    help="the drift walk's held-out scene and path (default 999: the figures in RESULTS.md; others "
                         "check them on walks no setting was chosen on)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--kind", default=None)
    ap.add_argument("--shift", type=float, default=None)
    ap.add_argument("--seconds", type=float, default=None,
                    help="cut every trajectory to this many seconds (quick comparisons: 4 gives the same s1-4 "
                         "figures; the out-and-back return is then not reached)")
    ap.add_argument("--reproject", type=reproject_level, default=None,
                    help="start level of chunks begun from a reprojection (the memory's guess when it is on), or off "
                         "(default: the bundle's)")
    ap.add_argument("--window", type=int, default=1, help="softmax window of the session, in chunks")
    ap.add_argument("--colour-match", choices=("on", "off"), default="on",
                    help="the session's colour map fitted to the start image (default on, as the app runs)")
    ap.add_argument("--start-overlay", choices=("on", "off"), default="on",
                    help="the start image, reprojected, laid over the frames near where it was taken (default on, as "
                         "the app runs; the world memory takes its place when on)")
    ap.add_argument("--memory", choices=("on", "off"), default="on",
                    help="the world memory (default on when a depth network is at hand: the weights' own or the "
                         "embedded default's, as the app runs)")
    ap.add_argument("--sheet", default="benchmarks/world_quality_sheet.jpg")
    ap.add_argument("--exact-cache", default=None, help="a folder keeping the exact renders between runs")
    ap.add_argument("--start-view", choices=("on", "off"), default="on",
                    help="the memory's start view (world/start_view.py: the start image itself where a move magnifies "
                         "it); default on, as the app")
    ap.add_argument("--detail", choices=("on", "off"), default="on",
                    help="the memory's ground detail (world/detail.py: the start picture's ground texture where the "
                         "frame does not show the start picture); default on, as the app")
    ap.add_argument("--start-scale", type=float, default=1.0,
                    help="give the session the start view rendered at this many times the frame's resolution, as a "
                         "photograph is larger than the frame (default 1: the exact frame itself)")
    ap.add_argument("--start-depth", choices=("network", "exact"), default="network",
                    help="the start picture's depth: the depth network's guess (default, as for a photograph), or the "
                         "renderer's own (as the app's start scenes carry it: world/images.Picture)")
    ap.add_argument("--memory-setting", action="append", default=[], metavar="KEY=VALUE",
                    help="a memory setting (world/memory.MemorySettings) other than the bundle's, as a number, for a "
                         "probe (repeatable), e.g. generated_depth_scale=4")
    a = ap.parse_args()
    global EXACT_CACHE, START_SCALE, START_DEPTH
    EXACT_CACHE = Path(a.exact_cache) if a.exact_cache else None
    if not 0 <= a.first_scene < 998 - a.scenes:  # scene 999 is the long walk's
        sys.exit(f"error: --first-scene {a.first_scene}: expected 0 to {997 - a.scenes} (scene 999 is the long walk's)")
    if a.scenes < 0 or (a.scenes == 0 and a.long <= 0):
        sys.exit(f"error: --scenes {a.scenes} --long {a.long:g}: expected scenes >= 0 and, with none, a long walk")
    if not a.first_scene + a.scenes <= a.long_scene < 100_000:
        sys.exit(f"error: --long-scene {a.long_scene}: expected {a.first_scene + a.scenes} to 99999 (not one of the "
                 f"short walks' scenes)")
    if not 1 <= a.start_scale <= 8:
        sys.exit(f"error: --start-scale {a.start_scale}: expected a scale from 1 to 8")
    START_SCALE = a.start_scale
    START_DEPTH = a.start_depth
    depth, mem_settings = None, None
    try:
        if a.random_weights:
            model, vae = random_world("tiny")
            extra = {}
        else:
            model, vae, extra = load_bundle(a.weights or DEFAULT_BUNDLE)
            depth = load_depth(a.weights or DEFAULT_BUNDLE)
        if depth is None and DEFAULT_BUNDLE.is_file():  # as the app: the embedded default's depth network
            depth = load_depth(DEFAULT_BUNDLE)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    sam = dict(extra.get("sampler", {}))
    for k in ("steps", "kind", "shift"):
        if getattr(a, k) is not None:
            sam[k] = getattr(a, k)
    sam = with_reproject(sam, a.reproject)
    if a.memory == "on" and depth is not None:
        mem_settings = MemorySettings.from_dict(extra.get("memory", {}))
        if a.start_view == "off":
            mem_settings = MemorySettings.from_dict({**mem_settings.to_dict(), "start_scale": 0})
        if a.detail == "off":
            mem_settings = MemorySettings.from_dict({**mem_settings.to_dict(), "detail": 0})
        if a.reproject is not None:
            mem_settings = MemorySettings.from_dict({**mem_settings.to_dict(),
                                                     "guess": None if a.reproject == "off" else a.reproject})
        if a.memory_setting:
            mem_settings = with_settings(mem_settings, a.memory_setting)

    def make_session(overlay: bool) -> Session:
        return Session(model, vae, SamplerConfig(**sam), window_chunks=a.window, colour_match=a.colour_match == "on",
                       start_overlay=overlay, memory=mem_settings, depth=depth)

    session = make_session(a.start_overlay == "on")
    fps = model.cfg.fps
    print(f"world quality: {a.weights or ('random' if a.random_weights else 'default')} | sampler {sam} | "
          f"memory {'on' if mem_settings else 'off'}"
          f"{f' (guess {mem_settings.guess})' if mem_settings else ''} | window {a.window} | "
          f"colour match {a.colour_match} | start overlay {a.start_overlay} | start view {a.start_view} | "
          f"detail {a.detail if mem_settings else 'off'} | "
          f"ground colour {'on' if mem_settings and mem_settings.ground else 'off'} | "
          f"{''.join(f'{m} | ' for m in a.memory_setting) if mem_settings else ''}"
          f"{f'walks cut to {a.seconds:g} s | ' if a.seconds else ''}"
          f"{f'start image {a.start_scale:g}x | ' if a.start_scale != 1 else ''}"
          f"{'start depth exact | ' if a.start_depth == 'exact' else ''}"
          f"{cpu_header()} | {torch.get_num_threads()} threads | {time.strftime('%Y-%m-%d')}")
    names = list(MOVING[:4]) + ["out_and_back", "random"]
    if a.seconds:  # the loop's return is not reached
        names.remove("out_and_back")
    results: dict[str, list[dict]] = {n: [] for n in names}
    gen_time, gen_frames = 0.0, 0
    ceiling, real_means, sheet_rows, returns, revisits, steadiness, replays = [], [], [], [], [], [], []
    for s in range(a.scenes):
        scene = Scene(HELD_OUT + a.first_scene + s)
        for name in names:
            if name == "random":
                c2w = random_walk(4 * fps + 1, np.random.default_rng(HELD_OUT + a.first_scene + s))
            else:
                c2w = load_builtin(name).relative_to_first().c2w
            if a.seconds:
                c2w = c2w[:int(a.seconds * fps) + 1]
            gen, exact, dt = walk(session, scene, c2w)
            gen_time += dt
            gen_frames += len(gen) - 1
            real_means.append(channel_means(exact))
            m = per_frame(gen, exact)
            results[name].append(window(m, fps, 0, 4))
            if name != "out_and_back":
                rt = vae_round_trip(vae, exact[:4 * fps + 1], session.colour_match)
                ceiling.append(np.mean([psnr(rt[i], exact[i]) for i in range(1, len(rt))]))
            else:
                # the return pose is the start pose: with the start overlay on, the frame shown there is the image
                # itself; the walk's memory is scored without it
                ret = walk(make_session(False), scene, c2w)[0][-1] if session.start_overlay else gen[-1]
                returns.append((psnr(ret, exact[0]), psnr(exact[-1], exact[0]), psnr(gen[-1], exact[0])))
            if s == 0 and name in ("walk_forward", "orbit", "look_around", "strafe"):
                sheet_rows.append((gen[:4 * fps + 1], exact[:4 * fps + 1]))
        c2w, pairs = look_left_right_left(fps, seconds=min(5.0, a.seconds or 5.0))
        gen, exact, _ = walk(make_session(False), scene, c2w)
        revisits.append((np.mean([psnr(gen[i], gen[j]) for i, j in pairs]),
                         np.mean([psnr(gen[i], exact[i]) for i, j in pairs]),
                         np.mean([psnr(exact[i], exact[j]) for i, j in pairs])))
        intr = from_fov(*session.size_wh, DEFAULT_FOV)
        steadiness.append((turn_steadiness(gen, c2w, intr), turn_steadiness(exact, c2w, intr)))
        c2w, pairs = look_left_right_left(fps, seconds=min(5.0, a.seconds or 5.0), replay=True)
        gen, exact, _ = walk(make_session(False), scene, c2w)
        replays.append((np.mean([psnr(gen[i], gen[j]) for i, j in pairs]),
                        np.mean([psnr(exact[i], exact[j]) for i, j in pairs])))

    if a.scenes:  # (--scenes 0: only the long walk)
        print("\n| trajectory | s1-4 PSNR (copy-first) | SSIM (copy-first) | sharpness full | sharpness 1/4 | foggy "
              "frames |\n|---|---:|---:|---:|---:|---:|")
        for name in names:
            r = {k: np.nanmean([x[k] for x in results[name]]) for k in results[name][0]}
            print(f"| {name} | {r['psnr']:.2f} ({r['base_psnr']:.2f}) | {r['ssim']:.3f} ({r['base_ssim']:.3f}) | "
                  f"{r['sharp']:.3f} | {r['sharp4']:.3f} | {100 * r['foggy']:.0f} % |")
        mv = [x for n in MOVING if n in results for x in results[n]]
        g = {k: np.nanmean([x[k] for x in mv]) for k in mv[0]}
        print(f"\nturning-and-moving walks, seconds 1-4: model {g['psnr']:.2f} dB vs copy-first-frame "
              f"{g['base_psnr']:.2f} dB ({g['psnr'] - g['base_psnr']:+.2f} dB); SSIM {g['ssim']:.3f} vs "
              f"{g['base_ssim']:.3f}; sharpness {g['sharp']:.3f} full, {g['sharp4']:.3f} at 1/4; foggy frames "
              f"{100 * g['foggy']:.0f} %; lattice {g['lattice']:+.2f} dB"
              + (f" ({100 * g['flat']:.1f} % of frames flat, left out of the sharpness figures)" if g["flat"] else ""))
        print(f"VAE round trip of the exact frames, same walks and seconds (what decoded pixels can reach): "
              f"{np.mean(ceiling):.2f} dB{' (colour-matched as the session)' if session.colour_match else ''}")
        if returns:
            print(f"out-and-back: return frame vs the true start view {np.mean([r[0] for r in returns]):.2f} dB "
                  f"with the start overlay off (exact return view vs start: {np.mean([r[1] for r in returns]):.2f} "
                  f"dB; as shown, overlay {a.start_overlay}: {np.mean([r[2] for r in returns]):.2f} dB)")
        print(f"revisit (look left, right, left again; start overlay off): frames at the same pose vs each other "
              f"{np.mean([r[0] for r in revisits]):.2f} dB (vs the exact view "
              f"{np.mean([r[1] for r in revisits]):.2f} dB; exact vs exact {np.mean([r[2] for r in revisits]):.1f} dB)")
        print(f"revisit at exactly the same pose (look left, right, back, and left again through the first turn's "
              f"poses; start overlay off): {np.mean([r[0] for r in replays]):.2f} dB (exact vs exact "
              f"{np.mean([r[1] for r in replays]):.1f} dB)")
        print(f"turn steadiness (the same walk: each frame vs the one before carried through the turn, where both "
              f"see): {np.mean([r[0] for r in steadiness]):.2f} dB (exact frames: "
              f"{np.mean([r[1] for r in steadiness]):.2f} dB)")
        print(f"generation: {gen_frames} frames in {gen_time:.1f} s = {gen_frames / gen_time:.1f} fps "
              f"({gen_frames / gen_time / fps:.2f}x real time)")
    if a.long > 0:
        scene = Scene(HELD_OUT + a.long_scene)
        c2w = random_walk(int(a.long * fps) + 1, np.random.default_rng(HELD_OUT + a.long_scene))
        gen, exact, dt = walk(session, scene, c2w)
        m = per_frame(gen, exact)
        first, last = window(m, fps, 0, 10), window(m, fps, max(0.0, a.long - 10), a.long + 1)
        means, ex_means = channel_means(gen), channel_means(exact)
        print(f"{a.long:.0f} s walk (scene {a.long_scene}): PSNR first 10 s {first['psnr']:.2f} dB, last 10 s "
              f"{last['psnr']:.2f} dB (difference {last['psnr'] - first['psnr']:+.2f} dB); sharpness first 10 s "
              f"{first['sharp']:.3f}, last 10 s {last['sharp']:.3f} (foggy {100 * last['foggy']:.0f} %); NaN-free "
              f"{np.isfinite(gen).all()}; "
              f"frame std min {gen.reshape(len(gen), -1).std(1).min():.1f}; mean colour range generated "
              f"{means.min():.1f}-{means.max():.1f} vs exact {ex_means.min():.1f}-{ex_means.max():.1f}; "
              f"{(len(gen) - 1) / dt:.1f} generated fps")
        real = np.concatenate(real_means + [ex_means])
        inside = real.min() <= means.min() and means.max() <= real.max()
        print(f"mean colour range of every exact frame of this benchmark ({len(real)} frames, {a.scenes + 1} "
              f"scenes): {real.min():.1f}-{real.max():.1f}; the {a.long:.0f} s walk's generated range is "
              f"{'inside' if inside else 'outside'} it")
    if sheet_rows and a.sheet:
        Image.fromarray(contact_sheet(sheet_rows, fps)).save(a.sheet, quality=90)
        print(f"contact sheet: {a.sheet} (scene 0: walk_forward, orbit, look_around, strafe; per walk the frames "
              f"shown above the exact ones, every 0.5 s from the start)")


if __name__ == "__main__":
    main()
