"""Start images: read from a path, PIL image or array, checked, resized and centre-cropped to the model's frame size."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from worldwalk.controls.intrinsics import adjust_for_resize_crop, resize_crop_geometry

MAX_PIXELS = 64_000_000  # refuse decompression bombs long before PIL would


def load_image(image) -> tuple[Image.Image, str]:
    """-> (RGB PIL image, a label for messages). Raises ValueError "image: <which>: <problem>; expected ...".

    Accepts a path (str / Path), raw bytes, a PIL image, or a uint8 array (H, W, 3) / (H, W).
    """
    if isinstance(image, (str, Path)):
        label = str(image)
        p = Path(image)
        if not p.is_file():
            raise ValueError(f"image: {label}: no such file; expected a PNG/JPEG/WebP image")
        data = p.read_bytes()
    elif isinstance(image, (bytes, bytearray)):
        label, data = "uploaded bytes", bytes(image)
    elif isinstance(image, Image.Image):
        return _check_size(image.convert("RGB"), "image"), "image"
    elif isinstance(image, np.ndarray):
        a = image
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise ValueError(f"image: array of dtype {a.dtype} and shape {a.shape}; expected uint8 (H, W, 3)")
        return _check_size(Image.fromarray(a).convert("RGB"), "array"), "array"
    else:
        raise ValueError(f"image: got {type(image).__name__}; expected a file path, bytes, a PIL image or a uint8 array")
    if not data:
        raise ValueError(f"image: {label}: file is empty; expected a PNG/JPEG/WebP image")
    try:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as e:
        raise ValueError(f"image: {label}: not a readable image ({type(e).__name__}); expected PNG/JPEG/WebP") from None
    return _check_size(img.convert("RGB"), label), label


def _check_size(img: Image.Image, label: str) -> Image.Image:
    w, h = img.size
    if w < 8 or h < 8:
        raise ValueError(f"image: {label}: {w}x{h} pixels is too small; expected at least 8x8")
    if w * h > MAX_PIXELS:
        raise ValueError(f"image: {label}: {w}x{h} pixels is too large; expected at most {MAX_PIXELS:,} pixels")
    return img


def image_hash(img: Image.Image) -> str:
    """sha256 of the decoded RGB pixels (so the same picture saved twice hashes the same)."""
    return hashlib.sha256(np.asarray(img.convert("RGB")).tobytes()).hexdigest()


def fit_to_model(img: Image.Image, size_wh: tuple[int, int], intrinsics=None):
    """Aspect-preserving resize that covers size_wh, then centre crop. -> (uint8 (H, W, 3), intrinsics or None)."""
    (rw, rh), (left, top) = resize_crop_geometry(img.size, size_wh)
    out = img.resize((rw, rh), Image.LANCZOS).crop((left, top, left + size_wh[0], top + size_wh[1]))
    if intrinsics is not None:
        intrinsics = adjust_for_resize_crop(np.asarray(intrinsics, dtype=np.float64), img.size, size_wh)
    return np.array(out), intrinsics


def fit_to_model_hires(img: Image.Image, size_wh: tuple[int, int], max_scale: float) -> np.ndarray:
    """The crop fit_to_model takes, at up to max_scale times size_wh's resolution, as far as the image has pixels for
    it (at least 1x). -> uint8 (h, w, 3) with h / H = w / W."""
    (rw, rh), (left, top) = resize_crop_geometry(img.size, size_wh)
    W, H = size_wh
    kx, ky = img.size[0] / rw, img.size[1] / rh  # source pixels per resized pixel
    s = max(1.0, min(float(max_scale), kx, ky))
    out = (max(W, int(round(W * s))), max(H, int(round(H * s))))
    box = (left * kx, top * ky, (left + W) * kx, (top + H) * ky)
    return np.array(img.resize(out, Image.LANCZOS, box=box))
