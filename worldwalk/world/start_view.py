"""world.start_view: the start image seen from another camera through its own depth, at the resolution it was given.

    sv = StartView(image (H, W, 3) uint8, hires (h, w, 3) uint8, depth (H, W) metres, intrinsics, cfg)
    rgb, weight = sv.warp(c2w (N, 4, 4), intrinsics, (W, H), depth (N, H, W), covered (N, H, W))

The world memory holds the start image as one point per frame pixel. Walking towards a surface magnifies those
points, and the memory fills the gaps between them from its coarser levels: the nearer the surface, the blurrier.
But the picture a person gives is usually larger than the model's frame (a photograph of 500-4000 pixels against
256), and the frame throws that detail away. The start view keeps it: the start image cropped as the frame, at its
own resolution up to the memory settings' `start_scale` times the frame's (world/images.fit_to_model_hires; the session
makes it), and the start depth (the memory's, frame resolution).

`warp` looks the start image up backwards for every pixel of the cameras: along the pixel's ray, starting at the
depth the memory's render gives there, it finds the surface of the start depth map (secant steps on inverse depth,
which is affine in the image for a plane), and reads the start image where that point was seen (bicubic), from the
level that matches how far the move magnifies it: the frame-size image at 1x, the kept one at its scale and more, a
mix between. Pixels the memory's depth alone says are not magnified are not followed. Weight 0 where the start
image does not see the surface the memory shows there: outside its frame, on one of its depth edges (the depth
between a foreground and a background is neither), where the steps do not converge, or where the memory shows
something nearer or farther (another surface, drawn later). The weight rises from 0 at `from_mag` x (the memory's own
render is exact where the start image is not magnified) to 1 at `full_at` x.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from worldwalk.kernels.splat import feather
from worldwalk.kernels.warp import colour, solve
from worldwalk.world.memory import depth_edges

__all__ = ["StartViewConfig", "StartView"]


@dataclass(frozen=True)
class StartViewConfig:
    from_mag: float = 1.1  # the start view's weight rises from 0 at this magnification (frame pixels per start
    # pixel; the memory's own render is exact up to about 1) ...
    full_at: float = 1.5  # ... to 1 at this one
    steps: int = 2  # secant steps along each ray
    tolerance: float = 0.02  # relative depth: the ray meets the start surface within this
    agree: float = 0.08  # relative depth: ... and the memory's render shows that surface (not a nearer/farther one)
    miss: float = 0.0  # relative inverse depth: a ray whose first read (at the memory's depth) finds the start surface
    # this far off is not followed: the memory shows another surface there (0: every ray is followed)
    feather: int = 2  # pixels: the weight fades in over this much from where the start view does not see
    grid: int = 4  # the rays are followed for every grid-th pixel of each row and column, the start coordinates
    # between them interpolated (exact on planes; 1: every pixel)
    edge: float = 0.05  # the start depth's edges (not followed): as the memory's (MemoryConfig.edge, edge_inv)
    edge_inv: float = 0.02

    def validate(self) -> "StartViewConfig":
        if not (self.full_at > self.from_mag >= 1 and self.steps >= 1 and self.tolerance > 0 and self.agree > 0
                and self.feather >= 0 and self.miss >= 0 and isinstance(self.grid, int) and self.grid >= 1):
            raise ValueError(f"start view: {asdict(self)}; expected full_at > from_mag >= 1, steps >= 1, "
                             f"tolerance > 0, agree > 0, feather >= 0, miss >= 0, grid an integer >= 1")
        return self


class StartView:
    def __init__(self, image: torch.Tensor, hires: torch.Tensor, depth: torch.Tensor, intrinsics,
                 cfg: StartViewConfig | None = None):
        """image (H, W, 3) uint8: the start frame; hires (h, w, 3) uint8: the same crop at h/H >= 1 times its
        resolution; depth (H, W) z-depth in metres (inf or large: far field)."""
        self.cfg = (cfg or StartViewConfig()).validate()
        self.image, self.hires, self.depth = image, hires, depth.float()
        self.intrinsics = np.asarray(intrinsics, dtype=np.float64).reshape(4)
        H, W = depth.shape
        if tuple(image.shape) != (H, W, 3) or hires.shape[2] != 3 or hires.shape[0] < H or hires.shape[1] < W:
            raise ValueError(f"start view: image {tuple(image.shape)}, hires {tuple(hires.shape)}, depth {(H, W)}: "
                             f"expected the image at the depth's size and hires at least as large")
        self.scale = min(hires.shape[0] / H, hires.shape[1] / W)
        z = torch.where(torch.isfinite(self.depth), self.depth, torch.full_like(self.depth, 1e4)).clamp(1e-3, 1e4)
        self._inv = 1 / z  # (H, W) inverse depth
        edges = depth_edges(z.clamp(max=150.0), self.cfg.edge, self.cfg.edge_inv).float()[None, None]
        self._edges = F.max_pool2d(edges, 3, 1, 1)[0, 0]  # (H, W): 1 within a pixel of a depth edge
        # (3, H, W) in [-1, 1], laid out as their shape reads (the kernels would copy a permuted view every call)
        self._img = (image.permute(2, 0, 1).float() / 127.5 - 1).contiguous()
        self._hi = (hires.permute(2, 0, 1).float() / 127.5 - 1).contiguous() if self.scale > 1 else None

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.image, self.hires, self.depth))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"image": self.image.clone(), "hires": self.hires.clone(), "depth": self.depth.clone(),
                "intrinsics": torch.from_numpy(self.intrinsics.copy())}

    @classmethod
    def from_state(cls, sd: dict[str, torch.Tensor], cfg: StartViewConfig | None = None) -> "StartView":
        for k, dt in (("image", torch.uint8), ("hires", torch.uint8), ("depth", torch.float32)):
            if k not in sd or sd[k].dtype != dt:
                raise ValueError(f"start_view.{k}: {'missing' if k not in sd else sd[k].dtype}, expected {dt}")
        return cls(sd["image"], sd["hires"], sd["depth"], sd["intrinsics"].numpy(), cfg)

    @torch.inference_mode()
    def warp(self, c2w, intrinsics, size_wh: tuple[int, int], depth: torch.Tensor, covered: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cameras c2w (N, 4, 4) in the start camera's frame with intrinsics [fx, fy, cx, cy] (pixels of size_wh);
        depth (N, H, W): the memory's render's z-depth there; covered (N, H, W) bool: where it has one.
        -> rgb (N, 3, H, W) in [-1, 1], weight (N, 1, H, W) in [0, 1]."""
        cfg = self.cfg
        W, H = size_wh
        if tuple(depth.shape[1:]) != (H, W):
            raise ValueError(f"start view: depth {tuple(depth.shape)} for cameras of {W}x{H}")
        poses = torch.as_tensor(np.asarray(c2w, dtype=np.float64), dtype=torch.float32).reshape(-1, 4, 4)
        dev = depth.device
        # the rays are followed for every grid-th pixel (rows and columns 0, g, 2g, ...: intrinsics divided by g),
        # the start coordinates between them interpolated (kernels/warp)
        g = cfg.grid
        fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
        qx, qy, ok = solve(poses[:, :3, :3].to(dev), poses[:, :3, 3].to(dev), (fx / g, fy / g, cx / g, cy / g),
                           self.intrinsics, self._inv.to(dev), self._edges.to(dev), depth[:, ::g, ::g].float(),
                           covered[:, ::g, ::g], steps=cfg.steps, tolerance=cfg.tolerance, agree=cfg.agree,
                           min_mag=0.95 * cfg.from_mag / g,  # (on the grid: grid pixels per start pixel)
                           miss=cfg.miss)
        rgb, weight = colour(qx.to(dev), qy.to(dev), ok.to(dev), covered, self._img.to(dev),
                             None if self._hi is None else self._hi.to(dev), from_mag=cfg.from_mag, full_at=cfg.full_at,
                             grid=g)
        rgb, weight = rgb.to(dev), weight.to(dev)[:, None]
        if cfg.feather:  # fade in from where the start view does not see (the ramp inside stays as it is); frames
            # where it sees nothing (a turn) stay 0 without the pass
            sees = (weight > 0).flatten(1).any(1)  # (N,)
            if bool(sees.all()):
                weight = weight * feather((weight > 0).float(), cfg.feather)
            elif bool(sees.any()):
                some = weight[sees]
                weight = weight.clone()
                weight[sees] = some * feather((some > 0).float(), cfg.feather)
        return rgb, weight
