"""Recording a walk: the frames to MP4 (incrementally, crash-safe) and a sidecar JSON to replay it.

The sidecar is a worldwalk trajectory file (per-frame c2w, intrinsics, fps, image size) whose metadata holds
`worldwalk_recording`: seed, preset, weights, sampler settings, softmax window and the start image's path and pixel
hash — enough for `launch.py render --replay walk.json` to render the same walk again, with other settings if asked.
It is rewritten (atomically) every `sidecar_every` frames and at close. Beside it, while the recording runs, a journal
`<name>.jsonl` gets the same settings on its first line and then one line of poses per `add` (a chunk), flushed as
the frames are written: after a crash (even `kill -9`) `launch.py render --replay <name>.jsonl` replays the walk up to
its last complete chunk. A recording that closes normally removes its journal.

A recording that starts from a walk in progress (the explorer's R, the web demo's Record) is given the walk's state at
that moment (`start=`, a Session snapshot): it is written first, as `<name>.start.safetensors`, and the sidecar names it
(`start_snapshot`, a bare file name beside the sidecar), so `render --replay` restores it and steps the recorded poses:
the same frames, bit for bit, on the same device and settings.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from worldwalk.app.video import VideoWriter
from worldwalk.controls import Trajectory, save_trajectory


def recording_info(session, world_desc: dict, window_chunks, image=None) -> dict:
    """What a sidecar needs to know about a Session's walk."""
    label = image if isinstance(image, (str, os.PathLike)) else session.image_label
    path = Path(label)
    depth = getattr(session, "depth_sha256", None)  # the picture's own depth map (world/images.Picture), if any
    return {"image": str(path.resolve()) if path.is_file() else None, "image_sha256": session.image_sha256,
            **({"start_depth_sha256": depth} if depth else {}),
            "seed": session.seed, "sampler": session.sampler.to_dict(), "window_chunks": window_chunks,
            "colour_match": session.colour_match, "start_overlay": session.start_overlay,
            "memory": session.memory_settings.to_dict() if session.memory_settings is not None else False,
            **world_desc}


def start_snapshot_path(video: Path) -> Path:
    """Where a recording's start snapshot lives: walk-01.mp4 -> walk-01.start.safetensors."""
    return video.with_name(video.stem + ".start.safetensors")


class Recorder:
    def __init__(self, path: str | Path, fps: int, size_wh: tuple[int, int], intrinsics, info: dict,
                 sidecar_every: int = 160, start=None):
        self.video = VideoWriter(path, fps, size_wh)
        self.path = self.video.path
        self.sidecar = self.path.with_suffix(".json")
        self.fps, self.size_wh, self.info = fps, size_wh, dict(info)
        self.start_path: Path | None = None
        if start is not None:  # the walk's state before the first recorded frame, on disk before any frame
            self.start_path = start_snapshot_path(self.path)
            try:
                start.save(self.start_path)
            except OSError:
                self.video.close()
                self.path.unlink(missing_ok=True)
                raise
            self.info["start_snapshot"] = self.start_path.name
            self.info["start_frame"] = int(start.meta.get("raw_frames", 0))
        self.intrinsics = np.asarray(intrinsics, dtype=np.float64)
        self.poses: list[np.ndarray] = []
        self.every, self._since = sidecar_every, 0
        self.closed = False
        self.journal = self.path.with_suffix(".jsonl")
        self._journal = open(self.journal, "w", encoding="utf-8")
        self._journal.write(json.dumps({"worldwalk_journal": 1, "fps": fps, "image_size": list(size_wh),
                                        "intrinsics": self.intrinsics.tolist(),
                                        "metadata": {"worldwalk_recording": self.info}}) + "\n")
        self._journal.flush()

    @property
    def frames(self) -> int:
        return len(self.poses)

    def add(self, frames: np.ndarray, poses: np.ndarray) -> None:
        """frames (N, H, W, 3) uint8 with their camera poses (N, 4, 4), relative to the walk's start camera."""
        frames, poses = np.asarray(frames), np.asarray(poses, dtype=np.float64)
        if frames.ndim == 3:
            frames, poses = frames[None], poses[None]
        if len(frames) != len(poses):
            raise ValueError(f"recorder: {len(frames)} frames but {len(poses)} poses")
        self.video.write(frames)
        self.poses.extend(poses)
        if not self._journal.closed:  # the chunk's poses, on disk before the next chunk is generated
            self._journal.write(json.dumps({"c2w": poses.reshape(len(poses), 16).tolist()}) + "\n")
            self._journal.flush()
        self._since += len(poses)
        if self._since >= self.every:
            self.write_sidecar()

    def write_sidecar(self) -> Path | None:
        self._since = 0
        if not self.poses:
            return None
        c2w = np.stack(self.poses)
        traj = Trajectory(c2w, np.repeat(self.intrinsics[None], len(c2w), 0), self.fps, self.size_wh,
                          {"worldwalk_recording": self.info})
        tmp = self.sidecar.with_name(self.sidecar.stem + ".tmp.json")
        save_trajectory(traj, tmp, format="worldwalk")
        tmp.replace(self.sidecar)
        return self.sidecar

    def close(self) -> tuple[Path, Path | None]:
        if not self.closed:
            self.video.close()
            self.write_sidecar()
            self._journal.close()
            self.journal.unlink(missing_ok=True)  # the sidecar now holds everything the journal did
            self.closed = True
        return self.path, self.sidecar if self.poses else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
