"""Ground detail where the frame does not show the start picture: the start picture's own ground texture, tiled over
the level ground of the world.

What the generator draws, where a turn or a step reveals ground no frame has shown and where it drew before, is the
smooth average of what could be there: fog over the right colours. Open ground (grass, gravel, sand: the procedural
worlds' and most outdoor photographs') looks alike all over, and the start picture shows a patch of it. So this keeps
the fine detail (a high-pass) of the start picture's near ground, with its objects and sky left out, and tiles it over
the whole level ground plane the rig stands on, mirrored at the tile's edges so that it runs on without a seam:

    ground plane (metres, the start camera's frame: x right, z forward, the ground eye_height below)
        x in [-w, w], z in [z0, z1]: a rectangle the start picture sees whole, near enough to show its texture
        any other (x, z): folded into it (a mirror at each edge), so every ground point has a source, the same one
        every time: the texture is fixed to the world

Ground seen from farther away reads a farther rectangle, 2.5 times as far and as wide per band, where the picture shows
its ground as small as the view does (up to 4 bands, to a few rows under the horizon; two bands mixed between them): so
the far ground keeps the picture's far texture instead of fading to a smear. A pixel to draw whose ray meets the
ground reads the high-pass there, faded where the view sees the ground from farther than the picture saw its source
(past the farthest band: the texture would alias). The session adds it for display only
(world/session.py): the memory and the model never see it, so it is drawn afresh, the same for the same place, every
time. It goes where the frame does not show the start picture, and also where it shows the start picture's ground
magnified beyond the picture's resolution (`magnified`: walking forward, the near ground was seen from farther away,
and enlarged it is a smear stretched towards the horizon).

    g = GroundDetail(pixels (H, W, 3) uint8, depth (H, W), intrinsics, eye_height)    # once, at the walk's start
    d = g.render(c2w (N, 4, 4), intrinsics, (W, H), weight (N, H, W))   # (N, 3, H, W) in [-1, 1] units, 0 off weight
    g.add_to(frames (N, H, W, 3) uint8, c2w, intrinsics, weight)         # the same, added in place, rounded, clipped
    m = g.magnified(c2w, intrinsics, (W, H), depth (N, H, W), scale)    # (N, H, W) weight where the picture's ground
                                                                         # is magnified beyond its resolution
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from worldwalk.kernels.ground import add_u8, draw, fold  # noqa: F401  (fold: the tiling, for readers and tests)


MAG_FROM, MAG_FULL = 1.2, 2.0  # magnification of the start picture's ground at which `magnified` starts, and is 1
GROUND_BAND = (0.7, 1.3)  # the depth a frame shows, over the level ground's along the ray: that ground


def box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, C, H, W) -> the mean over each pixel's k x k box (odd k), edges replicated; two 1-D passes."""
    r = k // 2
    x = F.avg_pool2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, k), 1)
    return F.avg_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (k, 1), 1)


