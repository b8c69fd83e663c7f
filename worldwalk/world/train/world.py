"""Stage `world`: train the world model on the VAE latents of the clips. Result: <out>/world_final.pt.

Objective (flow matching, v = ε − x0, t = 1000·σ), two ways over the same chunks ([0, 4), [4, 7), ...):
- default: a clip of 1 + 6·stride frames gives 7 latents; a sample picks the chunk being generated, keeps every earlier
  latent clean at t = 0 (what the cache is written from), noises the chunk's new latents at one σ, drops later
  chunks, and takes the loss on the noised latents only, in one chunk-causal forward.
- --rollout: whole clips (any number of chunks) stream chunk by chunk through the engine's own StreamCache (sink and
  a one-chunk window), every chunk's loss counts and gradients stop at the cache. A share of the samples (--self-context)
  runs free as the engine does: every chunk at σ = 1, the cache written from the model's own one-step generation; the
  others are teacher-forced. This trains the horizon and the context the walks actually see.
- --recycle: one forward per chunk, as the engine then runs (issue 25). The model gains a recycled input (the previous
  chunk's latents, frame for frame; zero-initialised, so --init from a two-pass model starts where it was); whole
  clips stream chunk by chunk, each chunk's one forward at its noise level both predicts the chunk and writes the
  cache, and gradients run through the cache over the whole clip (recycle_loss).
Camera conditions and Plücker maps come from the clip's own poses. --device cuda trains on a GPU (one process, or one
per GPU under torchrun with NCCL).

Under torchrun (train/dist.py) the default objective and --recycle run data-parallel: every rank draws the same global
batch and computes its slice, DistributedDataParallel averages the gradients, rank 0 writes the checkpoints; a step is
the step of one process on the whole batch, and a run resumes with any number of processes. --rollout runs as one
process.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.world.model import WorldModel
from worldwalk.world.presets import get_preset
from worldwalk.world.train import dist as tdist
from worldwalk.world.train.common import (DECODER_WARMUP, ClipData, _load_state, _log, _lr, _save_state, chunk_bounds,
                                          latent_frames, load_any_vae, load_latents, load_trained_world,
                                          save_trained_world, to_unit)


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
    them, chunk by chunk (what the cache holds when streaming), so training sees the context it will be given.
    Runs on the model's device; inputs and result on the CPU."""
    dev = next(model.parameters()).device
    out, cc, pl = ctx[:, :, :1].to(dev), cc.to(dev), pl.to(dev)
    T = ctx.shape[2]
    with torch.no_grad():
        b = 1
        while b < T:
            e = min(T, model.cfg.first_chunk_frames if b == 1 else b + model.cfg.chunk_frames)
            eps = torch.randn(ctx[:, :, b:e].shape, generator=gen).to(dev)
            ts = torch.zeros(ctx.shape[0], e, device=dev)
            ts[:, b:] = 1000.0
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                v = model(torch.cat([out, eps], 2), ts, cc[:, :e], pl[:, :, :e], mode="chunk_causal")
            out = torch.cat([out, eps - v.float()[:, :, b:]], 2)
            b = e
    return out.cpu()


def chunk_velocity(model: WorldModel, z: torch.Tensor, noisy: torch.Tensor, sig: torch.Tensor, cc: torch.Tensor,
                   pl: torch.Tensor, begin: int, end: int, cache, bf16: bool, **kw) -> torch.Tensor:
    """One streamed chunk [begin, end) of clips z (B, C, T, h, w) through `cache`: its new latents noisy at σ = sig
    (B,) (chunk 0 also gets the clean start latent at t = 0). kw: write_cache, recycled. -> the velocity (float) of
    the new latents."""
    B, lo = z.shape[0], max(begin, 1)  # latent 0 (the start frame) is given clean, never generated
    ts = torch.zeros(B, end - begin, device=z.device)
    ts[:, lo - begin:] = 1000 * sig[:, None]
    inp = torch.cat([z[:, :, :1], noisy], 2) if begin == 0 else noisy
    with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=bf16):
        v = model(inp, ts, cc[:, begin:end], pl[:, :, begin:end], mode="chunk_causal", frame_offset=begin,
                  cache=cache, **kw)
    return v.float()[:, :, lo - begin:]


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
        lo = max(begin, 1)
        x0 = z[:, :, lo:end]
        noisy, eps, sig = noised(x0, a, gen, at_one=free)
        v = chunk_velocity(model, z, noisy, sig, cc, pl, begin, end, cache, a.bf16)
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


