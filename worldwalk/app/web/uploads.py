"""What a visitor uploads, checked before it reaches a walk: the image (format, size, pixels, a work copy at the
model's scale), the seed, and the JPEG frames the page shows."""
from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from worldwalk.world.images import MAX_PIXELS, TRANSPOSING, as_seen, orientation

MAX_SIDE = 16384
MAX_UPLOAD_BYTES = 25 * 1024 * 1024

# ---------------------------------------------------------------------------------------------------- uploads
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "MPO")
WORK_LONG_SIDE = 512  # an upload is kept at this size (or the model's frame, if larger): what the walk and preview use


def check_image(data: bytes, label: str, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[int, int]:
    """Cheap checks of an uploaded start image that never decode pixels (size, type, dimensions). -> (w, h) as the
    picture is seen: upright, by its EXIF orientation.

    Raises ValueError with a one-line message for the page that names the file (`label`).
    """
    n = len(data)
    if n == 0:
        raise ValueError(f"{label}: the file is empty (0 bytes); choose a PNG, JPEG or WebP image")
    if n > max_bytes:
        raise ValueError(f"{label}: the file is too large ({n / 2**20:.1f} MB); the limit is "
                         f"{max_bytes / 2**20:.0f} MB")
    try:
        with warnings.catch_warnings():  # a big image is answered below, not warned about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:  # reads the header only
                w, h = im.size
                fmt = im.format
                turned = orientation(im) in TRANSPOSING
    except Image.DecompressionBombError:
        raise ValueError(f"{label}: the image is too large (more than {MAX_PIXELS:,} pixels)") from None
    except Exception:  # PIL raises many kinds for junk
        raise ValueError(f"{label}: not an image we can read; choose a PNG, JPEG or WebP image") from None
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"{label}: {fmt} images are not supported; choose a PNG, JPEG or WebP image")
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ValueError(f"{label}: the image is too large ({w}x{h} pixels); the limit is {MAX_PIXELS:,} pixels")
    if min(w, h) < 8:
        raise ValueError(f"{label}: the image is too small ({w}x{h} pixels); it needs at least 8x8")
    return (h, w) if turned else (w, h)


def work_size(wh: tuple[int, int], frame_wh: tuple[int, int], long_side: int = WORK_LONG_SIDE) -> tuple[int, int]:
    """The size an image of size `wh` is kept at: shrunk (never enlarged, aspect kept) to `long_side` on its long side,
    but never below what covers the model's frame `frame_wh` (the walk centre-crops that from it)."""
    w, h = wh
    s = min(1.0, max(long_side / max(w, h), frame_wh[0] / w, frame_wh[1] / h))
    return max(1, round(w * s)), max(1, round(h * s))


def prepare_image(data: bytes, label: str, frame_wh: tuple[int, int],
                  max_bytes: int = MAX_UPLOAD_BYTES) -> np.ndarray:
    """Check, decode once and shrink an uploaded start image to what the walk uses (work_size). -> uint8 (h, w, 3).

    The page shows this array and the walk starts from it, so the two are always the same picture. A JPEG is decoded
    straight at a reduced scale; other formats are decoded once and reduced in integer steps before the final filter.
    Raises ValueError with a one-line message naming the file (`label`).
    """
    w, h = check_image(data, label, max_bytes)
    tw, th = work_size((w, h), frame_wh)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format in ("JPEG", "MPO"):  # DCT scaling: decodes at 1/2, 1/4 or 1/8 of the size directly
                    # (the size as stored: sideways where the orientation turns it)
                    im.draft("RGB", (th, tw) if orientation(im) in TRANSPOSING else (tw, th))
                im.load()
                rgb = as_seen(im)
    except Exception as e:  # noqa: BLE001 - truncated or damaged files raise OSError, SyntaxError, ValueError ...
        why = str(e).split("(")[0].strip().rstrip(".;:") or type(e).__name__
        raise ValueError(f"{label}: the image is damaged or cut short ({why}); choose another PNG, JPEG or WebP "
                         "file") from None
    if rgb.size != (tw, th):
        rgb = rgb.resize((tw, th), Image.LANCZOS, reducing_gap=3.0)
    return np.asarray(rgb)


def parse_seed(seed) -> int:
    if seed is None or seed == "":
        return 0
    try:
        f = float(seed)
    except (TypeError, ValueError):
        raise ValueError(f"seed: {seed!r} is not a number") from None
    if not math.isfinite(f) or f != int(f) or not 0 <= f < 2**31:
        raise ValueError(f"seed: {seed!r}; expected a whole number from 0 to {2**31 - 1}")
    return int(f)


def jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=quality)
    return buf.getvalue()




def read_upload(uploads, path, what: str, frame_wh: tuple[int, int], max_bytes: int) -> tuple[np.ndarray, str]:
    """A visitor's uploaded start image (only an upload of theirs: files.Uploads.read), decoded once and kept at the
    size the walk uses. -> (uint8 (h, w, 3), its file name)"""
    name = Path(str(path)).name
    return prepare_image(uploads.read(path, what, max_bytes), name, frame_wh, max_bytes), name
