"""Stages `ground-data` and `ground-shape`: the start picture's ground-shape network (world/ground_shape.py).

Data (`ground_data`): start pictures of procedural worlds (the start camera, level, eye height above the ground, a
field of view from `fov`), each rendered twice: with its objects and without them. Where the two agree and the bare
terrain is nearer than 150 m below the horizon, a pixel is open ground; its target is the log ratio of the terrain's
depth to the level plane's. Kept at 1/4 resolution (the network's own), in shards of `shard_size` pictures
(imgs uint8 (N, H, W, 3), ratio float16 (N, H/4, W/4), mask bool, intrinsics (N, 4), and objects (N, H, W/8):
the full-resolution pixels where an object stands in front of the terrain, bit-packed along rows, for the object
network, world/train/object_mask.py); resumable by shard, rendered by `workers` processes (0.3 s a picture on one
core).

Objective (`ground_shape`): L1 on the log ratio over the ground pixels, mirrored pictures half the time (the ray map's
x flips sign), AdamW with a warm-up and a cosine decay; the ground's AbsRel on a held-out folder every `eval_every`
steps and at the end (with the level plane's beside it). Resumable: <out>/state.pt, the result <out>/ground_final.pt.

    python launch.py train ground-data --out runs/ground_data --pictures 6000
    python launch.py train ground-data --out runs/ground_val --pictures 200 --held-out
    python launch.py train ground-shape --dir runs/ground_data --eval runs/ground_val --out runs/ground --steps 8000
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.depth import DepthConfig, ray_inputs
from worldwalk.world.ground_shape import RAY_X, GroundShape, GroundShapeConfig, features
from worldwalk.world.train.common import _load_state, _log, _lr, _save_state, flush_denormals, load_start_part
from worldwalk.world.train.depth import HELD_OUT

TRAIN_FIRST = 600_000  # training scene seeds start here (the depth stages draw theirs from 0 ... 10^6 at random)
HELD_OUT_FIRST = HELD_OUT + 3000  # held-out pictures: past the benchmarks' scenes and the depth stages' held-out ones


def ground_data(out: str | Path, pictures: int, held_out: bool = False, shard_size: int = 200,
                fov: tuple[float, float] = (60.0, 60.0), size: tuple[int, int] = (256, 256), seed: int = 0,
                workers: int = 1) -> Path:
    """Render `pictures` start pictures with their ground targets into <out>/shard_NNNN.npz (resumable by shard;
    `workers` processes of one thread each). Scene seeds: TRAIN_FIRST (HELD_OUT_FIRST with held_out) + seed·10^5 +
    the picture's index."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fovs = rng.uniform(fov[0], fov[1], pictures) if fov[1] > fov[0] else np.full(pictures, fov[0])
    first = (HELD_OUT_FIRST if held_out else TRAIN_FIRST) + seed * 100_000
    todo = [(out / f"shard_{s:04d}.npz", first, range(s * shard_size, min(pictures, (s + 1) * shard_size)), fovs,
             size) for s in range(-(-pictures // shard_size)) if not (out / f"shard_{s:04d}.npz").exists()]
    if workers > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            list(tqdm(pool.map(_ground_shard, todo), total=len(todo), desc="ground-data", unit="shard"))
    else:
        for job in tqdm(todo, desc="ground-data", unit="shard"):
            _ground_shard(job)
    return out


def _ground_shard(job) -> None:
    """Render one shard (path, first scene seed, picture indices, fields of view, size) and write it whole."""
    from worldwalk.world.procedural.scene import Scene

    path, first, idx, fovs, (W, H) = job
    torch.set_num_threads(1)
    cfg = DepthConfig()
    rows = np.mgrid[:H, :W][0]
    imgs = np.zeros((len(idx), H, W, 3), np.uint8)
    ratio = np.zeros((len(idx), H // 4, W // 4), np.float16)
    mask = np.zeros((len(idx), H // 4, W // 4), bool)
    objects = np.zeros((len(idx), H, W), bool)
    intrs = np.zeros((len(idx), 4), np.float32)
    for j, i in enumerate(idx):
        intr = from_fov(W, H, float(fovs[i]))
        plane = ray_inputs(intr, torch.eye(4)[None], (W, H), cfg.eye_height, cfg.min_depth,
                           cfg.max_depth)[1][0, 0].exp().numpy()
        img, dep = Scene(first + i).render(np.eye(4)[None], intr, (W, H), depth=True)
        _, bare = Scene(first + i, n_objects=0).render(np.eye(4)[None], intr, (W, H), depth=True)
        # open ground: no object in front of the terrain, nearer than 150 m, below the horizon
        ground = (dep[0] >= 0.97 * bare[0]) & (bare[0] < 150) & (rows > intr[3] + 2)
        imgs[j] = img[0]
        ratio[j] = np.where(ground, np.log(np.where(ground, bare[0], 1) / plane), 0)[2::4, 2::4]
        mask[j] = ground[2::4, 2::4]
        objects[j] = np.isfinite(dep[0]) & (dep[0] < 0.97 * bare[0])  # an object in front of the terrain
        intrs[j] = intr
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, imgs=imgs, ratio=ratio, mask=mask, intrinsics=intrs, objects=np.packbits(objects, axis=-1))
    tmp.replace(path)


def load_ground_data(dirs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Folders of ground-data shards -> features (N, F, h, w), the log ratio (N, 1, h, w), the ground mask (N, 1, h, w).
    Raises ValueError (one line) for a folder without shards or a shard that is not ground data."""
    cfg = DepthConfig()
    fs, rs, ms = [], [], []
    for d in [dirs] if isinstance(dirs, (str, Path)) else dirs:
        shards = sorted(Path(d).glob("shard_[0-9][0-9][0-9][0-9].npz"))
        if not shards:
            raise ValueError(f"--dir {d}: no ground-data shards (shard_NNNN.npz) there; expected a folder that "
                             "`launch.py train ground-data` wrote")
        for p in shards:
            z = np.load(p)
            if not {"imgs", "ratio", "mask", "intrinsics"} <= set(z.files):
                raise ValueError(f"{p}: not a ground-data shard (expected imgs, ratio, mask, intrinsics)")
            imgs, intr = z["imgs"], z["intrinsics"]
            i = 0
            while i < len(imgs):  # runs of up to 50 pictures with the same camera at once
                j = i + 1
                while j < min(len(imgs), i + 50) and np.array_equal(intr[j], intr[i]):
                    j += 1
                x = torch.from_numpy(imgs[i:j]).permute(0, 3, 1, 2).float() / 127.5 - 1
                fs.append(features(x, intr[i], cfg.eye_height, cfg.min_depth, cfg.max_depth))
                i = j
            rs.append(torch.from_numpy(z["ratio"].astype(np.float32))[:, None])
            ms.append(torch.from_numpy(z["mask"])[:, None].float())
    return torch.cat(fs), torch.cat(rs), torch.cat(ms)


def ground_absrel(net: GroundShape, f: torch.Tensor, ratio: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """-> the ground's AbsRel of the level plane and of the network over (held-out) features and targets."""
    with torch.no_grad():
        pred = torch.cat([net(f[i:i + 100]) for i in range(0, len(f), 100)])
    n = mask.sum().clamp_min(1)
    return (float(((torch.exp(-ratio) - 1).abs() * mask).sum() / n),
            float(((torch.exp(pred - ratio) - 1).abs() * mask).sum() / n))


def train_ground_shape(data_dirs, out: str | Path, eval_dirs=None, steps: int = 8000, batch: int = 24,
                       lr: float = 2e-3, seed: int = 0, save_every: int = 250, eval_every: int = 500,
                       cfg: GroundShapeConfig | None = None) -> Path:
    """Train (or resume) a GroundShape. -> the path of ground_final.pt."""
    torch.manual_seed(seed)
    f_tr, r_tr, m_tr = load_ground_data(data_dirs)
    held = load_ground_data(eval_dirs) if eval_dirs else None
    net = GroundShape(cfg).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    step = _load_state(out, {"ground_shape": net}, opt)
    rng = np.random.default_rng(seed + step)
    sign = torch.ones(1, f_tr.shape[1], 1, 1)
    sign[0, RAY_X] = -1  # a mirrored picture's rays point the other way
    bar = tqdm(range(step, steps), initial=step, total=steps, desc="ground-shape", unit="step")
    t0 = time.time()
    with flush_denormals():
        for step in bar:
            idx = torch.from_numpy(rng.integers(0, len(f_tr), batch))
            f, r, m = f_tr[idx], r_tr[idx], m_tr[idx]
            flip = torch.from_numpy(rng.random(batch) < 0.5)[:, None, None, None]
            f = torch.where(flip, f.flip(-1) * sign, f)
            r, m = torch.where(flip, r.flip(-1), r), torch.where(flip, m.flip(-1), m)
            for g in opt.param_groups:
                g["lr"] = _lr(step, steps, lr, warmup=max(1, steps // 20))
            loss = ((net(f) - r).abs() * m).sum() / m.sum().clamp_min(1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.set_postfix(l1=f"{loss.item():.4f}")
            row = {"step": step + 1, "loss": loss.item(), "time": time.time() - t0}
            if held is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
                net.eval()
                row["plane_absrel"], row["absrel"] = ground_absrel(net, *held)
                net.train()
                bar.write(f"step {step + 1}: held-out ground AbsRel {row['absrel']:.4f} (level plane "
                          f"{row['plane_absrel']:.4f})")
            if (step + 1) % 10 == 0 or step + 1 == steps or "absrel" in row:
                _log(out, row)
            if (step + 1) % save_every == 0 or step + 1 == steps:
                _save_state(out, step + 1, {"ground_shape": net}, opt)
    final = out / "ground_final.pt"
    torch.save({"ground_shape": net.state_dict(), "cfg": net.cfg.to_dict()}, final)
    return final


def load_ground_shape(path: str | Path, flag: str = "--ground-shape") -> GroundShape:
    """A ground-shape run's ground_final.pt (or the folder holding it), or a bundle's (.safetensors) ground-shape
    network. Raises ValueError (one line, naming `flag`)."""
    return load_start_part(path, flag, "ground_shape", "ground_final.pt", "ground-shape", "ground-shape network",
                           lambda cfg: GroundShape(GroundShapeConfig.from_dict(cfg)))


# ====================================================================== stages
def cmd_ground_data(a) -> int:
    if a.pictures < 1 or a.shard_size < 1:
        raise ValueError(f"--pictures {a.pictures}, --shard-size {a.shard_size}: expected each >= 1")
    from worldwalk.world.session import FOV_RANGE
    lo, hi = a.fov
    if not FOV_RANGE[0] <= lo <= hi <= FOV_RANGE[1]:
        raise ValueError(f"--fov {lo:g} {hi:g}: expected LOW HIGH degrees with {FOV_RANGE[0]:g} <= LOW <= HIGH <= "
                         f"{FOV_RANGE[1]:g}")
    if a.workers < 1:
        raise ValueError(f"--workers {a.workers}: expected >= 1")
    out = ground_data(a.out, a.pictures, held_out=a.held_out, shard_size=a.shard_size, fov=(lo, hi), seed=a.seed,
                      workers=a.workers)
    print(f"{out}: {len(list(out.glob('shard_[0-9][0-9][0-9][0-9].npz')))} shards")
    return 0


def cmd_ground_shape(a) -> int:
    if a.steps < 1 or a.batch < 1 or not a.lr > 0:
        raise ValueError(f"--steps {a.steps}, --batch {a.batch}, --lr {a.lr}: expected positive values")
    final = train_ground_shape(a.dir, a.out, eval_dirs=a.eval, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed,
                               cfg=GroundShapeConfig(width=a.width))
    print(f"ground-shape network saved to {final}")
    return 0
