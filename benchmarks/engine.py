"""Streaming engine: per-chunk latency by phase, generated fps against real time, state size and peak memory.

    python benchmarks/engine.py --preset tiny --chunks 20                      # latency table, untrained weights
    python benchmarks/engine.py --preset tiny --minutes 10 --steps 1           # memory vs rollout length
    python benchmarks/engine.py --weights assets/default_world.safetensors     # the shipped model

The walk goes forward while turning slowly, so every chunk has new camera input. Peak memory: the process's peak
resident set (ru_maxrss) on CPU, torch.cuda.max_memory_allocated on CUDA.
"""
from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import cpu_header  # noqa: E402
from world_quality import with_settings  # noqa: E402
from worldwalk.app.runtime import keep_freed_memory  # noqa: E402
from worldwalk.world.bundle import DEFAULT_BUNDLE, PRESET_VAE, load_bundle, load_depth, random_world  # noqa: E402
from worldwalk.world.checkpoint import CheckpointError  # noqa: E402
from worldwalk.world.images import DEPTH_SUFFIXES, open_picture  # noqa: E402
from worldwalk.world.memory import MemorySettings  # noqa: E402
from worldwalk.world.sampler import SamplerConfig, reproject_level, with_reproject  # noqa: E402
from worldwalk.world.session import Session  # noqa: E402


def walk_poses(k: int, n: int, fps: int, turn: bool = False) -> np.ndarray:
    """Chunk k of a walk at 1.2 m/s turning 10 °/s, or (turn) of turning in place at 30 °/s."""
    i = np.arange(n) + 1 + k * n
    t = i / fps
    yaw = np.radians(30.0 if turn else 10.0) * t
    out = np.tile(np.eye(4), (n, 1, 1))
    c, s = np.cos(yaw), np.sin(yaw)
    out[:, 0, 0], out[:, 0, 2], out[:, 2, 0], out[:, 2, 2] = c, s, -s, c
    if not turn:
        out[:, 0, 3] = 1.2 * np.cumsum(np.sin(yaw)) / fps
        out[:, 2, 3] = 1.2 * t
    return out


# --parts: the world memory's parts, each timed where the session calls it (phase, label, where it lives, its name)
PARTS = (("memory_render", "splat (z-buffer and composite)", "worldwalk.world.memory", "splat"),
         ("memory_render", "stamp and pinned map", "worldwalk.world.memory", "mark"),
         ("reproject", "guess: hole filling", "worldwalk.world.session", "pull_push"),
         ("reproject", "guess: encode", "vae", "encode_next"),
         ("memory_blend", "coverage feather", "worldwalk.world.session", "feathered"),
         ("memory_blend", "start view", "worldwalk.world.start_view.StartView", "warp"),
         ("memory_blend", "start view: solve", "worldwalk.world.start_view", "solve"),
         ("memory_blend", "start view: colour", "worldwalk.world.start_view", "colour"),
         ("memory_blend", "start view: feather", "worldwalk.world.start_view", "feather"),
         ("memory_blend", "sky", "worldwalk.world.sky.SkyProfile", "blend"),
         ("memory_blend", "ground colour", "worldwalk.world.ground_colour.GroundColour", "correct"),
         ("memory_blend", "ground detail", "worldwalk.world.detail.GroundDetail", "add_to"),
         ("memory_add", "depth of the new frame", "_frames_depth", "predict"),
         ("memory_add", "lift", "worldwalk.world.memory.WorldMemory", "add"))


