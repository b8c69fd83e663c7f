"""Stage `world-adv`: adversarial post-training of the one-step generator on its own streamed rollouts (issue 25).

A generator trained for squared error returns the mean of the futures it cannot tell apart: fog, and no object where
a turn reveals space it has not seen. Here, in the spirit of AAPT (autoregressive adversarial post-training), the
shipped model streams clips chunk by chunk exactly as the engine runs it (one forward per chunk, each chunk fed the
model's own previous prediction as its recycled input, the cache written by that forward), and a discriminator in
latent space judges each generated chunk against the camera that asked for it (world/discriminator.py,
LatentDiscriminator: the chunk, the start latent and the chunk's Plücker rays).

Per chunk the noise level is 1 (space nobody has seen) for a share of the samples (--sigma-one) and uniform in
[--sigma-min, 1) for the others (the world memory's guess starts a chunk there). The generator's loss per chunk:
- adversarial: --adv-weight x the hinge generator loss on its predicted clean latents (--adv-unseen-only: on the
  chunks started from pure noise only, so those started from a guess only follow it);
- regression, which keeps it following the camera and the guess: --reg-weight x their squared error against the
  clip's latents, plus --lowpass-weight x the same at a quarter of the latent grid (4 x 4 cells: layout and colour
  only, what the adversarial term must not move).
Gradients run through the cache over the whole clip (as `world --recycle`). The discriminator: hinge loss, R1 on real
chunks every --r1-every steps; it trains alone for the first --d-warmup steps. The result (<out>/world_final.pt) is
the exponential moving average of the weights (--ema).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from worldwalk.world.cache import StreamCache
from worldwalk.world.discriminator import LatentDiscriminator, latent_r1
from worldwalk.world.train.common import (_load_state, _log, _lr, _save_state, chunk_bounds, load_latents,
                                          load_trained_world, save_trained_world)
from worldwalk.world.train import dist as tdist
from worldwalk.world.train.world import chunk_velocity, train_device


def detail(x: torch.Tensor) -> torch.Tensor:
    """Per sample, the latents' energy above a 3 x 3 box blur (B,): fog has little, real latents more."""
    B, C, T, h, w = x.shape
    flat = x.transpose(1, 2).reshape(B * T, C, h, w)
    hi = flat - F.avg_pool2d(flat, 3, 1, 1, count_include_pad=False)
    return hi.pow(2).reshape(B, -1).mean(1)


def rollout(model, z, cc, pl, chunks: int, gen: torch.Generator, a, grad: bool):
    """Stream clips z (B, C, T, h, w) chunk by chunk as the engine does (one forward per chunk, own predictions
    recycled). -> per chunk (predicted clean latents, the clip's latents, the chunk's Plücker maps, σ (B,))."""
    cache = StreamCache(model.cfg, window_chunks=1)
    B, out, rec = z.shape[0], [], None
    for begin, end in chunk_bounds(model.cfg, z.shape[2])[:chunks]:
        lo = max(begin, 1)
        x0 = z[:, :, lo:end]
        sig = a.sigma_min + (1 - a.sigma_min) * torch.rand(B, generator=gen)
        sig = torch.where(torch.rand(B, generator=gen) < a.sigma_one, torch.ones_like(sig), sig).to(z.device)
        eps = torch.randn(x0.shape, generator=gen).to(z.device)  # drawn on the CPU: a seed gives the same anywhere
        s = sig.view(B, 1, 1, 1, 1)
        noisy = (1 - s) * x0 + s * eps
        with torch.set_grad_enabled(grad):
            v = chunk_velocity(model, z, noisy, sig, cc, pl, begin, end, cache, a.bf16, write_cache=True,
                               recycled=rec)
            x_hat = noisy - s * v
        rec = x_hat.detach()  # what the engine feeds the next chunk: its own prediction
        out.append((x_hat, x0, pl[:, :, lo:end], sig))
    return out


