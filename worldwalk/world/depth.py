"""Metric depth for the world memory: a small U-Net that reads a frame and where its rays point.

    net = DepthNet()                                        # or DepthNet(DepthConfig(...)), or from a world bundle
    z = net.predict(frames (N, 3, H, W) in [-1, 1], intrinsics [fx, fy, cx, cy], c2w (N, 4, 4))   # (N, H, W) metres

Metric scale comes from the rig, not from the picture: the start camera stands `eye_height` metres above level ground
(world +Y is down, OpenCV), and every frame's pose is known relative to it. So besides the colours the network reads
two ray maps and one prior, per pixel:
- the ray direction in the camera (x/z, y/z: the field of view and where the pixel sits in it);
- the log z-depth at which the ray would meet that ground plane (the far limit where it points above the horizon).
It predicts a correction to that prior in log space, at half resolution, and the result is upsampled bilinearly in
log depth. Sky and anything beyond `max_depth` come out as `max_depth`.

    encoder  (6, H, W) -> 1/2 -> 1/4 -> 1/8 -> 1/16 -> 1/32    widths (16, 32, 48, 64, 96), two 3x3 convs per level
    decoder  1/32 -> 1/16 -> 1/8 -> 1/4 -> 1/2, each: 2x upsample, concat the encoder's skip, two 3x3 convs
    head     1/2: 3x3 conv -> log-depth correction;  bilinear x2 in log depth -> (H, W)
    fine     (only with cfg.fine > 0) full resolution: the 1/2 features brought up (nearest) beside a 3x3 conv of the
             input, two 3x3 convs, a 3x3 conv -> a correction to the bilinear result (depth edges a pixel wide
             instead of a blend of the two surfaces over two pixels)

The embedded default trains it on procedural worlds whose renderer gives exact depth (launch.py train depth) and
ships it in the world bundle under `depth.*`.

A bundle may also carry a second network of the same design for the start picture alone (`net.start`, stored under
`depth.start.*`; `net.predict_start(...)`). The start picture is a sharp, level view that the memory keeps for the
whole walk, while the generated frames are blurry; one network trained for both draws the start picture's objects
poorly (a box merged with the ground behind it), and the start picture is worth a network of its own, fine-tuned on
exact start pictures with its objects weighted up (launch.py train depth --exact-only --object-weight).

It may also carry the start picture's ground shape (`net.ground_shape`, world/ground_shape.py, stored under
`depth.ground_shape.*`): predict_start then takes the ground's depth from it (the terrain's waves, which this network
reads as the level plane), and its object network (`net.object_mask`, world/object_mask.py, under
`depth.object_mask.*`): predict_start then stands each object that rests on the ground at the ground's depth of its
foot.

    frames_net(net) -> the network the generated frames' depth comes from: a bfloat16 copy on a CPU that computes
                       bfloat16 natively, the network itself elsewhere (the start picture's depth stays float32)
"""
from __future__ import annotations

import copy
import math
import weakref
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from worldwalk.kernels import cpu_native_bf16
from worldwalk.kernels.median import median
from worldwalk.world.layers import SiLU


@dataclass(frozen=True)
class DepthConfig:
    name: str = "tiny-depth"
    widths: tuple[int, ...] = (16, 32, 48, 64, 96)  # encoder channels at 1/2 ... 1/32
    eye_height: float = 1.6  # metres from the start camera down to the ground
    min_depth: float = 0.2
    max_depth: float = 200.0  # sky and anything beyond
    fine: int = 0  # channels of a full-resolution refinement stage (0: none; the head's half-resolution result only)
    median: int = 0  # predict(): a k x k median of the log depth (odd k; 0: none) takes out speckle, keeps edges

    def validate(self) -> "DepthConfig":
        if len(self.widths) < 2 or any(w < 1 for w in self.widths):
            raise ValueError(f"DepthConfig {self.name!r}: widths {self.widths}: expected at least two positive widths")
        if self.fine < 0:
            raise ValueError(f"DepthConfig {self.name!r}: fine {self.fine}: expected 0 (none) or a channel count")
        if self.median < 0 or (self.median and self.median % 2 == 0):
            raise ValueError(f"DepthConfig {self.name!r}: median {self.median}: expected 0 (none) or an odd size")
        if not 0 < self.min_depth < self.max_depth or self.eye_height <= 0:
            raise ValueError(f"DepthConfig {self.name!r}: expected 0 < min_depth < max_depth and eye_height > 0")
        return self

    @property
    def factor(self) -> int:
        """Height and width of the input are padded to a multiple of this."""
        return 2 ** len(self.widths)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DepthConfig":
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        return cls(**d).validate()


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), SiLU(), nn.Conv2d(c_out, c_out, 3, 1, 1), SiLU())


