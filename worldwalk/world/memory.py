"""world.memory: a bounded 3-D memory of what a walk has seen, rendered into any camera.

    mem = WorldMemory(MemoryConfig(capacity=131072))
    mem.add(rgb (H, W, 3) uint8, depth (H, W) metres, c2w (4, 4), intrinsics, mask=None, conf=1.0, pinned=True)
    view = mem.render(c2w (N, 4, 4), intrinsics, (W, H))   # rgb (N, 3, H, W) in [-1, 1], depth, coverage, confidence
    mem.tick()                                             # one chunk later (the clock eviction reads)

The store is a fixed set of `capacity` slots of coloured surface points in the start camera's frame (OpenCV, metres):
position, colour, confidence, two surface steps (below), the chunk it was last seen in, and a pin
(the start image's points are never evicted). Slots are allocated up front, so the state is the same size from the
first frame to the tenth minute; a free slot has confidence 0.

Lifting (`add`): each pixel (u, v) with z-depth z becomes the point z·((u − cx)/fx, (v − cy)/fy, 1) in its camera
(integer pixel coordinates, as the procedural renderer casts its rays). Depth beyond `far` (sky, far field) is pushed
to `far_store` along the ray, where a few metres of walking move it by less than a pixel. Pixels on a depth edge
(`depth_edges`) are not lifted: a smooth depth map would put them between the two surfaces;
renders fill them from their neighbours. Each point keeps its two steps on its surface: the offsets to the points of
its right and lower neighbour pixels (where those lie on the same surface; else one pixel's width across the ray).
Projected into another camera they give the point's footprint there: exactly one pixel where it was seen, wider
where the walk comes closer or round to face a surface first seen at a grazing angle.
Deduplication is in the view: the caller adds only the pixels the memory's own render of that camera did not cover,
so a surface the memory already holds gets no second copy. When the free slots run out, the unpinned points seen
longest ago (then the least confident) make room.

Rendering (`render`): every point is projected into every camera and z-buffered per pixel (scatter-min on depth,
ties to the later point: deterministic), at full resolution and at `levels − 1` coarser ones (pixels 2^l wide).
Points magnified by the move leave gaps between them; from the coarsest level down, a pixel takes the coarser
surface (colours bilinear) where it has no point of its own, or where its own point lies more than `occlusion`
(relative) behind a coarser surface whose point is drawn at least MAGNIFIED pixels wide: background seen through the
gaps of a magnified foreground. A point drawn less wide (above CRACK pixels) leaves one-pixel gaps; the pixels of
such a gap (their own point behind both neighbours of a row, column or diagonal) take it too, so that a surface
magnified 1.1-1.5x does not show a grid of the background's lines. An unmagnified surface never grows over its
neighbours, so at the pose a view was lifted from, the render gives that view back. Confidence = the point's × the
level's weight; coverage = confidence > 0.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch

from worldwalk.kernels.lift import depth_edges, lift
from worldwalk.kernels.splat import mark, pull_push, splat

__all__ = ["MemoryConfig", "MemorySettings", "MemoryView", "WorldMemory", "depth_edges", "pull_push"]


@dataclass(frozen=True)
class MemoryConfig:
    capacity: int = 1 << 17  # points (131,072: two 256 x 256 views)
    levels: int = 4  # render pyramid: full, 1/2, 1/4, 1/8 resolution
    level_weight: tuple[float, ...] = (1.0, 0.85, 0.7, 0.55)  # confidence factor of a pixel filled at each level
    occlusion: float = 0.08  # a pixel's own point this much (relative) behind the coarser surface is seen through it
    far: float = 150.0  # metres: depth beyond this is sky / far field ...
    far_store: float = 1000.0  # ... stored this far along its ray
    edge: float = 0.05  # a pixel is on a depth edge (not lifted) where |Δ log z| to a neighbour exceeds this ...
    edge_inv: float = 0.02  # ... and |Δ 1/z| exceeds this (1/metres)
    near: float = 0.05  # metres: points closer to a camera than this are not drawn
    max_step: float = 0.0  # a surface step is at most this many pixel widths (z/fx) long; 0: no limit
    support: int = 5  # a coarser level's pixel grows over a finer one's own point only where at least this many of
    # its 8 neighbours hold a depth within support_ratio of its own: a surface's inside or straight edge (5), not a
    # lone fragment, which a walk's magnification drew as a square block; 0: wherever the rules above let it
    # (benchmarks/RESULTS.md "Lone fragments")
    support_ratio: float = 1.5

    def validate(self) -> "MemoryConfig":
        if self.capacity < 1 or self.levels < 1 or len(self.level_weight) < self.levels:
            raise ValueError(f"MemoryConfig: capacity {self.capacity}, levels {self.levels}, level_weight "
                             f"{self.level_weight}: expected capacity >= 1, levels >= 1 and a weight per level")
        if not 0 < self.far < self.far_store:
            raise ValueError(f"MemoryConfig: far {self.far}, far_store {self.far_store}: expected 0 < far < far_store")
        if not (0 <= self.support <= 8 and self.support_ratio > 1):
            raise ValueError(f"MemoryConfig: support {self.support}, support_ratio {self.support_ratio}: expected 0 "
                             f"to 8 neighbours and a depth ratio > 1")
        if not (self.edge > 0 and self.edge_inv >= 0):
            raise ValueError(f"MemoryConfig: edge {self.edge}, edge_inv {self.edge_inv}: expected edge > 0 (log "
                             f"depth) and edge_inv >= 0 (1/metres)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MemoryConfig":
        d = dict(d)
        d["level_weight"] = tuple(d["level_weight"])
        return cls(**d).validate()


@dataclass(frozen=True)
class MemorySettings:
    """How a Session uses its world memory (world/session.py). Stored in a bundle's metadata as "memory"."""

    config: MemoryConfig = MemoryConfig()
    feather: int = 8  # pixels: the blend of the memory's render over the decoded frame fades in over this much
    strength: float = 1.0  # blend weight where the memory sees (1: its render replaces the decoded frame there)
    generated_conf: float = 0.8  # confidence of points lifted from generated frames (the start image's: 1)
    generated_depth_scale: int = 2  # generated frames' depth is predicted on frames shrunk this much (blurry anyway)
    generated_margin: int = 12  # pixels along a generated frame's border that are not lifted (the decoder's edges)
    guess: float | None = 0.5  # start noise level of a latent the memory sees whole (None: chunks start from noise)
    guess_min_coverage: float = 0.2  # a latent frame the memory sees less than this starts from pure noise
    guess_still: bool = True  # a latent's guess from the render of its own (last) raw frame alone, held still for
    # its s frames: a quarter of the hole filling and of the encoder's work, the same walks (benchmarks/RESULTS.md
    # "The guess from a latent's own frame"; False: from the render of each of its frames)
    start_scale: float = 4.0  # the start picture is kept at its own resolution, up to this x the frame's, for the
    # views that magnify it (world/start_view.py; 1: at the frame's; 0: not kept)
    detail: float = 1.0  # where the frame does not show the start picture: this much of the start picture's ground
    # texture, fixed to the world, added for display (world/detail.py; 0: none, the generated pixels as they are)
    start_median: int = 0  # the start picture's depth (the memory's for good, magnified by every walk) through a
    # k x k median of its log depth instead of the depth network's own (odd k; 0: the network's, DepthConfig.median;
    # a larger one keeps a close-up's surfaces whole but measures no better: benchmarks/RESULTS.md "Walking speed")
    seam: float = 0.0  # this much of the memory's low-frequency colour carried into what the frame shows beside it,
    # and into what the lift adds beside what the memory holds (world/seam.py; 0: the decoder's colours as they are;
    # off by default: it costs long walks, benchmarks/RESULTS.md "Seams")
    sky: float = 1.0  # where the frame shows sky no frame has seen: this much of the start picture's sky colour at the
    # same elevation, weighted by how much of the picture is sky there (world/sky.py; 0: the model's drawing as it is)
    ground: float = 1.0  # where the frame shows ground no frame has seen: this much of the start picture's ground
    # colour at the same elevation, at the scale of 8-pixel blocks, weighted by how much of the picture is open ground
    # there (world/ground_colour.py; 0: the model's colours as they are)
    lift_last: int = 1  # after each chunk, what the memory does not see yet of the chunk's last k latent frames is
    # lifted into it (0: of every latent frame). One strip a chunk, not one a latent frame: fewer seams between strips
    # the decoder drew differently, a third of the depth network's work (benchmarks/RESULTS.md "One lift a chunk")
    start_miss: float = 0.3  # the start view does not follow a ray whose first read of the start surface, at the
    # memory's depth, is off by more than this (relative inverse depth): the memory shows another surface there, and
    # such rays never end on the start picture (0: every ray is followed to the end; benchmarks/RESULTS.md "The start
    # view's rays")
    start_grid: int = 4  # the start view follows the rays of every start_grid-th pixel of each row and column and
    # interpolates the start coordinates between them (world/start_view.py, StartViewConfig.grid; 1: every pixel):
    # 4 gives the same walks as 2 for a quarter of the rays (benchmarks/RESULTS.md "The start view's rays, every
    # fourth pixel")
    open_sky: bool = True  # the start picture's far field (the depth network's sky) only where it reaches the top of
    # the frame or a side above its middle; regions of it enclosed by nearer things (a cup's white rim, a pale wall
    # beside a face) take the depth around them (world/far_field.py; False: as the network predicts them)
    sky_edge: int = 4  # the start picture's pixels within this many of the edge between its far field and a nearer
    # surface join the side whose colour round them they are nearer: the depth networks' far field ends a few pixels
    # off the picture's edge, and a pillar's sliver lifted as sky floated off it (world/far_field.py; 0: as predicted)
    behind: int = 24  # holes of at most this many pixels along a row of the memory's render between a near and a far
    # surface (what a move opens behind an object) take the far surface's colour, in the model's guess and
    # in the frame shown, not a blend of both that the model read as a blurred copy of the object and the lift kept
    # (world/disocclusion.py; 0: the guess a smooth extension of both, the frame the model's drawing)
    rims: bool = True  # the start picture's pixels on a depth edge, which the lift leaves out, are lifted too, each
    # with the depth of the nearby pixel whose colour is nearest its own: the start frame is the picture, not the
    # picture with every outline filled from the render's coarser levels (world/rims.py; False: left out)
    skyline: bool = False  # the start picture's standing objects, mirrored round the start camera, seeded into the
    # memory at the start: a skyline round the whole horizon instead of haze (world/skyline.py; False: none)
    sheet: float = 0.1  # a start depth with more than this share of its pixels on a depth edge follows the
    # picture's texture, not its surfaces (photographs of things 16-46 %, procedural start views 0.6-7.3 %), and
    # is smoothed into one sheet: walking in magnifies the picture whole instead of tearing it along its texture
    # (world/sheet.py; 0: the depth as predicted)
    guess_prior: bool = True  # where the memory does not see, the chunk's guess takes the start picture's sky and
    # ground colours (as the frame shown does) over the smooth extension of what it sees beside: that extension smeared
    # a remembered tree's colours over the open sky beside it, the model drew a blurred copy of the tree there, and the
    # lift kept it as a grey wall (benchmarks/RESULTS.md "The guess's open sky"; False: the smooth extension alone)

    def validate(self) -> "MemorySettings":
        self.config.validate()
        if self.guess is not None and not 0 < self.guess <= 1:
            raise ValueError(f"memory settings: guess {self.guess}: expected a noise level in (0, 1] or None")
        if not 0 <= self.seam <= 1:
            raise ValueError(f"memory settings: seam {self.seam}: expected a share from 0 (off) to 1")
        if not (0 <= self.start_median <= 31 and (self.start_median == 0 or self.start_median % 2 == 1)):
            raise ValueError(f"memory settings: start_median {self.start_median}: expected 0 (the depth network's "
                             f"own) or an odd size up to 31")
        if not 0 <= self.sky <= 1:
            raise ValueError(f"memory settings: sky {self.sky}: expected a share from 0 (off) to 1")
        if not 0 <= self.ground <= 1:
            raise ValueError(f"memory settings: ground {self.ground}: expected a share from 0 (off) to 1")
        if not (isinstance(self.lift_last, int) and not isinstance(self.lift_last, bool) and self.lift_last >= 0):
            raise ValueError(f"memory settings: lift_last {self.lift_last!r}: expected a count of latent frames >= 0 "
                             f"(0: all of them)")
        if not self.start_miss >= 0:
            raise ValueError(f"memory settings: start_miss {self.start_miss}: expected a relative inverse depth >= 0 "
                             f"(0: every ray followed)")
        if not isinstance(self.guess_still, bool):
            raise ValueError(f"memory settings: guess_still {self.guess_still!r}: expected true or false")
        if isinstance(self.start_grid, bool) or not (isinstance(self.start_grid, int) and 1 <= self.start_grid <= 8):
            raise ValueError(f"memory settings: start_grid {self.start_grid!r}: expected an integer from 1 (every "
                             f"pixel) to 8")
        if not isinstance(self.open_sky, bool):
            raise ValueError(f"memory settings: open_sky {self.open_sky!r}: expected true or false")
        if isinstance(self.sky_edge, bool) or not (isinstance(self.sky_edge, int) and 0 <= self.sky_edge <= 16):
            raise ValueError(f"memory settings: sky_edge {self.sky_edge!r}: expected a count of pixels from 0 (off) "
                             f"to 16")
        if isinstance(self.behind, bool) or not (isinstance(self.behind, int) and 0 <= self.behind <= 256):
            raise ValueError(f"memory settings: behind {self.behind!r}: expected a count of pixels from 0 (off) to 256")
        if not isinstance(self.rims, bool):
            raise ValueError(f"memory settings: rims {self.rims!r}: expected true or false")
        if not isinstance(self.skyline, bool):
            raise ValueError(f"memory settings: skyline {self.skyline!r}: expected true or false")
        if isinstance(self.sheet, bool) or not (isinstance(self.sheet, (int, float)) and 0 <= self.sheet <= 1):
            raise ValueError(f"memory settings: sheet {self.sheet!r}: expected a share of edge pixels from 0 (off) "
                             f"to 1")
        if not isinstance(self.guess_prior, bool):
            raise ValueError(f"memory settings: guess_prior {self.guess_prior!r}: expected true or false")
        if not 0 <= self.detail <= 2:
            raise ValueError(f"memory settings: detail {self.detail}: expected a gain from 0 (off) to 2")
        if not (self.start_scale == 0 or self.start_scale >= 1):
            raise ValueError(f"memory settings: start_scale {self.start_scale}: expected 0 (off) or >= 1")
        if self.feather < 0 or not 0 <= self.strength <= 1 or not 0 < self.generated_conf <= 1:
            raise ValueError(f"memory settings: feather {self.feather}, strength {self.strength}, generated_conf "
                             f"{self.generated_conf}: expected feather >= 0, strength in [0, 1], conf in (0, 1]")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MemorySettings":
        d = dict(d or {})
        known = {"config", "feather", "strength", "generated_conf", "generated_depth_scale", "generated_margin",
                 "guess", "guess_min_coverage", "start_scale", "detail", "seam", "start_median", "sky", "ground",
                 "lift_last", "open_sky", "guess_still", "start_miss", "start_grid", "skyline", "behind", "sky_edge",
                 "sheet", "rims", "guess_prior"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"memory settings: unknown fields {unknown}; expected a subset of {sorted(known)}")
        cfg = MemoryConfig.from_dict({**MemoryConfig().to_dict(), **d.pop("config", {})})
        return cls(config=cfg, **d).validate()


