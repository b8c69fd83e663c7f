"""Procedural 3-D worlds with an exact, vectorised ray-casting renderer (torch, CPU-friendly).

    scene = Scene(seed)
    frames = scene.render(c2w (N, 4, 4), intrinsics (4,) or (N, 4), size=(W, H))   # -> uint8 (N, H, W, 3)

World frame: the start camera's OpenCV frame (+X right, +Y down, +Z forward), metres. The camera starts at the origin at
eye height; the ground lies about `eye_height` below it (world up is −Y). A scene holds:
- terrain: gentle rolling height field (sum of a few long-wavelength waves), textured with a tinted photograph
  (scikit-image's grass / gravel / brick samples) or procedural noise, with distance-based blur against aliasing;
- sky: zenith-to-horizon gradient, a sun disk with glow; aerial haze towards the horizon colour;
- objects standing on the ground: boxes (any yaw), pillars (capped cylinders), trees (trunk + round canopy) and rocks
  (half-buried ellipsoids), each with its own colour and texture;
- lighting: sun (Lambert) with hard shadows from the objects, sky ambient.
With `textures="rich"` (depth training only) most objects, and half the grounds, wear one of scikit-image's other
pictures at full contrast (text, coins, a clock, a cameraman, faces, micrographs, the Hubble deep field ...; never
the four photographs benchmarks/photo_walks.py walks into): a flat surface that shows a picture, so that the depth
network learns that a picture's own edges are not depth edges. The scene is otherwise the plain one of its seed.
Everything is a closed-form ray intersection (slabs, quadratics); the terrain is found by a few Newton steps from the
mean ground plane, exact for its gentle slopes. A seed fixes the whole scene.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

EYE_HEIGHT = 1.6
FAR = 400.0


@dataclass
class _Prims:
    """Primitive parameters, one row each (torch float32)."""

    boxes: torch.Tensor  # (P, 8): cx, cy, cz, hx, hy, hz, yaw, material
    cylinders: torch.Tensor  # (P, 6): cx, cz, y_top, y_bottom, radius, material
    ellipsoids: torch.Tensor  # (P, 7): cx, cy, cz, rx, ry, rz, material


def _textures(rng: np.random.Generator, size: int = 128) -> torch.Tensor:
    """(K, 3, size, size) float textures in [0, 1]: tinted photographs and procedural patterns (mean ~0.5)."""
    from skimage import data
    from skimage.transform import resize

    photos = [data.grass(), data.gravel(), data.brick()]
    tex = []
    for p in photos:
        g = resize(p.astype(np.float32) / 255.0, (size, size), anti_aliasing=True)
        g = 0.5 + (g - g.mean()) * (0.18 / (g.std() + 1e-6))
        tex.append(np.repeat(g[None], 3, 0))
    yy, xx = np.mgrid[0:size, 0:size] / size
    # procedural: soft noise, stripes, checker-ish tiles
    noise = np.zeros((size, size))
    for octave in range(1, 5):
        f = 2**octave
        ph = rng.uniform(0, 2 * np.pi, 2)
        noise += np.sin(2 * np.pi * f * xx + ph[0]) * np.sin(2 * np.pi * f * yy + ph[1]) / octave
    tex.append(np.repeat((0.5 + 0.12 * noise)[None], 3, 0))
    tex.append(np.repeat((0.5 + 0.15 * np.sign(np.sin(2 * np.pi * 4 * yy)))[None], 3, 0))
    tex.append(np.repeat((0.5 + 0.12 * np.sign(np.sin(2 * np.pi * 2 * xx) * np.sin(2 * np.pi * 2 * yy)))[None], 3, 0))
    return torch.tensor(np.stack(tex), dtype=torch.float32).clamp(0, 1)


RICH_PICTURES = ("camera", "coins", "moon", "page", "text", "clock", "hubble_deep_field", "immunohistochemistry",
                 "retina", "colorwheel", "cell", "lfw_subset")  # not coffee, astronaut, chelsea, rocket (held out)


@functools.lru_cache(maxsize=2)
def _rich_textures(size: int = 128) -> torch.Tensor:
    """(len(RICH_PICTURES), 3, size, size) in [0, 1]: scikit-image's pictures at their own contrast and colours
    (lfw_subset: a 4 x 4 mosaic of its faces). Made once per size (every rich scene shares it; nothing writes to
    it)."""
    from skimage import data
    from skimage.transform import resize

    out = []
    for name in RICH_PICTURES:
        img = getattr(data, name)()
        if name == "lfw_subset":
            img = np.concatenate([np.concatenate(list(img[r * 4:r * 4 + 4]), 1) for r in range(4)], 0)
        img = np.asarray(img, dtype=np.float32)
        img = img / 255.0 if img.max() > 1.5 else img
        img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
        s = min(img.shape[:2])  # the middle square
        y0, x0 = (img.shape[0] - s) // 2, (img.shape[1] - s) // 2
        out.append(resize(img[y0:y0 + s, x0:x0 + s], (size, size), anti_aliasing=True).transpose(2, 0, 1))
    return torch.tensor(np.stack(out), dtype=torch.float32).clamp(0, 1)


class Scene:
    def __init__(self, seed: int, n_objects: int | None = None, textures: str = "plain"):
        if textures not in ("plain", "rich"):
            raise ValueError(f"Scene textures {textures!r}: expected 'plain' or 'rich'")
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self.rng = rng
        # ---- sky and light
        self.zenith = np.array(rng.uniform([0.25, 0.40, 0.70], [0.45, 0.60, 0.95]))
        self.horizon = np.clip(self.zenith + rng.uniform([0.25, 0.2, 0.1], [0.45, 0.35, 0.2]), 0, 1)
        elev, azim = math.radians(rng.uniform(20, 60)), rng.uniform(0, 2 * math.pi)
        self.sun_dir = np.array([math.cos(elev) * math.sin(azim), -math.sin(elev), math.cos(elev) * math.cos(azim)])
        self.sun_color = np.array([1.0, 0.95, 0.85]) * rng.uniform(0.9, 1.1)
        self.haze_dist = rng.uniform(60, 160)
        # ---- terrain: y(x, z) = EYE_HEIGHT + sum_i a_i sin(k_i . (x, z) + phi_i) - (its value at the origin)
        n_waves = 4
        ang = rng.uniform(0, 2 * np.pi, n_waves)
        wl = rng.uniform(12, 45, n_waves)
        self.wk = np.stack([np.cos(ang), np.sin(ang)], 1) * (2 * np.pi / wl)[:, None]  # (n, 2)
        self.wa = rng.uniform(0.05, 0.35, n_waves) * (wl / 30)
        self.wp = rng.uniform(0, 2 * np.pi, n_waves)
        self.h0 = float(np.sum(self.wa * np.sin(self.wp)))
        self.ground_tex = int(rng.integers(0, 3))  # a photograph
        self.ground_tint = rng.uniform([0.35, 0.45, 0.2], [0.6, 0.7, 0.4])
        self.ground_scale = rng.uniform(1.5, 3.0)  # metres per texture tile
        # ---- objects
        n = int(rng.integers(40, 64)) if n_objects is None else n_objects
        self._place_objects(rng, n)
        self.textures = _textures(rng)
        if textures == "rich":  # a picture on most surfaces (its own generator: the plain scene stays the same)
            self._dress(np.random.default_rng([self.seed, 7]))
        self.tex_blur = F.avg_pool2d(F.pad(self.textures, (2, 2, 2, 2), mode="circular"), 5, 1)

    def _dress(self, rng: np.random.Generator) -> None:
        """textures="rich": four in five materials, and the ground half the time, take one of the rich pictures (the
        materials' own colours lightened toward white, so the picture's colours show)."""
        base = len(self.textures)
        rich = _rich_textures(self.textures.shape[-1])
        self.textures = torch.cat([self.textures, rich])
        mats = []
        for col, tex, scale in self.materials:
            if rng.random() < 0.8:
                col, tex, scale = 0.5 + 0.5 * col, base + int(rng.integers(0, len(rich))), rng.uniform(1.0, 3.0)
            mats.append((col, tex, scale))
        self.materials = mats
        if rng.random() < 0.5:
            self.ground_tex = base + int(rng.integers(0, len(rich)))
            self.ground_tint = 0.5 + 0.5 * self.ground_tint

    # ------------------------------------------------------------------ scene construction
    def ground_y(self, x, z):
        """Terrain height (y is down) at world (x, z); works on numpy arrays and torch tensors."""
        lib = torch if torch.is_tensor(x) else np
        wk = torch.tensor(self.wk, dtype=x.dtype) if lib is torch else self.wk
        wa = torch.tensor(self.wa, dtype=x.dtype) if lib is torch else self.wa
        wp = torch.tensor(self.wp, dtype=x.dtype) if lib is torch else self.wp
        ph = x[..., None] * wk[:, 0] + z[..., None] * wk[:, 1] + wp
        return EYE_HEIGHT + (wa * lib.sin(ph)).sum(-1) - self.h0

    def _ground_and_grad(self, x, z):
        """Terrain height and its gradient (dy/dx, dy/dz) at torch points (one sin/cos evaluation)."""
        if not hasattr(self, "_wt"):
            self._wt = tuple(torch.tensor(a, dtype=torch.float32) for a in (self.wk, self.wa, self.wp))
        wk, wa, wp = self._wt
        ph = torch.addmm(wp, torch.stack([x, z], -1), wk.T)  # (R, n)
        y = EYE_HEIGHT + torch.sin(ph) @ wa - self.h0
        c = torch.cos(ph) * wa
        return y, c @ wk[:, 0], c @ wk[:, 1]

    def _place_objects(self, rng, n):
        boxes, cyls, ells, self.materials = [], [], [], []

        def material(base=None, tex=None):
            col = np.array(base if base is not None else rng.uniform(0.15, 0.85, 3))
            self.materials.append((col, int(rng.integers(0, 6)) if tex is None else tex, rng.uniform(0.7, 2.0)))
            return len(self.materials) - 1

        placed = []
        tries = 0
        while len(placed) < n and tries < 20 * n:
            tries += 1
            r = math.sqrt(rng.uniform(2.5**2, 32.0**2))
            a = rng.uniform(0, 2 * math.pi)
            x, z = r * math.sin(a), r * math.cos(a)
            kind = rng.choice(["box", "pillar", "tree", "rock"], p=[0.3, 0.2, 0.3, 0.2])
            size = {"box": 1.6, "pillar": 0.8, "tree": 1.6, "rock": 1.2}[kind]
            if any((x - px) ** 2 + (z - pz) ** 2 < (size + ps) ** 2 for px, pz, ps in placed):
                continue
            placed.append((x, z, size))
            gy = float(self.ground_y(np.array(x), np.array(z)))
            if kind == "box":
                hx, hy, hz = rng.uniform(0.4, 1.6), rng.uniform(0.4, 1.8), rng.uniform(0.4, 1.6)
                boxes.append([x, gy - hy + 0.05, z, hx, hy, hz, rng.uniform(0, math.pi), material()])
            elif kind == "pillar":
                h, rad = rng.uniform(2.5, 6.0), rng.uniform(0.2, 0.6)
                cyls.append([x, z, gy - h, gy + 0.2, rad, material(rng.uniform(0.55, 0.9, 3) * [1, 0.95, 0.9])])
            elif kind == "tree":
                h, rad = rng.uniform(1.2, 2.6), rng.uniform(0.12, 0.25)
                cyls.append([x, z, gy - h, gy + 0.2, rad, material(rng.uniform([0.3, 0.2, 0.1], [0.45, 0.3, 0.2]),
                                                                  tex=3)])
                cr = rng.uniform(0.9, 1.8)
                ells.append([x, gy - h - 0.7 * cr, z, cr, cr * rng.uniform(0.8, 1.3), cr,
                             material(rng.uniform([0.1, 0.3, 0.05], [0.3, 0.6, 0.2]), tex=3)])
            else:
                rx, ry, rz = rng.uniform(0.5, 1.3), rng.uniform(0.3, 0.9), rng.uniform(0.5, 1.3)
                ells.append([x, gy, z, rx, ry, rz, material(rng.uniform(0.35, 0.6) * np.ones(3)
                                                          * rng.uniform(0.9, 1.1, 3), tex=1)])
        t = lambda rows, w: torch.tensor(rows, dtype=torch.float32).reshape(-1, w)  # noqa: E731
        self.prims = _Prims(t(boxes, 8), t(cyls, 6), t(ells, 7))

    # ------------------------------------------------------------------ intersection
    def _bounds(self):
        """Bounding spheres (P, 3), (P,) of every primitive, in the order boxes, cylinders, ellipsoids."""
        if hasattr(self, "_bsph"):
            return self._bsph
        P = self.prims
        cb = P.boxes[:, :3]
        rb = P.boxes[:, 3:6].norm(dim=-1)
        cc = torch.stack([P.cylinders[:, 0], (P.cylinders[:, 2] + P.cylinders[:, 3]) / 2, P.cylinders[:, 1]], -1)
        rc = torch.sqrt(((P.cylinders[:, 3] - P.cylinders[:, 2]) / 2) ** 2 + P.cylinders[:, 4] ** 2)
        ce, re = P.ellipsoids[:, :3], P.ellipsoids[:, 3:6].max(-1).values
        kinds = ["box"] * len(cb) + ["cyl"] * len(cc) + ["ell"] * len(ce)
        rows = list(P.boxes) + list(P.cylinders) + list(P.ellipsoids)
        self._bsph = (torch.cat([cb, cc, ce]).reshape(-1, 3), torch.cat([rb, rc, re]) * 1.01 + 1e-3, kinds, rows)
        return self._bsph

    @staticmethod
    def _box(p, o, d, eps):
        c, h, yaw = p[:3], p[3:6], p[6]
        cs, sn = torch.cos(yaw), torch.sin(yaw)
        rel = o - c
        lo = torch.stack([cs * rel[:, 0] - sn * rel[:, 2], rel[:, 1], sn * rel[:, 0] + cs * rel[:, 2]], -1)
        ld = torch.stack([cs * d[:, 0] - sn * d[:, 2], d[:, 1], sn * d[:, 0] + cs * d[:, 2]], -1)
        inv = 1.0 / torch.where(ld.abs() < 1e-9, torch.full_like(ld, 1e-9), ld)
        t1, t2 = (-h - lo) * inv, (h - lo) * inv
        tn, axis = torch.minimum(t1, t2).max(-1)
        tf = torch.maximum(t1, t2).min(-1).values
        t = torch.where((tn <= tf) & (tn > eps), tn, torch.full_like(tn, FAR))
        sgn = -torch.sign(ld.gather(1, axis[:, None]))[:, 0]
        nl = F.one_hot(axis, 3).float() * sgn[:, None]
        n = torch.stack([cs * nl[:, 0] + sn * nl[:, 2], nl[:, 1], -sn * nl[:, 0] + cs * nl[:, 2]], -1)
        return t, n

    @staticmethod
    def _cyl(p, o, d, eps):
        ox, oz = o[:, 0] - p[0], o[:, 2] - p[1]
        dx, dz = d[:, 0], d[:, 2]
        a = (dx * dx + dz * dz).clamp_min(1e-12)
        bq = ox * dx + oz * dz
        disc = bq * bq - a * (ox * ox + oz * oz - p[4] ** 2)
        ts = (-bq - disc.clamp_min(0).sqrt()) / a
        y = o[:, 1] + ts * d[:, 1]
        t_side = torch.where((disc >= 0) & (ts > eps) & (y >= p[2]) & (y <= p[3]), ts, torch.full_like(ts, FAR))
        dy = torch.where(d[:, 1].abs() < 1e-9, torch.full_like(ts, 1e-9), d[:, 1])
        tc = (p[2] - o[:, 1]) / dy  # the top cap (smaller y is higher)
        px, pz = ox + tc * dx, oz + tc * dz
        t_cap = torch.where((tc > eps) & (px * px + pz * pz <= p[4] ** 2), tc, torch.full_like(tc, FAR))
        t = torch.minimum(t_side, t_cap)
        hx, hz = ox + t * dx, oz + t * dz
        ns = F.normalize(torch.stack([hx, torch.zeros_like(hx), hz], -1), dim=-1)
        n = torch.where((t_cap <= t_side)[:, None], torch.tensor([0.0, -1.0, 0.0]).expand_as(ns), ns)
        return t, n

    @staticmethod
    def _ell(p, o, d, eps):
        c, r = p[:3], p[3:6]
        lo, ld = (o - c) / r, d / r
        a = (ld * ld).sum(-1)
        bq = (lo * ld).sum(-1)
        disc = bq * bq - a * ((lo * lo).sum(-1) - 1)
        ts = (-bq - disc.clamp_min(0).sqrt()) / a
        t = torch.where((disc >= 0) & (ts > eps), ts, torch.full_like(ts, FAR))
        n = F.normalize((o + t[:, None] * d - c) / r**2, dim=-1)
        return t, n

    def _hit_objects(self, o, d, shared_origin: bool):
        """Nearest object hit along rays o + t d (R, 3). -> t (R,), normal (R, 3), material (R,) long (-1 = none).

        Rays are tested only against the primitives whose bounding sphere they pass near: for camera rays (one origin)
        by the angle to the sphere, for shadow rays (one direction) by the distance of the sphere from the ray; both
        are (R, P) matrix products, and the exact intersections then run on the few candidates.
        """
        R = o.shape[0]
        best_t = torch.full((R,), FAR)
        best_n = torch.zeros(R, 3)
        best_m = torch.full((R,), -1, dtype=torch.long)
        centers, radii, kinds, rows = self._bounds()
        if not kinds:
            return best_t, best_n, best_m
        if shared_origin:
            v = centers - o[0]  # (P, 3)
            dist = v.norm(dim=-1)
            inside = dist <= radii
            cos_max = torch.sqrt((1 - (radii / dist.clamp_min(1e-6)) ** 2).clamp_min(0))
            cand = (d @ (v / dist.clamp_min(1e-6)[:, None]).T >= cos_max - 1e-3) | inside  # (R, P)
        else:  # one direction d[0] for all rays
            s = d[0]
            along = centers @ s - (o @ s)[:, None]  # (R, P): how far ahead the centre is
            v2 = (centers * centers).sum(-1) - 2 * o @ centers.T + (o * o).sum(-1)[:, None]
            perp2 = v2 - along**2
            cand = (perp2 <= radii**2) & (along >= -radii)
        eps = 1e-4
        fn = {"box": self._box, "cyl": self._cyl, "ell": self._ell}
        mat_col = {"box": 7, "cyl": 5, "ell": 6}
        for i in torch.nonzero(cand.any(0))[:, 0].tolist():
            idx = torch.nonzero(cand[:, i])[:, 0]
            t, n = fn[kinds[i]](rows[i], o[idx], d[idx], eps)
            better = t < best_t[idx]
            j = idx[better]
            best_t[j], best_n[j] = t[better], n[better]
            best_m[j] = int(rows[i][mat_col[kinds[i]]])
        return best_t, best_n, best_m

    def _hit_ground(self, o, d):
        """Ray / terrain: start on the mean plane y = EYE_HEIGHT, then Newton steps on f(t) = y(t) − ground(x, z)
        (3 steps are exact to well under a millimetre for these slopes). Only downward rays can hit."""
        R = o.shape[0]
        t_out = torch.full((R,), FAR)
        n_out = torch.zeros(R, 3)
        down = torch.nonzero(d[:, 1] > 1e-3)[:, 0]
        if len(down) == 0:
            return t_out, n_out
        oo, dd = o[down], d[down]
        t = ((EYE_HEIGHT - oo[:, 1]) / dd[:, 1]).clamp(0, FAR)
        for _ in range(3):
            px, pz = oo[:, 0] + t * dd[:, 0], oo[:, 2] + t * dd[:, 2]
            gy, gx, gz = self._ground_and_grad(px, pz)
            f = oo[:, 1] + t * dd[:, 1] - gy
            df = dd[:, 1] - gx * dd[:, 0] - gz * dd[:, 2]
            t = (t - f / df.clamp_min(1e-3)).clamp(0, FAR)
        px, pz = oo[:, 0] + t * dd[:, 0], oo[:, 2] + t * dd[:, 2]
        gy, gx, gz = self._ground_and_grad(px, pz)
        hit = ((oo[:, 1] + t * dd[:, 1] - gy).abs() < 0.05) & (t < FAR)
        t_out[down] = torch.where(hit, t, torch.full_like(t, FAR))
        n_out[down] = F.normalize(torch.stack([gx, -torch.ones_like(gx), gz], -1), dim=-1)
        return t_out, n_out

    # ------------------------------------------------------------------ shading
    def _sample_tex(self, tex_idx: torch.Tensor, u: torch.Tensor, v: torch.Tensor, blur: torch.Tensor):
        """Bilinear, wrapping texture lookup for each point; `blur` in [0, 1] mixes in the pre-blurred texture."""
        K, _, S, _ = self.textures.shape
        out = torch.zeros(u.shape[0], 3)
        for k in range(K):
            m = tex_idx == k
            if not m.any():
                continue
            uu, vv = (u[m] % 1.0) * S - 0.5, (v[m] % 1.0) * S - 0.5
            x0, y0 = uu.floor(), vv.floor()
            fx, fy = (uu - x0)[:, None], (vv - y0)[:, None]
            x0, y0 = x0.long() % S, y0.long() % S
            x1, y1 = (x0 + 1) % S, (y0 + 1) % S
            mix = []
            for img in (self.textures[k], self.tex_blur[k]):
                im = img.permute(1, 2, 0)
                mix.append((im[y0, x0] * (1 - fx) + im[y0, x1] * fx) * (1 - fy) + (im[y1, x0] * (1 - fx)
                                                                                   + im[y1, x1] * fx) * fy)
            b = blur[m][:, None]
            out[m] = mix[0] * (1 - b) + mix[1] * b
        return out

    def _sky(self, d: torch.Tensor) -> torch.Tensor:
        up = (-d[:, 1]).clamp(-1, 1)
        g = up.clamp_min(0) ** 0.6
        z, h = torch.tensor(self.zenith, dtype=torch.float32), torch.tensor(self.horizon, dtype=torch.float32)
        col = h * (1 - g[:, None]) + z * g[:, None]
        col = torch.where((up < 0)[:, None], h * 0.9, col)
        s = torch.tensor(self.sun_dir, dtype=torch.float32)
        cosang = (d * s).sum(-1)
        sun = torch.tensor(self.sun_color, dtype=torch.float32)
        col = col + sun * (0.35 * cosang.clamp_min(0) ** 64 + 4.0 * (cosang > 0.9995).float())[:, None]
        return col

    def _shade_rays(self, o: torch.Tensor, d: torch.Tensor, pix_angle: float) -> tuple[torch.Tensor, torch.Tensor]:
        """-> colour (R, 3) in linear-ish [0, 1] of rays o + t d, and t (R,) the distance to the hit (>= FAR: sky)."""
        t_obj, n_obj, m_obj = self._hit_objects(o, d, shared_origin=True)
        t_g, n_g = self._hit_ground(o, d)
        ground = t_g < t_obj
        t = torch.minimum(t_obj, t_g)
        hit = t < FAR
        p = o + t[:, None] * d
        n = torch.where(ground[:, None], n_g, n_obj)
        # albedo
        R = o.shape[0]
        albedo = torch.zeros(R, 3)
        footprint = (t * pix_angle).clamp_min(1e-6)
        if ground.any():
            gs = self.ground_scale
            blur = (footprint[ground] / gs * 128 / 2.0).clamp(0, 1)
            tex = self._sample_tex(torch.full((int(ground.sum()),), self.ground_tex), p[ground, 0] / gs,
                                   p[ground, 2] / gs, blur)
            albedo[ground] = tex * torch.tensor(self.ground_tint, dtype=torch.float32) * 2
        obj = hit & ~ground
        if obj.any():
            mats = m_obj[obj]
            cols = torch.tensor(np.array([m[0] for m in self.materials]), dtype=torch.float32)[mats]
            texi = torch.tensor([m[1] for m in self.materials])[mats]
            scale = torch.tensor([m[2] for m in self.materials], dtype=torch.float32)[mats]
            po, no = p[obj], n[obj]
            # triplanar-ish: project on the plane most facing the normal
            ax = no.abs().argmax(-1)
            u = torch.where(ax == 0, po[:, 2], po[:, 0]) / scale
            v = torch.where(ax == 1, po[:, 2], po[:, 1]) / scale
            blur = (footprint[obj] / scale * 128 / 2.0).clamp(0, 1)
            albedo[obj] = cols * self._sample_tex(texi, u, v, blur) * 2
        # light: sun with shadows + sky ambient
        s = torch.tensor(self.sun_dir, dtype=torch.float32)
        lam = (n * s).sum(-1).clamp_min(0)
        lit = hit & (lam > 0)
        shadow = torch.ones(R)
        if lit.any():
            ts, _, _ = self._hit_objects(p[lit] + n[lit] * 1e-3, s.expand(int(lit.sum()), 3), shared_origin=False)
            shadow[lit] = (ts >= FAR).float()
        sky_amb = torch.tensor(self.zenith, dtype=torch.float32) * (0.55 + 0.25 * (-n[:, 1]).clamp(0, 1))[:, None]
        sun = torch.tensor(self.sun_color, dtype=torch.float32)
        col = albedo * (sky_amb + sun * (0.9 * lam * shadow)[:, None])
        # aerial haze
        fog = (1 - torch.exp(-t / self.haze_dist))[:, None]
        col = col * (1 - fog) + torch.tensor(self.horizon, dtype=torch.float32) * fog
        return torch.where(hit[:, None], col, self._sky(d)), t

    # ------------------------------------------------------------------ public
    @torch.no_grad()
    def render(self, c2w, intrinsics, size: tuple[int, int], depth: bool = False):
        """c2w (N, 4, 4) OpenCV camera-to-world; intrinsics (4,) or (N, 4) [fx, fy, cx, cy] in pixels of `size`
        (W, H). -> uint8 (N, H, W, 3), rays through integer pixel coordinates; with depth=True also (N, H, W) float32
        z-depth in metres along each camera's optical axis (inf where the ray sees the sky)."""
        c2w = torch.as_tensor(np.asarray(c2w), dtype=torch.float32).reshape(-1, 4, 4)
        N = c2w.shape[0]
        intr = torch.as_tensor(np.asarray(intrinsics), dtype=torch.float32).reshape(-1, 4).expand(N, 4)
        W, H = size
        v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                              indexing="ij")
        out = np.empty((N, H, W, 3), np.uint8)
        z = np.empty((N, H, W), np.float32) if depth else None
        for i in range(N):
            fx, fy, cx, cy = intr[i]
            dc = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u)], -1).reshape(-1, 3)
            d = F.normalize(dc @ c2w[i, :3, :3].T, dim=-1)
            o = c2w[i, :3, 3].expand_as(d)
            col, t = self._shade_rays(o, d, float(1.0 / fx))
            img = col.clamp(0, 1) ** (1 / 1.6)  # a soft tone curve
            out[i] = (img.reshape(H, W, 3) * 255 + 0.5).to(torch.uint8).numpy()
            if depth:  # distance along the ray times the ray's cosine to the optical axis
                zi = t / dc.norm(dim=-1)
                z[i] = torch.where(t < FAR, zi, torch.full_like(zi, float("inf"))).reshape(H, W).numpy()
        return (out, z) if depth else out
