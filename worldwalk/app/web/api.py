"""The demo's API handlers (gradio_client): the same engine and the same cap on concurrent walks as the page.

    start_walk(image, seed, scene) -> walk_id, first frame (PNG), info {frames_per_step, fps, size, ...}
    step_walk(walk_id, poses)      -> MP4 of the frames, .npy of the exact frames (N, H, W, 3) uint8, info
    end_walk(walk_id)              -> message
    render(image, trajectory_file, trajectory, seed, fov, scene) -> MP4, sidecar JSON, info

`render` runs the render CLI's own path (app.render: fit_path, start_on_path, record_walk), so an API render and
`launch.py render` of the same image, path and seed give the same frames. Every error is one gr.Error line with no
server path in it (files.scrub).
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np

from worldwalk.app.recorder import recording_info
from worldwalk.app.render import fit_path, record_walk, start_on_path
from worldwalk.app.video import VideoWriter
from worldwalk.app.web.files import REFUSED, Uploads, scrub
from worldwalk.app.web.scenes import Scene, find_scene
from worldwalk.app.web.uploads import parse_seed, read_upload
from worldwalk.app.web.walks import Busy, WalkGone, WalkManager


def api_error(e: Exception):
    raise gr.Error(scrub(e), print_exception=False)


def parse_poses(text: str) -> np.ndarray:
    """step_walk's poses: JSON (N, 4, 4), a single 4x4, or {"c2w": ...} / {"poses": ...}. -> float64 (N, 4, 4)."""
    try:
        obj = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as e:
        raise ValueError(f"poses: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(obj, dict):
        obj = obj.get("c2w", obj.get("poses"))
    try:
        p = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("poses: expected a JSON list of 4x4 matrices") from None
    if p.ndim == 2 and p.shape == (4, 4):
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != (4, 4):
        raise ValueError(f"poses: shape {p.shape}; expected (N, 4, 4) camera-to-world matrices")
    return p


class ApiHandlers:
    """One method per endpoint. uploads(): the demo's Uploads (known once the app is mounted)."""

    def __init__(self, manager: WalkManager, scenes: list[Scene], size_wh: tuple[int, int],
                 uploads: Callable[[], Uploads]):
        self.manager, self.scenes, self.size_wh, self.uploads = manager, scenes, size_wh, uploads
        self.lim = manager.limits
        self.outdir = manager.workdir / "api"
        self.outdir.mkdir(parents=True, exist_ok=True)

    def new_outdir(self) -> Path:
        d = self.outdir / uuid.uuid4().hex[:12]
        d.mkdir(parents=True)
        return d

    def image(self, image, scene) -> np.ndarray:
        if image:
            return read_upload(self.uploads(), image, "image", self.size_wh, self.lim.max_upload_bytes)[0]
        if scene:
            return find_scene(self.scenes, scene).picture
        raise ValueError("image: upload an image (gradio_client.handle_file) or name a start scene "
                         f"({', '.join(s.name for s in self.scenes)})")

    def start(self, image, seed, scene, request: gr.Request):
        """Start a walk at `image` (or the start scene named `scene`) -> (walk_id, first frame, info)."""
        try:
            data = self.image(image, scene)
            w, first = self.manager.start_api(request.session_hash, data, parse_seed(seed))
        except (ValueError, Busy) as e:
            api_error(e)
        s = w.session
        return w.token, first[0], {"walk_id": w.token, "frames_per_step": s.frames_per_step, "fps": s.cfg.fps,
                                   "size_wh": list(s.size_wh), "intrinsics": np.asarray(s.intrinsics).tolist(),
                                   "frame_index": s.frame_index, "seed": s.seed}

    def step(self, walk_id, poses):
        """Walk on along `poses` (JSON (N, 4, 4), N a multiple of frames_per_step) -> (MP4, frames .npy, info)."""
        manager, lim = self.manager, self.lim
        try:
            w = manager.get(walk_id, kind="api")
            p = parse_poses(poses)
            with manager.engine(), w.lock:
                s = w.session
                if s is None:
                    raise WalkGone("this walk has ended")
                n = s.frames_per_step
                if len(p) == 0 or len(p) % n:
                    raise ValueError(f"poses: {len(p)} poses; expected a multiple of {n} (frames_per_step)")
                if len(p) > lim.max_api_frames:
                    raise ValueError(f"poses: {len(p)} poses; at most {lim.max_api_frames} per call")
                w.touch()
                t0 = time.perf_counter()
                frames = []
                for i in range(0, len(p), n):
                    if manager.stopping:
                        raise Busy("the server is stopping; this walk has ended")
                    frames.append(s.step(p[i:i + n]))
                frames = np.concatenate(frames)
                elapsed = time.perf_counter() - t0
                w.touch()
                d = self.new_outdir()
                with VideoWriter(d / "frames.mp4", int(s.cfg.fps), s.size_wh) as v:
                    v.write(frames)
                np.save(d / "frames.npy", frames)
                info = {"walk_id": walk_id, "frames": len(frames), "frame_index": s.frame_index,
                        "frames_per_step": n, "seconds": round(elapsed, 3)}
        except (ValueError, WalkGone, Busy) as e:
            api_error(e)
        return str(d / "frames.mp4"), str(d / "frames.npy"), info

    def end(self, walk_id):
        """End a walk and free its memory."""
        try:
            self.manager.get(walk_id, kind="api")
        except WalkGone as e:
            api_error(e)
        self.manager.close(walk_id, "ended by the client")
        return f"walk {walk_id} ended"

    def trajectory(self, trajectory_file, trajectory):
        """render's camera path: an uploaded file, a built-in name or an action string."""
        from worldwalk.controls import load_trajectory, trajectory_from_actions
        from worldwalk.controls.builtin import BUILTINS, load_builtin

        text = (trajectory or "").strip()
        if trajectory_file:
            if not self.uploads().allowed(trajectory_file):
                raise ValueError(f"trajectory_file: {REFUSED}")
            try:
                return load_trajectory(trajectory_file)
            except ValueError as e:
                raise ValueError(f"trajectory_file: {scrub(e)}") from None
            except OSError as e:
                raise ValueError(f"trajectory_file: {Path(str(trajectory_file)).name}: cannot be read "
                                 f"({e.strerror or type(e).__name__})") from None
        if text in BUILTINS:
            return load_builtin(text)
        if text:
            return trajectory_from_actions(text)
        raise ValueError("trajectory: give a trajectory file, a built-in name "
                         f"({', '.join(BUILTINS)}) or an action string like \"w-8,wl-5\"")

    def render(self, image, trajectory_file, trajectory, seed, fov, scene):
        """Render a camera path from `image` (or the start scene `scene`) to MP4 -> (MP4, sidecar JSON, info)."""
        manager, lim = self.manager, self.lim

        def check():
            if manager.stopping:
                raise Busy("the server is stopping; the render was cut short")
        try:
            data = self.image(image, scene)
            seed = parse_seed(seed)
            traj = self.trajectory(trajectory_file, trajectory)
            with manager.job():
                session = manager.make_session()
                traj = fit_path(traj, session.cfg.fps)
                if traj.num_frames > lim.max_api_frames:
                    raise ValueError(f"trajectory: {traj.num_frames} frames; at most {lim.max_api_frames}")
                fov = float(fov) if fov not in (None, "", 0, 0.0) else None
                first, chunks = start_on_path(session, traj, data, seed, fov)
                d = self.new_outdir()
                info = recording_info(session, manager.world_desc, session.window_chunks, None)
                t0 = time.perf_counter()
                n = record_walk(session, chunks, traj, info, d / "render.mp4", first=(first, traj.c2w[:1]),
                                check=check)
                fps_out = float(session.cfg.fps)
                del session
        except (ValueError, Busy) as e:
            api_error(e)
        out = {"frames": n, "fps": fps_out, "seconds": round(time.perf_counter() - t0, 3), "seed": seed}
        return str(d / "render.mp4"), str(d / "render.json"), out
