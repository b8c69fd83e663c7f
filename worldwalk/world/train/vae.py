"""Stage `vae`: train the causal VAE on random windows and crops of the clips (L1 + MSE + edges, a little latent noise
for robustness to the generator's errors), then fit the latent normalisation. Result: <out>/vae_final.pt.

Under torchrun (train/dist.py) it runs data-parallel as the world stage does: the same global batch drawn on every
rank, each rank reading and computing its own samples, the gradients averaged, rank 0 writing the checkpoints.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldwalk.world.train import dist as tdist
from worldwalk.world.train.common import ClipData, _load_state, _log, _lr, _save_state, save_trained_vae, to_unit
from worldwalk.world.vae import CausalVAE


def cmd_vae(a) -> int:
    return tdist.run_stage(_train_vae, a)


def _train_vae(a, ranks: tdist.Ranks) -> int:
    ranks.check_batch(a.batch)
    torch.manual_seed(a.seed)
    data = ClipData(a.dir)
    vae = CausalVAE(a.vae_preset).train()
    fwd = _Autoencode(vae)  # encode + decode in one forward, wrapped in DistributedDataParallel on several ranks
    if ranks.distributed:
        from torch.nn.parallel import DistributedDataParallel
        fwd = DistributedDataParallel(fwd, find_unused_parameters=True)
    mine = ranks.shard(a.batch)
    opt = torch.optim.AdamW(vae.parameters(), lr=a.lr, weight_decay=1e-4)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    step = _load_state(out, {"vae": vae}, opt)
    s = vae.temporal_stride
    win = 1 + a.latents * s  # frames per training window: the first latent alone, then groups of s
    H, W = data.frames.shape[2:4]
    crop = min(a.crop or H, H, W)
    crop -= crop % vae.spatial_factor
    bar = tqdm(range(step, a.steps), initial=step, total=a.steps, desc="vae", unit="step", disable=not ranks.main)
    rng = np.random.default_rng(a.seed + step)
    t0 = time.time()
    for step in bar:
        idx = rng.integers(0, len(data), a.batch)
        start = rng.integers(0, data.frames.shape[1] - win + 1, a.batch)
        cy, cx = rng.integers(0, H - crop + 1, a.batch), rng.integers(0, W - crop + 1, a.batch)
        # the global batch is drawn on every rank; each reads and computes its own samples
        x = to_unit(np.stack([data.frames[i, st:st + win, y:y + crop, xx:xx + crop]
                              for i, st, y, xx in list(zip(idx, start, cy, cx))[mine]]))
        for g in opt.param_groups:
            g["lr"] = _lr(step, a.steps, a.lr)
        lat_shape = (a.batch, vae.latent_channels, a.latents + 1, crop // vae.spatial_factor,
                     crop // vae.spatial_factor)
        noise = 0.05 * torch.randn(lat_shape)[mine]  # robustness to the generator's small latent errors
        z, y = fwd(x, noise)
        l1 = (y - x).abs().mean()
        mse = (y - x).pow(2).mean()
        gx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
        gy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
        edge = (gx(y) - gx(x)).abs().mean() + (gy(y) - gy(x)).abs().mean()
        reg = 1e-3 * z.pow(2).mean()
        loss = l1 + mse + 0.5 * edge + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()  # DistributedDataParallel: the gradients averaged over the ranks, as for the whole batch
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        if not ranks.main:
            continue
        bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.2f}")
        if (step + 1) % 10 == 0 or step + 1 == a.steps:
            _log(out, {"step": step + 1, "loss": loss.item(), "l1": l1.item(), "psnr": psnr, "time": time.time() - t0})
        if (step + 1) % a.save_every == 0 or step + 1 == a.steps:
            _save_state(out, step + 1, {"vae": vae}, opt)
    if not ranks.main:
        ranks.barrier()
        return 0
    # latent statistics for normalisation
    vae.eval()
    with torch.no_grad():
        vae.latent_mean.zero_()
        vae.latent_std.fill_(1.0)
        zs = [vae.encode_video(to_unit(data.frames[i:i + 4, :1 + 3 * s])) for i in range(0, min(len(data), 64), 4)]
        z = torch.cat(zs).transpose(0, 1).flatten(1)
        vae.latent_mean.copy_(z.mean(1))
        vae.latent_std.copy_(z.std(1).clamp_min(1e-3))
    save_trained_vae(vae, out / "vae_final.pt")
    print(f"VAE saved to {out / 'vae_final.pt'}" + (f" ({ranks.world} processes)" if ranks.distributed else ""))
    ranks.barrier()
    return 0


class _Autoencode(torch.nn.Module):
    """encode + decode as one forward (DistributedDataParallel hooks a module's forward)."""

    def __init__(self, vae: CausalVAE):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, F, H, W) -> (latents, the reconstruction of the latents + noise)."""
        z = self.vae.encode_video(x)
        return z, self.vae.decode_video(z + noise)
