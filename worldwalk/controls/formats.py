"""Trajectory file formats, each as a reader (file content -> plain fields) and a writer (fields -> file content).

Readers return a ``Fields`` dict with keys ``c2w`` (F, 4, 4) OpenCV camera-to-world, ``intrinsics`` (any layout
``intrinsics.as_vectors`` accepts, pixels of ``image_size``) or None, ``fps`` or None, ``image_size`` (W, H) or None and
``metadata``. They raise ``FormatError`` with a one-line "problem; expected ..." message; ``controls.trajectory`` adds
the file name, validates rigidity and fills defaults. No file I/O happens here.

Formats
- worldwalk JSON: {"format": "worldwalk-trajectory", "version": 1, "c2w": F x 4x4, "intrinsics": [fx, fy, cx, cy] or
  F of them, "fps", "image_size": [W, H], "metadata": {...}}.
- nerfstudio transforms.json: OpenGL camera axes (c2w columns Y and Z flipped), fl_x / fl_y / cx / cy / w / h globally
  or per frame (``camera_angle_x`` as instant-ngp writes it is accepted too).
- RealEstate10K text: a URL line, then per frame "timestamp_us fx/W fy/H cx/W cy/H 0 0" + the 3x4 world-to-camera
  matrix row-major. The image size is not part of the format; we write it into our URL line and read it back.
- npz: poses under c2w / poses / extrinsics / ... (or w2c), intrinsics under intrinsics / K / ...; npy: poses alone.
"""
from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from worldwalk.controls import se3
from worldwalk.controls.intrinsics import DEFAULT_IMAGE_SIZE, denormalize, normalize

Fields = dict[str, Any]

WORLDWALK_FORMAT = "worldwalk-trajectory"
RE10K_COLUMNS = 19
POSE_KEYS = ("c2w", "c2ws", "poses", "pose", "extrinsics", "camera_poses", "cam_poses", "cam2world", "transforms")
W2C_KEYS = ("w2c", "w2cs", "world_to_camera")
INTRINSICS_KEYS = ("intrinsics", "intrinsic", "k", "ks", "cam_intrinsics", "camera_intrinsics")


class FormatError(ValueError):
    """A file's content does not match its format. The message is "problem; expected ..."."""


def make_fields(c2w, intrinsics=None, fps=None, image_size=None, metadata=None) -> Fields:
    """The reader result; None marks what the file does not store."""
    return {"c2w": c2w, "intrinsics": intrinsics, "fps": fps, "image_size": image_size, "metadata": metadata or {}}


