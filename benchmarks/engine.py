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
    scenes = sorted((Path(__file__).resolve().parents[1] / "assets" / "scenes").glob("*.png"))
    image = a.image or (str(scenes[0]) if scenes else "noise")
    if image == "noise":
        img = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
    else:
        img = image
    try:
        s.start(img)
    except ValueError as e:
        sys.exit(f"error: {e}")
    fps, n = model.cfg.fps, s.frames_per_step
    chunks = a.chunks if a.minutes is None else int(np.ceil(a.minutes * 60 * fps / n))
    timings, state = [], {}
    t0 = time.perf_counter()
    for k in range(chunks):
        s.step(walk_poses(k, n, fps, a.walk == "turn"))
        timings.append(s.last_timing)
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
          f"image {image if image == 'noise' else Path(image).name} | "
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
        mem = statistics.median(sum(t.get(k, 0.0) for k in ("memory_render", "reproject", "memory_blend",
                                                               "memory_add")) for t in timings[skip:])
        print(f"\nworld memory (render + guess encode + blend + add): {1000 * mem:.1f} ms = {100 * mem / med:.0f} % "
              f"of the median chunk")
    print(f"\ngenerated fps: {n / med:.1f} (real time = {fps} fps: {n / med / fps:.2f}x real time)")
    print("state bytes after chunk " + ", ".join(f"{k}: {v:,}" for k, v in state.items()))
    print(f"peak memory: {peak_memory_mb(a.device):.0f} MiB")


if __name__ == "__main__":
    main()
