"""`launch.py render`: a trajectory (or a recorded walk) rendered offline to MP4, with a sidecar JSON to replay it.

    python launch.py render --image IMG --trajectory TRAJ --out walk.mp4
    python launch.py render --replay walk.json --out again.mp4 --steps 8      # same walk, other sampler settings
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.app.recorder import Recorder, recording_info
from worldwalk.app.world_args import (add_world_args, colour_match_from, load_world, memory_from, sampler_from,
                                      start_overlay_from)
from worldwalk.controls import Trajectory, load_trajectory
from worldwalk.world.session import Session


def chunked_poses(c2w: np.ndarray, per_step: int) -> list[np.ndarray]:
    """Raw frames 1 … F−1 of a walk (frame 0 is the start image) in chunks; the last one padded with its last pose."""
    rest = c2w[1:]
    n = math.ceil(len(rest) / per_step)
    pad = n * per_step - len(rest)
    if pad:
        rest = np.concatenate([rest, np.repeat(rest[-1:], pad, 0)])
    return [rest[i * per_step:(i + 1) * per_step] for i in range(n)]


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="render a trajectory or a recorded walk to MP4")
    p.add_argument("--image", help="start image (PNG/JPEG/WebP)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trajectory", help="camera path: worldwalk JSON, transforms.json, RealEstate10K .txt, .npz, "
                                          ".npy, an action-string file, or a built-in name (walk_forward, orbit, …)")
    src.add_argument("--replay", help="a recording's sidecar JSON (from render or the explorer)")
    p.add_argument("--out", required=True, help="output .mp4; the sidecar JSON is written beside it")
    p.add_argument("--fov", type=float, default=None, help="horizontal field of view in degrees (overrides the file)")
    add_world_args(p)
    p.set_defaults(func=run)


def _trajectory(args) -> tuple[Trajectory, dict]:
    if args.replay:
        traj = load_trajectory(args.replay)
        rec = traj.metadata.get("worldwalk_recording")
        if not isinstance(rec, dict):
            raise ValueError(f"--replay {args.replay}: has no worldwalk_recording metadata; expected a sidecar JSON "
                             "written by render or the explorer")
        return traj, rec
    name = args.trajectory
    if not Path(name).exists():
        from worldwalk.controls.builtin import BUILTINS, load_builtin
        if name in BUILTINS:
            return load_builtin(name), {}
    return load_trajectory(name), {}


def run(args) -> int:
    traj, rec = _trajectory(args)
    image = args.image or rec.get("image")
    if not image:
        raise ValueError("--image: required (the recording names no start image)")
    model, vae, world_desc = load_world(args, rec)  # a recorded prompt is used again
    sampler = sampler_from(args, rec.get("sampler"))
    seed = args.seed if args.seed is not None else int(rec.get("seed", 0))
    fps = model.cfg.fps
    if abs(traj.fps - fps) > 1e-9:
        traj = traj.resample(fps)
    traj = traj.relative_to_first()

    memory, depth = memory_from(args, rec)
    session = Session(model, vae, sampler, window_chunks=args.window, device=args.device,
                      dtype=getattr(torch, args.dtype), colour_match=colour_match_from(args, rec),
                      start_overlay=start_overlay_from(args, rec), memory=memory, depth=depth)
    # the file's camera, carried from the file's image size to the model's frame (resize + centre crop)
    intr = None
    if args.fov is None and "intrinsics" not in traj.metadata.get("defaults", []):
        intr = traj.resized(session.size_wh).intrinsics[0]

    first = session.start(image, seed=seed, fov_deg=args.fov, frame_intrinsics=intr)
    if rec.get("image_sha256") and rec["image_sha256"] != session.image_sha256:
        raise ValueError(f"--image {image}: is not the recording's start image (pixel hash differs)")
    chunks = chunked_poses(traj.c2w, session.frames_per_step)
    rec_info = recording_info(session, world_desc, args.window, image)
    total = traj.num_frames
    t0 = time.perf_counter()
    with Recorder(args.out, fps, session.size_wh, session.intrinsics, rec_info) as recorder:
        recorder.add(first, traj.c2w[:1])
        bar = tqdm(chunks, desc=f"render {Path(args.out).name}", unit="chunk", leave=False)
        for poses in bar:
            keep = total - recorder.frames
            recorder.add(session.step(poses)[:keep], poses[:keep])
            bar.set_postfix(fps=f"{(recorder.frames - 1) / (time.perf_counter() - t0):.1f}")
    elapsed = time.perf_counter() - t0
    n = recorder.frames
    print(f"wrote {recorder.path} ({n} frames, {n / fps:.1f} s at {fps} fps) and {recorder.sidecar} in "
          f"{elapsed:.1f} s ({(n - 1) / elapsed:.1f} generated fps)")
    return 0
