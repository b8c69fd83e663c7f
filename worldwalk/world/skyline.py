"""The start picture's skyline round the whole horizon: its standing objects, mirrored round the start camera, seeded
into the world memory.

Where a turn or a long walk reveals the land round the start picture, the model draws the smooth average of what could
stand there: a haze band along the horizon, over the ground (world/detail.py, world/ground_colour.py) and under the
sky (world/sky.py) that the start picture supplies. The start picture shows what stands in that band (trees, houses,
rocks) over the azimuths it spans. This puts the same things round the rest of the circle, as the world's own points:
the picture's standing objects, with their start depth, are lifted into the world memory again from the start camera
turned by whole fields of view, mirrored every other time,

    copy k (k = +-1, +-2, ...)   the start camera turned by k x its horizontal field of view (to the right for k > 0),
                                 the picture mirrored left-right where k is odd

so that the azimuths fold like a triangle wave: the picture, its mirror image beside each edge, the picture again, up
to the point behind the start camera, where the two sides meet (each copy is cut there). The fold is continuous: what
stands at the picture's right edge stands again, mirrored, just beyond it.

The points are the memory's like any others (at the confidence of generated ones): the memory renders them from every
later camera with their own parallax, the model reads that render as its guess and keeps them, the lift adds nothing
where they are, and a walk towards one comes up to it. They are pinned, as the start picture's own points are: a walk
that looks elsewhere for a while would otherwise have its lifts evict them, and the horizon would go back to haze. In
each copy, every object the picture's sides do not cut is turned on by its own small random azimuth (from the
session's seed), so that a full turn does not show the picture's own arrangement again every two fields of view.

Only standing objects are copied: pixels that are neither open ground nor sky, in 8-connected regions that reach down
to the horizon (a crown whose trunk the picture's edge cuts off would float), do not reach the picture's lower edge (a
near thing the camera stands over: a person, a table, a launch pad) and cover at most `largest` of it. Where the
depth bundle has an object network (world/object_mask.py) its objects are used; otherwise those of the start depth:
below the horizon nearer than `object_ratio` of the level ground plane's depth, carried down each column to the
object's foot. A picture without sky, or without such objects (a close-up, a portrait, a room), is not copied.

Measured (benchmarks/RESULTS.md "The start picture's skyline"): held-out walks lose 0.4 dB of PSNR and gain no
full-resolution sharpness, so it is off by default (MemorySettings.skyline, the app's --skyline).

    mask = standing_objects(depth (H, W), intrinsics, eye_height, far, objects=None)   # (H, W) bool, or None
    n = seed(memory, pixels (H, W, 3) uint8, depth, intrinsics, mask, conf, rng_seed=0)   # points added
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from worldwalk.controls.se3 import make_pose, rotation_from_angles


def feet(obj: torch.Tensor, z: torch.Tensor, tol: float = 0.1) -> torch.Tensor:
    """obj (H, W) bool, z (H, W) metres -> obj carried down each column while the depth stays within tol (relative)
    of the depth of the object pixel above: an upright object is one depth down its column to its foot (the start
    depth stands objects on their feet, world/object_mask.py), and its lower rows, as far as the ground plane there,
    would otherwise read as ground."""
    out = obj.clone()
    logz = z.clamp_min(1e-3).log()
    nan = torch.full_like(logz[0], float("nan"))
    run = torch.where(obj[0], logz[0], nan)  # the depth carried down each column (nan: none)
    for r in range(1, obj.shape[0]):
        carried = (logz[r] - run).abs() <= tol  # (False where there is no run)
        out[r] |= carried
        run = torch.where(obj[r], logz[r], torch.where(carried, run, nan))
    return out


def standing(obj: torch.Tensor, largest: float, horizon: float) -> torch.Tensor:
    """obj (H, W) bool -> its 8-connected regions that stand in the view: reaching down to the horizon row (pixel
    centres, `horizon`) or below it (a tree's crown whose trunk the picture's edge cuts off would float), not reaching
    the picture's lower edge (a near thing the camera stands over or beside) and covering at most `largest` of it."""
    lab, n = ndimage.label(obj.numpy(), structure=np.ones((3, 3), bool))
    if n == 0:
        return obj
    size = np.bincount(lab.ravel(), minlength=n + 1)
    rows = np.broadcast_to(np.arange(obj.shape[0])[:, None] + 0.5, lab.shape)
    lowest = np.zeros(n + 1)
    np.maximum.at(lowest, lab.ravel(), rows.ravel())
    drop = lowest < horizon - 1
    drop[np.unique(lab[-1])] = True
    drop[size > largest * obj.numel()] = True
    drop[0] = True
    return torch.from_numpy(~drop[lab])


