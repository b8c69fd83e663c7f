"""`launch.py render`: a trajectory (or a recorded walk) rendered offline to MP4, with a sidecar JSON to replay it.

    python launch.py render --image IMG --trajectory TRAJ --out walk.mp4
    python launch.py render --replay walk.json --out again.mp4 --steps 8      # same walk, other sampler settings

A recording started mid-walk (the explorer's R, the web demo's Record) has a start snapshot beside its sidecar
(walk-01.start.safetensors, named in the sidecar): the replay restores it and steps the recorded poses, so the frames
are the recording's own, bit for bit, on the same device and settings.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.app.recorder import Recorder, recording_info, start_snapshot_path
from worldwalk.app.runtime import SlowStartNotice
from worldwalk.app.video import require_pyav
from worldwalk.app.world_args import add_world_args, check_seed, finite_number, world_factory
from worldwalk.controls import Trajectory, TrajectoryError, load_trajectory, trajectory_from_actions
from worldwalk.controls.actions import meant_as_actions
from worldwalk.world.images import Picture, open_picture
from worldwalk.world.session import FOV_RANGE, Session, Snapshot

IMAGES = "a PNG/JPEG/WebP image file"


def chunked_poses(c2w: np.ndarray, per_step: int, first: int = 1) -> list[np.ndarray]:
    """Raw frames first … F−1 of a walk in chunks; the last one padded with its last pose. first=1: frame 0 is the
    start image; first=0: every frame is generated (a replay that starts from a snapshot)."""
    rest = c2w[first:]
    n = math.ceil(len(rest) / per_step)
    pad = n * per_step - len(rest)
    if pad:
        rest = np.concatenate([rest, np.repeat(rest[-1:], pad, 0)])
    return [rest[i * per_step:(i + 1) * per_step] for i in range(n)]


def fov_degrees(text: str) -> float:
    """Command-line value of --fov: a finite horizontal field of view within what the model takes (FOV_RANGE)."""
    expected = f"a horizontal field of view from {FOV_RANGE[0]:g} to {FOV_RANGE[1]:g} degrees"
    v = finite_number(text, expected)
    if not FOV_RANGE[0] <= v <= FOV_RANGE[1]:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected {expected}")
    return v


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="render a trajectory or a recorded walk to MP4")
    p.add_argument("--image", help="start image (PNG/JPEG/WebP)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trajectory", help="camera path: worldwalk JSON, transforms.json, RealEstate10K .txt, .npz, "
                                          ".npy, an action-string file (.actions or .txt), an action string such as "
                                          "w-30,jw-10, or a built-in name (walk_forward, orbit, …)")
    src.add_argument("--replay", help="a recording's sidecar JSON (from render, the explorer or the web demo), or "
                                      "the .jsonl journal a crashed recording left")
    p.add_argument("--out", required=True, help="output .mp4; the sidecar JSON is written beside it")
    p.add_argument("--fov", type=fov_degrees, default=None,
                   help="horizontal field of view in degrees (overrides the file)")
    add_world_args(p)
    p.set_defaults(window=None)  # a replay keeps the recording's window unless --window is given
    p.error = _usage_error  # one "error:" line like every other render error, not argparse's usage block
    p.set_defaults(func=run)


def _usage_error(message: str):
    """argparse's error hook for render: one line on stderr, exit code 2 (before anything is loaded or written)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _file(option: str, name: str, expected: str) -> Path:
    """An input file given by `option`: it must exist and be a file (not a directory)."""
    path = Path(name)
    if path.is_dir():
        raise ValueError(f"{option} {name}: is a directory; expected {expected}")
    if not path.is_file():
        raise ValueError(f"{option} {name}: no such file; expected {expected}")
    return path


def _load(option: str, path) -> Trajectory:
    """load_trajectory, its one-line "<file>: <problem>; expected ..." message led by the option that named the file."""
    try:
        return load_trajectory(path)
    except TrajectoryError as e:
        raise ValueError(f"{option} {e}") from None


