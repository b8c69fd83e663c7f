"""A camera trajectory (per-frame poses + intrinsics + timing) and loading/saving it in every common format.

    traj = load_trajectory("walk.json")          # worldwalk JSON, transforms.json, .npz, .npy, RealEstate10K .txt,
    save_trajectory(traj, "walk.txt")            # or a .txt / .actions file holding an action string "w-30,jw-10"

Every problem with a file (missing fields, NaN, wrong shapes, non-rigid matrices, count mismatches, empty or unknown
files) raises ``TrajectoryError`` (a ValueError) with one line naming the file, the problem and what is expected, so
nothing downstream ever sees a malformed pose.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from worldwalk.controls import formats, se3
from worldwalk.controls.actions import actions_to_c2w, looks_like_actions, meant_as_actions, parse_actions
from worldwalk.controls.intrinsics import (DEFAULT_IMAGE_SIZE, adjust_for_resize_crop, as_vectors, from_fov, intrinsics_problem,
                                 to_latent_grid)

DEFAULT_FPS = 16.0
#: Rotation blocks may be off orthonormal by this much (float32 files); they are then projected back onto SO(3).
RIGID_ATOL = 1e-4

_EXPECTED = ".json (worldwalk or nerfstudio transforms.json), .npz, .npy, .txt (RealEstate10K or an action string) " \
            "or .actions, or a recording's .jsonl journal"
_FORMATS = ("worldwalk", "nerfstudio", "re10k", "npz", "npy", "actions", "journal")


class TrajectoryError(ValueError):
    """A trajectory file or value is unusable. One line: "<file>: <problem>; expected <what>"."""


@dataclass(eq=False)  # arrays inside: compare fields with numpy, not ==
class Trajectory:
    """Camera path of F frames.

    c2w:        (F, 4, 4) float64 OpenCV camera-to-world (+X right, +Y down, +Z forward), metres
    intrinsics: (F, 4) float64 [fx, fy, cx, cy] in pixels of ``image_size`` (given in any layout ``as_vectors`` takes)
    fps:        frames per second
    image_size: (W, H) of the images the intrinsics belong to
    metadata:   free JSON-serialisable dict (name, description, source, ...)
    """

    c2w: np.ndarray
    intrinsics: np.ndarray
    fps: float = DEFAULT_FPS
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        c2w, intr, fps, size = _checked(self.c2w, self.intrinsics, self.fps, self.image_size)
        self.c2w, self.intrinsics, self.fps, self.image_size = c2w, intr, fps, size

    def __len__(self) -> int:
        return self.c2w.shape[0]

    @property
    def num_frames(self) -> int:
        return self.c2w.shape[0]

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    @property
    def times(self) -> np.ndarray:
        """(F,) seconds of each frame, starting at 0."""
        return np.arange(self.num_frames) / self.fps

    def relative_to_first(self) -> "Trajectory":
        """The same path expressed in the frame of its first camera (first pose = identity), as the model wants it."""
        return replace(self, c2w=se3.relative_to_first(self.c2w))

    def resample(self, fps: float) -> "Trajectory":
        """The same motion at another frame rate (slerp + lerp of poses, lerp of intrinsics); same start, no overrun."""
        c2w = se3.resample(self.c2w, self.fps, fps)
        t = np.arange(len(c2w)) / fps
        intr = np.stack([np.interp(t, self.times, self.intrinsics[:, i]) for i in range(4)], axis=-1)
        return replace(self, c2w=c2w, intrinsics=intr, fps=float(fps))

    def resized(self, target_size: tuple[int, int]) -> "Trajectory":
        """Intrinsics for the images' aspect-preserving resize + centre crop to ``target_size`` (W, H)."""
        intr = adjust_for_resize_crop(self.intrinsics, self.image_size, target_size)
        return replace(self, intrinsics=intr, image_size=(int(target_size[0]), int(target_size[1])))

    def latent_intrinsics(self, spatial_factor: int = 32) -> np.ndarray:
        """(F, 4) intrinsics on the VAE latent grid of ``image_size`` (see ``intrinsics.to_latent_grid``)."""
        return to_latent_grid(self.intrinsics, self.image_size, spatial_factor)


