"""The decoder that draws detail: the VAE decoder fine-tuned against patch discriminators (train decoder-adv).

    python launch.py train decoder-adv --dir runs/long --vae assets/default_world.safetensors \
        --world assets/default_world.safetensors --out runs/decoder_adv --steps 1500

What it is given, as in `train decoder`: the world model's one-step generations of each clip (streamed chunk by chunk
from the clean start latent, as the engine does) and the clip's own encoded latents. What it is asked:
- encoded latents (--real-fraction of the steps): reconstruct the exact frames (L1 + MSE at full resolution);
- generated latents: match the exact frames only at 1/4 resolution (layout and colour: the generation cannot know the
  fine detail, and a full-resolution pixel loss would ask for the fog that averages it);
- both: keep colour and layout at 1/8 resolution (L1, x --lowpass-weight), and look real to a frame and a clip discriminator (world/discriminator.py: hinge loss, lazy R1), plus feature
  matching on the discriminators' features. The adversarial weight is set each step from the ratio of the two losses'
  gradients at the decoder's last layer (as VQGAN does), times --adv-weight, so neither term swamps the other.
The discriminators train alone for --d-warmup steps first. The encoder and latent normalisation stay frozen (the world
model's latent space does not move). Warm-up latents before the scored window only fill the decoder's causal cache
(no gradient, no upsampling). Resumable: weights of both networks, both optimisers, step, RNG in <out>.
"""
from __future__ import annotations

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
                                          load_latents, load_trained_world, stream_generate, to_unit)


def _save(out: Path, step: int, vae, disc, opt_g, opt_d, rng_state) -> None:
    tmp = out / "state.pt.tmp"
    torch.save({"step": step, "vae": vae.state_dict(), "disc": disc.state_dict(), "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(), "torch_rng": torch.get_rng_state(), "np_rng": rng_state}, tmp)
    tmp.replace(out / "state.pt")


def cmd_decoder_adv(a) -> int:
    torch.manual_seed(a.seed)
    vae = load_any_vae(a.vae)
    model = load_trained_world(a.world)
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
        lat["gen"] = torch.cat([stream_generate(model, z[j:j + 8, :, :1], cc[j:j + 8], pl[j:j + 8], g)
                                for j in tqdm(range(0, len(z), 8), desc=f"generate {a.dir[i]}", unit="batch")])
        torch.save(lat["gen"], gen_path)
    del model
    disc = VideoDiscriminator(width=a.d_width)
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
        k = int(rng.choice(len(sets), p=(weights / weights.sum()).numpy()))
        lat, data = sets[k], clips[a.dir[k]]
        H, W = data.frames.shape[2:4]
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
        x = to_unit(np.stack([data.frames[i, keep, y * f:y * f + crop, xx * f:xx * f + crop]
                              for i, y, xx in zip(idx, cy, cx)]))  # (B, 3, F, crop, crop)
        lr_scale = _lr(step, a.steps, 1.0, warmup=50)
        for gr in opt_g.param_groups:
            gr["lr"] = a.lr * lr_scale
        # ---- decoder
        cache: dict = {}
        with torch.no_grad():
            vae.decode_time(zin[:, :, :st - st0], cache)
        y = vae.decode_space(vae.decode_time(zin[:, :, st - st0:], cache))  # (B, 3, F, crop, crop)
        if real:
            rec = (y - x).abs().mean() + (y - x).pow(2).mean()
        else:
            yl, xl = (F.avg_pool3d(t, (1, 4, 4)) for t in (y, x))
            rec = (yl - xl).abs().mean() + (yl - xl).pow(2).mean()
        if a.lowpass_weight > 0:  # colour and layout at 1/8 resolution on every step: the adversarial term may not move them
            rec = rec + a.lowpass_weight * (F.avg_pool3d(y, (1, 8, 8)) - F.avg_pool3d(x, (1, 8, 8))).abs().mean()
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
        mse = (y - x).pow(2).mean().item()
        psnr = 10 * math.log10(4.0 / max(mse, 1e-10))
        bar.set_postfix(rec=f"{rec.item():.4f}", d=f"{d_loss.item():.3f}", g=f"{g_adv.item():.3f}",
                        lam=f"{float(lam):.3f}", psnr=f"{psnr:.2f}")
        if (step + 1) % 10 == 0 or step + 1 == a.steps:
            _log(out, {"step": step + 1, "rec": rec.item(), "fm": fm.item(), "g_adv": g_adv.item(), "lam": float(lam),
                       "d": d_loss.item(), "psnr": psnr, "real": real, "time": time.time() - t0})
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            _save(out, step + 1, vae, disc, opt_g, opt_d, rng.bit_generator.state)
    vae.eval()
    torch.save({"vae": vae.state_dict(), "cfg": vae.cfg.to_dict()}, out / "vae_final.pt")
    print(f"adversarially tuned VAE saved to {out / 'vae_final.pt'}")
    return 0