def time_parts(session: Session) -> dict[str, float]:
    """Wrap each of PARTS with a timer (an inner call of the same part, such as the depth network's own downscaled
    pass, counts once) -> the dict the timers add seconds to."""
    import importlib

    acc: dict[str, float] = {}
    for _, label, where, name in PARTS:
        if where in ("vae", "_frames_depth"):  # the session's own
            owner = getattr(session, where)
        else:  # a module, or a class in one
            try:
                owner = importlib.import_module(where)
            except ImportError:
                module, _, cls = where.rpartition(".")
                owner = getattr(importlib.import_module(module), cls)
        fn, busy = getattr(owner, name), [0]

        def timed(*args, _fn=fn, _label=label, _busy=busy, **kw):
            _busy[0] += 1
            t = time.perf_counter()
            try:
                return _fn(*args, **kw)
            finally:
                _busy[0] -= 1
                if not _busy[0]:
                    acc[_label] = acc.get(_label, 0.0) + time.perf_counter() - t
        setattr(owner, name, timed)
    return acc


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main():
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESET_VAE),
                    help="untrained weights of this size (without --weights)")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=None, help="walk length instead of --chunks")
    ap.add_argument("--steps", type=int, default=None,
                    help="denoising steps per chunk (default: the bundle's, as the app runs; 4 without one)")
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--reproject", type=reproject_level, default=None,
                    help="the sampler's reprojection start level, or off (default: the bundle's; off without one)")
    ap.add_argument("--walk", choices=("walk", "turn"), default="walk",
                    help="walk: 1.2 m/s turning 10 °/s (too fast to reproject); turn: in place at 30 °/s (every "
                         "latent starts from a reprojection when the sampler reprojects)")
    ap.add_argument("--start-overlay", choices=("on", "off"), default="on",
                    help="the start image laid over the frames near where it was taken (default on, as the app runs)")
    ap.add_argument("--parts", action="store_true",
                    help="also time the world memory's parts (render, guess, blend, add) where the session calls them")
    ap.add_argument("--memory-setting", action="append", default=[], metavar="KEY=VALUE",
                    help="a memory setting other than the bundle's, as a number or on / off, for a probe "
                         "(repeatable; as world_quality.py)")
    ap.add_argument("--memory", choices=("on", "off"), default="on",
                    help="the world memory (default on when a depth network is at hand: the weights' own or the "
                         "embedded default's, as the app runs)")
    ap.add_argument("--start-view", choices=("on", "off"), default="on",
                    help="the memory's start view (the start picture here is 400x300, larger than the frame)")
    ap.add_argument("--image", default=None,
                    help="the start picture (default: the app's, the first of assets/scenes; noise: a random 400x300 "
                         "picture, as the figures before 2026-12-05 were taken: no level ground, so no ground detail)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    sam = {}
    depth, extra = None, {}
    try:
        if a.weights:
            model, vae, extra = load_bundle(a.weights, a.device, dtype)
            depth = load_depth(a.weights, a.device)
            sam = dict(extra.get("sampler", {}))  # the bundle's sampler, as the app runs it
            what = a.weights
        else:
            model, vae = random_world(a.preset)
            model, vae = model.to(a.device, dtype), vae.to(a.device)
            what = f"{a.preset} (untrained weights)"
        if depth is None and DEFAULT_BUNDLE.is_file():  # as the app: the embedded default's depth network
            depth = load_depth(DEFAULT_BUNDLE, a.device)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    if a.steps is not None or "steps" not in sam:
        sam["steps"] = a.steps or 4
    sam = with_reproject(sam, a.reproject)
    memory = None
    if a.memory == "on" and depth is not None:
        memory = MemorySettings.from_dict(extra.get("memory", {}))
        if a.reproject is not None:
            memory = MemorySettings.from_dict({**memory.to_dict(),
                                               "guess": None if a.reproject == "off" else a.reproject})
        if a.start_view == "off":
            memory = MemorySettings.from_dict({**memory.to_dict(), "start_scale": 0})
        if a.memory_setting:
            memory = with_settings(memory, a.memory_setting)
    s = Session(model, vae, SamplerConfig(**sam), window_chunks=a.window, device=a.device, dtype=dtype,
                start_overlay=a.start_overlay == "on", memory=memory, depth=depth)
    scenes = sorted(p for p in (Path(__file__).resolve().parents[1] / "assets" / "scenes").glob("*.png")
                    if not p.name.endswith(DEPTH_SUFFIXES))  # (a scene's depth map is not a scene)
    image = a.image or (str(scenes[0]) if scenes else "noise")
    if image == "noise":
        img = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
    else:
        img = image
    try:
        img = open_picture(img)  # with its depth map beside it, as the app starts it
        s.start(img)
    except ValueError as e:
        sys.exit(f"error: {e}")
    fps, n = model.cfg.fps, s.frames_per_step
    chunks = a.chunks if a.minutes is None else int(np.ceil(a.minutes * 60 * fps / n))
    timings, state, parts = [], {}, []
    acc = time_parts(s) if a.parts and memory is not None else None
    t0 = time.perf_counter()
    for k in range(chunks):
        if acc is not None:
            acc.clear()
        s.step(walk_poses(k, n, fps, a.walk == "turn"))
        timings.append(s.last_timing)
        if acc is not None:
            parts.append(dict(acc))
        if k + 1 in (1, 10, 100, 1000) or k + 1 == chunks:
            state[k + 1] = s.state_nbytes()
    wall = time.perf_counter() - t0
    H, W = model.cfg.resolution
    print(f"engine: {what} | {a.device} {a.dtype} | {torch.get_num_threads()} threads | {platform.machine()} "
          f"{cpu_header()} | torch {torch.__version__} | {W}x{H} | {sam['steps']} steps | reproject "
          f"{sam.get('reproject') or 'off'} | memory "
          f"{'off' if memory is None else f'on (guess {memory.guess})'} | "
          f"{''.join(f'{m} | ' for m in a.memory_setting) if memory else ''}start view "
          f"{'on' if s.start_view is not None else 'off'} | {a.walk} | window {a.window} | "
          f"image {image if image == 'noise' else Path(image).name}"
          f"{' + its depth map' if s.depth_sha256 else ''} | "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"{chunks} chunks x {n} frames = {chunks * n} frames ({chunks * n / fps:.1f} s of video) in {wall:.1f} s")
    skip = 1 if chunks > 2 else 0  # the first chunk holds the start latent and warms up
    print("\n| phase | median ms / chunk | p90 ms |\n|---|---:|---:|")
    for phase in ("memory_render", "reproject", "denoise", "cache_write", "decode", "memory_blend", "overlay",
                  "memory_add", "total"):
        v = sorted(t.get(phase, 0.0) * 1000 for t in timings[skip:])
        print(f"| {phase} | {statistics.median(v):.1f} | {v[int(0.9 * (len(v) - 1))]:.1f} |")
    med = statistics.median(t["total"] for t in timings[skip:])
    if memory is not None:
        mems = [sum(t.get(k, 0.0) for k in ("memory_render", "reproject", "memory_blend", "memory_add"))
                for t in timings[skip:]]
        mem = statistics.median(mems)
        # each chunk's own share as well: the VM's speed drifts within a run, and a chunk's memory and total drift
        # together, where the two medians above may come from different chunks
        q1, q2, q3 = statistics.quantiles([m / t["total"] for m, t in zip(mems, timings[skip:])], n=4) \
            if len(mems) > 1 else [mems[0] / timings[skip]["total"]] * 3
        print(f"\nworld memory (render + guess encode + blend + add): {1000 * mem:.1f} ms = {100 * mem / med:.0f} % "
              f"of the median chunk (a chunk's own share: median {100 * q2:.1f} %, quartiles {100 * q1:.1f}-"
              f"{100 * q3:.1f} %)")
        if parts:
            print("\n| memory part (phase) | median ms / chunk |\n|---|---:|")
            for phase, label, _, _ in PARTS:
                v = [p.get(label, 0.0) * 1000 for p in parts[skip:]]
                print(f"| {label} ({phase}) | {statistics.median(v):.1f} |")
    print(f"\ngenerated fps: {n / med:.1f} (real time = {fps} fps: {n / med / fps:.2f}x real time)")
    print("state bytes after chunk " + ", ".join(f"{k}: {v:,}" for k, v in state.items()))
    print(f"peak memory: {peak_memory_mb(a.device):.0f} MiB")


if __name__ == "__main__":
    main()
