"""Start images: read from a path, PIL image or array, checked, resized and centre-cropped to the model's frame size.

A picture is walked as a person sees it in an image viewer or a browser (`as_seen`): turned upright by its EXIF
orientation (a phone stores a portrait photograph sideways and says so in a tag), deeper than 8 bits scaled to 8 bits
(not clipped: a 16-bit PNG would otherwise come out white), and transparent parts laid over white (a browser's page),
not the colours hidden under them."""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from worldwalk.controls.intrinsics import adjust_for_resize_crop, resize_crop_geometry

MAX_PIXELS = 64_000_000  # refuse decompression bombs long before PIL would
DEPTH_SUFFIXES = (".depth.npy", ".depth.png")  # a start picture's own depth map, beside it (depth_beside)


@dataclass(frozen=True)
class Picture:
    """A start picture with its own depth map (an RGB-D picture: a render of a known world, a phone's depth photo):
    the session lifts it at this depth instead of the depth network's guess. image: anything load_image reads;
    depth (h, w) float32 metres along the camera's axis (z), of the picture as seen, at its size or any size of the
    same shape (resized to it, nearest); not finite or <= 0: no depth there (the far field, as sky)."""

    image: object
    depth: np.ndarray
    label: str = ""


def read_depth_map(path) -> np.ndarray:
    """A depth map file -> (h, w) float32 metres (inf where it holds none). `.npy`: metres, float (not finite or <= 0:
    none); `.png`: 16-bit millimetres (0: none), the RGB-D cameras' convention. Raises ValueError "depth: <file>:
    <problem>; expected ...". """
    p = Path(path)
    want = "a .npy of metres (h, w) or a 16-bit PNG of millimetres"
    if not p.is_file():
        raise ValueError(f"depth: {p}: no such file; expected {want}")
    try:
        if p.suffix.lower() == ".npy":
            a = np.load(p, allow_pickle=False)
            if a.ndim != 2 or a.dtype.kind != "f":
                raise ValueError(f"depth: {p}: array of dtype {a.dtype} and shape {a.shape}; expected {want}")
            z = a.astype(np.float32)
        else:
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            with Image.open(p) as im:
                if im.mode not in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
                    raise ValueError(f"depth: {p}: a {im.mode} image; expected {want}")
                z = np.asarray(im, dtype=np.float32) / 1000.0
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ValueError(f"depth: {p}: not readable ({type(e).__name__}); expected {want}") from None
    except ValueError as e:
        if str(e).startswith("depth:"):
            raise
        raise ValueError(f"depth: {p}: not readable ({e}); expected {want}") from None
    if min(z.shape) < 8:
        raise ValueError(f"depth: {p}: {z.shape[1]}x{z.shape[0]} is too small; expected at least 8x8")
    z = np.where(np.isfinite(z) & (z > 0), z, np.float32(np.inf))
    if not np.isfinite(z).any():
        raise ValueError(f"depth: {p}: holds no depth anywhere; expected {want}")
    return z


def depth_beside(image) -> Path | None:
    """The depth map beside a picture file (photo.png -> photo.depth.npy or photo.depth.png), or None."""
    if not isinstance(image, (str, Path)):
        return None
    p = Path(image)
    for suffix in DEPTH_SUFFIXES:
        q = p.with_name(p.stem + suffix)
        if q.is_file():
            return q
    return None


def _fits(map_hw: tuple[int, int], image_wh: tuple[int, int]) -> bool:
    """Whether a depth map of shape (h, w) is of a picture of size (W, H)'s shape (aspect ratios within 1 %)."""
    (h, w), (iw, ih) = map_hw, image_wh
    return abs(w / h - iw / ih) <= 0.01 * iw / ih


def open_picture(image):
    """A picture file with its depth map beside it -> a Picture; anything else as it is. Raises ValueError naming the
    map when it cannot be read or is not of the picture's shape."""
    d = depth_beside(image)
    if d is None:
        return image
    z = read_depth_map(d)
    (iw, ih), (h, w) = load_image(image)[0].size, z.shape
    if not _fits(z.shape, (iw, ih)):
        raise ValueError(f"depth: {d}: {w}x{h} for a picture of {iw}x{ih}; expected a map of the picture's shape")
    return Picture(str(image), z, str(image))


