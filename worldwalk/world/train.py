"""Training the embedded default world on procedural worlds: data, the causal VAE, the world model, the bundle.

    python launch.py train data  --dir runs/data --clips 800            # render clips (resumable, sharded)
    python launch.py train vae   --dir runs/data --out runs/vae --steps 3000
    python launch.py train world --dir runs/data --vae runs/vae --out runs/world --steps 4000
    python launch.py train data  --dir runs/long --clips 320 --chunks 6  # longer clips: 19 latents = 73 frames
    python launch.py train world --dir runs/long --dir runs/data --vae runs/vae --out runs/roll --init runs/world \
        --rollout --self-context 0.5 --sigma-one 0.5 --lr 1e-4 --warmup 30 --steps 500
    python launch.py train decoder --dir runs/data --vae runs/vae --world runs/world --out runs/decoder --steps 600
    python launch.py train bundle --vae runs/decoder --world runs/roll --out assets/default_world.safetensors

Every stage resumes from its last checkpoint in --out (weights, optimiser, step, RNG), shows a progress bar and
appends its losses to <out>/log.jsonl.

World-model objective (flow matching, v = ε − x0, t = 1000·σ), two ways over the same chunks ([0, 4), [4, 7), ...):
- default: a clip of 1 + 6·stride frames gives 7 latents; a sample picks the chunk being generated, keeps every earlier
  latent clean at t = 0 (what the cache is written from), noises the chunk's new latents at one σ, drops later
  chunks, and takes the loss on the noised latents only, in one chunk-causal forward.
- --rollout: whole clips (any number of chunks) stream chunk by chunk through the engine's own StreamCache (sink and
  a one-chunk window), every chunk's loss counts and gradients stop at the cache. A share of the samples (--self-context)
  runs free as the engine does: every chunk at σ = 1, the cache written from the model's own one-step generation; the
  others are teacher-forced. This trains the horizon and the context the walks actually see.
Camera conditions and Plücker maps come from the clip's own poses.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.controls import rays
from worldwalk.controls.intrinsics import to_latent_grid
from worldwalk.world.model import WorldModel
from worldwalk.world.presets import get_preset
from worldwalk.world.vae import CausalVAE



# ====================================================================== data
def cmd_data(a) -> int:
    from worldwalk.world.procedural.clips import make_clip

    cfg = get_preset(a.preset)
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    # clips of 1 + chunks·chunk_frames latents: --chunks 2 -> 7 latents, chunks [0, 4) and [4, 7)
    n_frames = 1 + a.chunks * cfg.chunk_frames * cfg.temporal_stride
    size = (cfg.resolution[1], cfg.resolution[0])
    per = a.shard_size
    n_shards = math.ceil(a.clips / per)
    for s in tqdm(range(n_shards), desc="data shards", unit="shard"):
        path = d / f"shard_{s:04d}.npz"
        if path.exists():
            continue
        clips = [make_clip(a.seed * 1_000_003 + s * per + i, n_frames, size) for i in range(per)]
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, frames=np.stack([c["frames"] for c in clips]), c2w=np.stack([c["c2w"] for c in clips]),
                 intrinsics=np.stack([c["intrinsics"] for c in clips]))
        tmp.replace(path)
    print(f"{d}: {len(list(d.glob('shard_*.npz')))} shards of {per} clips, {n_frames} frames of {size} each")
    return 0


class ClipData:
    """All shards in memory (uint8); random clips and windows."""

    def __init__(self, d: str | Path, limit: int | None = None):
        shards = sorted(Path(d).glob("shard_*.npz"))
        if not shards:
            raise ValueError(f"--dir {d}: no shard_*.npz files; run `launch.py train data --dir {d}` first")
        parts = [np.load(p) for p in shards[:limit]]
        self.frames = np.concatenate([p["frames"] for p in parts])  # (n, F, H, W, 3)
        self.c2w = np.concatenate([p["c2w"] for p in parts])
        self.intr = np.concatenate([p["intrinsics"] for p in parts])

    def __len__(self):
        return len(self.frames)


def to_unit(frames_u8: np.ndarray) -> torch.Tensor:
    """(B, F, H, W, 3) uint8 -> (B, 3, F, H, W) in [-1, 1]."""
    return torch.from_numpy(frames_u8).permute(0, 4, 1, 2, 3).float() / 127.5 - 1


# ====================================================================== checkpoints
def _save_state(out: Path, step: int, modules: dict, opt, extra: dict | None = None):
    out.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "opt": opt.state_dict(), "rng": torch.get_rng_state(), **(extra or {})}
    state.update({k: m.state_dict() for k, m in modules.items()})
    tmp = out / "state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(out / "state.pt")


def _load_state(out: Path, modules: dict, opt) -> int:
    p = out / "state.pt"
    if not p.exists():
        return 0
    state = torch.load(p, weights_only=False)
    for k, m in modules.items():
        m.load_state_dict(state[k])
    opt.load_state_dict(state["opt"])
    torch.set_rng_state(state["rng"])
    return int(state["step"])


def _log(out: Path, row: dict):
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def _lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# ====================================================================== VAE
def cmd_vae(a) -> int:
    torch.manual_seed(a.seed)
    data = ClipData(a.dir)
    vae = CausalVAE(a.vae_preset).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=a.lr, weight_decay=1e-4)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    step = _load_state(out, {"vae": vae}, opt)
    s = vae.temporal_stride
    win = 1 + a.latents * s  # frames per training window: the first latent alone, then groups of s
    H, W = data.frames.shape[2:4]
    crop = min(a.crop or H, H, W)
    crop -= crop % vae.spatial_factor
    bar = tqdm(range(step, a.steps), initial=step, total=a.steps, desc="vae", unit="step")
    rng = np.random.default_rng(a.seed + step)
    t0 = time.time()
    for step in bar:
        idx = rng.integers(0, len(data), a.batch)
        start = rng.integers(0, data.frames.shape[1] - win + 1, a.batch)
        cy, cx = rng.integers(0, H - crop + 1, a.batch), rng.integers(0, W - crop + 1, a.batch)
        x = to_unit(np.stack([data.frames[i, st:st + win, y:y + crop, xx:xx + crop]
                              for i, st, y, xx in zip(idx, start, cy, cx)]))
        for g in opt.param_groups:
            g["lr"] = _lr(step, a.steps, a.lr)
        z = vae.encode_video(x)
        z_noisy = z + 0.05 * torch.randn_like(z)  # robustness to the generator's small latent errors
        y = vae.decode_video(z_noisy)
        l1 = (y - x).abs().mean()
        mse = (y - x).pow(2).mean()
        gx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
        gy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
        edge = (gx(y) - gx(x)).abs().mean() + (gy(y) - gy(x)).abs().mean()
        reg = 1e-3 * z.pow(2).mean()
        loss = l1 + mse + 0.5 * edge + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.2f}")
        if (step + 1) % 10 == 0 or step + 1 == a.steps:
            _log(out, {"step": step + 1, "loss": loss.item(), "l1": l1.item(), "psnr": psnr, "time": time.time() - t0})
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            _save_state(out, step + 1, {"vae": vae}, opt)
    # latent statistics for normalisation
    vae.eval()
    with torch.no_grad():
        vae.latent_mean.zero_()
        vae.latent_std.fill_(1.0)
        zs = [vae.encode_video(to_unit(data.frames[i:i + 4, :1 + 3 * s])) for i in range(0, min(len(data), 64), 4)]
        z = torch.cat(zs).transpose(0, 1).flatten(1)
        vae.latent_mean.copy_(z.mean(1))
        vae.latent_std.copy_(z.std(1).clamp_min(1e-3))
    torch.save({"vae": vae.state_dict(), "cfg": vae.cfg.to_dict()}, out / "vae_final.pt")
    print(f"VAE saved to {out / 'vae_final.pt'}")
    return 0


def load_trained_vae(path: str | Path) -> CausalVAE:
    from worldwalk.world.vae import VAEConfig

    st = torch.load(Path(path) / "vae_final.pt", weights_only=False)
    vae = CausalVAE(VAEConfig.from_dict(st["cfg"]))
    vae.load_state_dict(st["vae"])
    return vae.eval()


# ====================================================================== world model
def encode_dataset(data: ClipData, vae: CausalVAE, batch: int = 4) -> torch.Tensor:
    """(n, C, T, h, w) normalised latents of every clip."""
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(data), batch), desc="encode clips", unit="batch", leave=False):
            out.append(vae.encode_video(to_unit(data.frames[i:i + batch])))
    return torch.cat(out)


def camera_tensors(c2w: np.ndarray, intr: np.ndarray, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Per clip: camera_conditions (n, T, 20) and Plücker (n, 6s, T, h, w) on the latent grid."""
    size = (cfg.resolution[1], cfg.resolution[0])
    c = torch.from_numpy(c2w).float()
    c = rays.relative_to_first(c)
    li = torch.from_numpy(to_latent_grid(intr, size, cfg.spatial_factor)).float()[:, None].expand(-1, c.shape[1], 4)
    cc = rays.camera_conditions(c, li, cfg.temporal_stride)
    pl = rays.plucker_raymaps(c, li, cfg.latent_hw, cfg.temporal_stride)
    return cc, pl


