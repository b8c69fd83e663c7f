"""Pinhole intrinsics as ``[fx, fy, cx, cy]`` vectors, and how they follow an image through resize, crop and the VAE.

An intrinsics vector is in pixels *of the image it belongs to*; a pixel (u, v) at integer coordinates sees the camera
ray ``[(u - cx) / fx, (v - cy) / fy, 1]`` (this is what ``controls.rays.pixel_rays`` evaluates).

The two adjustments follow the official SANA-WM pipeline exactly, so the official weights see what they were trained on:
- resize + centre-crop: an aspect-preserving resize by the ratios of the resized to the source size, then subtracting
  the crop offset from the principal point (``adjust_for_resize_crop``);
- latent grid: scaling x by latent_w / W and y by latent_h / H (``to_latent_grid``).
Both scale coordinates as ``u' = s * u`` (pixel corners at integers) while rays are read at integer pixel coordinates; a
latent pixel therefore sees the ray of the top-left raw pixel of its block, not of the block's centre. That is the
official behaviour, kept on purpose.
"""
from __future__ import annotations

import math

import numpy as np

#: The built-in default camera: 60 degrees horizontal field of view on a 256 x 256 image.
DEFAULT_HFOV_DEG = 60.0
DEFAULT_IMAGE_SIZE = (256, 256)


def from_fov(width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG, vfov_deg: float | None = None) -> np.ndarray:
    """Intrinsics (4,) of a W x H image with the given horizontal field of view; square pixels unless ``vfov_deg``.

    The principal point is the image centre (W / 2, H / 2), as the official pipeline assumes for un-calibrated images.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
    fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    fy = fx if vfov_deg is None else 0.5 * height / math.tan(math.radians(vfov_deg) / 2)
    return np.array([fx, fy, width / 2, height / 2])


def fov_deg(intrinsics: np.ndarray, width: int, height: int) -> tuple[float, float]:
    """(horizontal, vertical) field of view in degrees of a centred camera with these intrinsics (..., 4)."""
    intr = np.asarray(intrinsics, dtype=np.float64)
    h = 2 * np.degrees(np.arctan(0.5 * width / intr[..., 0]))
    v = 2 * np.degrees(np.arctan(0.5 * height / intr[..., 1]))
    return float(np.mean(h)), float(np.mean(v))


def as_vectors(intrinsics, num_frames: int) -> np.ndarray:
    """Normalise any accepted intrinsics layout to (F, 4) float64 ``[fx, fy, cx, cy]``.

    Accepted (as the official pipeline): (4,) or (3, 3) for all frames, (F, 4) or (F, 3, 3) per frame. Raises ValueError
    (with the shape found and the shapes expected) for anything else, including a per-frame count other than F.
    """
    intr = np.asarray(intrinsics, dtype=np.float64)
    expected = f"(4,), (3, 3), ({num_frames}, 4) or ({num_frames}, 3, 3)"
    if intr.shape == (3, 3) or (intr.ndim == 3 and intr.shape[1:] == (3, 3)):
        intr = np.stack([intr[..., 0, 0], intr[..., 1, 1], intr[..., 0, 2], intr[..., 1, 2]], axis=-1)
    if intr.shape == (4,):
        intr = np.broadcast_to(intr, (num_frames, 4)).copy()
    if intr.ndim != 2 or intr.shape[1] != 4:
        raise ValueError(f"intrinsics have shape {tuple(np.shape(intrinsics))}; expected {expected}")
    if intr.shape[0] != num_frames:
        raise ValueError(f"{intr.shape[0]} intrinsics for {num_frames} poses; expected one per pose or one for all")
    return intr


def intrinsics_problem(intrinsics: np.ndarray) -> str | None:
    """Why an (F, 4) intrinsics array is unusable (NaN/inf, a focal length <= 0), or None when it is fine."""
    intr = np.asarray(intrinsics, dtype=np.float64)
    bad = ~np.isfinite(intr).all(axis=-1)
    if bad.any():
        return f"intrinsics of frame {int(np.argmax(bad))} contain NaN or infinity"
    bad = (intr[:, :2] <= 0).any(axis=-1)
    if bad.any():
        i = int(np.argmax(bad))
        return f"intrinsics of frame {i} have focal lengths {intr[i, :2].tolist()}"
    return None


def to_matrix(intrinsics: np.ndarray) -> np.ndarray:
    """(..., 4) ``[fx, fy, cx, cy]`` -> (..., 3, 3) K matrices."""
    intr = np.asarray(intrinsics, dtype=np.float64)
    K = np.zeros(intr.shape[:-1] + (3, 3))
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2] = intr[..., 0], intr[..., 1], intr[..., 2], intr[..., 3]
    K[..., 2, 2] = 1.0
    return K


def normalize(intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel intrinsics (..., 4) -> RealEstate10K's fractions of the image: fx / W, fy / H, cx / W, cy / H."""
    return np.asarray(intrinsics, dtype=np.float64) / np.array([width, height, width, height], dtype=np.float64)


