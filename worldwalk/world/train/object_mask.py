"""Stage `object-mask`: the start picture's object network (world/object_mask.py).

Data: the ground-data shards (world/train/ground_shape.py, `train ground-data`), which keep each start picture's
objects at full resolution (`objects`, bit-packed: the pixels where the world rendered with its objects is nearer than
0.97 x the same world without them).

Objective: binary cross-entropy on the logits over random square crops, mirrored half the time (the ray map's x flips
sign), AdamW with a warm-up and a cosine decay; the objects' IoU on held-out folders every `eval_every` steps and at
the end. Resumable: <out>/state.pt, the result <out>/object_final.pt.

    python launch.py train ground-data --out runs/obj_data --pictures 3000
    python launch.py train object-mask --dir runs/obj_data --eval runs/obj_val --out runs/objects --steps 4000
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from worldwalk.world.depth import DepthConfig, ray_inputs, unet_inputs
from worldwalk.world.object_mask import RAY_X, ObjectMask, ObjectMaskConfig
from worldwalk.world.train.common import _load_state, _log, _lr, _save_state, flush_denormals, load_start_part


def load_object_data(dirs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Folders of ground-data shards -> pictures (N, H, W, 3) uint8, objects (N, H, W) bool, intrinsics (N, 4).
    Raises ValueError (one line) for a folder without shards or a shard without objects."""
    imgs, objs, intrs = [], [], []
    for d in [dirs] if isinstance(dirs, (str, Path)) else dirs:
        shards = sorted(Path(d).glob("shard_[0-9][0-9][0-9][0-9].npz"))
        if not shards:
            raise ValueError(f"--dir {d}: no ground-data shards (shard_NNNN.npz) there; expected a folder that "
                             "`launch.py train ground-data` wrote")
        for p in shards:
            z = np.load(p)
            if not {"imgs", "objects", "intrinsics"} <= set(z.files):
                raise ValueError(f"{p}: no object masks (expected a ground-data shard with imgs, objects, intrinsics;"
                                 " shards from before the object network have none: render them again)")
            imgs.append(z["imgs"])
            objs.append(np.unpackbits(z["objects"], axis=-1, count=z["imgs"].shape[2]).astype(bool))
            intrs.append(z["intrinsics"])
    return np.concatenate(imgs), np.concatenate(objs), np.concatenate(intrs)


def _inputs(imgs: np.ndarray, intrs: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8, (B, 4) -> unet_inputs (B, 6, H, W) from each picture's start camera."""
    cfg = DepthConfig()
    B, H, W = imgs.shape[:3]
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    rays, prior = ray_inputs(torch.from_numpy(intrs), torch.eye(4).expand(B, 4, 4), (W, H), cfg.eye_height,
                             cfg.min_depth, cfg.max_depth)
    return unet_inputs(x, rays, prior)


def object_iou(net: ObjectMask, data) -> float:
    """The objects' intersection over union on (held-out) data (pictures, objects, intrinsics)."""
    imgs, objs, intrs = data
    inter = union = 0
    with torch.no_grad():
        for i in range(0, len(imgs), 16):
            pred = (net(_inputs(imgs[i:i + 16], intrs[i:i + 16]))[:, 0] > 0).numpy()
            true = objs[i:i + 16]
            inter += int((pred & true).sum())
            union += int((pred | true).sum())
    return inter / max(union, 1)


def train_object_mask(data_dirs, out: str | Path, eval_dirs=None, steps: int = 4000, batch: int = 16,
                      crop: int = 128, lr: float = 2e-3, seed: int = 0, save_every: int = 250,
                      eval_every: int = 500, cfg: ObjectMaskConfig | None = None) -> Path:
    """Train (or resume) an ObjectMask. -> the path of object_final.pt."""
    torch.manual_seed(seed)
    imgs, objs, intrs = load_object_data(data_dirs)
    held = load_object_data(eval_dirs) if eval_dirs else None
    net = ObjectMask(cfg).train()
    f = net.cfg.factor
    H, W = imgs.shape[1:3]
    crop = max(f, min(crop, H, W) // f * f)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    step = _load_state(out, {"object_mask": net}, opt)
    rng = np.random.default_rng(seed + step)
    sign = torch.ones(1, 6, 1, 1)
    sign[0, RAY_X] = -1  # a mirrored picture's rays point the other way
    bar = tqdm(range(step, steps), initial=step, total=steps, desc="object-mask", unit="step")
    t0 = time.time()
    with flush_denormals():
        for step in bar:
            idx = rng.integers(0, len(imgs), batch)
            x = _inputs(imgs[idx], intrs[idx])
            y = torch.from_numpy(objs[idx]).float()[:, None]
            ys, xs = rng.integers(0, H - crop + 1, batch), rng.integers(0, W - crop + 1, batch)
            x = torch.stack([x[b, :, r:r + crop, c:c + crop] for b, (r, c) in enumerate(zip(ys, xs))])
            y = torch.stack([y[b, :, r:r + crop, c:c + crop] for b, (r, c) in enumerate(zip(ys, xs))])
            flip = torch.from_numpy(rng.random(batch) < 0.5)[:, None, None, None]
            x = torch.where(flip, x.flip(-1) * sign, x)
            y = torch.where(flip, y.flip(-1), y)
            for g in opt.param_groups:
                g["lr"] = _lr(step, steps, lr, warmup=max(1, steps // 20))
            loss = F.binary_cross_entropy_with_logits(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.set_postfix(bce=f"{loss.item():.4f}")
            row = {"step": step + 1, "loss": loss.item(), "time": time.time() - t0}
            if held is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
                net.eval()
                row["iou"] = object_iou(net, held)
                net.train()
                bar.write(f"step {step + 1}: held-out objects' IoU {row['iou']:.4f}")
            if (step + 1) % 10 == 0 or step + 1 == steps or "iou" in row:
                _log(out, row)
            if (step + 1) % save_every == 0 or step + 1 == steps:
                _save_state(out, step + 1, {"object_mask": net}, opt)
    final = out / "object_final.pt"
    torch.save({"object_mask": net.state_dict(), "cfg": net.cfg.to_dict()}, final)
    return final


def load_object_mask(path: str | Path, flag: str = "--object-mask") -> ObjectMask:
    """An object-mask run's object_final.pt (or the folder holding it), or a bundle's (.safetensors) object network.
    Raises ValueError (one line, naming `flag`)."""
    return load_start_part(path, flag, "object_mask", "object_final.pt", "object-mask", "object network",
                           lambda cfg: ObjectMask(ObjectMaskConfig.from_dict(cfg)))


# ====================================================================== stages
def cmd_object_mask(a) -> int:
    if a.steps < 1 or a.batch < 1 or a.crop < 1 or not a.lr > 0:
        raise ValueError(f"--steps {a.steps}, --batch {a.batch}, --crop {a.crop}, --lr {a.lr}: expected positive "
                         "values")
    final = train_object_mask(a.dir, a.out, eval_dirs=a.eval, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr,
                              seed=a.seed)
    print(f"object network saved to {final}")
    return 0