def sample_sigma(n: int, shift: float, gen: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=gen)
    return shift * u / (1 + (shift - 1) * u)


def noised(x0: torch.Tensor, a, gen: torch.Generator, at_one: torch.Tensor | None = None):
    """x0 (B, ...) at one σ per sample: the shifted schedule, a.sigma_one of them (and those where `at_one`) at σ = 1.

    -> (noisy, eps, sigma (B,))
    """
    B = x0.shape[0]
    sig = sample_sigma(B, a.sigma_shift, gen)
    one = torch.rand(B, generator=gen) < a.sigma_one
    sig = torch.where(one if at_one is None else one | at_one, torch.ones_like(sig), sig)
    eps = torch.randn(x0.shape, generator=gen)
    s = sig.view(B, *[1] * (x0.ndim - 1))
    return (1 - s) * x0 + s * eps, eps, sig


def own_context(model: WorldModel, ctx: torch.Tensor, cc: torch.Tensor, pl: torch.Tensor, gen: torch.Generator,
                bf16: bool) -> torch.Tensor:
    """Replace the clean context latents (B, C, T, h, w) after latent 0 by the model's own one-step generation of
    them, chunk by chunk (what the cache holds when streaming), so training sees the context it will be given."""
    out = ctx[:, :, :1]
    T = ctx.shape[2]
    with torch.no_grad():
        b = 1
        while b < T:
            e = min(T, model.cfg.first_chunk_frames if b == 1 else b + model.cfg.chunk_frames)
            eps = torch.randn(ctx[:, :, b:e].shape, generator=gen)
            ts = torch.zeros(ctx.shape[0], e)
            ts[:, b:] = 1000.0
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                v = model(torch.cat([out, eps], 2), ts, cc[:, :e], pl[:, :, :e], mode="chunk_causal")
            out = torch.cat([out, eps - v.float()[:, :, b:]], 2)
            b = e
    return out