def cmd_world_adv(a) -> int:
    for name in ("adv_weight", "reg_weight", "lowpass_weight", "r1"):
        if getattr(a, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(a, name)}: expected a weight >= 0")
    if not 0 <= a.sigma_min <= 1 or not 0 <= a.sigma_one <= 1:
        raise ValueError(f"--sigma-min {a.sigma_min}, --sigma-one {a.sigma_one}: expected values in [0, 1]")
    if a.chunks < 1 or a.batch < 1:
        raise ValueError(f"--chunks {a.chunks}, --batch {a.batch}: expected at least 1")
    if not 0 <= a.ema < 1:
        raise ValueError(f"--ema {a.ema}: the decay of the weight average must be in [0, 1)")
    torch.manual_seed(a.seed)
    dev = train_device(a.device, tdist.Ranks())
    model = load_trained_world(a.world).float()
    if not model.cfg.recycle:
        raise ValueError(f"--world {a.world}: a two-pass model; world-adv trains a one-forward-per-chunk model "
                         f"(`train world --recycle`, the shipped default since the sixth)")
    cfg, out = model.cfg, Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = load_latents(a.dir, a.vae, cfg, out)
    need = chunk_bounds(cfg, 10 ** 6)[a.chunks - 1][1]
    sets = [s for s in sets if s["z"].shape[2] >= need]
    if not sets:
        raise ValueError(f"--chunks {a.chunks}: no --dir has clips of {need} latents; render longer ones "
                         f"(`train data --chunks {a.chunks}`)")
    model.to(dev)
    disc = LatentDiscriminator(cfg.latent_channels, cfg.plucker_channels, a.d_width).to(dev)
    opt_g = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=a.d_lr, betas=(0.5, 0.99))
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(a.ema)) if a.ema else None
    # what state.pt holds beside the generator's optimiser (the discriminator's is saved and loaded like a module)
    modules = {"model": model, "disc": disc, "opt_d": opt_d, **({"ema": ema} if ema is not None else {})}
    step = _load_state(out, modules, opt_g)
    result = ema.module if ema is not None else model  # what world_final.pt and the snapshots hold
    low = lambda t: F.avg_pool3d(t, (1, 4, 4))  # noqa: E731  (4 x 4 latent cells: layout and colour)
    gen = torch.Generator().manual_seed(a.seed + 17 * step)
    model.train()
    weights = torch.tensor([float(len(s["z"])) for s in sets])
    bar = tqdm(range(step, a.steps), initial=step, total=a.steps, desc="world-adv", unit="step")
    t0, late = time.time(), False
    for step in bar:
        lat = sets[int(torch.multinomial(weights, 1, generator=gen))]
        idx = torch.randint(len(lat["z"]), (a.batch,), generator=gen)
        z, cc, pl = (t.to(dev) for t in (lat["z"][idx, :, :need], lat["cc"][idx, :need], lat["pl"][idx, :, :need]))
        z0 = z[:, :, :1]
        g_on = step >= a.d_warmup
        for gr in opt_g.param_groups:
            gr["lr"] = a.lr * _lr(step - a.d_warmup, a.steps - a.d_warmup, 1.0, warmup=20) if g_on else 0.0
        chunks = rollout(model, z, cc, pl, a.chunks, gen, a, grad=g_on)
        reg = adv = torch.zeros((), device=dev)
        if g_on:  # ---- generator
            for p in disc.parameters():
                p.requires_grad_(False)
            for x_hat, x0, p_, sig in chunks:
                reg = reg + a.reg_weight * (x_hat - x0).pow(2).mean()
                reg = reg + a.lowpass_weight * (low(x_hat) - low(x0)).pow(2).mean()
                # --adv-unseen-only: only the chunks started from pure noise are asked to look real
                w = (sig >= 1).float() if a.adv_unseen_only else torch.ones_like(sig)
                adv = adv - (disc(x_hat, z0, p_).flatten(1).mean(1) * w).sum() / max(float(w.sum()), 1.0)
            reg, adv = reg / len(chunks), adv / len(chunks)
            opt_g.zero_grad(set_to_none=True)
            (reg + a.adv_weight * adv).backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt_g.step()
            if ema is not None:
                ema.update_parameters(model)
            for p in disc.parameters():
                p.requires_grad_(True)
        else:
            gn = torch.zeros((), device=dev)
        # ---- discriminator (hinge), R1 on real chunks
        real = torch.cat([c[1] for c in chunks], 0)
        fake = torch.cat([c[0].detach() for c in chunks], 0)
        cond_z0 = z0.repeat(len(chunks), 1, 1, 1, 1)
        cond_pl = torch.cat([c[2] for c in chunks], 0)
        d_loss = F.relu(1 - disc(real, cond_z0, cond_pl)).mean() + F.relu(1 + disc(fake, cond_z0, cond_pl)).mean()
        if a.r1 > 0 and step % a.r1_every == 0:
            d_loss = d_loss + a.r1 * a.r1_every * 0.5 * latent_r1(disc, real, cond_z0, cond_pl)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        ratio = float(detail(fake).mean() / detail(real).mean())
        bar.set_postfix(d=f"{d_loss.item():.3f}", adv=f"{adv.item():.3f}", reg=f"{reg.item():.4f}",
                        detail=f"{ratio:.3f}")
        late = a.minutes is not None and time.time() - t0 > 60 * a.minutes
        if (step + 1) % 10 == 0 or step + 1 == a.steps or late:
            mse = float(torch.stack([(c[0].detach() - c[1]).pow(2).mean() for c in chunks]).mean())
            _log(out, {"step": step + 1, "d": d_loss.item(), "adv": adv.item(), "reg": reg.item(),
                       "grad_norm": float(gn), "detail_ratio": ratio, "x0_psnr": 10 * math.log10(1 / max(mse, 1e-10)),
                       "time": time.time() - t0})
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps or late:
            _save_state(out, step + 1, modules, opt_g)
        if a.snapshot_every and (step + 1) % a.snapshot_every == 0:
            save_trained_world(result, out / f"snapshot_{step + 1:06d}")
        if late:
            print(f"--minutes {a.minutes}: stopped after step {step + 1} of {a.steps} (resumable)")
            break
    save_trained_world(result, out)
    print(f"adversarially post-trained world model saved to {out / 'world_final.pt'}")
    return 0