@dataclass
class MemoryView:
    """What the memory sees from N cameras."""

    rgb: torch.Tensor  # (N, 3, H, W) float in [-1, 1] (0 where not covered)
    depth: torch.Tensor  # (N, H, W) z-depth in metres (inf where not covered)
    confidence: torch.Tensor  # (N, H, W) in [0, 1]
    level: torch.Tensor  # (N, H, W) int8: pyramid level the pixel came from (-1: not covered)
    pinned: torch.Tensor | None = None  # (N, H, W) bool: drawn at full resolution from a pinned point (the start's)

    @functools.cached_property
    def coverage(self) -> torch.Tensor:
        """(N, H, W) bool (worked out once: a view is not changed after it is made)"""
        return self.confidence > 0


def _rotate(p: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """(k, 3) @ R.T for a 3 x 3 R, elementwise (a K = 3 matrix product is several times slower on the CPU)."""
    return p[:, :1] * R[:, 0] + p[:, 1:2] * R[:, 1] + p[:, 2:] * R[:, 2]


def _as_pose(c2w, device) -> torch.Tensor:
    t = c2w if torch.is_tensor(c2w) else torch.from_numpy(np.asarray(c2w, dtype=np.float64))
    return t.to(device=device, dtype=torch.float32)


MAGNIFIED = 1.5  # a point drawn this many pixels wide leaves gaps that show what lies behind it
CRACK = 1.05  # ... and one drawn this many leaves one-pixel gaps: closed where the background shows through them


class WorldMemory:
    TENSORS = ("xyz", "rgb", "conf", "steps", "seen", "pinned")

    def __init__(self, cfg: MemoryConfig | None = None, device: str | torch.device = "cpu"):
        self.cfg = cfg = (cfg or MemoryConfig()).validate()
        self.device = torch.device(device)
        C = cfg.capacity
        self.xyz = torch.zeros(C, 3, device=self.device)  # world position (start camera's frame), metres
        self.rgb = torch.zeros(C, 3, dtype=torch.uint8, device=self.device)
        self.conf = torch.zeros(C, device=self.device)  # 0: a free slot
        self.steps = torch.zeros(C, 2, 3, dtype=torch.float16, device=self.device)  # to the right / lower neighbour
        self.seen = torch.zeros(C, dtype=torch.int32, device=self.device)  # clock when last drawn in front
        self.pinned = torch.zeros(C, dtype=torch.bool, device=self.device)
        self.clock = 0
        self.last_added = torch.zeros(0, dtype=torch.long, device=self.device)  # slots the last `add` wrote

    # ------------------------------------------------------------------ state
    @property
    def count(self) -> int:
        return int((self.conf > 0).sum())

    def nbytes(self) -> int:
        return sum(getattr(self, k).numel() * getattr(self, k).element_size() for k in self.TENSORS)

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {k: getattr(self, k).clone() for k in self.TENSORS}
        out["clock"] = torch.tensor([self.clock], dtype=torch.int64)
        return out

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Raises ValueError (and changes nothing) when the tensors do not fit this memory's configuration."""
        C = self.cfg.capacity
        want = {"xyz": ((C, 3), torch.float32), "rgb": ((C, 3), torch.uint8), "conf": ((C,), torch.float32),
                "steps": ((C, 2, 3), torch.float16), "seen": ((C,), torch.int32), "pinned": ((C,), torch.bool)}
        for k, (shape, dtype) in want.items():
            t = sd.get(k)
            if t is None or tuple(t.shape) != shape or t.dtype != dtype:
                got = "missing" if t is None else f"{t.dtype} {tuple(t.shape)}"
                raise ValueError(f"memory.{k}: {got}, expected {dtype} {shape}")
        if "clock" not in sd:
            raise ValueError("memory.clock: missing")
        for k in want:
            setattr(self, k, sd[k].to(self.device).clone())
        self.clock = int(sd["clock"].reshape(-1)[0])

    def tick(self) -> None:
        self.clock += 1

    # ------------------------------------------------------------------ adding
    @torch.inference_mode()
    def add(self, rgb: torch.Tensor, depth: torch.Tensor, c2w, intrinsics, mask: torch.Tensor | None = None,
            conf: float = 1.0, pinned: bool = False, rims: bool = False) -> int:
        """Lift the pixels of one view into the memory. rgb (H, W, 3) uint8; depth (H, W) z-depth in metres; c2w
        (4, 4) in the start camera's frame; intrinsics [fx, fy, cx, cy]; mask (H, W) bool: the pixels to add (default
        all); rims: lift them even on a depth edge, each with a footprint of at most one pixel (the start picture's
        rims, their depth given to one side: world/rims.py). -> the number of points added."""
        cfg, dev = self.cfg, self.device
        depth = depth.to(dev, torch.float32)
        edge, edge_inv, max_step = (float("inf"), float("inf"), 1.0) if rims else (cfg.edge, cfg.edge_inv,
                                                                                   cfg.max_step)
        # the pixels to lift, their points in the camera and their steps to the right / lower neighbour pixel on the
        # same surface (kernels/lift: not across an edge; at the frame's edge or across one, a pixel's width)
        idx, cam, steps = lift(depth, None if mask is None else mask.to(dev),
                               np.asarray(intrinsics, dtype=np.float64).reshape(4), cfg.near, cfg.far, cfg.far_store,
                               edge, edge_inv, max_step)
        idx, cam, steps = idx.to(dev), cam.to(dev), steps.to(dev)
        n = int(idx.numel())
        if n == 0:
            return 0
        slots = self._slots(n)
        if slots.numel() < n:  # more than the memory can take: every k-th pixel, deterministically
            pick = torch.linspace(0, n - 1, slots.numel(), device=dev).round().long()
            idx, cam, steps = idx[pick], cam[pick], steps[pick]
            n = int(idx.numel())
        pose = _as_pose(c2w, dev)
        R = pose[:3, :3]
        self.xyz[slots] = _rotate(cam, R) + pose[:3, 3]
        self.rgb[slots] = rgb.to(dev).reshape(-1, 3)[idx]
        self.conf[slots] = float(conf)
        self.steps[slots] = torch.stack([_rotate(steps[:, 0], R), _rotate(steps[:, 1], R)], 1).half()
        self.seen[slots] = self.clock
        self.pinned[slots] = bool(pinned)
        self.last_added = slots
        return n

    def _slots(self, n: int) -> torch.Tensor:
        """Up to n slots to write: free ones first, then the unpinned points seen longest ago (least confident first
        among equals). The clock is an integer: whole clock values go oldest first (counted, not sorted), and only the
        last one taken in part is ordered by confidence."""
        occupied = self.conf > 0
        free = (~occupied).nonzero()[:, 0]
        if free.numel() >= n:
            return free[:n]
        cand = occupied & ~self.pinned
        seen = self.seen[cand].long()
        k = min(n - free.numel(), int(seen.numel()))
        if k == 0:
            return free
        lo = int(seen.min())
        upto = torch.bincount(seen - lo).cumsum(0)  # points seen at clock lo + i or earlier
        edge = lo + int(torch.searchsorted(upto, k))  # the clock value of the k-th oldest point
        older = (cand & (self.seen < edge)).nonzero()[:, 0]
        at = (cand & (self.seen == edge)).nonzero()[:, 0]
        some = at[torch.topk(self.conf[at], k - older.numel(), largest=False, sorted=True).indices]
        return torch.cat([free, older, some])

    # ------------------------------------------------------------------ rendering
    @torch.inference_mode()
    def render(self, c2w, intrinsics, size_wh: tuple[int, int], stamp: bool = True,
               only: torch.Tensor | None = None) -> MemoryView:
        """The memory seen from cameras c2w (N, 4, 4) with intrinsics [fx, fy, cx, cy] (pixels of size_wh = (W, H)).
        stamp: mark the points drawn in front at full resolution as seen now (what eviction keeps).
        only: slots (long) to draw instead of all points (e.g. those `add` just wrote, in `last_added`)."""
        cfg, dev = self.cfg, self.device
        W, H = size_wh
        poses = _as_pose(c2w, dev).reshape(-1, 4, 4)
        fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
        pts = (self.xyz, self.rgb, self.conf, self.steps)
        if only is not None:
            only = only.to(dev)
            pts = tuple(v[only] for v in pts)
        col, zl, cl, ll, owner = splat(*pts, poses[:, :3, :3], poses[:, :3, 3],
                                       (fx, fy, cx, cy), (W, H), levels=cfg.levels, level_weight=cfg.level_weight,
                                       occlusion=cfg.occlusion, magnified=MAGNIFIED, near=cfg.near,
                                       support=cfg.support, support_ratio=cfg.support_ratio, crack=CRACK)
        owner = owner.to(dev)
        if only is not None and only.numel():  # owner holds positions in `only`
            owner = torch.where(owner >= 0, only[owner.clamp_min(0)], -1)
        # stamp the points drawn as seen now; the full-resolution pixels of pinned points (one pass)
        pinned = mark(self.seen if stamp else None, owner, self.clock, self.pinned)
        col, zl, cl, ll = (v.to(dev) for v in (col, zl, cl, ll))
        return MemoryView(col, zl, cl, ll, pinned)