def _checked(c2w, intrinsics, fps, image_size, where: str = "trajectory"):
    """Validate and normalise fields; raises TrajectoryError "<where>: <problem>; expected ..."."""
    fail = lambda msg: TrajectoryError(f"{where}: {msg}")  # noqa: E731
    try:
        c2w = np.asarray(c2w, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail("poses are not an array of numbers; expected (F, 4, 4) camera-to-world matrices") from None
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or c2w.shape[0] == 0:
        raise fail(f"poses have shape {c2w.shape}; expected (F, 4, 4) camera-to-world matrices with F >= 1")
    problem = se3.rigidity_problem(c2w, RIGID_ATOL)
    if problem:
        raise fail(f"{problem}; expected rigid camera-to-world matrices "
                   "(orthonormal rotation, det +1, last row 0 0 0 1)")
    if np.abs(np.swapaxes(c2w[:, :3, :3], 1, 2) @ c2w[:, :3, :3] - np.eye(3)).max() > 1e-10:
        c2w = se3.orthonormalize(c2w)
    try:
        intr = as_vectors(intrinsics, c2w.shape[0])
    except (TypeError, ValueError) as e:
        raise fail(str(e)) from None
    problem = intrinsics_problem(intr)
    if problem:
        raise fail(f"{problem}; expected finite [fx, fy, cx, cy] in pixels with fx, fy > 0")
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise fail(f"fps is {fps!r}; expected a positive number") from None
    if not (math.isfinite(fps) and fps > 0):
        raise fail(f"fps is {fps}; expected a positive number")
    try:
        size = formats.parse_image_size(image_size, "image size")
    except formats.FormatError as e:
        raise fail(str(e)) from None
    return c2w, intr, fps, size


def _detect(path: Path, raw: bytes) -> str:
    """Format name from the extension, sniffing content where one extension serves two formats."""
    ext = path.suffix.lower()
    if ext in (".npz", ".npy", ".actions"):
        return ext[1:]
    if ext == ".jsonl":
        return "journal"
    if ext == ".json":
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "worldwalk"  # the reader reports the parse error
        return "nerfstudio" if formats.is_nerfstudio(obj) else "worldwalk"
    if ext == ".txt":
        return "actions" if looks_like_actions(raw.decode("utf-8", errors="replace")) else "re10k"
    raise TrajectoryError(f"{path}: unknown trajectory format {ext or '(no extension)'!r}; expected {_EXPECTED}")


def _txt_problem(raw: bytes, error: Exception) -> str:
    """Why a .txt (read as RealEstate10K, since it is no action string) failed, told for what it was meant to be: a
    file with camera lines keeps the RealEstate10K message; action-string text gets the action parser's; other text
    is told that a .txt holds either of the two."""
    text = raw.decode("utf-8", errors="replace")
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if any(len(parts) >= 7 for parts in lines[1:]):  # camera lines: a RealEstate10K file with a problem
        return str(error)
    if meant_as_actions(text):
        try:
            parse_actions(text)
        except ValueError as e:
            return (f"read as an action string: {e} (a .txt trajectory holds an action string of comma-separated "
                    "segments like 'w-30,jw-10', or RealEstate10K camera lines)")
    problem = str(error).split("; expected")[0]
    return (f"neither an action string nor RealEstate10K camera lines ({problem}); expected a .txt holding an action "
            "string like 'w-30,jw-10' or RealEstate10K camera lines: a URL line, then per frame "
            "'timestamp fx fy cx cy 0 0' and a 3x4 world-to-camera matrix")


def _read(fmt: str, raw: bytes, image_size) -> dict:
    if fmt in ("npz", "npy"):
        magic = b"PK" if fmt == "npz" else b"\x93NUMPY"
        if not raw.startswith(magic):
            raise formats.FormatError(f"is not an {fmt} file (no {magic!r} header); expected a file written by numpy")
        try:
            loaded = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as e:
            if "pickle" in str(e).lower():
                raise formats.FormatError("holds pickled Python objects; expected plain numeric arrays") from None
            raise formats.FormatError(f"is not a readable {fmt} file ({e})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise formats.FormatError(f"is not a readable {fmt} file ({e})") from None
        if fmt == "npz":
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise formats.FormatError("is a single array, not an archive; expected an .npz of named arrays")
            with loaded:
                return formats.read_npz({k: loaded[k] for k in loaded.files})
        if not isinstance(loaded, np.ndarray):
            raise formats.FormatError("is an archive of arrays, not one array; expected (F, 4, 4) poses (or use .npz)")
        return formats.read_npy(loaded)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise formats.FormatError("is not UTF-8 text; expected a text file") from None
    if fmt == "actions":
        return formats.make_fields(actions_to_c2w(text), metadata={"actions": " ".join(text.split())})
    if fmt == "re10k":
        return formats.read_re10k(text, image_size)
    if fmt == "journal":
        return formats.read_journal(text)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise formats.FormatError(f"is not valid JSON ({e.msg} at line {e.lineno}); expected a JSON object") from None
    if not isinstance(obj, dict):
        raise formats.FormatError(f"holds a JSON {type(obj).__name__}; expected a JSON object")
    return formats.read_nerfstudio(obj, image_size) if fmt == "nerfstudio" else formats.read_worldwalk(obj)


def load_trajectory(path, *, intrinsics=None, image_size=None, fps=None, format: str | None = None) -> Trajectory:
    """Read a trajectory file (format from the extension and content, or forced with ``format`` in
    worldwalk / nerfstudio / re10k / npz / npy / actions).

    ``intrinsics`` (any layout ``as_vectors`` takes), ``image_size`` (W, H) and ``fps`` fill in what the file does not
    store (e.g. an .npy holds poses only); without them the default camera is used (60 degrees horizontal FOV on
    256 x 256, 16 fps) and ``metadata["defaults"]`` lists what was assumed. Raises TrajectoryError.
    """
    path = Path(path)
    if not path.is_file():
        raise TrajectoryError(f"{path}: no such file; expected a trajectory file ({_EXPECTED})")
    raw = path.read_bytes()
    if not raw.strip():
        raise TrajectoryError(f"{path}: file is empty; expected a trajectory ({_EXPECTED})")
    if format is not None and format not in _FORMATS:
        raise TrajectoryError(f"{path}: unknown format {format!r}; expected one of {list(_FORMATS)}")
    fmt = format or _detect(path, raw)
    try:
        got = _read(fmt, raw, image_size)
    except (formats.FormatError, ValueError) as e:
        if format is None and fmt == "re10k":  # a .txt that is no action string and no good RealEstate10K file
            raise TrajectoryError(f"{path}: {_txt_problem(raw, e)}") from None
        raise TrajectoryError(f"{path}: {e}") from None
    metadata = dict(got["metadata"], source=str(path), source_format=fmt)
    defaults = ["image_size"] if metadata.pop("image_size_assumed", False) else []
    if got["image_size"] is None:
        got["image_size"] = image_size
        if image_size is None:
            got["image_size"], defaults = DEFAULT_IMAGE_SIZE, defaults + ["image_size"]
    if got["intrinsics"] is None:
        got["intrinsics"] = intrinsics
        if intrinsics is None:
            got["intrinsics"], defaults = from_fov(*got["image_size"]), defaults + ["intrinsics"]
    if got["fps"] is None:
        got["fps"] = fps
        if fps is None:
            got["fps"], defaults = DEFAULT_FPS, defaults + ["fps"]
    if defaults:
        metadata["defaults"] = defaults
    c2w, intr, f, size = _checked(got["c2w"], got["intrinsics"], got["fps"], got["image_size"], where=str(path))
    return Trajectory(c2w, intr, f, size, metadata)


def save_trajectory(traj: Trajectory, path, *, format: str | None = None) -> Path:
    """Write ``traj`` to ``path``; the format follows the extension (a file named transforms.json is nerfstudio), or
    ``format`` in worldwalk / nerfstudio / re10k / npz / npy. An .npy holds the poses alone. Returns the path."""
    path = Path(path)
    ext = path.suffix.lower()
    fmt = format or {".npz": "npz", ".npy": "npy", ".txt": "re10k"}.get(ext)
    if fmt is None and ext == ".json":
        fmt = "nerfstudio" if path.name.lower() == "transforms.json" else "worldwalk"
    if fmt not in _FORMATS or fmt == "actions":
        raise TrajectoryError(f"{path}: cannot write format {fmt or ext!r}; expected .json, transforms.json, .npz, "
                              ".npy or .txt (RealEstate10K)")
    metadata = {k: v for k, v in traj.metadata.items() if k not in ("source", "source_format", "defaults")}
    fields = (traj.c2w, traj.intrinsics, traj.fps, traj.image_size, metadata)
    if fmt == "npz":
        with open(path, "wb") as f:
            np.savez(f, **formats.write_npz(*fields))
    elif fmt == "npy":
        with open(path, "wb") as f:
            np.save(f, traj.c2w)
    elif fmt == "re10k":
        path.write_text(formats.write_re10k(*fields))
    else:
        writer = formats.write_nerfstudio if fmt == "nerfstudio" else formats.write_worldwalk
        path.write_text(_dump_json(writer(*fields)) + "\n")
    return path


def _dump_json(obj, indent: str = "") -> str:
    """JSON with one line per vector or small matrix (a pose per line) instead of one line per number."""
    flat = lambda v: not isinstance(v, (list, dict))  # noqa: E731
    vector = lambda v: isinstance(v, list) and all(map(flat, v))  # noqa: E731
    if isinstance(obj, list) and (all(map(flat, obj)) or (len(obj) <= 4 and all(map(vector, obj)))):
        return json.dumps(obj)
    inner = indent + " "
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k)}: {_dump_json(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, list):
        return "[\n" + ",\n".join(inner + _dump_json(v, inner) for v in obj) + "\n" + indent + "]"
    return json.dumps(obj)


def trajectory_from_actions(action: str, *, fps: float = DEFAULT_FPS, image_size=DEFAULT_IMAGE_SIZE,
                            intrinsics=None, **speeds) -> Trajectory:
    """An official action string ("w-30,jw-10,none-5") as a Trajectory; ``speeds`` go to ``actions_to_c2w``.
    Raises TrajectoryError for a malformed string."""
    try:
        c2w = actions_to_c2w(action, **speeds)
    except ValueError as e:
        raise TrajectoryError(f"action string: {e}") from None
    intr = from_fov(*image_size) if intrinsics is None else intrinsics
    return Trajectory(c2w, intr, fps, tuple(image_size), {"actions": " ".join(action.split())})