def unet_layers(widths: tuple[int, ...]) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The encoder (6 input channels -> 1/2 ... 1/2^len(widths), two 3x3 convs a level) and the decoder (back up to 1/2
    with the encoder's skips) of the U-Nets over unet_inputs (this network, world/object_mask.py)."""
    w = widths
    return (nn.ModuleList([_block(6 if i == 0 else w[i - 1], w[i], 2) for i in range(len(w))]),
            nn.ModuleList([_block(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1))]))


def unet_inputs(frames: torch.Tensor, rays: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """frames (N, 3, H, W) in [-1, 1], rays (N or 1, 2, H, W), prior (N or 1, 1, H, W) log depth -> (N, 6, H, W), the
    prior roughly centred (log 7.4 m) and scaled."""
    N = len(frames)
    return torch.cat([frames, rays.expand(N, -1, -1, -1), ((prior - 2.0) / 2.0).expand(N, -1, -1, -1)], 1)


def unet_features(down: nn.ModuleList, up: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """unet_layers over x (N, 6, H, W), H and W multiples of 2^len(down) -> the features at 1/2 (N, widths[0], ...)."""
    skips = []
    for blk in down:
        x = blk(x)
        skips.append(x)
    x = skips.pop()
    for blk in up:
        s = skips.pop()
        x = blk(torch.cat([F.interpolate(x, size=s.shape[-2:], mode="nearest"), s], 1))
    return x


def ray_inputs(intrinsics, c2w: torch.Tensor, size_wh: tuple[int, int], eye_height: float, min_depth: float,
               max_depth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel ray maps and the ground-plane prior for N cameras.

    intrinsics [fx, fy, cx, cy] (pixels of size_wh; shared) or (N, 4); c2w (N, 4, 4) in the start camera's frame.
    -> rays (N, 2, H, W): x/z and y/z of each pixel's ray in its camera; prior (N, 1, H, W): log z-depth where the ray
    meets the ground `eye_height` below the start camera (log max_depth where it never does). Pixel (u, v) looks
    along the ray through integer coordinates (u, v), as the procedural renderer and the world memory take it."""
    W, H = size_wh
    N = c2w.shape[0]
    intr = torch.as_tensor(np.asarray(intrinsics), dtype=torch.float32, device=c2w.device).reshape(-1, 4).expand(N, 4)
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32, device=c2w.device),
                          torch.arange(W, dtype=torch.float32, device=c2w.device), indexing="ij")
    fx, fy, cx, cy = (intr[:, i, None, None] for i in range(4))
    rx, ry = (u - cx) / fx, (v - cy) / fy  # (N, H, W): the ray (rx, ry, 1) in the camera
    R = c2w[:, :3, :3].float()
    down = R[:, 1, 0, None, None] * rx + R[:, 1, 1, None, None] * ry + R[:, 1, 2, None, None]  # world +Y of the ray
    height = (eye_height - c2w[:, 1, 3].float())[:, None, None]  # camera above the ground plane (metres)
    z = height / down.clamp_min(1e-6)  # z-depth of the ground hit, the ray being (rx, ry, 1)·z
    z = torch.where((down > 1e-6) & (height > 0), z, torch.full_like(z, max_depth)).clamp(min_depth, max_depth)
    return torch.stack([rx, ry], 1), z.log()[:, None]


class DepthNet(nn.Module):
    def __init__(self, cfg: DepthConfig | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or DepthConfig()).validate()
        w = cfg.widths
        self.down, self.up = unet_layers(w)
        self.head = nn.Conv2d(w[0], 1, 3, 1, 1)
        nn.init.zeros_(self.head.weight)  # starts as the ground-plane prior
        nn.init.zeros_(self.head.bias)
        if cfg.fine:
            self.stem = nn.Sequential(nn.Conv2d(6, cfg.fine, 3, 1, 1), SiLU())
            self.fine = _block(w[0] + cfg.fine, cfg.fine)
            self.fine_head = nn.Conv2d(cfg.fine, 1, 3, 1, 1)
            nn.init.zeros_(self.fine_head.weight)  # starts as the half-resolution result
            nn.init.zeros_(self.fine_head.bias)
        self.to(memory_format=torch.channels_last)  # the CPU's convolutions at these few channels run faster so
        self.start: DepthNet | None = None  # the start picture's own network, where the bundle has one
        self.ground_shape = None  # the start picture's ground shape (world/ground_shape.py), where the bundle has one
        self.object_mask = None  # the start picture's objects (world/object_mask.py), where the bundle has them

    def forward(self, frames: torch.Tensor, rays: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """frames (N, 3, H, W) in [-1, 1], rays (N, 2, H, W), prior (N, 1, H, W) log depth -> log z-depth (N, 1, H, W).
        H and W must be multiples of cfg.factor (predict() pads)."""
        lo, hi = math.log(self.cfg.min_depth), math.log(self.cfg.max_depth)
        inp = unet_inputs(frames, rays, prior)
        x = unet_features(self.down, self.up, inp)  # (N, w0, H/2, W/2)
        half = F.avg_pool2d(prior, 2) + self.head(x)  # (N, 1, H/2, W/2)
        out = F.interpolate(half, size=frames.shape[-2:], mode="bilinear", align_corners=False)  # (N, 1, H, W)
        if self.cfg.fine:
            up = F.interpolate(x, size=frames.shape[-2:], mode="nearest")  # (N, w0, H, W)
            out = out + self.fine_head(self.fine(torch.cat([up, self.stem(inp)], 1)))
        return out.clamp(lo, hi)

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, intrinsics, c2w, downscale: int = 1, median: int | None = None
                ) -> torch.Tensor:
        """frames (N, 3, H, W) in [-1, 1]; intrinsics [fx, fy, cx, cy] in pixels of the frames; c2w (N, 4, 4) poses in
        the start camera's frame (numpy or torch). -> z-depth (N, H, W) in metres, float32.
        downscale k > 1: the frames are box-shrunk k x first and the depth brought back up bilinearly in log depth
        (k² times cheaper; for blurry frames, whose detail the network cannot use anyway).
        median: the k x k median of the log depth instead of cfg.median (odd k; 0: none)."""
        if median is not None and (median < 0 or (median and median % 2 == 0)):
            raise ValueError(f"depth median {median}: expected 0 (none) or an odd size")
        if downscale > 1:
            H, W = frames.shape[-2:]
            fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
            k = downscale  # pixel u of the small frame covers u·k … u·k + k − 1: its centre is u·k + (k − 1) / 2
            small = F.avg_pool2d(frames.float(), k, ceil_mode=True)
            z = self.predict(small, (fx / k, fy / k, (cx - (k - 1) / 2) / k, (cy - (k - 1) / 2) / k), c2w,
                             median=median)
            return F.interpolate(z.log()[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0].exp()
        c2w = torch.as_tensor(np.asarray(c2w) if not torch.is_tensor(c2w) else c2w, dtype=torch.float32,
                              device=frames.device).reshape(-1, 4, 4)
        N, _, H, W = frames.shape
        cfg = self.cfg
        rays, prior = ray_inputs(intrinsics, c2w, (W, H), cfg.eye_height, cfg.min_depth, cfg.max_depth)
        f = cfg.factor
        ph, pw = (-H) % f, (-W) % f
        x = torch.cat([frames.float(), rays, prior], 1).contiguous(memory_format=torch.channels_last)
        if ph or pw:  # replicate the edges up to a multiple of the network's factor, cut back after
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        dt = next(self.parameters()).dtype
        logz = self(x[:, :3].to(dt), x[:, 3:5].to(dt), x[:, 5:].to(dt)).float()[:, :, :H, :W]
        k = cfg.median if median is None else median
        if k > 1:
            logz = median_filter(logz, k)
        return logz[:, 0].exp()

    def predict_start(self, frames: torch.Tensor, intrinsics, median: int | None = None) -> torch.Tensor:
        """The start picture's depth: frames (1, 3, H, W) in [-1, 1] seen from the start camera -> (1, H, W) metres,
        through the start network where there is one (its own median unless `median` says otherwise), else this one;
        its ground then from the ground-shape network where there is one (world/ground_shape.py), and its objects that
        rest on the ground stood on their feet where there is an object network (world/object_mask.py)."""
        net = self.start if self.start is not None else self
        z = net.predict(frames, intrinsics, np.eye(4)[None], median=median)
        if self.ground_shape is None and self.object_mask is None:
            return z
        # (imported here: both modules import this one)
        from worldwalk.world.ground_shape import replace_ground
        from worldwalk.world.object_mask import stand

        cfg = self.cfg
        H, W = frames.shape[-2:]
        rays, prior = ray_inputs(intrinsics, torch.eye(4, device=frames.device)[None], (W, H), cfg.eye_height,
                                 cfg.min_depth, cfg.max_depth)
        ground = prior[0, 0].exp()  # (H, W) the level plane, or the ground's shape where there is one
        if self.ground_shape is not None:
            ground = self.ground_shape.ground(frames, rays, prior)
            z = replace_ground(z[0], prior, ground, cfg.min_depth, cfg.max_depth)[None]
        if self.object_mask is not None:
            objects = self.object_mask.predict(frames, rays, prior)
            z = stand(z[0], objects, ground.clamp(cfg.min_depth, cfg.max_depth), 0.95 * cfg.max_depth)[None]
        return z

    def start_objects(self, frames: torch.Tensor, intrinsics) -> torch.Tensor | None:
        """frames (1, 3, H, W) in [-1, 1] seen from the start camera -> (H, W) bool: the objects its object network
        sees (world/object_mask.py), or None where there is no such network."""
        if self.object_mask is None:
            return None
        cfg = self.cfg
        H, W = frames.shape[-2:]
        rays, prior = ray_inputs(intrinsics, torch.eye(4, device=frames.device)[None], (W, H), cfg.eye_height,
                                 cfg.min_depth, cfg.max_depth)
        return self.object_mask.predict(frames, rays, prior)


def frames_net(net: DepthNet) -> DepthNet:
    """The network for the generated frames' depth (the lift's, after every chunk): on a CPU that computes bfloat16
    natively (AVX-512 BF16 or AMX: kernels.cpu_native_bf16), a bfloat16 copy of a float32 CPU network, a
    sixth faster with log depth 0.4 % apart on average; elsewhere the network itself (bfloat16 is emulated on other
    CPUs, a hundred times slower). The copy leaves out the start picture's own networks (its depth, its ground's
    shape, its objects): the start picture's depth, which the memory keeps for the whole walk, stays float32."""
    p = next(net.parameters())
    if p.device.type != "cpu" or p.dtype != torch.float32 or not cpu_native_bf16():
        return net
    # one copy per network, shared by its sessions (a web server's walks), made again once its weights change
    stamp = tuple(q._version for q in net.parameters())
    kept = _TWINS.get(net)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    kept_parts = net.start, net.ground_shape, net.object_mask
    net.start = net.ground_shape = net.object_mask = None  # (not copied)
    try:
        twin = copy.deepcopy(net).to(torch.bfloat16).eval()
    finally:
        net.start, net.ground_shape, net.object_mask = kept_parts
    _TWINS[net] = (stamp, twin)
    return twin


_TWINS: "weakref.WeakKeyDictionary[DepthNet, tuple]" = weakref.WeakKeyDictionary()  # network -> (versions, copy)


def median_filter(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, 1, H, W) -> the median of each pixel's k x k neighbourhood (edges replicated): kernels/median."""
    return median(x, k)


def depth_metrics(pred: np.ndarray, true: np.ndarray, max_depth: float) -> dict:
    """AbsRel and δ < 1.25 over pixels whose true depth is finite and below max_depth (the sky is left out), and the
    share of sky pixels predicted at or beyond half of max_depth."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    valid = np.isfinite(true) & (true < max_depth)
    p, t = pred[valid], true[valid]
    ratio = np.maximum(p / t, t / p)
    sky = ~np.isfinite(true) | (true >= max_depth)
    return {"absrel": float(np.mean(np.abs(p - t) / t)), "delta1": float(np.mean(ratio < 1.25)),
            "sky_far": float(np.mean(pred[sky] >= max_depth / 2)) if sky.any() else float("nan"),
            "pixels": int(valid.sum())}
