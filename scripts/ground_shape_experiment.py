"""The ground-shape experiment of benchmarks/RESULTS.md (issue 24, "A network for the ground's shape"): from one start
picture, the terrain's log depth ratio to the level ground 1.6 m below the camera, learnt from multi-scale texture
energies, colour and the ray maps at 1/4 resolution. Not part of the app yet: it helps two sets of held-out walks and
costs the third, so no bundle carries it.

    python scripts/ground_shape_experiment.py data --first 600000 --count 3000 --out runs/ground/train.npz
    python scripts/ground_shape_experiment.py data --first 1003000 --count 200 --out runs/ground/val.npz
    python scripts/ground_shape_experiment.py train --data runs/ground/train.npz --val runs/ground/val.npz \\
        --steps 4500 --out runs/ground/net.pt
    python scripts/ground_shape_experiment.py walk --net runs/ground/net.pt -- --scenes 3 --long 0 --seconds 4 \\
        --first-scene 100

`data` renders start pictures (training seeds below 1,000,000; the benchmarks' held-out scenes are 1,000,000 and up)
with the exact terrain's log ratio and ground mask at 1/4 resolution (0.15 s a picture on one core). `walk` runs
benchmarks/world_quality.py with the start depth's ground (the pixels the depth network calls ground) replaced by
the level ground times exp(the network's log ratio).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worldwalk.app.world_args import positive_number, whole_number  # noqa: E402
from worldwalk.controls.intrinsics import from_fov  # noqa: E402
from worldwalk.world.depth import ray_inputs  # noqa: E402

W = H = 256  # the pictures' size; 60° across, level, 1.6 m above the ground (the procedural start view)
EYE, FOV = 1.6, 60.0


def level_ground():
    """-> rays (1, 2, H, W) and the level ground's log z-depth (1, 1, H, W) of the start camera."""
    return ray_inputs(from_fov(W, H, FOV), torch.eye(4)[None], (W, H), EYE, 0.2, 200.0)


def features(imgs: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 10, H/4, W/4): the log energy of four band-passes of the grey picture (texture
    scale), the colour, the ray maps and the level ground's log depth, each at 1/4 resolution."""
    rays, prior = level_ground()
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    g = x.mean(1, keepdim=True)
    bands = []
    for k in (1, 2, 4, 8):
        band = g - F.avg_pool2d(F.pad(g, (k, k, k, k), mode="replicate"), 2 * k + 1, 1)
        bands.append(torch.log(F.avg_pool2d(band * band, 4) + 1e-4) / 4)
    n = len(x)
    return torch.cat(bands + [F.avg_pool2d(x, 4), F.avg_pool2d(rays, 4).expand(n, -1, -1, -1),
                              ((F.avg_pool2d(prior, 4) - 2) / 2).expand(n, -1, -1, -1)], 1)


