"""The ground's shape in the start picture: a small network that sees the terrain's gentle waves.

The depth network (world/depth.py) reads the ground as the level plane `eye_height` below the camera: on the
procedural worlds its ground AbsRel is that of the plane, 0.12 on held-out start pictures. The terrain rises and falls
by a few per cent of the distance, and a walk over a wrongly tilted ground drags every ground pixel the wrong way:
with the exact ground in the start picture's depth, held-out walks gain 0.9 dB and 0.09 SSIM (benchmarks/RESULTS.md).
This network predicts, from the start picture alone, the log ratio of the ground's depth to the level plane's:

    net = GroundShape()                                          # or GroundShape(GroundShapeConfig(...)), or a bundle's
    z = net.apply(frames (1, 3, H, W) in [-1, 1], intrinsics, z (H, W) the depth network's metres)   # (H, W) metres

It sees the ground's shape through texture: a receding surface's texture gets finer towards the horizon, and faster
where the ground falls away. So its inputs, all at 1/4 resolution, are

    the log energy of four band-passes of the grey picture (1, 2, 4, 8 px: the texture's scale)      4
    the colour                                                                                       3
    the ray maps x/z, y/z (world/depth.py ray_inputs: the field of view)                              2
    the level plane's log depth, centred as the depth network centres it                             1

and a stack of dilated residual 3x3 convolutions (dilations 1 ... 16, a receptive field of most of the picture) ends
in a zero-initialised head (it starts as the level plane), averaged over 4 x 4 cells and brought back up bilinearly
(the ground's shape is smooth). `apply` replaces the depth network's ground (pixels below the horizon whose depth is
at least 0.7 x the plane's and not the sky) by the plane times exp(the ratio); objects and the sky stay as they were.

Trained on exact start pictures of procedural worlds (world/train/ground_shape.py, `launch.py train ground-shape`),
shipped in the world bundle beside the depth network (`depth.ground_shape.*`; DepthNet.predict_start applies it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from worldwalk.world.depth import ray_inputs

BANDS = (1, 2, 4, 8)  # band-pass radii (pixels of the picture)
N_FEATURES = len(BANDS) + 3 + 2 + 1
RAY_X = len(BANDS) + 3  # the channel of x/z (a mirrored picture flips its sign)
GROUND_NEARER = 0.7  # depth below this x the plane's is an object's, not the ground's
PLANE_FAR = 0.95  # the plane at or beyond this x max_depth is the horizon (or above it): left to the depth network


@dataclass(frozen=True)
class GroundShapeConfig:
    name: str = "ground-shape"
    width: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1)

    def validate(self) -> "GroundShapeConfig":
        if self.width < 1 or not self.dilations or any(d < 1 for d in self.dilations):
            raise ValueError(f"GroundShapeConfig {self.name!r}: width {self.width}, dilations {self.dilations}: "
                             "expected a positive width and at least one positive dilation")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GroundShapeConfig":
        d = dict(d)
        d["dilations"] = tuple(d["dilations"])
        return cls(**d).validate()


def features(frames: torch.Tensor, intrinsics, eye_height: float, min_depth: float, max_depth: float
             ) -> torch.Tensor:
    """frames (N, 3, H, W) in [-1, 1] seen from the start camera (level, `eye_height` above the ground), intrinsics
    [fx, fy, cx, cy] in their pixels -> (N, N_FEATURES, H/4, W/4)."""
    H, W = frames.shape[-2:]
    rays, prior = ray_inputs(intrinsics, torch.eye(4, device=frames.device)[None], (W, H), eye_height, min_depth,
                             max_depth)
    return _features(frames, rays, prior)


def _features(frames: torch.Tensor, rays: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """features() from the start camera's ray maps (1, 2, H, W) and level-plane log depth (1, 1, H, W)."""
    N = frames.shape[0]
    x = frames.float()
    g = x.mean(1, keepdim=True)  # (N, 1, H, W) grey
    bands = []
    for k in BANDS:
        band = g - F.avg_pool2d(F.pad(g, (k, k, k, k), mode="replicate"), 2 * k + 1, 1)
        bands.append(torch.log(F.avg_pool2d(band * band, 4) + 1e-4) / 4)
    geometry = torch.cat([F.avg_pool2d(rays, 4), (F.avg_pool2d(prior, 4) - 2) / 2], 1).expand(N, -1, -1, -1)
    return torch.cat(bands + [F.avg_pool2d(x, 4), geometry], 1)