def load_latents(dirs: list[str], vae_dir: str, cfg, out: Path, vae: CausalVAE | None = None,
                 clips: dict | None = None) -> list[dict]:
    """Per --dir: {"z" (n, C, T, h, w), "cc", "pl"} of its clips, encoded once and cached in <out>/latents*.pt
    (the first dir's as latents.pt, the later ones' as latents_<i>.pt). A caller that already holds the VAE or a
    dir's ClipData (clips: {dir: ClipData}) passes them, so neither is read twice."""
    sets, clips = [], clips or {}
    for i, d in enumerate(dirs):
        cache = out / ("latents.pt" if i == 0 else f"latents_{i}.pt")
        if cache.exists():
            lat = torch.load(cache, weights_only=False)
            if lat.get("dir", str(Path(d).resolve())) != str(Path(d).resolve()):
                raise ValueError(f"{cache}: holds the latents of {lat['dir']}, not of --dir {d}; give the dirs in the "
                                 f"order of the run that wrote it, or another --out")
        else:
            data = clips[d] if d in clips else ClipData(d)
            vae = vae or load_any_vae(vae_dir)
            cc, pl = camera_tensors(data.c2w, data.intr, cfg)
            lat = {"z": encode_dataset(data, vae), "cc": cc, "pl": pl, "dir": str(Path(d).resolve())}
            torch.save(lat, cache)
        sets.append(lat)
    return sets


def chunk_bounds(cfg, T: int) -> list[tuple[int, int]]:
    """[(begin, end)] of the chunks of T latents: (0, first), (first, first + chunk), ... (whole chunks only)."""
    first, step = cfg.first_chunk_frames, cfg.chunk_frames
    return [(0, first)] + [(b, b + step) for b in range(first, T - step + 1, step)]


# the latents a decoded latent's frames depend on: CausalVAE's decoder looks 1 + 2 latents back (dec_in, dec_res)
DECODER_WARMUP = 3


def latent_frames(begin: int, end: int, stride: int) -> np.ndarray:
    """Indices of the frames latents [begin, end) stand for: latent 0 is frame 0 alone, latent j >= 1 is frames
    stride·(j−1)+1 … stride·j."""
    return np.arange(0 if begin == 0 else stride * (begin - 1) + 1, stride * (end - 1) + 1)