class GroundShape(nn.Module):
    """features (N, 10, h, w) -> log ratio (N, 1, h, w), smooth at 4 x 4 cells: dilated residual convolutions (a
    receptive field of most of the picture), a zero-initialised head (it starts as the level ground)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.inp = nn.Conv2d(10, width, 3, 1, 1)
        self.body = nn.ModuleList([nn.Conv2d(width, width, 3, 1, d, dilation=d) for d in (1, 2, 4, 8, 16, 1)])
        self.head = nn.Conv2d(width, 1, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.inp(f))
        for conv in self.body:
            x = x + F.silu(conv(x))
        y = self.head(x)
        return F.interpolate(F.avg_pool2d(y, 4), size=y.shape[-2:], mode="bilinear", align_corners=False)


def cmd_data(a) -> None:
    from worldwalk.world.procedural.scene import Scene
    torch.set_num_threads(1)
    intr = from_fov(W, H, FOV)
    prior = level_ground()[1][0, 0].exp().numpy()
    rows = np.mgrid[:H, :W][0]
    imgs = np.zeros((a.count, H, W, 3), np.uint8)
    ratio = np.zeros((a.count, H // 4, W // 4), np.float16)
    mask = np.zeros((a.count, H // 4, W // 4), bool)
    for i in range(a.count):
        img, dep = Scene(a.first + i).render(np.eye(4)[None], intr, (W, H), depth=True)
        _, bare = Scene(a.first + i, n_objects=0).render(np.eye(4)[None], intr, (W, H), depth=True)
        ground = (dep[0] >= 0.97 * bare[0]) & (bare[0] < 150) & (rows > H / 2 + 2)  # open ground, below the horizon
        imgs[i] = img[0]
        ratio[i] = np.where(ground, np.log(np.where(ground, bare[0], 1) / prior), 0)[2::4, 2::4]
        mask[i] = ground[2::4, 2::4]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, imgs=imgs, ratio=ratio, mask=mask)


def _load(path: str):
    d = np.load(path)
    f = torch.cat([features(d["imgs"][i:i + 100]) for i in range(0, len(d["imgs"]), 100)])
    return f, torch.from_numpy(d["ratio"].astype(np.float32))[:, None], torch.from_numpy(d["mask"])[:, None].float()


def cmd_train(a) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    ftr, ltr, mtr = _load(a.data)
    fv, lv, mv = _load(a.val)
    net = GroundShape()
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.steps, pct_start=0.05)

    def absrel() -> tuple[float, float]:  # the ground's AbsRel: the level ground's, the network's
        with torch.no_grad():
            f = torch.cat([net.eval()(fv[i:i + 100]) for i in range(0, len(fv), 100)])
        net.train()
        return (float(((torch.exp(-lv) - 1).abs() * mv).sum() / mv.sum()),
                float(((torch.exp(f - lv) - 1).abs() * mv).sum() / mv.sum()))

    rng, t0 = np.random.default_rng(0), time.time()
    for step in range(1, a.steps + 1):
        idx = torch.from_numpy(rng.integers(0, len(ftr), a.batch))
        f, lt, m = ftr[idx], ltr[idx], mtr[idx]
        flip = torch.from_numpy(rng.random(a.batch) < 0.5)[:, None, None, None]  # mirror: the ray x flips sign
        f = torch.where(flip, f.flip(-1), f)
        f[:, 7] = torch.where(flip[:, 0], -f[:, 7], f[:, 7])
        lt, m = torch.where(flip, lt.flip(-1), lt), torch.where(flip, m.flip(-1), m)
        loss = ((net(f) - lt).abs() * m).sum() / m.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps:
            plane, ours = absrel()
            print(f"step {step} ({time.time() - t0:.0f} s): loss {loss.item():.4f}; held-out ground AbsRel: level "
                  f"ground {plane:.4f}, network {ours:.4f}", flush=True)
            torch.save(net.state_dict(), a.out)


def cmd_walk(a) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import world_quality as wq
    from worldwalk.world.session import Session
    net = GroundShape()
    net.load_state_dict(torch.load(a.net))
    net.eval()
    before = Session._start_depth

    def start_depth(self, x, intrinsics):
        z = before(self, x, intrinsics)
        if tuple(z.shape) != (H, W):
            return z
        img = ((x[0].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        with torch.no_grad():
            ratio = F.interpolate(net(features(img[None])), size=(H, W), mode="bilinear", align_corners=False)[0, 0]
        cfg = self.depth.cfg
        plane = ray_inputs(intrinsics, torch.eye(4)[None], (W, H), cfg.eye_height, cfg.min_depth,
                           cfg.max_depth)[1][0, 0].exp()
        rows = torch.arange(H)[:, None].expand(H, W)
        zc = z.cpu().float()
        ground = (zc > 0.7 * plane) & (rows > H / 2 + 1) & (zc < 0.95 * cfg.max_depth)  # the network's ground
        return torch.where(ground, plane * ratio.exp(), zc).to(z)

    Session._start_depth = start_depth
    sys.argv = ["world_quality.py"] + a.rest
    wq.main()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--first", type=whole_number(0), required=True)
    d.add_argument("--count", type=whole_number(1), required=True)
    d.add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--val", required=True)
    t.add_argument("--steps", type=whole_number(1), default=4500)
    t.add_argument("--batch", type=whole_number(1), default=24)
    t.add_argument("--lr", type=positive_number, default=2e-3)
    t.add_argument("--out", required=True)
    w = sub.add_parser("walk")
    w.add_argument("--net", required=True)
    w.add_argument("rest", nargs=argparse.REMAINDER, help="world_quality.py's arguments (after --)")
    a = p.parse_args()
    if a.cmd == "walk" and a.rest[:1] == ["--"]:
        a.rest = a.rest[1:]
    for flag in {"train": ("data", "val"), "walk": ("net",)}.get(a.cmd, ()):
        if not Path(getattr(a, flag)).is_file():
            p.error(f"--{flag} {getattr(a, flag)}: no such file; expected "
                    f"{'a trained network (.pt)' if flag == 'net' else 'the .npz that data writes'}")
    {"data": cmd_data, "train": cmd_train, "walk": cmd_walk}[a.cmd](a)


if __name__ == "__main__":
    main()
