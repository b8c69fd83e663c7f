"""Start scenes offered by the browser demo: the images in assets/scenes/ when there are any, else a few drawn here.

The drawn ones are simple perspective worlds (a sky, a checkered ground plane, boxes) made with numpy and PIL, so the
demo has something to walk into before real start scenes ship. Every scene is an RGB uint8 array (H, W, 3).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from worldwalk import assets_dir
from worldwalk.world.images import DEPTH_SUFFIXES, Picture, open_picture

SCENES_DIR = assets_dir() / "scenes"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SIZE_WH = (480, 320)


@dataclass(frozen=True)
class Scene:
    name: str
    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray | None = None  # (h, w) metres: its own depth map, beside it in the folder (world/images.py)

    @property
    def picture(self):
        """What a walk starts from: the image, with its depth map where it has one (world/images.Picture)."""
        return self.image if self.depth is None else Picture(self.image, self.depth, self.name)


def load_scenes(folder: Path | None = None) -> list[Scene]:
    """The start scenes in `folder` (default assets/scenes/), or the drawn ones when it holds no image."""
    folder = SCENES_DIR if folder is None else Path(folder)
    out = []
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.lower().endswith(DEPTH_SUFFIXES):
                try:
                    with Image.open(p) as im:
                        image = np.asarray(im.convert("RGB"))
                except (OSError, ValueError):
                    continue  # a broken asset must not take the demo down
                try:
                    pic = open_picture(p)
                except ValueError:
                    pic = None  # ... nor a broken depth map beside it: the picture alone
                out.append(Scene(p.stem.replace("_", " ").replace("-", " ").capitalize(), image,
                                 pic.depth if isinstance(pic, Picture) else None))
    return out or drawn_scenes()


def drawn_scenes() -> list[Scene]:
    return [Scene(name, fn()) for name, fn in
            (("Meadow", meadow), ("Desert", desert), ("Plaza", plaza), ("Night", night))]


# ---------------------------------------------------------------------------------------------------- drawing
class _Camera:
    """Pinhole camera at height `eye` (m) looking along +Z; world Y is up. ~60 degrees horizontal field of view."""

    def __init__(self, size_wh=SIZE_WH, eye: float = 1.6, horizon: float = 0.46):
        self.W, self.H = size_wh
        self.f = 0.87 * self.W
        self.cx, self.hy = self.W / 2, horizon * self.H
        self.eye = eye

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        return self.cx + self.f * x / z, self.hy + self.f * (self.eye - y) / z


def _vgrad(h: int, w: int, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    return np.broadcast_to((1 - t) * np.asarray(top, float) + t * np.asarray(bottom, float), (h, w, 3)).copy()


def _ground(cam: _Camera, img: np.ndarray, c1, c2, far, tile: float = 1.0, fog: float = 25.0) -> None:
    """A checkered ground plane below the horizon, fading into `far` with distance."""
    H, W = img.shape[:2]
    y0 = int(np.ceil(cam.hy + 0.5))
    ys, xs = np.mgrid[y0:H, 0:W].astype(float)
    z = cam.f * cam.eye / np.maximum(ys - cam.hy, 1e-3)
    x = (xs - cam.cx) * z / cam.f
    check = ((np.floor(x / tile) + np.floor(z / tile)) % 2)[..., None]
    col = (1 - check) * np.asarray(c1, float) + check * np.asarray(c2, float)
    a = np.exp(-z / fog)[..., None]
    img[y0:] = a * col + (1 - a) * np.asarray(far, float)


def _box(draw: ImageDraw.ImageDraw, cam: _Camera, x0, x1, z0, z1, height, color, top_light: float = 1.15) -> None:
    """An axis-aligned box standing on the ground: its faces seen from the camera, flat-shaded."""
    def poly(pts):
        return [cam.project(*p) for p in pts]

    c = np.asarray(color, float)
    shade = lambda k: tuple(int(v) for v in np.clip(c * k, 0, 255))  # noqa: E731
    if x0 > 0:  # left face visible
        draw.polygon(poly([(x0, 0, z0), (x0, 0, z1), (x0, height, z1), (x0, height, z0)]), fill=shade(0.72))
    if x1 < 0:  # right face visible
        draw.polygon(poly([(x1, 0, z0), (x1, 0, z1), (x1, height, z1), (x1, height, z0)]), fill=shade(0.72))
    if height < cam.eye:  # top visible
        draw.polygon(poly([(x0, height, z0), (x1, height, z0), (x1, height, z1), (x0, height, z1)]),
                     fill=shade(top_light))
    draw.polygon(poly([(x0, 0, z0), (x1, 0, z0), (x1, height, z0), (x0, height, z0)]), fill=shade(1.0))


def _boxes(img: np.ndarray, cam: _Camera, boxes) -> np.ndarray:
    """boxes: (x centre, z near, width, depth, height, colour); drawn far to near."""
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for x, z, w, d, h, col in sorted(boxes, key=lambda b: -b[1]):
        _box(draw, cam, x - w / 2, x + w / 2, z, z + d, h, col)
    return np.asarray(pil).astype(float)


def _disc(img: np.ndarray, cx: float, cy: float, r: float, color, glow: float = 0.0) -> None:
    H, W = img.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    d = np.hypot(xx - cx, yy - cy)
    a = np.clip(r + 0.5 - d, 0, 1)
    if glow:
        a = np.maximum(a, glow * np.exp(-np.maximum(d - r, 0) / (2 * r)))
    img[:] = (1 - a[..., None]) * img + a[..., None] * np.asarray(color, float)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).round().astype(np.uint8)


def meadow() -> np.ndarray:
    cam = _Camera()
    W, H = SIZE_WH
    img = _vgrad(H, W, (70, 130, 215), (190, 220, 245))
    _disc(img, 0.78 * W, 0.16 * H, 14, (255, 250, 225), glow=0.5)
    _ground(cam, img, (92, 160, 70), (78, 140, 58), (175, 205, 190))
    img = _boxes(img, cam, [(-2.2, 5.0, 1.2, 1.2, 1.2, (200, 70, 50)), (2.5, 8.0, 1.6, 1.6, 2.2, (230, 190, 70)),
                            (0.4, 14.0, 2.0, 2.0, 1.0, (70, 110, 200)), (-5.0, 16.0, 3.0, 2.0, 3.5, (160, 160, 170))])
    return _u8(img)


def desert() -> np.ndarray:
    cam = _Camera(horizon=0.5)
    W, H = SIZE_WH
    img = _vgrad(H, W, (240, 160, 90), (250, 215, 160))
    _disc(img, 0.25 * W, 0.3 * H, 20, (255, 240, 200), glow=0.6)
    _ground(cam, img, (215, 175, 115), (200, 160, 100), (240, 205, 160), tile=2.0, fog=40.0)
    img = _boxes(img, cam, [(3.0, 7.0, 1.0, 3.0, 0.8, (170, 110, 60)), (-3.5, 12.0, 2.5, 2.5, 4.0, (190, 140, 80)),
                            (6.0, 22.0, 4.0, 4.0, 6.0, (185, 135, 85))])
    return _u8(img)


def plaza() -> np.ndarray:
    cam = _Camera()
    W, H = SIZE_WH
    img = _vgrad(H, W, (120, 150, 190), (215, 220, 230))
    _ground(cam, img, (165, 160, 150), (140, 135, 128), (200, 205, 212), tile=1.5, fog=30.0)
    img = _boxes(img, cam, [(-6.0, 10.0, 5.0, 6.0, 9.0, (150, 120, 100)), (6.5, 9.0, 5.0, 5.0, 12.0, (120, 130, 150)),
                            (0.0, 24.0, 8.0, 4.0, 7.0, (180, 170, 150)), (-1.5, 6.0, 0.8, 0.8, 1.0, (90, 90, 95)),
                            (1.5, 6.0, 0.8, 0.8, 1.0, (90, 90, 95))])
    return _u8(img)


def night() -> np.ndarray:
    cam = _Camera(horizon=0.5)
    W, H = SIZE_WH
    img = _vgrad(H, W, (10, 15, 45), (45, 55, 100))
    rng = np.random.default_rng(7)
    ys, xs = rng.integers(0, int(0.45 * H), 120), rng.integers(0, W, 120)
    img[ys, xs] = rng.uniform(160, 255, (120, 1))
    _disc(img, 0.7 * W, 0.18 * H, 16, (240, 240, 220), glow=0.35)
    _ground(cam, img, (40, 55, 60), (30, 42, 48), (50, 60, 95), fog=18.0)
    img = _boxes(img, cam, [(-2.0, 6.0, 1.4, 1.4, 1.4, (220, 160, 60)), (3.0, 10.0, 2.0, 2.0, 3.0, (70, 90, 140)),
                            (-6.0, 15.0, 3.0, 3.0, 5.0, (60, 70, 110))])
    return _u8(img)


def find_scene(scenes: list[Scene], name) -> Scene:
    """A built-in start scene by name (case, spaces, '_' and '-' do not matter). Raises ValueError listing them."""
    key = " ".join(str(name or "").replace("_", " ").replace("-", " ").lower().split())
    for s in scenes:
        if s.name.lower() == key:
            return s
    raise ValueError(f"scene: {str(name)[:40]!r} is not a start scene; expected one of "
                     f"{', '.join(s.name for s in scenes)}")