def rollout_loss(model: WorldModel, z: torch.Tensor, cc: torch.Tensor, pl: torch.Tensor, gen: torch.Generator,
                 a, pixels: tuple | None = None) -> tuple[list[float], list[float]]:
    """One streamed rollout of clips z (B, C, T, h, w), chunk by chunk through the engine's StreamCache (sink and a
    one-chunk window, as world.session runs it); the loss of every chunk counts, gradients stop at the cache.

    Per sample, with probability a.self_context the rollout runs free like the engine: every chunk is noised at
    σ = 1 and the cache is written from the model's own one-step generation; otherwise σ follows the shifted schedule
    (a.sigma_one of them at σ = 1) and the cache is written from the clean latents. Each chunk's loss / number of
    chunks is back-propagated at once (the graphs do not meet).

    pixels = (vae, frames (B, F, H, W, 3) uint8): also a pixel loss, a.pixel_loss × the MSE (in [-1, 1]) of the
    chunk's predicted x0 decoded by the frozen VAE (after the latents the engine's decoder would hold before it) against
    the exact frames, on a random a.pixel_crop square and every other frame. -> (each chunk's loss, its pixel MSE)
    """
    from worldwalk.world.cache import StreamCache

    B = z.shape[0]
    cache = StreamCache(model.cfg, window_chunks=1)
    free = torch.rand(B, generator=gen) < a.self_context
    bounds = chunk_bounds(model.cfg, z.shape[2])
    losses, pix = [], []
    hist = z[:, :, :1]  # the latents the cache was written from, in order (what the engine's decoder is given)
    for begin, end in bounds:
        lo = max(begin, 1)  # latent 0 (the start frame) is given clean, never generated
        x0 = z[:, :, lo:end]
        noisy, eps, sig = noised(x0, a, gen, at_one=free)
        ts = torch.zeros(B, end - begin)
        ts[:, lo - begin:] = 1000 * sig[:, None]
        inp = torch.cat([z[:, :, :1], noisy], 2) if begin == 0 else noisy
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            v = model(inp, ts, cc[:, begin:end], pl[:, :, begin:end], mode="chunk_causal", frame_offset=begin,
                      cache=cache)
        v = v.float()[:, :, lo - begin:]
        loss = (v - (eps - x0)).pow(2).mean()
        if pixels is not None:
            mse = pixel_mse(pixels, hist, noisy - sig.view(B, 1, 1, 1, 1) * v, lo, end, gen, a.pixel_crop)
            pix.append(mse.item())
            loss = loss + a.pixel_loss * mse
        (loss / len(bounds)).backward()
        losses.append(loss.item())
        with torch.no_grad():  # write the cache from what the engine would hold: own generation or clean latents
            ctx = torch.where(free[:, None, None, None, None], eps - v.detach(), x0)
            full = torch.cat([z[:, :, :1], ctx], 2) if begin == 0 else ctx
            hist = torch.cat([hist, ctx], 2)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                model(full, torch.zeros(B, end - begin), cc[:, begin:end], pl[:, :, begin:end], mode="chunk_causal",
                      frame_offset=begin, cache=cache, write_cache=True)
    return losses, pix