def _start_snapshot(replay: str, rec: dict) -> Path | None:
    """A recording's start snapshot: the bare file name its sidecar gives, beside the sidecar (no other path is
    followed). None for a recording that starts at the start image."""
    name = rec.get("start_snapshot")
    if name is None:
        return None
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".start.safetensors"):
        raise ValueError(f"--replay {replay}: start_snapshot {name!r} is not a file name; expected the name of a "
                         ".start.safetensors file beside the sidecar")
    path = Path(replay).parent / name
    if not path.is_file():
        raise ValueError(f"--replay {replay}: its start snapshot {path} is missing; expected it beside the sidecar "
                         "(a recording started mid-walk replays from the walk's state when it started)")
    return path


def _trajectory(args) -> tuple[Trajectory, dict]:
    from worldwalk.controls.builtin import BUILTINS, load_builtin

    if args.replay:
        traj = _load("--replay", _file("--replay", args.replay, "a recording's sidecar JSON"))
        rec = traj.metadata.get("worldwalk_recording")
        if not isinstance(rec, dict):
            raise ValueError(f"--replay {args.replay}: has no worldwalk_recording metadata; expected a sidecar JSON "
                             "written by render or the explorer")
        return traj, rec
    name = args.trajectory
    accepted = (f"a trajectory file (worldwalk JSON, transforms.json, RealEstate10K .txt, .npz, .npy, .actions), "
                f"a built-in name ({', '.join(BUILTINS)}) or an action string like 'w-30,jw-10'")
    if Path(name).is_dir():
        raise ValueError(f"--trajectory {name}: is a directory; expected {accepted}")
    if Path(name).exists():
        return _load("--trajectory", name), {}
    if name in BUILTINS:
        return load_builtin(name), {}
    if meant_as_actions(name):
        try:
            return trajectory_from_actions(name), {}
        except ValueError as e:  # "action string: <problem>"
            raise ValueError(f"--trajectory {name}: {str(e).removeprefix('action string: ')}") from None
    raise ValueError(f"--trajectory {name}: no such file, built-in or action string; expected {accepted}")


def _check_out(out: str, inputs: list[str]) -> tuple[Path, Path]:
    """--out, before anything is written: a .mp4 name (not a directory) in an existing folder this process can write
    to, whose sidecar (the same name with .json) is not a directory nor one of the inputs. -> (video, sidecar)."""
    path = Path(out)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"--out {out}: expected a .mp4 file name")
    require_pyav()  # (the world loads and starts only after this)
    if path.is_dir():
        raise ValueError(f"--out {out}: is a directory; expected a .mp4 file name to write")
    if path.exists() and not path.is_file():
        raise ValueError(f"--out {out}: is not a regular file; expected a .mp4 file name to write")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise ValueError(f"--out {out}: {folder}: {what}; expected a .mp4 file name in an existing, writable folder")
    sidecar = path.with_suffix(".json")
    if sidecar.is_dir():
        raise ValueError(f"--out {out}: its sidecar {sidecar} is a directory; expected a free name for the sidecar JSON")
    for name in inputs:
        # the sidecar, the journal kept while recording, and the start snapshot of a replay from one
        for mine in (sidecar, path.with_suffix(".jsonl"), start_snapshot_path(path)):
            if name and Path(name).is_file() and mine.resolve() == Path(name).resolve():
                raise ValueError(f"--out {out}: its sidecar {mine} would overwrite the input {name}; expected another "
                                 "--out name")
    try:  # the folder must take a new file (root passes os.access even on /proc or a read-only mount)
        fd, probe = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise ValueError(f"--out {out}: cannot write there ({e.strerror or type(e).__name__}); expected a .mp4 file "
                         "name in an existing, writable folder") from None
    return path, sidecar


