"""Walk files (.walk): a walk saved to continue later (Ctrl+S in the explorer; `--resume FILE` / Ctrl+L to go on).

One safetensors file:
- tensors `snapshot.<name>`: the Session snapshot (caches, start latent, RNG, last pose, intrinsics);
  `walk.last_frame` (H, W, 3) uint8: the frame the walk stands at, shown while the next chunk is generated;
- metadata `worldwalk_snapshot`: the snapshot's own JSON metadata (model id, cache layout, seed, sampler, image hash);
  `worldwalk_walk`: JSON with the format name and version, the camera rig (config, speed, position, orientation,
  velocities, pending mouse look), the map path, frame and chunk counts, the start image (path and pixel hash), the
  world description (weights, preset) and when it was saved.
Loading checks all of it (ValueError naming the file and the problem); the model check happens when the snapshot is
restored into a session.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from worldwalk.controls.rig import Rig, RigConfig
from worldwalk.world.checkpoint import UnreadableFile, read_safetensors
from worldwalk.world.images import Picture
from worldwalk.world.session import Snapshot

FORMAT = "worldwalk-walk"
VERSION = 1
SUFFIX = ".walk"


@dataclass
class SavedWalk:
    snapshot: Snapshot  # .last_frame set when the file has one
    rig: Rig
    path: list  # [(x, z), ...] of the map
    meta: dict  # the worldwalk_walk JSON

    @property
    def frame_index(self) -> int:
        return int(self.meta.get("frame_index", 0))

    @property
    def chunk_index(self) -> int:
        return int(self.meta.get("chunk_index", 0))


# ---------------------------------------------------------------------------------------------------- the rig as JSON
def rig_to_dict(rig: Rig) -> dict:
    cfg = dataclasses.asdict(rig.config)
    cfg["keymap"] = {k: list(v) for k, v in cfg["keymap"].items()}
    s = rig._s
    return {"config": cfg, "speed": float(rig.speed),
            "state": {k: [float(x) for x in getattr(s, k)] for k in ("pos", "angles", "vel", "rate", "pending")}}


def rig_from_dict(d: dict) -> Rig:
    try:
        cfg = dict(d["config"])
        cfg["keymap"] = {str(k): tuple(str(x) for x in v) for k, v in cfg["keymap"].items()}
        known = {f.name for f in dataclasses.fields(RigConfig)}
        rig = Rig(RigConfig(**{k: v for k, v in cfg.items() if k in known}))
        rig._speed = float(d["speed"])
        st = d["state"]
        for k, n in (("pos", 3), ("angles", 3), ("vel", 3), ("rate", 3), ("pending", 2)):
            a = np.asarray(st[k], dtype=np.float64)
            if a.shape != (n,) or not np.isfinite(a).all():
                raise ValueError(f"rig {k}: expected {n} finite numbers")
            setattr(rig._s, k, a)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"rig: missing or malformed field ({type(e).__name__}: {e})") from None
    return rig


# ------------------------------------------------------------------------------------------------------ save / load
def capture(walker) -> SavedWalk:
    """The walk at the chunk on screen (waits for a chunk in progress): snapshot, rig and path together."""
    with walker._lock:
        s = walker.session
        if not s.started:
            raise ValueError("save: the walk has not started")
        st = walker.shown_state()
        snap, rig, path = st.snapshot, st.rig, [tuple(p) for p in st.path]
        image = walker.image.label if isinstance(walker.image, Picture) else walker.image  # (a picture with depth)
        image = image if isinstance(image, (str, Path)) else None
        meta = {"format": FORMAT, "version": VERSION, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "frame_index": st.frame_index, "chunk_index": int(st.snapshot.meta["cache"]["chunks"]),
                "seed": s.seed,
                "image": str(Path(image).resolve()) if image and Path(image).is_file() else None,
                "image_sha256": s.image_sha256, "world": dict(walker.world_desc),
                "sampler": s.sampler.to_dict(), "window_chunks": s.window_chunks, "colour_match": s.colour_match,
                "start_overlay": s.start_overlay,
                "memory": s.memory_settings.to_dict() if s.memory_settings is not None else False,
                "rig": rig_to_dict(rig), "path": [[float(x), float(z)] for x, z in path]}
    return SavedWalk(snap, rig, path, meta)


def save_walk(saved: SavedWalk, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    if not path.parent.is_dir():
        raise ValueError(f"save: {path.parent}: no such folder")
    t = {f"snapshot.{k}": v.contiguous() for k, v in saved.snapshot.tensors.items()}
    frame = getattr(saved.snapshot, "last_frame", None)
    if frame is not None:
        t["walk.last_frame"] = torch.from_numpy(np.ascontiguousarray(frame))
    tmp = path.with_name(path.name + ".tmp")
    save_file(t, str(tmp), metadata={"worldwalk_snapshot": json.dumps(saved.snapshot.meta),
                                     "worldwalk_walk": json.dumps(saved.meta)})
    tmp.replace(path)
    return path


def load_walk(path: str | Path) -> SavedWalk:
    """-> SavedWalk. Raises ValueError "walk file: <path>: <problem>" for anything that is not a good walk file."""
    path = Path(path)
    where = f"walk file: {path}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file; expected a .walk file saved by the explorer (Ctrl+S)")
    try:
        tensors, md = read_safetensors(path)
    except UnreadableFile as e:
        raise ValueError(f"{where}: not a readable walk file ({str(e)[:120]})") from None
    try:
        meta = json.loads(md["worldwalk_walk"])
        snap_meta = json.loads(md["worldwalk_snapshot"])
    except (KeyError, json.JSONDecodeError, TypeError):
        raise ValueError(f"{where}: has no worldwalk walk metadata; expected a .walk file saved by the explorer") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{where}: not a {FORMAT} file")
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(f"{where}: format version {meta.get('version')} is newer than this explorer reads "
                         f"({VERSION})")
    if snap_meta.get("image_sha256") != meta.get("image_sha256"):
        raise ValueError(f"{where}: snapshot and walk metadata disagree on the start image")
    snap = Snapshot({k[9:]: v for k, v in tensors.items() if k.startswith("snapshot.")}, snap_meta)
    frame = tensors.get("walk.last_frame")
    snap.last_frame = None
    if frame is not None:
        f = frame.numpy()
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"{where}: walk.last_frame is {f.dtype} {f.shape}; expected uint8 (H, W, 3)")
        snap.last_frame = f
    try:
        rig = rig_from_dict(meta["rig"])
        path_xz = [(float(x), float(z)) for x, z in meta["path"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    return SavedWalk(snap, rig, path_xz, meta)