def pixel_mse(pixels: tuple, hist: torch.Tensor, x0_hat: torch.Tensor, lo: int, end: int, gen: torch.Generator,
              crop: int) -> torch.Tensor:
    """MSE (in [-1, 1]) of latents [lo, end) predicted as x0_hat (B, C, end − lo, h, w), decoded after the context
    hist (B, C, lo, h, w) by the frozen VAE of pixels = (vae, frames (B, F, H, W, 3) uint8), against the exact
    frames; a random crop×crop square (the same for the batch), every other frame."""
    vae, frames = pixels
    f, s = vae.spatial_factor, vae.temporal_stride
    h, w = x0_hat.shape[-2:]
    c = max(1, min(crop // f, h, w))
    cy = int(torch.randint(h - c + 1, (1,), generator=gen))
    cx = int(torch.randint(w - c + 1, (1,), generator=gen))
    zin = torch.cat([hist[:, :, max(0, lo - DECODER_WARMUP):lo], x0_hat], 2)[..., cy:cy + c, cx:cx + c]
    keep = latent_frames(lo, end, s)
    pick = np.arange(int(torch.randint(2, (1,), generator=gen)), len(keep), 2)
    feats = vae.decode_time(zin, {})[:, -len(keep):][:, pick]  # the warm-up latents' frames dropped
    y = vae.decode_space(feats)
    target = to_unit(frames[:, keep[pick], cy * f:(cy + c) * f, cx * f:(cx + c) * f])
    return (y - target).pow(2).mean()


def convert_blocks(model: WorldModel, init: WorldModel) -> None:
    """Load `init` into `model`, which may have other blocks softmax (`--softmax-every`).

    GDN and softmax blocks share the official attention layout (qkv, norms, gates, camera projections); only a GDN
    block's two temporal K convolutions have no softmax counterpart. A block that turns softmax drops them; one that
    turns GDN keeps the freshly initialised (zero) convolutions. Anything else that does not match is an error.
    """
    missing, unexpected = model.load_state_dict(init.state_dict(), strict=False)
    conv = lambda k: k.endswith(("attn.conv_k.weight", "attn.conv_k_cam.weight"))  # noqa: E731
    bad = [k for k in missing + unexpected if not conv(k)]
    if bad:
        raise ValueError(f"--init: tensors that do not match the new block layout: {bad[:4]}")


def cmd_world(a) -> int:
    if a.max_chunks is not None and a.max_chunks < 1:
        raise ValueError(f"--max-chunks {a.max_chunks}: must be at least 1")
    if not 0 <= a.ema < 1:
        raise ValueError(f"--ema {a.ema}: the decay of the weight average must be in [0, 1) (e.g. 0.99; 0 is off)")
    torch.manual_seed(a.seed)
    over = {} if a.softmax_every is None else {"softmax_every": a.softmax_every}
    cfg = get_preset(a.preset, **over)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.pixel_loss and not a.rollout:
        raise ValueError("--pixel-loss: needs --rollout (the loss is taken on every streamed chunk)")
    pix_vae = load_any_vae(a.vae).requires_grad_(False) if a.pixel_loss else None
    clips = {d: ClipData(d) for d in a.dir} if a.pixel_loss else {}
    sets = load_latents(a.dir, a.vae, cfg, out, vae=pix_vae, clips=clips)
    for d, lat in zip(a.dir, sets):
        if d in clips:
            lat["frames"] = clips[d].frames
    model = WorldModel(cfg).init_weights(torch.Generator().manual_seed(a.seed)).train()
    if a.init:  # warm start from an earlier bundle's or run's model (its config must match the preset)
        init = load_trained_world(a.init)
        if dataclasses.replace(init.cfg, **over) != cfg:
            raise ValueError(f"--init {a.init}: a {init.cfg.name!r} model with another configuration than {cfg.name!r}")
        convert_blocks(model, init.float())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.99))
    modules = {"model": model}
    if a.ema:  # an exponential moving average of the weights, what world_final.pt then holds
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        modules["ema"] = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(a.ema))
    step = _load_state(out, modules, opt)
    gen = torch.Generator().manual_seed(a.seed + 17 * step)
    # a clip set is picked in proportion to the chunks it holds (clips x chunks per clip)
    weights = torch.tensor([float(len(s["z"]) * len(chunk_bounds(cfg, s["z"].shape[2]))) for s in sets])
    bar = tqdm(range(step, a.steps), initial=step, total=a.steps, desc="world", unit="step")
    t0 = time.time()
    smooth = None  # the loss, smoothed for the progress bar
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _lr(step, a.steps, a.lr, warmup=a.warmup)
        lat = sets[int(torch.multinomial(weights, 1, generator=gen))]
        z, cc, pl = lat["z"], lat["cc"], lat["pl"]
        n, T = z.shape[0], z.shape[2]
        idx = torch.randint(n, (a.batch,), generator=gen)
        opt.zero_grad(set_to_none=True)
        if a.rollout:
            pixels = (pix_vae, lat["frames"][idx.numpy()]) if a.pixel_loss else None
            losses, pix = rollout_loss(model, z[idx], cc[idx], pl[idx], gen, a, pixels)
            loss_value, k = float(np.mean(losses)), len(losses)
        else:
            ends = [e for _, e in chunk_bounds(cfg, T)][:a.max_chunks]  # 4, 7, ...
            k = int(torch.randint(len(ends), (1,), generator=gen))
            end = ends[k]
            begin = 1 if k == 0 else ends[k - 1]
            x0 = z[idx, :, :end]
            noisy, eps, sig = noised(x0, a, gen)
            if k > 0 and float(torch.rand(1, generator=gen)) < a.self_context:
                ctx = own_context(model, x0[:, :, :begin], cc[idx, :begin], pl[idx, :, :begin], gen, a.bf16)
                x0 = torch.cat([ctx, x0[:, :, begin:]], 2)
            xt = torch.cat([x0[:, :, :begin], noisy[:, :, begin:]], 2)
            ts = torch.zeros(a.batch, end)
            ts[:, begin:] = 1000 * sig[:, None]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                v = model(xt, ts, cc[idx, :end], pl[idx, :, :end], mode="chunk_causal")
            target = (eps - x0)[:, :, begin:]
            loss = (v.float()[:, :, begin:] - target).pow(2).mean()
            loss.backward()
            loss_value = loss.item()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if a.ema:
            modules["ema"].update_parameters(model)
        smooth = loss_value if smooth is None else 0.98 * smooth + 0.02 * loss_value
        bar.set_postfix(loss=f"{smooth:.4f}", chunk=k)
        if (step + 1) % 10 == 0 or step + 1 == a.steps:
            row = {"chunks": k} if a.rollout else {"chunk": k, "sigma": sig.mean().item()}
            if a.rollout and pix:
                row["pixel_psnr"] = 10 * math.log10(4.0 / max(float(np.mean(pix)), 1e-10))
            _log(out, {"step": step + 1, "loss": loss_value, "loss_smooth": smooth, "grad_norm": float(gn), **row,
                       "time": time.time() - t0})
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            _save_state(out, step + 1, modules, opt)
    final = {"model": model.state_dict(), "cfg": cfg.to_dict()}
    if a.ema:  # the averaged weights are the result; the last raw weights stay beside them
        final = {"model": modules["ema"].module.state_dict(), "model_raw": model.state_dict(), "cfg": cfg.to_dict()}
    torch.save(final, out / "world_final.pt")
    print(f"world model saved to {out / 'world_final.pt'}")
    return 0