def standing_objects(depth: torch.Tensor, intrinsics, eye_height: float, far: float,
                     objects: torch.Tensor | None = None, object_ratio: float = 0.7, far_share: float = 0.95,
                     min_share: float = 0.005, largest: float = 0.5) -> torch.Tensor | None:
    """depth (H, W) the start picture's z-depth (metres); intrinsics [fx, fy, cx, cy] in its pixels (a level camera);
    eye_height: metres down to the ground; far: the depth network's far limit; objects (H, W) bool: the object
    network's, or None for the start depth's rule. -> (H, W) bool: the standing objects to copy, or None where the
    picture has less than min_share of them or of sky."""
    H, W = depth.shape
    fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
    z = depth.float().cpu()
    sky = ~torch.isfinite(z) | (z >= far_share * far)
    if float(sky.float().mean()) < min_share:
        return None
    if objects is None:
        rows = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W) + 0.5
        below = rows - cy > 0.5
        plane = torch.where(below, eye_height * fy / (rows - cy).clamp_min(0.5), torch.inf)
        # (near the horizon the plane lies beyond the network's far limit, and so does the ground it sees there)
        ground = below & (z >= object_ratio * plane.clamp_max(far_share * far))
        objects = feet(~ground & ~sky, z)
    mask = standing(objects.cpu() & ~sky, largest, cy)
    return mask if float(mask.float().mean()) >= min_share else None


def copies(intrinsics, size: tuple[int, int]) -> list[tuple[int, float, bool]]:
    """The copies round the circle for a picture of size (W, H) with intrinsics [fx, fy, cx, cy]: (k, yaw in radians,
    mirrored), k = 1, -1, 2, -2, ... while the copy begins before the point behind the start camera."""
    W, _ = size
    fx = float(np.asarray(intrinsics, dtype=np.float64).reshape(4)[0])
    span = 2 * math.atan2(W / 2, fx)  # the horizontal field of view across the middle row
    out = []
    k = 1
    while (k - 0.5) * span < math.pi:
        out += [(k, k * span, k % 2 == 1), (-k, -k * span, k % 2 == 1)]
        k += 1
    return out


def seed(memory, pixels: torch.Tensor, depth: torch.Tensor, intrinsics, mask: torch.Tensor, conf: float,
         pinned: bool = True, jitter: float = 0.5, rng_seed: int = 0) -> int:
    """Lift the copies of the start picture's standing objects (mask (H, W) bool) into the world memory (world/
    memory.py WorldMemory): pixels (H, W, 3) uint8, depth (H, W) metres, intrinsics [fx, fy, cx, cy], seen from the
    start camera. In each copy, every object (an 8-connected region of the mask) that the picture's sides do not cut
    is turned on by its own random azimuth, up to `jitter` x the half field of view either way (drawn from rng_seed
    and the copy), so that the copies are not the picture's own arrangement again; objects the sides cut stay where
    the fold puts them, joined to their mirror image. Each point is cut at the point behind the start camera. -> the
    number of points added."""
    H, W = depth.shape
    fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
    azimuth = torch.atan((torch.arange(W, dtype=torch.float32) + 0.5 - cx) / fx)  # (W,) of each column, start camera
    half = math.atan2(W / 2, fx)
    lab, n = ndimage.label(mask.numpy(), structure=np.ones((3, 3), bool))
    lab = torch.from_numpy(lab)
    cut = set(np.unique(np.concatenate([lab[:, 0].numpy(), lab[:, -1].numpy()])).tolist()) - {0}
    added = 0
    for k, yaw, mirrored in copies(intrinsics, (W, H)):
        px, z, regions, intr, a = pixels, depth, lab, (fx, fy, cx, cy), azimuth
        if mirrored:  # the picture mirrored left-right, seen by a camera mirrored alike (its centre column kept)
            px, z, regions = px.flip(1), z.flip(1), regions.flip(1)
            intr = (fx, fy, W - cx, cy)
            a = -azimuth.flip(0)
        rng = np.random.default_rng([rng_seed, k + 1000])
        turns = {r: 0.0 if r in cut else float(rng.uniform(-jitter, jitter)) * half for r in range(1, n + 1)}
        px, z = px.contiguous(), z.contiguous()
        for turn in sorted(set(turns.values())):  # the objects turned alike, one lift
            m = torch.isin(regions, torch.tensor([r for r, t in turns.items() if t == turn]))
            m &= ((yaw + turn + a).abs() <= math.pi)[None]  # (each column's azimuth round the start camera)
            if not bool(m.any()):
                continue
            c2w = make_pose(rotation_from_angles(math.degrees(yaw + turn)), np.zeros(3))  # turned right
            added += memory.add(px, z, c2w, intr, mask=m, conf=conf, pinned=pinned)
    return added