def fit_depth(depth: np.ndarray, image_wh: tuple[int, int], size_wh: tuple[int, int],
              label: str = "the picture") -> np.ndarray:
    """A picture's depth map (h, w) -> the model's frame (H, W), as fit_to_model crops the picture (image_wh its size
    as seen): the same crop in the map's own pixels, sampled nearest (no depth mixed across an edge). Raises
    ValueError when the map's shape is not the picture's."""
    h, w = depth.shape
    iw, ih = image_wh
    if not _fits(depth.shape, image_wh):
        raise ValueError(f"depth: the map of {label} is {w}x{h} and the picture {iw}x{ih}; expected a map of the "
                         f"picture's shape")
    (rw, rh), (left, top) = resize_crop_geometry((iw, ih), size_wh)
    W, H = size_wh
    kx, ky = w / rw, h / rh  # map pixels per resized picture pixel
    cols = np.clip(np.floor((left + np.arange(W) + 0.5) * kx).astype(int), 0, w - 1)
    rows = np.clip(np.floor((top + np.arange(H) + 0.5) * ky).astype(int), 0, h - 1)
    return np.ascontiguousarray(depth[rows[:, None], cols[None, :]])


def load_image(image) -> tuple[Image.Image, str]:
    """-> (RGB PIL image, a label for messages). Raises ValueError "image: <which>: <problem>; expected ...".

    Accepts a path (str / Path), raw bytes, a PIL image, a uint8 array (H, W, 3) / (H, W), or a Picture (its image).
    """
    if isinstance(image, Picture):
        img, label = load_image(image.image)
        return img, image.label or label
    if isinstance(image, (str, Path)):
        label = str(image)
        p = Path(image)
        if not p.is_file():
            raise ValueError(f"image: {label}: no such file; expected a PNG/JPEG/WebP image")
        data = p.read_bytes()
    elif isinstance(image, (bytes, bytearray)):
        label, data = "uploaded bytes", bytes(image)
    elif isinstance(image, Image.Image):
        return _check_size(as_seen(image), "image"), "image"
    elif isinstance(image, np.ndarray):
        a = image
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise ValueError(f"image: array of dtype {a.dtype} and shape {a.shape}; expected uint8 (H, W, 3)")
        return _check_size(as_seen(Image.fromarray(a)), "array"), "array"
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
    return _check_size(as_seen(img), label), label


TRANSPOSING = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1-8; 1: stored upright), 1 where there is none or it cannot be read."""
    try:
        o = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block is ignored, as viewers do
        return 1
    return o if 1 <= o <= 8 else 1


def upright(img: Image.Image) -> Image.Image:
    """img turned as its EXIF orientation says (the same image where it says nothing)."""
    if orientation(img) == 1:
        return img
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - as orientation(): a tag that cannot be applied is ignored
        return img


def as_seen(img: Image.Image) -> Image.Image:
    """-> 8-bit RGB as a viewer shows img: upright (EXIF orientation), more than 8 bits a channel scaled to 8, a
    float picture in [0, 1] (or beyond: its own range) to [0, 255], transparency over white."""
    img = upright(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        a = np.where(np.isfinite(a), a, 0.0)
        hi = float(a.max()) if a.size else 0.0
        if img.mode.startswith("I;16") or (img.mode == "I" and 255 < hi <= 65535):
            a = a / 257.0  # 16 bits a sample
        elif img.mode == "F" and 0.0 <= float(a.min()) and hi <= 1.0:
            a = a * 255.0
        elif float(a.min()) < 0.0 or hi > 255.0:  # any other range: stretched to 0-255
            lo = float(a.min())
            a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _check_size(img: Image.Image, label: str) -> Image.Image:
    w, h = img.size
    if w < 8 or h < 8:
        raise ValueError(f"image: {label}: {w}x{h} pixels is too small; expected at least 8x8")
    if w * h > MAX_PIXELS:
        raise ValueError(f"image: {label}: {w}x{h} pixels is too large; expected at most {MAX_PIXELS:,} pixels")
    return img


def image_hash(img: Image.Image) -> str:
    """sha256 of the decoded RGB pixels as seen (so the same picture saved twice hashes the same)."""
    return hashlib.sha256(np.asarray(as_seen(img)).tobytes()).hexdigest()


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