# ====================================================================== decoder tuned to the generator
def load_trained_world(path: str | Path) -> WorldModel:
    """The model a `train world` run saved (<path>/world_final.pt), or a bundle's model, in eval mode."""
    from worldwalk.world.presets import ModelConfig

    if not Path(path).is_dir():
        from worldwalk.world.bundle import load_bundle
        return load_bundle(path)[0]
    st = torch.load(Path(path) / "world_final.pt", weights_only=False)
    model = WorldModel(ModelConfig.from_dict(st["cfg"]))
    model.load_state_dict(st["model"])
    return model.eval()


def load_any_vae(path: str | Path) -> CausalVAE:
    """A `train vae` / `train decoder` run's VAE (<path>/vae_final.pt), or a bundle's VAE."""
    if Path(path).is_dir():
        return load_trained_vae(path)
    from worldwalk.world.bundle import load_bundle
    return load_bundle(path)[1]


@torch.no_grad()
def stream_generate(model: WorldModel, z0: torch.Tensor, cc: torch.Tensor, pl: torch.Tensor,
                    gen: torch.Generator) -> torch.Tensor:
    """What the engine generates with the one-step sampler: from the clean start latent z0 (B, C, 1, h, w), every
    chunk from noise at σ = 1 through the StreamCache (sink + one-chunk window), the cache written from the model's
    own generation. cc (B, T, 20), pl (B, 6s, T, h, w) fix T. -> latents (B, C, T, h, w), latent 0 = z0."""
    from worldwalk.world.cache import StreamCache

    B, C, _, h, w = z0.shape
    cache = StreamCache(model.cfg, window_chunks=1)
    out = [z0]
    for begin, end in chunk_bounds(model.cfg, cc.shape[1]):
        lo = max(begin, 1)
        eps = torch.randn((B, C, end - lo, h, w), generator=gen)
        ts = torch.zeros(B, end - begin)
        ts[:, lo - begin:] = 1000.0
        inp = torch.cat([z0, eps], 2) if begin == 0 else eps
        v = model(inp, ts, cc[:, begin:end], pl[:, :, begin:end], mode="chunk_causal", frame_offset=begin,
                  cache=cache)
        x0 = eps - v[:, :, lo - begin:]
        model(torch.cat([z0, x0], 2) if begin == 0 else x0, torch.zeros(B, end - begin), cc[:, begin:end],
              pl[:, :, begin:end], mode="chunk_causal", frame_offset=begin, cache=cache, write_cache=True)
        out.append(x0)
    return torch.cat(out, 2)