class GroundShape(nn.Module):
    def __init__(self, cfg: GroundShapeConfig | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or GroundShapeConfig()).validate()
        self.inp = nn.Conv2d(N_FEATURES, cfg.width, 3, 1, 1)
        self.body = nn.ModuleList([nn.Conv2d(cfg.width, cfg.width, 3, 1, d, dilation=d) for d in cfg.dilations])
        self.head = nn.Conv2d(cfg.width, 1, 3, 1, 1)
        nn.init.zeros_(self.head.weight)  # starts as the level plane
        nn.init.zeros_(self.head.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """features (N, N_FEATURES, h, w) -> the ground's log depth ratio to the level plane (N, 1, h, w), smooth at
        4 x 4 cells."""
        x = F.silu(self.inp(f))
        for conv in self.body:
            x = x + F.silu(conv(x))
        y = self.head(x)
        return F.interpolate(F.avg_pool2d(y, 4), size=y.shape[-2:], mode="bilinear", align_corners=False)

    @torch.no_grad()
    def ground(self, frames: torch.Tensor, rays: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """frames (1, 3, H, W) in [-1, 1], the start camera's ray maps (1, 2, H, W) and level-plane log depth
        (1, 1, H, W) (world/depth.py ray_inputs) -> (H, W) metres: the ground under every pixel, the plane times
        exp(the predicted ratio) (the far limit where the plane is)."""
        H, W = frames.shape[-2:]
        ratio = self(_features(frames, rays, prior).to(next(self.parameters())))
        ratio = F.interpolate(ratio.float(), size=(H, W), mode="bilinear", align_corners=False)[0, 0]
        plane = prior[0, 0].exp()  # (H, W) metres
        return torch.where(plane < PLANE_FAR * plane.max(), plane * ratio.exp(), plane)

    @torch.no_grad()
    def apply(self, frames: torch.Tensor, intrinsics, z: torch.Tensor, eye_height: float, min_depth: float,
              max_depth: float) -> torch.Tensor:
        """frames (1, 3, H, W) in [-1, 1] from the start camera; z (H, W) the depth network's metres for them -> (H, W)
        with the ground's depth the plane's times exp(the predicted ratio), the rest as z."""
        H, W = frames.shape[-2:]
        rays, prior = ray_inputs(intrinsics, torch.eye(4, device=frames.device)[None], (W, H), eye_height, min_depth,
                                 max_depth)
        return replace_ground(z, prior, self.ground(frames, rays, prior), min_depth, max_depth)


def replace_ground(z: torch.Tensor, prior: torch.Tensor, ground: torch.Tensor, min_depth: float, max_depth: float
                   ) -> torch.Tensor:
    """z (H, W) the depth network's metres, prior (1, 1, H, W) the level plane's log depth, ground (H, W) metres
    (GroundShape.ground) -> z with its ground pixels (below the horizon, at least GROUND_NEARER x the plane's depth,
    not the sky) at the ground's depth, the rest as z."""
    plane = prior[0, 0].exp()  # (H, W) metres
    zf = z.float()
    ground_px = (plane < PLANE_FAR * max_depth) & (zf > GROUND_NEARER * plane) & (zf < 0.95 * max_depth)
    return torch.where(ground_px, ground.clamp(min_depth, max_depth), zf).to(z)