def _pose_array(value, what: str) -> np.ndarray:
    """Nested lists / array -> (F, 4, 4) float64; (F, 3, 4) gets the bottom row [0, 0, 0, 1]."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FormatError(f"{what} is not an array of numbers; expected F 4x4 matrices") from None
    if arr.ndim == 3 and arr.shape[1:] == (3, 4):
        arr = np.concatenate([arr, np.broadcast_to([[[0.0, 0.0, 0.0, 1.0]]], (arr.shape[0], 1, 4))], axis=1)
    if arr.ndim != 3 or arr.shape[1:] != (4, 4) or arr.shape[0] == 0:
        raise FormatError(f"{what} has shape {arr.shape}; expected (F, 4, 4) or (F, 3, 4) with F >= 1")
    return arr


def _number_array(value, what: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FormatError(f"{what} is not an array of numbers; expected numbers") from None


def parse_image_size(value, what: str) -> tuple[int, int]:
    """[W, H] -> (W, H) positive ints, or FormatError naming ``what``."""
    arr = _number_array(value, what)
    if arr.shape != (2,) or not np.isfinite(arr).all() or (arr <= 0).any() or (arr != np.round(arr)).any():
        raise FormatError(f"{what} is {np.asarray(value).tolist()}; expected [width, height], positive integers")
    return int(arr[0]), int(arr[1])


# ------------------------------------------------------------------------------------------------- worldwalk JSON
def read_worldwalk(obj: dict) -> Fields:
    """Our JSON object -> fields. Every field but ``metadata`` is required."""
    fmt = obj.get("format", WORLDWALK_FORMAT)
    if fmt != WORLDWALK_FORMAT:
        raise FormatError(f"'format' is {fmt!r}; expected {WORLDWALK_FORMAT!r}")
    missing = [k for k in ("c2w", "intrinsics", "fps", "image_size") if k not in obj]
    if missing:
        raise FormatError(f"missing field(s) {missing}; expected c2w, intrinsics, fps and image_size")
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise FormatError("'metadata' is not an object; expected a JSON object")
    fps = _number_array(obj["fps"], "'fps'")
    if fps.shape != ():
        raise FormatError(f"'fps' is {obj['fps']!r}; expected a number")
    return make_fields(_pose_array(obj["c2w"], "'c2w'"), _number_array(obj["intrinsics"], "'intrinsics'"), float(fps),
                   parse_image_size(obj["image_size"], "'image_size'"), metadata)


def write_worldwalk(c2w, intrinsics, fps, image_size, metadata) -> dict:
    """Fields -> our JSON object; one intrinsics vector when all frames share it."""
    same = bool((intrinsics == intrinsics[0]).all())
    return {
        "format": WORLDWALK_FORMAT,
        "version": 1,
        "convention": "OpenCV camera-to-world (+X right, +Y down, +Z forward), metres; "
                      "intrinsics in pixels of image_size",
        "fps": float(fps),
        "image_size": [int(image_size[0]), int(image_size[1])],
        "intrinsics": intrinsics[0].tolist() if same else intrinsics.tolist(),
        "c2w": c2w.tolist(),
        "metadata": metadata,
    }


# ---------------------------------------------------------------------------------------- nerfstudio transforms
def is_nerfstudio(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("frames"), list) and "c2w" not in obj


def read_nerfstudio(obj: dict, image_size: tuple[int, int] | None = None) -> Fields:
    """nerfstudio / instant-ngp transforms.json object -> fields (OpenGL axes converted to OpenCV).

    ``image_size`` (W, H) stands in for 'w' / 'h' when the file has neither (the original NeRF scenes omit them).
    """
    frames = obj["frames"]
    if not frames:
        raise FormatError("'frames' is empty; expected at least one frame with a transform_matrix")
    mats, intr, sizes = [], [], []
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or "transform_matrix" not in fr:
            raise FormatError(f"frame {i} has no 'transform_matrix'; expected a 4x4 OpenGL camera-to-world per frame")
        mats.append(_pose_array([fr["transform_matrix"]], f"frame {i} 'transform_matrix'")[0])
        get = lambda k: fr.get(k, obj.get(k))  # noqa: E731  (per-frame value, else the global one)
        w, h = get("w"), get("h")
        if (w is None or h is None) and image_size is not None:
            w, h = image_size
        if w is None or h is None:
            raise FormatError(f"frame {i} has no image size; expected 'w' and 'h' globally or per frame "
                              "(or pass image_size)")
        w, h = parse_image_size([w, h], f"frame {i} 'w', 'h'")
        fl_x, fl_y = get("fl_x"), get("fl_y")
        if fl_x is None and get("camera_angle_x") is not None:
            fl_x = 0.5 * w / np.tan(0.5 * float(get("camera_angle_x")))
        if fl_y is None and get("camera_angle_y") is not None:
            fl_y = 0.5 * h / np.tan(0.5 * float(get("camera_angle_y")))
        if fl_x is None:
            raise FormatError(f"frame {i} has no focal length; "
                              "expected 'fl_x' (or 'camera_angle_x') globally or per frame")
        fl_y = fl_x if fl_y is None else fl_y
        cx, cy = get("cx"), get("cy")
        intr.append(_number_array([fl_x, fl_y, w / 2 if cx is None else cx, h / 2 if cy is None else cy],
                                  f"frame {i} intrinsics"))
        sizes.append((w, h))
    if len(set(sizes)) > 1:
        raise FormatError(f"frames have different image sizes {sorted(set(sizes))}; expected one size for all frames")
    metadata = dict(obj.get("worldwalk_metadata") or {})
    paths = [fr.get("file_path") for fr in frames]
    if all(isinstance(p, str) for p in paths) and paths != _default_paths(len(frames)):
        metadata["file_paths"] = paths
    fps = obj.get("fps")
    return make_fields(se3.opengl_to_opencv(np.stack(mats)), np.stack(intr), None if fps is None else float(fps),
                   sizes[0], metadata)


def _default_paths(n: int) -> list[str]:
    return [f"images/frame_{i:05d}.png" for i in range(n)]


def write_nerfstudio(c2w, intrinsics, fps, image_size, metadata) -> dict:
    """Fields -> transforms.json object (OpenGL axes, per-frame intrinsics only when they change)."""
    W, H = int(image_size[0]), int(image_size[1])
    same = bool((intrinsics == intrinsics[0]).all())
    meta = {k: v for k, v in metadata.items() if k != "file_paths"}
    paths = metadata.get("file_paths")
    if not (isinstance(paths, list) and len(paths) == len(c2w)):
        paths = _default_paths(len(c2w))
    gl = se3.opencv_to_opengl(c2w)
    frames = []
    for i in range(len(c2w)):
        fr = {"file_path": paths[i], "transform_matrix": gl[i].tolist()}
        if not same:
            fr.update(zip(("fl_x", "fl_y", "cx", "cy"), intrinsics[i].tolist()))
        frames.append(fr)
    out = {"camera_model": "OPENCV", "w": W, "h": H}
    if same:
        out.update(zip(("fl_x", "fl_y", "cx", "cy"), intrinsics[0].tolist()))
    out.update({"fps": float(fps), "worldwalk_metadata": meta, "frames": frames})
    return out


# ------------------------------------------------------------------------------------------------- RealEstate10K
_SIZE_IN_URL = re.compile(r"[?&]width=(\d+)&height=(\d+)")


def read_re10k(text: str, image_size: tuple[int, int] | None) -> Fields:
    """RealEstate10K camera text -> fields.

    ``image_size`` (W, H) denormalises the intrinsics unless the URL line carries a size (as ours does).
    """
    lines = [(n, ln.split()) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if len(lines) < 2:
        raise FormatError("no camera lines; expected a URL line then one line per frame of "
                          "'timestamp fx fy cx cy 0 0' + 12 numbers of a 3x4 world-to-camera matrix")
    url = " ".join(lines[0][1])
    rows = []
    for n, parts in lines[1:]:
        if len(parts) != RE10K_COLUMNS:
            raise FormatError(f"line {n} has {len(parts)} values; expected {RE10K_COLUMNS} "
                              "(timestamp fx fy cx cy 0 0 + a 3x4 world-to-camera matrix row-major)")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise FormatError(f"line {n} is not all numbers; expected {RE10K_COLUMNS} numbers") from None
    data = np.array(rows)
    m = _SIZE_IN_URL.search(url)
    if m:
        image_size = (int(m.group(1)), int(m.group(2)))
    metadata = {} if m else {"url": url}
    if image_size is None:
        metadata["image_size_assumed"] = True
        image_size = DEFAULT_IMAGE_SIZE
    w2c = _pose_array(data[:, 7:].reshape(-1, 3, 4), "world-to-camera matrices")
    problem = se3.rigidity_problem(w2c)
    if problem:  # report it in this format's terms; inverting first would hide it
        raise FormatError(f"world-to-camera {problem}; expected rigid 3x4 matrices")
    fps = None
    ts = data[:, 0]
    if len(ts) > 1 and (np.diff(ts) > 0).all():
        fps = (len(ts) - 1) * 1e6 / (ts[-1] - ts[0])
        fps = float(round(fps)) if abs(fps - round(fps)) < 1e-3 else float(fps)
    return make_fields(se3.invert(w2c), denormalize(data[:, 1:5], *image_size), fps, image_size, metadata)


def write_re10k(c2w, intrinsics, fps, image_size, metadata) -> str:
    """Fields -> RealEstate10K text (full float precision). The URL line records our image size and fps."""
    W, H = int(image_size[0]), int(image_size[1])
    url = f"https://worldwalk.invalid/trajectory?width={W}&height={H}&fps={float(fps)!r}"
    w2c = se3.invert(c2w)[:, :3, :].reshape(-1, 12)
    norm = normalize(intrinsics, W, H)
    lines = [url]
    for k in range(len(c2w)):
        ts = int(round(k * 1e6 / fps))
        nums = [repr(float(x)) for x in norm[k]] + ["0", "0"] + [repr(float(x)) for x in w2c[k]]
        lines.append(f"{ts} " + " ".join(nums))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ npy / npz
def read_npz(arrays: dict[str, np.ndarray]) -> Fields:
    """Arrays of an .npz (any key case) -> fields."""
    lower = {k.lower(): k for k in arrays}
    pick = lambda keys: next((lower[k] for k in keys if k in lower), None)  # noqa: E731
    pose_key, w2c_key, intr_key = pick(POSE_KEYS), pick(W2C_KEYS), pick(INTRINSICS_KEYS)
    if pose_key is None and w2c_key is None:
        raise FormatError(f"no pose array among keys {sorted(arrays)}; expected one of {list(POSE_KEYS)} "
                          f"(camera-to-world) or {list(W2C_KEYS)} (world-to-camera)")
    if pose_key is not None:
        c2w = _pose_array(arrays[pose_key], f"'{pose_key}'")
    else:
        w2c = _pose_array(arrays[w2c_key], f"'{w2c_key}'")
        problem = se3.rigidity_problem(w2c)
        if problem:
            raise FormatError(f"'{w2c_key}' {problem}; expected rigid world-to-camera matrices")
        c2w = se3.invert(w2c)
    fps = image_size = None
    if "fps" in lower:
        fps = float(_number_array(arrays[lower["fps"]], "'fps'").reshape(-1)[0])
    if "image_size" in lower:
        image_size = parse_image_size(arrays[lower["image_size"]], "'image_size'")
    elif "width" in lower and "height" in lower:
        wh = [arrays[lower["width"]].item(), arrays[lower["height"]].item()]
        image_size = parse_image_size(wh, "'width', 'height'")
    metadata = {}
    if "metadata_json" in lower:
        metadata = json.loads(str(arrays[lower["metadata_json"]]))
    intr = None if intr_key is None else _number_array(arrays[intr_key], f"'{intr_key}'")
    return make_fields(c2w, intr, fps, image_size, metadata)


def write_npz(c2w, intrinsics, fps, image_size, metadata) -> dict[str, np.ndarray]:
    """Fields -> arrays for ``np.savez`` (metadata as a JSON string, no pickles)."""
    return {"c2w": c2w, "intrinsics": intrinsics, "fps": np.float64(fps),
            "image_size": np.array(image_size, dtype=np.int64), "metadata_json": np.array(json.dumps(metadata))}


def read_npy(array: np.ndarray) -> Fields:
    """An .npy of poses (F, 4, 4) or (F, 3, 4) -> fields without intrinsics."""
    return make_fields(_pose_array(array, "the array"))


def read_journal(text: str) -> Fields:
    """A recording's journal (app/recorder.py): a JSON header line (fps, image_size, intrinsics, metadata), then one
    line {"c2w": [[16 numbers] per frame]} per chunk. A last line cut short by a crash is dropped; any other bad line
    is an error."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        head = json.loads(lines[0])
    except (IndexError, json.JSONDecodeError):
        raise FormatError("has no journal header line; expected a recording journal written by worldwalk") from None
    if not isinstance(head, dict) or head.get("worldwalk_journal") != 1:
        raise FormatError("first line is not a worldwalk journal header; expected a recording journal")
    poses = []
    for i, ln in enumerate(lines[1:], start=2):
        try:
            row = json.loads(ln)
            chunk = np.asarray(row["c2w"], dtype=np.float64).reshape(-1, 4, 4)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if i == len(lines):  # the chunk being written when the recorder died
                break
            raise FormatError(f"line {i} is not a chunk of poses; expected {{\"c2w\": [[16 numbers], ...]}}") from None
        poses.append(chunk)
    if not poses:
        raise FormatError("holds no complete chunk of poses; expected at least one")
    meta = head.get("metadata") if isinstance(head.get("metadata"), dict) else {}
    return make_fields(np.concatenate(poses), head.get("intrinsics"), head.get("fps"), head.get("image_size"), meta)