def cmd_decoder(a) -> int:
    """Fine-tune the VAE decoder on what it will be given: the world model's one-step generations of each training
    clip (streamed chunk by chunk from the clean start latent, exactly as the engine does), against the exact frames;
    a fraction of the steps keeps plain reconstruction of encoded latents so the start frame stays exact. The encoder
    and the latent normalisation are untouched, so the world model's latent space does not move."""
    torch.manual_seed(a.seed)
    vae = load_any_vae(a.vae)
    model = load_trained_world(a.world)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # the world run's cached latents of --dir (encoded now with this VAE if it has none); a bundle's go to --out
    clips = {d: ClipData(d) for d in a.dir}
    cache_dir = Path(a.world) if Path(a.world).is_dir() else out
    sets = load_latents(a.dir, a.vae, model.cfg, cache_dir, vae=vae, clips=clips)
    g = torch.Generator().manual_seed(a.seed)
    for i, lat in enumerate(sets):  # one-step generations of every clip, a fixed noise per clip
        gen_path = out / ("generated.pt" if i == 0 else f"generated_{i}.pt")
        if gen_path.exists():
            lat["gen"] = torch.load(gen_path, weights_only=False)
            continue
        z, cc, pl = lat["z"], lat["cc"], lat["pl"]
        lat["gen"] = torch.cat([stream_generate(model, z[j:j + 8, :, :1], cc[j:j + 8], pl[j:j + 8], g)
                                for j in tqdm(range(0, len(z), 8), desc=f"generate {a.dir[i]}", unit="batch")])
        torch.save(lat["gen"], gen_path)
    params = [p for n, p in vae.named_parameters() if n.startswith("dec_")]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
    step = _load_state(out, {"vae": vae}, opt)
    vae.train()
    f = vae.spatial_factor
    weights = torch.tensor([float(lat["z"].shape[0] * lat["z"].shape[2]) for lat in sets])  # clips x latents
    s = vae.temporal_stride
    rng = np.random.default_rng(a.seed + step)
    bar = tqdm(range(step, a.steps), initial=step, total=a.steps, desc="decoder", unit="step")
    t0 = time.time()
    for step in bar:
        k = int(rng.choice(len(sets), p=(weights / weights.sum()).numpy()))
        lat, data = sets[k], clips[a.dir[k]]
        H, W = data.frames.shape[2:4]
        crop = min(a.crop, H, W) // f * f
        idx = rng.integers(0, len(lat["z"]), a.batch)
        cy, cx = rng.integers(0, (H - crop) // f + 1, a.batch), rng.integers(0, (W - crop) // f + 1, a.batch)
        real = rng.random() < a.real_fraction
        src = lat["z"] if real else lat["gen"]
        T = src.shape[2]
        n = min(a.latents or T, T)
        st = int(rng.integers(0, T - n + 1))  # latents [st, st + n) are scored; the warm-up before them is not
        st0, keep = max(0, st - DECODER_WARMUP), latent_frames(st, st + n, s)
        zin = torch.stack([src[i, :, st0:st + n, y:y + crop // f, x:x + crop // f] for i, y, x in zip(idx, cy, cx)])
        x = to_unit(np.stack([data.frames[i, keep, y * f:y * f + crop, xx * f:xx * f + crop]
                              for i, y, xx in zip(idx, cy, cx)]))
        for gr in opt.param_groups:
            gr["lr"] = _lr(step, a.steps, a.lr, warmup=50)
        y = vae.decode_video(zin)[:, :, -len(keep):]  # the warm-up latents' frames dropped
        mse = (y - x).pow(2).mean()
        loss = mse + a.l1 * (y - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.2f}")
        if (step + 1) % 10 == 0 or step + 1 == a.steps:
            _log(out, {"step": step + 1, "loss": loss.item(), "psnr": psnr, "real": bool(real), "set": k,
                       "time": time.time() - t0})
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            _save_state(out, step + 1, {"vae": vae}, opt)
    vae.eval()
    torch.save({"vae": vae.state_dict(), "cfg": vae.cfg.to_dict()}, out / "vae_final.pt")
    print(f"tuned VAE saved to {out / 'vae_final.pt'}")
    return 0


# ====================================================================== bundle
def cmd_bundle(a) -> int:
    from worldwalk.world.bundle import save_bundle

    vae = load_any_vae(a.vae)
    model = load_trained_world(a.world)
    extra = {"trained_on": "procedural worlds (world/procedural)", "sampler": json.loads(a.sampler)}
    depth = None
    if a.depth:
        from worldwalk.world.train_depth import load_trained_depth

        depth = load_trained_depth(a.depth)
        extra["memory"] = json.loads(a.memory)
    p = save_bundle(model, vae, a.out, extra=extra, dtype=torch.bfloat16, depth=depth)
    print(f"wrote {p} ({p.stat().st_size / 2**20:.1f} MiB)")
    return 0


# ====================================================================== depth (world/train_depth.py)
def cmd_depth_data(a) -> int:
    from worldwalk.world.train_depth import depth_data

    out = depth_data(a.out, a.clips, a.world, seed=a.seed, shard_size=a.shard_size, held_out=a.held_out)
    print(f"{out}: {len(list(out.glob('shard_*.npz')))} shards")
    return 0


def cmd_depth(a) -> int:
    from worldwalk.world.train_depth import evaluate_depth, load_trained_depth, train_depth, write_eval

    final = train_depth(a.dir, a.out, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr, seed=a.seed,
                        save_every=a.save_every)
    print(f"depth network saved to {final}")
    if a.eval:
        res = evaluate_depth(load_trained_depth(final), a.eval)
        write_eval(a.out, res)
        for kind, m in res.items():
            print(f"held-out {kind}: AbsRel {m['absrel']:.3f}, delta<1.25 {m['delta1']:.3f}, sky far "
                  f"{m['sky_far']:.3f} ({m['pixels']} pixels)")
    return 0


# ====================================================================== CLI
def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the embedded default world on procedural worlds")
    tsub = p.add_subparsers(dest="stage", required=True)
    d = tsub.add_parser("data", help="render training clips")
    d.add_argument("--dir", required=True)
    d.add_argument("--clips", type=int, default=800)
    d.add_argument("--preset", default="tiny")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--shard-size", type=int, default=50, help="clips per shard file")
    d.add_argument("--chunks", type=int, default=2, help="chunks per clip (2: 7 latents = 25 frames at stride 4)")
    d.set_defaults(func=cmd_data)
    v = tsub.add_parser("vae", help="train the causal VAE")
    v.add_argument("--dir", required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--vae-preset", default="tiny-vae")
    v.add_argument("--steps", type=int, default=3000)
    v.add_argument("--batch", type=int, default=2)
    v.add_argument("--crop", type=int, default=128, help="square crop size in pixels (convolutions see any size)")
    v.add_argument("--latents", type=int, default=2, help="latent frames per training window")
    v.add_argument("--lr", type=float, default=1e-3)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--save-every", type=int, default=200)
    v.set_defaults(func=cmd_vae)
    w = tsub.add_parser("world", help="train the world model on VAE latents")
    w.add_argument("--dir", required=True, action="append",
                   help="clip shards (repeat for several sets, e.g. short and long clips)")
    w.add_argument("--vae", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--preset", default="tiny")
    w.add_argument("--steps", type=int, default=4000)
    w.add_argument("--batch", type=int, default=4)
    w.add_argument("--lr", type=float, default=3e-4)
    w.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    w.add_argument("--sigma-shift", type=float, default=3.0)
    w.add_argument("--init", default=None, help="start from the model of this world bundle (.safetensors) or world run (its world_final.pt)")
    w.add_argument("--sigma-one", type=float, default=0.0,
                   help="fraction of samples noised at sigma = 1 exactly (the one-step generator's input)")
    w.add_argument("--self-context", type=float, default=0.0,
                   help="fraction of later-chunk steps whose context is the model's own one-step generation "
                        "(--rollout: of samples that run free, every chunk at sigma = 1 on their own generations)")
    w.add_argument("--rollout", action="store_true",
                   help="stream whole clips chunk by chunk through the engine's cache; every chunk's loss counts")
    w.add_argument("--ema", type=float, default=0.0,
                   help="keep an exponential moving average of the weights with this decay (e.g. 0.99) and save it "
                        "as the result (0: off)")
    w.add_argument("--max-chunks", type=int, default=None,
                   help="one-chunk objective: draw the target from the clip's first N chunks only (a later chunk's "
                        "softmax keys would reach past the engine's sink + one-chunk window)")
    w.add_argument("--softmax-every", type=int, default=None,
                   help="override the preset's softmax block spacing; with --init, GDN blocks that turn softmax keep "
                        "their shared weights")
    w.add_argument("--pixel-loss", type=float, default=0.0,
                   help="--rollout: add this weight x the pixel MSE of each chunk's prediction decoded by --vae's "
                        "frozen decoder against the exact frames (0: off)")
    w.add_argument("--pixel-crop", type=int, default=128, help="--pixel-loss: square crop in pixels")
    w.add_argument("--bf16", action="store_true")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--save-every", type=int, default=100)
    w.set_defaults(func=cmd_world)
    t = tsub.add_parser("decoder", help="fine-tune the VAE decoder on the world model's own generations")
    t.add_argument("--dir", required=True, action="append", help="clip shards (repeat for several sets)")
    t.add_argument("--vae", required=True, help="a VAE run (vae_final.pt) or a world bundle (.safetensors)")
    t.add_argument("--world", required=True,
                   help="the world run (world_final.pt and its latents.pt) or a world bundle (.safetensors)")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--crop", type=int, default=128)
    t.add_argument("--latents", type=int, default=4,
                   help="latent frames scored per sample (a window of the clip; 0: the whole clip)")
    t.add_argument("--l1", type=float, default=0.5,
                   help="weight of the L1 term beside the MSE (small: the PSNR-optimal mean, large: sharper medians)")
    t.add_argument("--real-fraction", type=float, default=0.25, help="steps on encoded (not generated) latents")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--save-every", type=int, default=100)
    t.set_defaults(func=cmd_decoder)
    b = tsub.add_parser("bundle", help="pack the trained VAE and model into one file")
    b.add_argument("--vae", required=True)
    b.add_argument("--world", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--sampler", default='{"steps": 4, "shift": 8.0, "kind": "renoise"}')
    b.add_argument("--depth", default=None, help="a depth run (depth_final.pt): the world memory's depth network")
    b.add_argument("--memory", default="{}", help="with --depth: the world memory's settings (JSON, world/memory.py)")
    b.set_defaults(func=cmd_bundle)
    dd = tsub.add_parser("depth-data", help="render views with exact depth, through the VAE and as the world model "
                                            "generates them (world/train_depth.py)")
    dd.add_argument("--out", required=True)
    dd.add_argument("--clips", type=int, default=240)
    dd.add_argument("--world", required=True, help="the world bundle whose VAE and model make the blurry views")
    dd.add_argument("--seed", type=int, default=0)
    dd.add_argument("--held-out", action="store_true", help="scenes the training data never uses (for evaluation)")
    dd.add_argument("--shard-size", type=int, default=20)
    dd.set_defaults(func=cmd_depth_data)
    de = tsub.add_parser("depth", help="train the world memory's depth network (world/train_depth.py)")
    de.add_argument("--dir", required=True)
    de.add_argument("--out", required=True)
    de.add_argument("--steps", type=int, default=3000)
    de.add_argument("--batch", type=int, default=12)
    de.add_argument("--crop", type=int, default=128)
    de.add_argument("--lr", type=float, default=2e-3)
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--save-every", type=int, default=200)
    de.add_argument("--eval", default=None, help="a held-out depth-data folder: AbsRel and delta<1.25 at the end")
    de.set_defaults(func=cmd_depth)


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_parser(ap.add_subparsers(dest="cmd"))
    a = ap.parse_args(argv)
    return a.func(a)
