"""Stages `depth-data` and `depth`: the world memory's depth network, trained on procedural worlds, whose renderer
gives exact depth.

Data (`depth_data`): random scenes, human-like random walks (world/procedural/walks.py) from the start camera at eye
height; every frame is rendered with its exact z-depth. Each view is kept three ways, because the network reads three
kinds of picture in the app: the exact render (the start image), the render through the VAE and back, and the frame
the world model itself generates at that pose in a streamed walk (blurrier, its colours off; memory off). All three
have the exact depth of the scene as their target: the network learns what the picture stands for.

Objective (`depth`): half the samples exact views, a quarter each through the VAE and generated; L1 on log depth over
every pixel (sky and anything beyond max_depth at max_depth), plus an L1 on the log-depth gradients (sharper edges),
on random square crops (the ray inputs are computed for the whole frame first, so a crop sees its true rays).

The start picture's own network (world/depth.py `DepthNet.start`): data of start pictures alone (`depth-data
--start-only`: the walk's first camera, level at eye height, exact views only, no world model needed), trained on
them alone (`depth --exact-only`) from the frames' network (`--init`), with the objects' pixels (where the exact
depth is nearer than 0.8 x the level ground's) weighted up in the L1 (`--object-weight`): they are a few per cent of
a picture, and what a walk towards them tears apart when their depth is wrong.

Resumable: weights, optimiser, step and RNG in <out>/state.pt, the result in <out>/depth_final.pt; losses in
<out>/log.jsonl.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.depth import DepthConfig, DepthNet, depth_metrics, ray_inputs
from worldwalk.world.train.common import _load_state, _log, _lr, _save_state, flush_denormals

HELD_OUT = 1_000_000  # scene seeds from here on are never trained on (benchmarks/world_quality.py uses them)
KINDS = ("exact", "vae", "model")
OBJECT_NEARER = 0.8  # a pixel whose exact depth is nearer than this x the level ground's is an object's


def objects(log_depth, log_plane):
    """Object pixels (numpy or torch, any shape): exact log depth below the level ground's (ray_inputs' prior) by more
    than OBJECT_NEARER. Sky and the far field are never objects: the prior is at most log max_depth."""
    return log_depth < log_plane + math.log(OBJECT_NEARER)


def depth_views(seed: int, n_frames: int, size=(256, 256), fov_range=(50.0, 80.0), fps: int = 16,
                held_out: bool = False, textures: str = "plain", closeup: bool = False):
    """One random walk in one random scene (held_out: a scene seed >= HELD_OUT + 2000, which neither training nor
    benchmarks/world_quality.py uses; textures "rich": pictures on most surfaces, world/procedural/scene.py;
    closeup: the walk starts level at eye height 0.4-2.5 m in front of one of the scene's objects, facing it, as a
    photograph of something near is taken). -> dict(frames uint8 (F, H, W, 3), depth float32 (F, H, W) z-depth (inf:
    sky), c2w (F, 4, 4) from the walk's first camera, intrinsics (4,))."""
    from worldwalk.controls.se3 import make_pose, rotation_from_angles
    from worldwalk.world.procedural.scene import EYE_HEIGHT, Scene
    from worldwalk.world.procedural.walks import random_walk

    rng = np.random.default_rng(seed)
    scene = Scene(int(rng.integers(0, 10**6)) + (HELD_OUT + 2000 if held_out else 0), textures=textures)
    intr = from_fov(size[0], size[1], float(rng.uniform(*fov_range)))
    c2w = random_walk(n_frames, rng, fps)
    start = np.eye(4)
    if closeup:  # the first camera in front of an object (level, eye height above the ground there), facing it
        centres, radii = (t.numpy() for t in scene._bounds()[:2])
        ground = scene.ground_y(centres[:, 0], centres[:, 2])
        tall = np.flatnonzero(centres[:, 1] - radii < ground - EYE_HEIGHT + 0.3)  # reaching up to about eye height
        pool = tall if len(tall) else np.arange(len(centres))
        i = int(pool[rng.integers(0, len(pool))])
        a = rng.uniform(0, 2 * np.pi)
        r = min(float(radii[i]), 2.0) + rng.uniform(0.4, 2.5)
        x, z = centres[i, 0] + r * np.sin(a), centres[i, 2] + r * np.cos(a)
        yaw = np.degrees(np.arctan2(centres[i, 0] - x, centres[i, 2] - z))  # +Z forward, yaw turns right
        start = make_pose(rotation_from_angles(yaw), np.array([x, scene.ground_y(x, z) - EYE_HEIGHT, z]))
    frames, depth = scene.render(start @ c2w, intr, size, depth=True)
    return {"frames": frames, "depth": depth, "c2w": c2w.astype(np.float32), "intrinsics": intr.astype(np.float32)}


def _through_vae(vae, frames: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.inference_mode():
        y = vae.decode_video(vae.encode_video(x))
    return ((y[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def _generated(session, v: dict) -> np.ndarray:
    session.start(v["frames"][0], frame_intrinsics=v["intrinsics"])
    n = session.frames_per_step
    out = [v["frames"][:1]]
    for i in range(1, len(v["c2w"]), n):
        out.append(session.step(v["c2w"][i:i + n]))
    return np.concatenate(out)


def depth_data(out: str | Path, clips: int, world: str | Path | None, seed: int = 0, chunks: int = 2,
               shard_size: int = 20, every: int = 2, held_out: bool = False, textures: str = "plain",
               closeup: float = 0.0, start_only: bool = False, size: tuple[int, int] = (256, 256)) -> Path:
    """Render `clips` walks of 1 + chunks·frames_per_step frames, keep every `every`-th frame three ways (exact,
    through the VAE, generated by the world model of the bundle `world`). Sharded, resumable. textures: the scenes'
    ("rich": pictures on most surfaces); closeup: the share of walks that start in front of an object. start_only:
    each walk's first frame (the start picture), exact only (world: None; `size` gives the frames')."""
    from worldwalk.world.bundle import load_bundle
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_frames, session, vae = 1, None, None
    if not start_only:
        model, vae, extra = load_bundle(world)
        sam = dict(extra.get("sampler", {}))
        sam["reproject"] = None
        session = Session(model, vae, SamplerConfig(**sam), start_overlay=False)
        size = session.size_wh
        n_frames = 1 + chunks * session.frames_per_step
    n_shards = math.ceil(clips / shard_size)
    for s in tqdm(range(n_shards), desc="depth data shards", unit="shard"):
        path = out / f"shard_{s:04d}.npz"
        if path.exists():
            continue
        parts = {k: [] for k in (("exact",) if start_only else KINDS) + ("depth", "c2w", "intrinsics")}
        for i in range(min(shard_size, clips - s * shard_size)):  # (the last shard: what is left)
            k = seed * 1_000_003 + s * shard_size + i
            v = depth_views(k, n_frames, size, held_out=held_out, textures=textures,
                            closeup=bool(np.random.default_rng([k, 11]).random() < closeup))
            keep = slice(0, None, every)
            parts["exact"].append(v["frames"][keep])
            if not start_only:
                parts["vae"].append(_through_vae(vae, v["frames"])[keep])
                parts["model"].append(_generated(session, v)[keep])
            parts["depth"].append(v["depth"][keep].astype(np.float16))
            parts["c2w"].append(v["c2w"][keep])
            parts["intrinsics"].append(np.repeat(v["intrinsics"][None], len(v["c2w"][keep]), 0))
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: np.concatenate(x) for k, x in parts.items()})
        tmp.replace(path)
    return out


class DepthData:
    """All shards in memory: views (n, H, W, 3) uint8 per kind, depth (n, H, W) float16, c2w, intrinsics. d: a
    depth-data folder, or several (their views together)."""

    def __init__(self, d: str | Path | list):
        shards = []
        for one in ([d] if isinstance(d, (str, Path)) else list(d)):
            found = sorted(Path(one).glob("shard_*.npz"))
            if not found:
                raise ValueError(f"--dir {one}: no shard_*.npz files; run `launch.py train depth-data --out {one}` "
                                 f"first")
            shards += found
        parts = [dict(np.load(p)) for p in shards]
        # (start-only data has the exact views alone; a set that mixes the two keeps the kinds all of it has)
        self.views = {k: np.concatenate([p[k] for p in parts]) for k in KINDS if all(k in p for p in parts)}
        self.depth = np.concatenate([p["depth"] for p in parts])
        self.c2w = np.concatenate([p["c2w"] for p in parts])
        self.intr = np.concatenate([p["intrinsics"] for p in parts])

    def __len__(self):
        return len(self.depth)


def batch_tensors(net: DepthNet, frames: np.ndarray, depth: np.ndarray, c2w: np.ndarray, intr: np.ndarray):
    """(B, H, W, 3) uint8, (B, H, W) depth, (B, 4, 4), (B, 4) -> frames, rays, prior, target log depth (B, 1, H, W)."""
    cfg = net.cfg
    B, H, W = depth.shape
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    rays, prior = ray_inputs(torch.from_numpy(intr), torch.from_numpy(c2w), (W, H), cfg.eye_height, cfg.min_depth,
                             cfg.max_depth)
    z = torch.from_numpy(depth.astype(np.float32))
    z = torch.where(torch.isfinite(z), z, torch.full_like(z, cfg.max_depth)).clamp(cfg.min_depth, cfg.max_depth)
    return x, rays, prior, z.log()[:, None]


def train_depth(data_dir: str | Path | list, out: str | Path, steps: int = 3000, batch: int = 12, crop: int = 128,
                lr: float = 2e-3, seed: int = 0, save_every: int = 200, cfg: DepthConfig | None = None,
                log_every: int = 10, kind_p: tuple[float, ...] = (0.5, 0.25, 0.25),
                init: str | Path | None = None, object_weight: float = 0.0) -> Path:
    """Train (or resume) a DepthNet; kind_p: how often a sample is the exact view, the VAE's, the model's (the start
    image, which the memory keeps for good, is exact). init: a depth run or bundle whose network this one starts from
    (a fresh run only; parts it lacks, such as a new fine stage, keep their zero-initialised start). object_weight:
    the L1 of object pixels (`objects`) counts 1 + this much. -> the path of depth_final.pt."""
    torch.manual_seed(seed)
    data = DepthData(data_dir)
    missing = [k for k, p in zip(KINDS, kind_p) if p > 0 and k not in data.views]
    if missing:
        dirs = ", ".join(map(str, [data_dir] if isinstance(data_dir, (str, Path)) else data_dir))
        raise ValueError(f"--dir {dirs}: no {'/'.join(missing)} views (start-only data?); train it with --exact-only")
    net = DepthNet(cfg).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    step = _load_state(out, {"depth": net}, opt)
    if init is not None and step == 0:
        init_from(net, init)
    H, W = data.depth.shape[1:]
    f = net.cfg.factor
    crop = max(f, min(crop, H, W) // f * f)
    rng = np.random.default_rng(seed + step)
    bar = tqdm(range(step, steps), initial=step, total=steps, desc="depth", unit="step")
    t0 = time.time()
    with flush_denormals():  # (small weights and gradients as denormals made steps several times slower)
        for step in bar:
            idx = rng.integers(0, len(data), batch)
            kinds = rng.choice(len(KINDS), batch, p=np.asarray(kind_p) / np.sum(kind_p))
            frames = np.stack([data.views[KINDS[k]][i] for k, i in zip(kinds, idx)])
            x, rays, prior, target = batch_tensors(net, frames, data.depth[idx], data.c2w[idx], data.intr[idx])
            weight = 1 + object_weight * objects(target, prior).float()  # (B, 1, H, W): objects count more
            ys, xs = rng.integers(0, H - crop + 1, batch), rng.integers(0, W - crop + 1, batch)
            cut = lambda t: torch.stack([t[b, :, y:y + crop, x_:x_ + crop] for b, (y, x_) in  # noqa: E731
                                         enumerate(zip(ys, xs))])
            x, rays, prior, target, weight = cut(x), cut(rays), cut(prior), cut(target), cut(weight)
            flip = torch.from_numpy(rng.random(batch) < 0.5)  # mirror: rays' x flips sign with the picture
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            rays = torch.where(flip[:, None, None, None], rays.flip(-1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1),
                               rays)
            prior = torch.where(flip[:, None, None, None], prior.flip(-1), prior)
            target = torch.where(flip[:, None, None, None], target.flip(-1), target)
            weight = torch.where(flip[:, None, None, None], weight.flip(-1), weight)
            for g in opt.param_groups:
                g["lr"] = _lr(step, steps, lr, warmup=100)
            pred = net(x, rays, prior)
            l1 = ((pred - target).abs() * weight).sum() / weight.sum()
            gx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
            gy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
            grad = (gx(pred) - gx(target)).abs().mean() + (gy(pred) - gy(target)).abs().mean()
            loss = l1 + 0.5 * grad
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            bar.set_postfix(l1=f"{l1.item():.4f}")
            if (step + 1) % log_every == 0 or step + 1 == steps:
                _log(out, {"step": step + 1, "loss": loss.item(), "l1_log": l1.item(), "time": time.time() - t0})
            if (step + 1) % save_every == 0 or step + 1 == steps:
                _save_state(out, step + 1, {"depth": net}, opt)
    final = out / "depth_final.pt"
    torch.save({"depth": net.state_dict(), "cfg": net.cfg.to_dict()}, final)
    return final


def load_trained_depth(path: str | Path) -> DepthNet:
    """A depth run's depth_final.pt (or the file itself)."""
    p = Path(path)
    p = p / "depth_final.pt" if p.is_dir() else p
    st = torch.load(p, weights_only=False)
    net = DepthNet(DepthConfig.from_dict(st["cfg"]))
    net.load_state_dict(st["depth"])
    return net.eval()


def load_depth_source(path: str | Path, flag: str) -> DepthNet:
    """The depth network of a bundle (.safetensors) or of a depth run (a folder with depth_final.pt, or that file).
    Raises ValueError (one line, naming `flag`) when there is none there."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from worldwalk.world.bundle import load_depth

        net = load_depth(p)
        if net is None:
            raise ValueError(f"{flag} {path}: this bundle has no depth network")
        return net
    if not (p / "depth_final.pt" if p.is_dir() else p).is_file():
        raise ValueError(f"{flag} {path}: no such depth run (a folder with depth_final.pt, or that file) or bundle")
    return load_trained_depth(p)


def init_from(net: DepthNet, path: str | Path) -> None:
    """Copy a depth run's or bundle's network into `net`, whose extra parts (absent there) stay as they are. Raises
    ValueError (one line) when there is no depth network there or a shared tensor has another size."""
    theirs, ours = load_depth_source(path, "--init").state_dict(), net.state_dict()
    theirs = {k: v for k, v in theirs.items()  # (a bundle's start picture networks)
              if not k.startswith(("start.", "ground_shape.", "object_mask."))}
    for k, v in theirs.items():
        if k not in ours or ours[k].shape != v.shape:
            raise ValueError(f"--init {path}: its depth tensor {k} {tuple(v.shape)} does not fit this network's "
                             f"({tuple(ours[k].shape) if k in ours else 'absent'}); give the same --widths/--fine")
    net.load_state_dict(theirs, strict=False)


def evaluate_depth(net: DepthNet, data_dir: str | Path, limit: int | None = None) -> dict:
    """AbsRel and δ < 1.25 per kind of view (exact, vae, model: those the folder has) over a (held-out) depth data
    folder, and AbsRel on the objects alone (`objects`, as train_depth weights them)."""
    data = DepthData(data_dir)
    n = len(data) if limit is None else min(limit, len(data))
    cfg = net.cfg
    true = data.depth[:n].astype(np.float32)
    H, W = true.shape[1:]
    planes = [ray_inputs(data.intr[i], torch.from_numpy(data.c2w[i:i + 1]), (W, H), cfg.eye_height, cfg.min_depth,
                         cfg.max_depth)[1][0, 0].numpy() for i in range(n)]  # log depth of the level ground
    obj = objects(np.log(true), np.stack(planes))  # (sky: log inf, never an object)
    res = {}
    for kind in data.views:
        preds = []
        for i in range(0, n, 8):
            sl = slice(i, min(n, i + 8))
            x = torch.from_numpy(data.views[kind][sl]).permute(0, 3, 1, 2).float() / 127.5 - 1
            for j in range(len(x)):
                preds.append(net.predict(x[j:j + 1], data.intr[sl][j], data.c2w[sl][j:j + 1])[0].numpy())
        pred = np.stack(preds)
        res[kind] = depth_metrics(pred, true, cfg.max_depth)
        p, t = pred[obj].astype(np.float64), true[obj].astype(np.float64)
        res[kind]["objects_absrel"] = float(np.mean(np.abs(p - t) / t)) if obj.any() else float("nan")
    return res


def write_eval(out: str | Path, res: dict) -> None:
    with open(Path(out) / "eval.json", "w") as f:
        json.dump(res, f, indent=1)


# ====================================================================== stages
def cmd_depth_data(a) -> int:
    if a.clips < 1 or a.shard_size < 1 or a.chunks < 1:
        raise ValueError(f"--clips {a.clips}, --shard-size {a.shard_size}, --chunks {a.chunks}: expected each >= 1")
    if not 0 <= a.closeup <= 1:
        raise ValueError(f"--closeup {a.closeup}: expected a share from 0 to 1")
    if a.world is None and not a.start_only:
        raise ValueError("--world: required (its VAE and model make the blurry views), unless --start-only")
    out = depth_data(a.out, a.clips, a.world, seed=a.seed, shard_size=a.shard_size, chunks=a.chunks,
                     held_out=a.held_out, textures=a.textures, closeup=a.closeup, start_only=a.start_only)
    print(f"{out}: {len(list(out.glob('shard_*.npz')))} shards")
    return 0


def cmd_depth(a) -> int:
    try:
        widths = DepthConfig().widths if a.widths is None else tuple(int(w) for w in a.widths.split(","))
    except ValueError:
        raise ValueError(f"--widths {a.widths!r}: expected channel counts separated by commas, e.g. 16,32,48,64,96")
    cfg = DepthConfig(widths=widths, fine=a.fine, median=a.median)
    try:
        cfg.validate()
    except ValueError as e:
        raise ValueError(f"--widths/--fine/--median: {e}") from None
    if a.object_weight < 0:
        raise ValueError(f"--object-weight {a.object_weight}: expected >= 0 (0: every pixel alike)")
    final = train_depth(a.dir, a.out, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr, seed=a.seed,
                        save_every=a.save_every, cfg=cfg, init=a.init, object_weight=a.object_weight,
                        kind_p=(1.0, 0.0, 0.0) if a.exact_only else (0.5, 0.25, 0.25))
    print(f"depth network saved to {final}")
    if a.eval:
        res = evaluate_depth(load_trained_depth(final), a.eval)
        write_eval(a.out, res)
        for kind, m in res.items():
            print(f"held-out {kind}: AbsRel {m['absrel']:.3f}, delta<1.25 {m['delta1']:.3f}, sky far "
                  f"{m['sky_far']:.3f} ({m['pixels']} pixels), objects AbsRel {m['objects_absrel']:.3f}")
    return 0
