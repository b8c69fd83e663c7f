"""The decoder that draws detail: the VAE decoder fine-tuned against patch discriminators (train decoder-adv).

    python launch.py train decoder-adv --dir runs/long --vae assets/default_world.safetensors \
        --world assets/default_world.safetensors --out runs/decoder_adv --steps 1500

What it is given, as in `train decoder`: the world model's one-step generations of each clip (streamed chunk by chunk
from the clean start latent, as the engine does) and the clip's own encoded latents. What it is asked:
- encoded latents (--real-fraction of the steps): reconstruct the exact frames (--l1 x L1 + MSE at full resolution);
- generated latents: match the exact frames only at 1/4 resolution (layout and colour: the generation cannot know the
  fine detail, and a full-resolution pixel loss would ask for the fog that averages it);
- both: keep colour and layout at 1/8 resolution (L1, x --lowpass-weight), and look real to a frame and a clip discriminator (world/discriminator.py: hinge loss, lazy R1), plus feature
  matching on the discriminators' features. The adversarial weight is set each step from the ratio of the two losses'
  gradients at the decoder's last layer (as VQGAN does), times --adv-weight, so neither term swamps the other.
The discriminators train alone for --d-warmup steps first. The encoder and latent normalisation stay frozen (the world
model's latent space does not move). Warm-up latents before the scored window only fill the decoder's causal cache
(no gradient, no upsampling). Resumable: weights of both networks, both optimisers, step, RNG in <out>.
--decoder-widths W0,W1,... widens the decoder's upsampling stages first (the encoder and the first width stay): the
old weights sit in the leading channels and the new channels enter through zero weights, so the wide decoder starts
out decoding exactly as the narrow one did, and the adversarial fine-tune has room to draw.
--grain S gives the decoder world-anchored noise after each upsampling (world/grain.py, VAEConfig.grain), its scales
starting at S; each crop reads the grain of its clip's cameras turned by a random rotation, as a walk would see it.
--device cuda runs it all on a GPU (the clips' frames and latents held there); --minutes stops it after that much
training time, the learning rate's schedule then following whichever of the step count and the clock is further on.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from worldwalk.world.discriminator import (VideoDiscriminator, feature_matching, generator_loss, hinge_d_loss,
                                           r1_penalty)

from worldwalk.world.train.common import (DECODER_WARMUP, ClipData, _log, _lr, latent_frames, load_any_vae,
                                          load_latents, load_trained_world, save_trained_vae, stream_generate,
                                          to_unit)
from worldwalk.world.train.dist import Ranks
from worldwalk.world.train.world import train_device
from worldwalk.world.vae import CausalVAE


def _save(out: Path, step: int, vae, disc, opt_g, opt_d, rng_state) -> None:
    tmp = out / "state.pt.tmp"
    torch.save({"step": step, "vae": vae.state_dict(), "disc": disc.state_dict(), "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(), "torch_rng": torch.get_rng_state(), "np_rng": rng_state}, tmp)
    tmp.replace(out / "state.pt")


@torch.no_grad()
def widen_decoder(vae: CausalVAE, widths: tuple[int, ...]) -> CausalVAE:
    """A copy of vae whose decoder has the upsampling widths `widths` (each at least the old one, the first the same),
    decoding exactly as vae does: each widened convolution keeps the old weights in its leading output and input
    channels (PixelShuffle takes output channels c·4 + r to channel c, so the old channels stay the leading ones);
    the new output channels keep their random initialisation and the new inputs start at zero weight."""
    old = vae.cfg.dec_widths
    widths = tuple(int(w) for w in widths)
    if len(widths) != len(old) or widths[0] != old[0] or any(n < o for n, o in zip(widths, old)):
        raise ValueError(f"--decoder-widths {','.join(map(str, widths))}: expected {len(old)} widths, the first "
                         f"{old[0]} and none below today's {','.join(map(str, old))}")
    wide = CausalVAE(dataclasses.replace(vae.cfg, decoder_widths=widths))
    src = vae.state_dict()
    for k, t in wide.state_dict().items():
        o = src[k]
        if t.shape != o.shape:  # a widened convolution (weight (out, in, 3, 3) or bias (out,))
            if t.ndim == 4:
                t[:, o.shape[1]:] = 0
            t[tuple(slice(0, n) for n in o.shape)] = o
        else:
            t.copy_(o)
    return wide.to(next(vae.parameters()).device)


@torch.no_grad()
def add_grain(vae: CausalVAE, scale: float) -> CausalVAE:
    """A copy of vae whose decoder takes world-anchored grain after each upsampling (VAEConfig.grain), every scale
    starting at `scale` (at 0 the decoder would decode as vae does, but the scales' gradient would be only chance)."""
    out = CausalVAE(dataclasses.replace(vae.cfg, grain=True))
    missing, unexpected = out.load_state_dict(vae.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("dec_grain.") for k in missing), (missing, unexpected)
    for p in out.dec_grain:
        p.fill_(scale)
    return out.to(next(vae.parameters()).device)


def crop_grain(vae: CausalVAE, c2w: np.ndarray, intr: np.ndarray, ys, xs, crop: int, rng: np.random.Generator,
               device) -> list[torch.Tensor]:
    """The grain a batch of crops decodes with: c2w (B, F, 4, 4), intr (B, 4) of the whole frames, crops at latent
    cells (ys, xs) of crop pixels -> [(B*F, 1, crop_k, crop_k)] per upsampling: each crop's own camera (the principal
    point moved by the crop's corner) sees what the whole frame's grain holds there. Each clip is turned by a random
    rotation first, so the decoder sees the grain of every direction, as a walk does."""
    from scipy.spatial.transform import Rotation

    B, Fr = c2w.shape[:2]
    turn = np.tile(np.eye(4), (B, 1, 1))
    turn[:, :3, :3] = Rotation.random(B, random_state=rng).as_matrix()
    poses = np.einsum("bij,bfjk->bfik", turn, c2w)
    f = vae.spatial_factor
    per = [vae.grain_maps(poses[b], intr[b] - np.array([0, 0, xs[b] * f, ys[b] * f]), (crop, crop))
           for b in range(B)]
    return [torch.cat(m).to(device) for m in zip(*per)]


def cmd_decoder_adv(a) -> int:
    if a.minutes is not None and not a.minutes > 0:
        raise ValueError(f"--minutes {a.minutes}: expected a positive time limit")
    if a.grain is not None and not a.grain > 0:
        raise ValueError(f"--grain {a.grain}: expected a positive starting scale such as 0.3")
    dev = train_device(a.device, Ranks())
    torch.manual_seed(a.seed)
    vae = load_any_vae(a.vae)
    if a.decoder_widths:
        try:
            widths = tuple(int(w) for w in a.decoder_widths.split(","))
        except ValueError:
            raise ValueError(f"--decoder-widths {a.decoder_widths!r}: expected widths like 64,64,48,24") from None
        if widths != vae.cfg.dec_widths:
            vae = widen_decoder(vae, widths)
    if a.grain is not None and not vae.cfg.grain:
        vae = add_grain(vae, a.grain)
    vae = vae.to(dev)
    model = load_trained_world(a.world).to(dev)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = {d: ClipData(d) for d in a.dir}
    sets = load_latents(a.dir, a.vae, model.cfg, out, vae=vae, clips=clips)
    g = torch.Generator().manual_seed(a.seed)
    for i, lat in enumerate(sets):  # one-step generations of every clip, a fixed noise per clip
        gen_path = out / ("generated.pt" if i == 0 else f"generated_{i}.pt")
        if gen_path.exists():
            lat["gen"] = torch.load(gen_path, weights_only=False)
            continue
        z, cc, pl = lat["z"], lat["cc"], lat["pl"]
        n = 8 if dev.type == "cpu" else 64
        lat["gen"] = torch.cat([stream_generate(model, z[j:j + n, :, :1].to(dev), cc[j:j + n].to(dev),
                                                pl[j:j + n].to(dev), g).cpu()
                                for j in tqdm(range(0, len(z), n), desc=f"generate {a.dir[i]}", unit="batch")])
        torch.save(lat["gen"], gen_path)
    del model
    for lat in sets:  # what a step reads, where it runs
        lat["z"], lat["gen"] = lat["z"].to(dev), lat["gen"].to(dev)
    frames = {d: torch.from_numpy(c.frames).to(dev) for d, c in clips.items()}  # (n, F, H, W, 3) uint8
    cams = {d: (c.c2w, c.intr) for d, c in clips.items()}
    disc = VideoDiscriminator(width=a.d_width).to(dev)
    params = [p for n, p in vae.named_parameters() if n.startswith("dec_")]
    for n, p in vae.named_parameters():
        p.requires_grad_(n.startswith("dec_"))
    opt_g = torch.optim.Adam(params, lr=a.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=a.d_lr, betas=(0.5, 0.9))
    step, rng = 0, np.random.default_rng(a.seed)
    if (out / "state.pt").exists():
        st = torch.load(out / "state.pt", weights_only=False)
        vae.load_state_dict(st["vae"])
        disc.load_state_dict(st["disc"])
        opt_g.load_state_dict(st["opt_g"])
        opt_d.load_state_dict(st["opt_d"])
        torch.set_rng_state(st["torch_rng"])
        rng.bit_generator.state = st["np_rng"]
        step = st["step"]
    vae.train()
    last = vae.dec_space[-1].weight  # the decoder's last layer: where the two losses' gradients are compared
    f, s = vae.spatial_factor, vae.temporal_stride
    weights = torch.tensor([float(lat["z"].shape[0] * lat["z"].shape[2]) for lat in sets])
    bar = tqdm(range(step, a.steps), initial=step, total=a.steps, desc="decoder-adv", unit="step")
    t0 = time.time()
    for step in bar:
        elapsed = time.time() - t0
        if a.minutes is not None and elapsed > 60 * a.minutes:
            print(f"--minutes {a.minutes}: stopped after step {step} of {a.steps} (resumable)")
            _save(out, step, vae, disc, opt_g, opt_d, rng.bit_generator.state)
            break
        k = int(rng.choice(len(sets), p=(weights / weights.sum()).numpy()))
        lat, data = sets[k], frames[a.dir[k]]
        H, W = data.shape[2:4]
        crop = min(a.crop, H, W) // f * f
        idx = rng.integers(0, len(lat["z"]), a.batch)
        cy, cx = rng.integers(0, (H - crop) // f + 1, a.batch), rng.integers(0, (W - crop) // f + 1, a.batch)
        real = bool(rng.random() < a.real_fraction)
        src = lat["z"] if real else lat["gen"]
        T = src.shape[2]
        n = min(a.latents, T - 1)
        st = int(rng.integers(1, T - n + 1))  # latents [st, st + n) are scored (never the start latent alone)
        st0, keep = max(0, st - DECODER_WARMUP), latent_frames(st, st + n, s)
        zin = torch.stack([src[i, :, st0:st + n, y:y + crop // f, x:x + crop // f] for i, y, x in zip(idx, cy, cx)])
        if real:
            zin = zin + a.latent_noise * torch.randn_like(zin)
        keep = torch.from_numpy(keep).to(dev)
        x = to_unit(torch.stack([data[i, keep, y * f:y * f + crop, xx * f:xx * f + crop]
                                 for i, y, xx in zip(idx, cy, cx)]))  # (B, 3, F, crop, crop)
        progress = step if a.minutes is None else max(step, int(a.steps * elapsed / (60 * a.minutes)))
        lr_scale = _lr(progress, a.steps, 1.0, warmup=50)
        for gr in opt_g.param_groups:
            gr["lr"] = a.lr * lr_scale
        # ---- decoder
        cache: dict = {}
        with torch.no_grad():
            vae.decode_time(zin[:, :, :st - st0], cache)
        grain = None
        if vae.cfg.grain:
            c2w, intr = cams[a.dir[k]]
            grain = crop_grain(vae, np.stack([c2w[i][keep.cpu().numpy()] for i in idx]), intr[idx], cy, cx, crop,
                               rng, dev)
        y = vae.decode_space(vae.decode_time(zin[:, :, st - st0:], cache), grain)  # (B, 3, F, crop, crop)
        if real:
            rec = a.l1 * (y - x).abs().mean() + (y - x).pow(2).mean()
        else:
            yl, xl = (F.avg_pool3d(t, (1, 4, 4)) for t in (y, x))
            rec = (yl - xl).abs().mean() + (yl - xl).pow(2).mean()
        if a.lowpass_weight > 0:  # colour and layout at 1/8 resolution on every step: the adversarial term may not move them
            rec = rec + a.lowpass_weight * (F.avg_pool3d(y, (1, 8, 8)) - F.avg_pool3d(x, (1, 8, 8))).abs().mean()
        if a.spectral_weight > 0:  # how much of each spatial frequency, not where: detail yes, a latent-cell grid no
            rec = rec + a.spectral_weight * spectral_loss(y, x)
        adv_on = step >= a.d_warmup
        if adv_on:
            for p in disc.parameters():
                p.requires_grad_(False)
            fake_logits, fake_feats = disc(y)
            with torch.no_grad():
                _, real_feats = disc(x)
            g_adv = generator_loss(fake_logits)
            fm = feature_matching(fake_feats, real_feats)
            (g_rec,) = torch.autograd.grad(rec + a.fm_weight * fm, last, retain_graph=True)
            (g_g,) = torch.autograd.grad(g_adv, last, retain_graph=True)
            lam = (g_rec.norm() / (g_g.norm() + 1e-6)).clamp(0, 1e3).detach() * a.adv_weight
            loss = rec + a.fm_weight * fm + lam * g_adv
            for p in disc.parameters():
                p.requires_grad_(True)
        else:
            g_adv = fm = lam = torch.zeros(())
            loss = rec
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt_g.step()
        # ---- discriminators (hinge), R1 on real clips every r1_every steps
        real_logits, _ = disc(x)
        fake_logits, _ = disc(y.detach())
        d_loss = hinge_d_loss(real_logits, fake_logits)
        if a.r1 > 0 and step % a.r1_every == 0:
            d_loss = d_loss + a.r1 * a.r1_every * 0.5 * r1_penalty(disc, x)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if (step + 1) % 10 == 0 or step + 1 == a.steps:  # (reading a loss waits for the GPU: every 10th step)
            mse = (y - x).pow(2).mean().item()
            psnr = 10 * math.log10(4.0 / max(mse, 1e-10))
            bar.set_postfix(rec=f"{rec.item():.4f}", d=f"{d_loss.item():.3f}", g=f"{g_adv.item():.3f}",
                            lam=f"{float(lam):.3f}", psnr=f"{psnr:.2f}")
            _log(out, {"step": step + 1, "rec": rec.item(), "fm": fm.item(), "g_adv": g_adv.item(), "lam": float(lam),
                       "d": d_loss.item(), "psnr": psnr, "real": real, "time": time.time() - t0})
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            _save(out, step + 1, vae, disc, opt_g, opt_d, rng.bit_generator.state)
        if a.snapshot_every and (step + 1) % a.snapshot_every == 0:
            save_trained_vae(vae, out / f"vae_{step + 1:06d}.pt")
    vae.eval()
    save_trained_vae(vae, out / "vae_final.pt")
    print(f"adversarially tuned VAE saved to {out / 'vae_final.pt'}")
    return 0


def spectral_loss(y: torch.Tensor, x: torch.Tensor, patch: int = 32) -> torch.Tensor:
    """Mean L1 between the log amplitude spectra of decoded and exact frames (B, 3, F, H, W), taken per patch×patch
    tile (half-overlapping, through a Hann window), per channel. A tile's amplitude does not depend on where things sit
    inside it, so the term holds for generated latents too (whose detail cannot sit where the exact frame's does): it
    asks each tile for as much fine detail as the exact frame has there (grass yes, sky no), and a periodic pattern
    (a grid on the latent cells) shows as peaks the exact tile lacks."""
    H, W = y.shape[-2:]
    p = min(patch, H, W)
    win = torch.outer(torch.hann_window(p, device=y.device), torch.hann_window(p, device=y.device))

    def amp(t):
        tiles = t.unfold(-2, p, p // 2).unfold(-2, p, p // 2)  # (B, 3, F, nH, nW, p, p)
        return torch.log1p(torch.fft.rfft2(tiles * win).abs())

    return (amp(y) - amp(x.detach())).abs().mean()