def _stamp(path: Path):
    """What identifies a file's current content: (inode, size, mtime), or None when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _discard(recorder, before: dict[Path, tuple | None]) -> None:
    """A render that failed midway: close the half-written video and remove what this render wrote (its MP4, its
    sidecar and the sidecar's temporary file), so no partial output looks like a finished recording. Files that were
    there before and were not touched stay."""
    container = getattr(getattr(recorder, "video", None), "container", None)
    if container is not None:
        with contextlib.suppress(Exception):  # the render's own error is the one to report
            container.close()
    for path, stamp in before.items():
        if path.exists() and _stamp(path) != stamp:
            with contextlib.suppress(OSError):
                path.unlink()


def _check_device(name: str) -> None:
    """--device: cpu, or a CUDA device this machine has (torch would fail later with a traceback)."""
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name}: unknown device; expected cpu or cuda (cuda:N)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ValueError(f"--device {name}: no CUDA device here; expected cpu")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s); expected cuda:0 to "
                             f"cuda:{count - 1}")
    elif dev.type != "cpu":
        raise ValueError(f"--device {name}: expected cpu or cuda (cuda:N)")


def run(args) -> int:
    # every option and input is checked before anything is loaded or written
    _check_device(args.device)
    traj, rec = _trajectory(args)
    start_path = _start_snapshot(args.replay, rec) if args.replay else None
    out, sidecar = _check_out(args.out, [args.replay, args.trajectory, start_path and str(start_path)])
    if args.window is None:
        window = rec.get("window_chunks", 1)
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ValueError(f"--replay {args.replay}: window_chunks {window!r}; expected a whole number >= 1 (or "
                             "pass --window)")
        args.window = window
    if start_path is not None:
        for flag, value in (("--image", args.image), ("--seed", args.seed), ("--fov", args.fov)):
            if value is not None:
                raise ValueError(f"{flag}: this recording continues a walk from its start snapshot, which holds the "
                                 f"walk's image, noise and camera; expected no {flag} with it")
        return _run_from_snapshot(args, traj, rec, out, sidecar, start_path)
    if args.image:
        image = str(_file("--image", args.image, IMAGES))
    elif rec.get("image"):
        image = str(_file("the recording's start image", rec["image"], f"{IMAGES} (or pass --image)"))
    else:
        raise ValueError("--image: required (the recording names no start image)")
    seed = args.seed if args.seed is not None else check_seed(rec.get("seed", 0), "the recording's seed")
    make_session, world_desc = world_factory(args, rec)  # a recorded prompt and settings are used again
    session = make_session()
    traj = fit_path(traj, session.cfg.fps)
    # the picture's own depth map beside it (photo.depth.npy / .png: world/images.Picture), used by a render, and by
    # a replay where the recording used one (a recording made without one replays without it)
    want_depth = rec.get("start_depth_sha256")
    picture = open_picture(image) if want_depth or not args.replay else image
    if want_depth and not isinstance(picture, Picture):
        raise ValueError(f"--image {image}: the recording walked it with its depth map beside it "
                         f"({Path(image).stem}.depth.npy or .depth.png), which is missing")
    with SlowStartNotice():
        first, chunks = start_on_path(session, traj, picture, seed, args.fov)
    if rec.get("image_sha256") and rec["image_sha256"] != session.image_sha256:
        raise ValueError(f"--image {image}: is not the recording's start image (pixel hash differs)")
    if want_depth and want_depth != session.depth_sha256:
        raise ValueError(f"--image {image}: its depth map is not the one the recording walked it with (hash differs)")
    rec_info = recording_info(session, world_desc, args.window, image)
    return _write(session, chunks, traj, rec_info, out, sidecar, first=(first, traj.c2w[:1]))


def at_fps(traj: Trajectory, fps: float) -> Trajectory:
    """A camera path at the model's frame rate."""
    return traj.resample(fps) if abs(traj.fps - fps) > 1e-9 else traj


def fit_path(traj: Trajectory, fps: float) -> Trajectory:
    """A camera path at the model's frame rate, relative to its first pose (where the start image is)."""
    return at_fps(traj, fps).relative_to_first()


def start_on_path(session: Session, traj: Trajectory, image, seed: int, fov: float | None):
    """Start `session` at `image` for the path `traj` (from fit_path), with its camera: --fov, else the file's own
    intrinsics carried from its image size to the model's frame (resize + centre crop), else the default.
    -> (start frame (1, H, W, 3), chunks of poses for session.step)."""
    intr = None
    if fov is None and "intrinsics" not in traj.metadata.get("defaults", []):
        intr = traj.resized(session.size_wh).intrinsics[0]
    first = session.start(image, seed=seed, fov_deg=fov, frame_intrinsics=intr)
    return first, chunked_poses(traj.c2w, session.frames_per_step)


def _run_from_snapshot(args, traj: Trajectory, rec: dict, out: Path, sidecar: Path, start_path: Path) -> int:
    """A recording started mid-walk: restore the walk's state when it started, then step its poses (in the walk's own
    frame, not made relative to the first)."""
    snap = Snapshot.load(start_path)  # ValueError: one line naming the file
    make_session, world_desc = world_factory(args, rec)
    session = make_session()
    traj = at_fps(traj, session.cfg.fps)  # in the walk's own frame: not made relative to the first pose
    try:
        session.restore(snap)
    except ValueError as e:
        raise ValueError(f"--replay {args.replay}: its start snapshot {start_path.name} does not fit this world "
                         f"({str(e).removeprefix('snapshot: ')}); expected the recording's weights, --window and "
                         "--memory") from None
    chunks = chunked_poses(traj.c2w, session.frames_per_step, first=0)
    rec_info = recording_info(session, world_desc, args.window, rec.get("image"))
    return _write(session, chunks, traj, rec_info, out, sidecar, start=session.snapshot())


def _write(session: Session, chunks: list[np.ndarray], traj: Trajectory, rec_info: dict, out: Path, sidecar: Path,
           first=None, start=None) -> int:
    t0 = time.perf_counter()
    n = record_walk(session, chunks, traj, rec_info, out, first=first, start=start, progress=True)
    elapsed = time.perf_counter() - t0
    fps = session.cfg.fps
    print(f"wrote {out} ({n} frames, {n / fps:.1f} s at {fps} fps) and {sidecar} in "
          f"{elapsed:.1f} s ({(n - 1) / elapsed:.1f} generated fps)")
    return 0


def record_walk(session: Session, chunks: list[np.ndarray], traj: Trajectory, rec_info: dict, out: Path,
                first=None, start=None, check=None, progress: bool = False) -> int:
    """Step `chunks` and record the frames (after `first` = (frame, pose), if given; `start`: the start snapshot of a
    walk replayed from one) to `out` with its sidecar, trimmed to the path's length. check(): called before every
    chunk (it may raise to stop). On an error or Ctrl+C midway, what was written is removed. -> frames written."""
    fps = session.cfg.fps
    total = traj.num_frames
    sidecar = out.with_suffix(".json")
    tmp_sidecar = sidecar.with_name(sidecar.stem + ".tmp.json")  # Recorder.write_sidecar's
    journal = out.with_suffix(".jsonl")  # Recorder's crash journal
    before = {p: _stamp(p) for p in (out, sidecar, tmp_sidecar, journal, start_snapshot_path(out))}
    t0 = time.perf_counter()
    recorder = None
    try:
        recorder = Recorder(out, fps, session.size_wh, session.intrinsics, rec_info, start=start)
        if first is not None:
            recorder.add(*first)
        bar = tqdm(chunks, desc=f"render {out.name}", unit="chunk", leave=False, disable=not progress)
        for poses in bar:
            if check is not None:
                check()
            keep = total - recorder.frames
            recorder.add(session.step(poses)[:keep], poses[:keep])
            bar.set_postfix(fps=f"{(recorder.frames - 1) / (time.perf_counter() - t0):.1f}")
        recorder.close()
    except BaseException:  # an error or Ctrl+C midway: no partial MP4 + sidecar that look like a finished walk
        _discard(recorder, before)
        raise
    return recorder.frames