def denormalize(intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of ``normalize``: fractions of a W x H image (..., 4) -> pixels."""
    return np.asarray(intrinsics, dtype=np.float64) * np.array([width, height, width, height], dtype=np.float64)


def resize_crop_geometry(src_size: tuple[int, int], target_size: tuple[int, int]):
    """Where an aspect-preserving resize that covers the target, then a centre crop, takes an image.

    src_size, target_size: (W, H). Returns ``(resized_size (W, H), crop_offset (left, top))`` with the same rounding as
    the official pipeline: scale = max(tw / sw, th / sh), resized side = max(target side, round(side * scale)),
    offset = (resized - target) // 2.
    """
    sw, sh = src_size
    tw, th = target_size
    scale = max(th / sh, tw / sw)
    rw = max(tw, int(round(sw * scale)))
    rh = max(th, int(round(sh * scale)))
    return (rw, rh), ((rw - tw) // 2, (rh - th) // 2)


def adjust_for_resize_crop(intrinsics: np.ndarray, src_size: tuple[int, int],
                           target_size: tuple[int, int]) -> np.ndarray:
    """Intrinsics (..., 4) of a ``src_size`` (W, H) image -> those of its resize + centre crop to ``target_size``.

    fx and cx scale by resized_w / src_w, fy and cy by resized_h / src_h, then the crop offset is subtracted from the
    principal point (see ``resize_crop_geometry``).
    """
    (rw, rh), (left, top) = resize_crop_geometry(src_size, target_size)
    sx, sy = rw / src_size[0], rh / src_size[1]
    out = np.array(intrinsics, dtype=np.float64, copy=True)
    out[..., 0] *= sx
    out[..., 1] *= sy
    out[..., 2] = out[..., 2] * sx - left
    out[..., 3] = out[..., 3] * sy - top
    return out


def latent_grid_size(image_size: tuple[int, int], spatial_factor: int = 32) -> tuple[int, int]:
    """(W, H) of the image -> (W, H) of its VAE latent grid (floor division by the VAE's spatial factor)."""
    return image_size[0] // spatial_factor, image_size[1] // spatial_factor


def to_latent_grid(intrinsics: np.ndarray, image_size: tuple[int, int], spatial_factor: int = 32) -> np.ndarray:
    """Intrinsics (..., 4) of a (W, H) model-resolution image -> intrinsics on its latent grid.

    fx, cx scale by latent_w / W and fy, cy by latent_h / H (latent_w = W // spatial_factor), as the official pipeline.
    """
    W, H = image_size
    lw, lh = latent_grid_size(image_size, spatial_factor)
    scale = np.array([lw / W, lh / H, lw / W, lh / H], dtype=np.float64)
    return np.asarray(intrinsics, dtype=np.float64) * scale