class Rollout(torch.nn.Module):
    """A streamed one-forward-per-chunk rollout as one module call (so DistributedDataParallel sees one forward per
    backward). forward(z, cc, pl, draws, free, bf16) -> (mean of the chunks' losses, each chunk's loss (detached)):
    z (B, C, T, h, w), draws [(noisy, eps, sigma)] per chunk for these B samples, free (B,) bool."""

    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, z, cc, pl, draws, free, bf16: bool):
        from worldwalk.world.cache import StreamCache

        model, B = self.model, z.shape[0]
        cache = StreamCache(model.cfg, window_chunks=1)
        bounds = chunk_bounds(model.cfg, z.shape[2])
        total, losses, rec = 0.0, [], None
        for (begin, end), (noisy, eps, sig) in zip(bounds, draws):
            x0 = z[:, :, max(begin, 1):end]
            v = chunk_velocity(model, z, noisy, sig, cc, pl, begin, end, cache, bf16, write_cache=True, recycled=rec)
            loss = (v - (eps - x0)).pow(2).mean()
            total = total + loss
            losses.append(loss.detach())
            own = (noisy - sig.view(B, 1, 1, 1, 1) * v).detach()  # the chunk the engine would show
            rec = torch.where(free[:, None, None, None, None], own, x0)
        return total / len(bounds), torch.stack(losses)


def recycle_loss(model: WorldModel, z: torch.Tensor, cc: torch.Tensor, pl: torch.Tensor, gen: torch.Generator,
                 a, fwd: torch.nn.Module | None = None, mine: slice = slice(None)) -> list[float]:
    """One forward per chunk (cfg.recycle): clips z (B, C, T, h, w) stream chunk by chunk through the engine's
    StreamCache; each chunk's one forward, at its noise level (the shifted schedule, a.sigma_one of them at σ = 1),
    predicts it and writes the cache, and reads the previous chunk's latents as its recycled input. Per sample, with
    probability a.self_context, those are the model's own predictions (detached: what the engine feeds), else the
    clean latents. Gradients run through the cache over the whole clip; the mean of the chunks' losses is
    back-propagated at once. Tensors are on the model's device; noise is drawn on the CPU from gen for the whole
    batch, and the samples `mine` are computed (through `fwd`, a Rollout or its DistributedDataParallel wrapper).
    -> each chunk's loss over those samples."""
    dev = z.device
    free = torch.rand(z.shape[0], generator=gen) < a.self_context
    draws = []
    for begin, end in chunk_bounds(model.cfg, z.shape[2]):
        noisy, eps, sig = noised(z[:, :, max(begin, 1):end].cpu(), a, gen)
        draws.append(tuple(t[mine].to(dev) for t in (noisy, eps, sig)))
    total, losses = (fwd if fwd is not None else Rollout(model))(z[mine], cc[mine], pl[mine], draws,
                                                                 free[mine].to(dev), a.bf16)
    total.backward()
    return losses.tolist()


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
    """Load `init` into `model`, which may have other blocks softmax (`--softmax-every`) or a recycled input
    (`--recycle`: its embedder stays zero, so the model starts as the two-pass one).

    GDN and softmax blocks share the official attention layout (qkv, norms, gates, camera projections); only a GDN
    block's two temporal K convolutions have no softmax counterpart. A block that turns softmax drops them; one that
    turns GDN keeps the freshly initialised (zero) convolutions. Anything else that does not match is an error.
    """
    missing, unexpected = model.load_state_dict(init.state_dict(), strict=False)
    conv = lambda k: k.endswith(("attn.conv_k.weight", "attn.conv_k_cam.weight")) or \
        k.startswith("recycle_embedder.")  # noqa: E731
    bad = [k for k in missing + unexpected if not conv(k)]
    if bad:
        raise ValueError(f"--init: tensors that do not match the new block layout: {bad[:4]}")


