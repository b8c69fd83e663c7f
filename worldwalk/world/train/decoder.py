"""Stage `decoder`: fine-tune the VAE decoder on the world model's own one-step generations (common.stream_generate),
against the exact frames. Result: <out>/vae_final.pt, a VAE with the same encoder and latent normalisation.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.world.train.common import (DECODER_WARMUP, ClipData, _load_state, _log, _lr, _save_state,
                                          latent_frames, load_any_vae, load_latents, load_trained_world,
                                          save_trained_vae, stream_generate, to_unit)


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
    save_trained_vae(vae, out / "vae_final.pt")
    print(f"tuned VAE saved to {out / 'vae_final.pt'}")
    return 0