class GroundDetail:
    def __init__(self, pixels: torch.Tensor, depth: torch.Tensor, intrinsics, eye_height: float, blur: int = 9,
                 clamp: float = 0.2, object_ratio: float = 0.7, edge: float = 0.12,
                 edge_box: int | None = None, bands: int = 4):
        """pixels (H, W, 3) uint8: the start picture at the frame's size; depth (H, W) its z-depth (metres);
        intrinsics [fx, fy, cx, cy] in its pixels; eye_height: metres from the start camera down to the ground.
        blur: the box (odd, pixels) whose mean the high-pass takes out; clamp: the largest change of a channel (in
        [-1, 1] units); object_ratio: a pixel nearer than this share of the ground plane's depth along its ray is an
        object (not copied, nor the pixels its edge reaches through the box); edge: a step of the mean over
        edge_box x edge_box (odd; default 2 blur + 1) this large (in [-1, 1] units, across one such box) is an edge on
        the ground (a shadow's border), left out likewise. The edge box is larger than the high-pass's: a coarse
        texture's own blotches (grass, gravel) step by more than `edge` from one 9-px box to the next, and were they
        taken for edges most of such a ground would be left out; over the larger box they average away, and a
        shadow's border, a step of the ground's colour, remains. bands: at most this many source rectangles, each
        2.5 times as far and as wide as the one before (those whose far edge is 3 rows or more below the horizon):
        ground seen from farther than the first reads the one of its own scale (kernels/ground/naive.py)."""
        H, W = depth.shape
        fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
        self.intrinsics, self.eye_height, self.size_wh = (fx, fy, cx, cy), float(eye_height), (W, H)
        img = pixels.permute(2, 0, 1)[None].float() / 127.5 - 1  # (1, 3, H, W)
        high = (img - box_mean(img, blur)).clamp(-clamp, clamp)
        rows = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
        below = rows - cy > 0.5  # rays that meet the ground plane
        ground = torch.where(below, eye_height * fy / (rows - cy).clamp_min(0.5), torch.inf)  # its z-depth
        obj = below & (depth.float().cpu() < object_ratio * ground)
        # edges in the ground's own colours (a shadow's border, a path): the box mean steps across them, and tiled, a
        # step's high-pass would draw a lattice of lines over the world; they are left out like the objects
        eb = 2 * blur + 1 if edge_box is None else int(edge_box)
        coarse = box_mean(img, eb)[0]  # (3, H, W)
        r = eb // 2
        step = torch.zeros(H, W)
        step[:, r:-r] = (coarse[:, :, 2 * r:] - coarse[:, :, :-2 * r]).abs().amax(0)
        step[r:-r, :] = torch.maximum(step[r:-r, :], (coarse[:, 2 * r:, :] - coarse[:, :-2 * r, :]).abs().amax(0))
        k = blur + 2
        near_obj = F.max_pool2d(F.max_pool2d((obj | (step > edge))[None, None].float(), (1, k), 1, (0, k // 2)),
                                (k, 1), 1, (k // 2, 0))[0, 0] > 0
        keep = below & ~near_obj & (rows > cy + 2)  # not the last rows before the horizon (sub-pixel texture)
        high = high * keep
        # what was left out inside the ground is filled with the texture three boxes above or below it (six, nine),
        # then beside it (three to twelve boxes), so that the tiling has no bare bands where an edge or object was
        filled = keep.clone()
        steps = (3 * blur, -3 * blur, 6 * blur, -6 * blur, 9 * blur, -9 * blur)
        shifts = [(d, 0) for d in steps] + [(0, d) for d in steps + (12 * blur, -12 * blur)]
        for dv, du in shifts:
            if bool(filled[below].all()):
                break
            if abs(dv) >= H or abs(du) >= W:
                continue
            take = below & ~filled & torch.roll(filled, (-dv, -du), (0, 1))  # (what was filled is clean too)
            if dv > 0:
                take[H - dv:] = False
            elif dv < 0:
                take[:-dv] = False
            if du > 0:
                take[:, W - du:] = False
            elif du < 0:
                take[:, :-du] = False
            high = torch.where(take, torch.roll(high, (-dv, -du), (2, 3)), high)
            filled = filled | take
        self.high = high.contiguous(memory_format=torch.channels_last)  # (1, 3, H, W), stored as the kernel reads it
        # the source rectangle: from a little beyond the nearest ground the picture shows, as wide as the picture is
        # there, 2.5 times as deep
        z_bottom = eye_height * fy / max(H - 1 - cy, 0.5)
        self.z0 = max(1.05 * z_bottom, 1.0)
        self.z1 = 2.5 * self.z0
        self.w = 0.95 * self.z0 * min(cx, W - 1 - cx) / fx
        # farther bands, each z1 / z0 times as far and as wide, as many as end at least 3 rows below the horizon:
        # ground seen from farther than the first band is read in the band of its own scale
        self.bands = 1
        while bands > self.bands and self.z1 * (self.z1 / self.z0) ** self.bands <= eye_height * fy / 3:
            self.bands += 1
        self.usable = bool(H - 1 - cy > 4 and self.w > 0 and keep.any())

    def _call(self, fn, c2w, intrinsics, weight: torch.Tensor, *front):
        """fn(*front, high, source intrinsics, eye height, rectangle, c2w, intrinsics, weight), or None where there is
        nothing to draw (no usable ground, or no weight)."""
        if not self.usable or not bool((weight > 0).any()):
            return None
        c2w = torch.as_tensor(np.asarray(c2w, dtype=np.float32)).reshape(-1, 4, 4)
        return fn(*front, self.high[0], self.intrinsics, self.eye_height, (self.z0, self.z1, self.w, self.bands), c2w,
                  np.asarray(intrinsics, dtype=np.float64).reshape(4), weight)

    def render(self, c2w, intrinsics, size: tuple[int, int], weight: torch.Tensor) -> torch.Tensor:
        """c2w (N, 4, 4) in the start camera's frame; intrinsics [fx, fy, cx, cy] in pixels of size = (W, H);
        weight (N, H, W) in [0, 1] (or bool): how much to draw where. -> (N, 3, H, W) float32 detail (0 where the
        weight is 0, above the horizon and where the texture would alias)."""
        W, H = int(size[0]), int(size[1])
        weight = weight.cpu().float().reshape(-1, H, W)
        out = self._call(draw, c2w, intrinsics, weight)
        return torch.zeros((weight.shape[0], 3, H, W)) if out is None else out

    def add_to(self, frames: np.ndarray, c2w, intrinsics, weight: torch.Tensor) -> np.ndarray:
        """frames (N, H, W, 3) uint8 (changed in place) at c2w (N, 4, 4) with intrinsics in their pixels: + the detail
        (render) in [0, 255] units, rounded and clipped. -> frames."""
        self._call(add_u8, c2w, intrinsics, weight.cpu().float().reshape(frames.shape[:3]), frames)
        return frames

    def magnified(self, c2w, intrinsics, size: tuple[int, int], depth: torch.Tensor, scale: float = 1.0
                  ) -> torch.Tensor | None:
        """Where cameras c2w (N, 4, 4) (the start camera's frame; intrinsics [fx, fy, cx, cy] in pixels of size = (W,
        H)) show the start picture's level ground magnified beyond its resolution. depth (N, H, W): the z-depth the
        frame shows (the memory's render; inf where none). A pixel whose ray meets the level ground at z-depth t, where
        the frame shows that ground (depth within GROUND_BAND of t), shows a point the start camera saw at z-depth z_s:
        z_s / t times nearer, so magnified that much across (more in height), and `scale` times less where the picture
        was kept larger than the frame. -> (N, H, W) float32 weight: 0 up to MAG_FROM x, rising to 1 at MAG_FULL x;
        0 off the ground. None where there is no usable ground texture."""
        if not self.usable:
            return None
        W, H = int(size[0]), int(size[1])
        fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
        c2w = torch.as_tensor(np.asarray(c2w, dtype=np.float32)).reshape(-1, 4, 4)
        R, o = c2w[:, :3, :3], c2w[:, :3, 3]
        u = ((torch.arange(W, dtype=torch.float32) - cx) / fx)[None, None, :]  # (1, 1, W)
        v = ((torch.arange(H, dtype=torch.float32) - cy) / fy)[None, :, None]  # (1, H, 1)

        def ray(i: int) -> torch.Tensor:  # (N, H, W): component i of each pixel's ray (z-depth 1 in its camera)
            return R[:, i, 0, None, None] * u + (R[:, i, 1, None, None] * v + R[:, i, 2, None, None])

        dy = ray(1)
        t = (self.eye_height - o[:, 1, None, None]) / dy.clamp_min(1e-6)  # z-depth where the ray meets the ground
        zs = ray(2).mul_(t).add_(o[:, 2, None, None])  # that point's z-depth in the start camera
        d = depth.detach().float().cpu().reshape(-1, H, W)
        lo, hi = GROUND_BAND
        ground = (dy > 1e-6) & (d > lo * t) & (d < hi * t) & (zs > 0)
        w = zs.div_(t.mul_(scale)).sub_(MAG_FROM).div_(MAG_FULL - MAG_FROM).clamp_(0, 1)
        return w.mul_(ground)