def train_device(name: str, ranks: tdist.Ranks) -> torch.device:
    """--device: cpu, or cuda (under torchrun each process takes the GPU of its local rank). ValueError if absent."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: expected cpu or cuda (cuda:N)") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"--device {name!r}: expected cpu or cuda (cuda:N)")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA GPU that torch can use; train with --device cpu")
    if ranks.distributed:
        dev = torch.device("cuda", ranks.local_rank)
    elif dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {dev}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    torch.cuda.set_device(dev)
    return dev


def cmd_world(a) -> int:
    if a.max_chunks is not None and a.max_chunks < 1:
        raise ValueError(f"--max-chunks {a.max_chunks}: must be at least 1")
    if a.minutes is not None and not a.minutes > 0:
        raise ValueError(f"--minutes {a.minutes}: expected a positive time limit")
    if not 0 <= a.ema < 1:
        raise ValueError(f"--ema {a.ema}: the decay of the weight average must be in [0, 1) (e.g. 0.99; 0 is off)")
    return tdist.run_stage(_train_world, a, device=a.device)


def _train_world(a, ranks: tdist.Ranks) -> int:
    if ranks.distributed and a.rollout:
        raise ValueError(f"--rollout: runs as one process for now; start it without torchrun (asked for {ranks.world})")
    if a.recycle and (a.pixel_loss or a.rollout):
        raise ValueError("--recycle: streams whole clips itself; leave out --rollout and --pixel-loss")
    ranks.check_batch(a.batch)
    dev = train_device(a.device, ranks)
    if a.rollout and dev.type != "cpu":
        raise ValueError(f"--rollout: trains on the CPU for now (asked for --device {a.device})")
    torch.manual_seed(a.seed)
    over = {} if a.softmax_every is None else {"softmax_every": a.softmax_every}
    if a.recycle:
        over["recycle"] = True
    cfg = get_preset(a.preset, **over)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.pixel_loss and not a.rollout:
        raise ValueError("--pixel-loss: needs --rollout (the loss is taken on every streamed chunk)")
    pix_vae = load_any_vae(a.vae).requires_grad_(False) if a.pixel_loss else None
    clips = {d: ClipData(d) for d in a.dir} if a.pixel_loss else {}
    # under torchrun each rank reads and encodes its own shards of clips; rank 0 writes the joined cache
    sets = load_latents(a.dir, a.vae, cfg, out, vae=pix_vae, clips=clips, ranks=ranks)
    for d, lat in zip(a.dir, sets):
        if d in clips:
            lat["frames"] = clips[d].frames
    model = WorldModel(cfg).init_weights(torch.Generator().manual_seed(a.seed)).train()
    if a.init:  # warm start from an earlier bundle's or run's model (its config must match the preset)
        init = load_trained_world(a.init)
        if dataclasses.replace(init.cfg, **over) != cfg:
            raise ValueError(f"--init {a.init}: a {init.cfg.name!r} model with another configuration than {cfg.name!r}")
        convert_blocks(model, init.float())
    model.to(dev)
    # what the training forward goes through: the model (--recycle: a whole streamed rollout), or its
    # DistributedDataParallel wrapper
    fwd = Rollout(model) if a.recycle else model
    if ranks.distributed:
        from torch.nn.parallel import DistributedDataParallel
        # some parameters take no part in a chunk-causal forward (e.g. the text branch): found each step
        fwd = DistributedDataParallel(fwd, find_unused_parameters=True,
                                      device_ids=[dev.index] if dev.type == "cuda" else None)
    mine = ranks.shard(a.batch)  # this rank's samples of each global batch
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.99))
    modules = {"model": model}
    if a.ema:  # an exponential moving average of the weights, what world_final.pt then holds
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        modules["ema"] = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(a.ema))
    step = _load_state(out, modules, opt)
    gen = torch.Generator().manual_seed(a.seed + 17 * step)
    # a clip set is picked in proportion to the chunks it holds (clips x chunks per clip)
    weights = torch.tensor([float(len(s["z"]) * len(chunk_bounds(cfg, s["z"].shape[2]))) for s in sets])
    bar = tqdm(range(step, a.steps), initial=step, total=a.steps, desc="world", unit="step", disable=not ranks.main)
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
        if a.recycle:  # the whole batch drawn (the same on every rank); this rank computes its own samples
            losses = recycle_loss(model, z[idx].to(dev), cc[idx].to(dev), pl[idx].to(dev), gen, a, fwd, mine)
            loss_value, k = float(np.mean(losses)), len(losses)
        elif a.rollout:
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
            # the whole batch was drawn above (the same on every rank); this rank computes its own samples
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
                v = fwd(xt[mine].to(dev), ts[mine].to(dev), cc[idx[mine], :end].to(dev),
                        pl[idx[mine], :, :end].to(dev), mode="chunk_causal")
            target = (eps - x0)[mine, :, begin:].to(dev)
            loss = (v.float()[:, :, begin:] - target).pow(2).mean()
            loss.backward()  # DistributedDataParallel: the gradients averaged over the ranks, as for the whole batch
            loss_value = loss.item()
        if ranks.distributed:  # the whole batch's loss, for the log
            lv = torch.tensor([loss_value], device=dev)
            torch.distributed.all_reduce(lv)
            loss_value = float(lv) / ranks.world
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if a.ema:
            modules["ema"].update_parameters(model)
        smooth = loss_value if smooth is None else 0.98 * smooth + 0.02 * loss_value
        bar.set_postfix(loss=f"{smooth:.4f}", chunk=k)
        late = a.minutes is not None and time.time() - t0 > 60 * a.minutes
        if ranks.distributed and a.minutes is not None:  # every rank stops at the same step
            flag = torch.tensor([float(late)], device=dev)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            late = bool(flag.item())
        if ranks.main and ((step + 1) % 10 == 0 or step + 1 == a.steps or late):
            row = {"chunks": k} if a.rollout or a.recycle else {"chunk": k, "sigma": sig.mean().item()}
            if a.rollout and pix:
                row["pixel_psnr"] = 10 * math.log10(4.0 / max(float(np.mean(pix)), 1e-10))
            _log(out, {"step": step + 1, "loss": loss_value, "loss_smooth": smooth, "grad_norm": float(gn), **row,
                       "time": time.time() - t0})
        if ranks.main and ((step + 1) % a.save_every == 0 or step + 1 == a.steps or late):
            _save_state(out, step + 1, modules, opt)
        if late:
            print(f"--minutes {a.minutes}: stopped after step {step + 1} of {a.steps} (resumable)")
            break
    if ranks.main:  # with --ema the averaged weights are the result; the last raw weights stay beside them
        save_trained_world(modules["ema"].module if a.ema else model, out, raw=model if a.ema else None)
        print(f"world model saved to {out / 'world_final.pt'}" + (f" ({ranks.world} processes)" if ranks.distributed
                                                                  else ""))
    ranks.barrier()
    return 0
