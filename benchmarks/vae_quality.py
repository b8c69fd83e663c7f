"""The VAE alone: exact frames of held-out walks encoded and decoded, against the originals.

    python benchmarks/vae_quality.py                                   # the shipped default's VAE
    python benchmarks/vae_quality.py --vae runs/decoder_adv --vae assets/default_world.safetensors --sheet out.jpg

--vae: a world bundle (.safetensors) or a VAE run folder (its vae_final.pt); repeat to compare. For each, on the same
clips (held-out scene seeds that no training data uses, human-like random walks, 1 + 4k frames), the clip is encoded
whole and decoded chunk by chunk as the engine does (the first chunk 4 latents, then 3), and every frame is scored:
PSNR, SSIM and the sharpness ratio at full and 1/4 resolution (benchmarks/metrics.py), with the share of frames below
the foggy threshold. A second pass decodes the frames one latent further from the truth: the encoded latents with
Gaussian noise (--noise, in latent standard deviations), the kind of small error the generator makes. --sheet: exact
frames over each VAE's reconstruction, every 0.5 s of the first clips, for looking at.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import FOGGY, cpu_header, frame_metrics  # noqa: E402
from worldwalk.app.runtime import keep_freed_memory  # noqa: E402
from worldwalk.world.bundle import DEFAULT_BUNDLE  # noqa: E402
from worldwalk.world.checkpoint import CheckpointError  # noqa: E402

HELD_OUT = 1_000_000 + 5000  # scene seeds no training data and no other benchmark uses


def load_vae(spec: str):
    p = Path(spec)
    if p.is_dir():
        from worldwalk.world.vae import CausalVAE, VAEConfig

        f = p / "vae_final.pt"
        if not f.is_file():
            raise CheckpointError(f"--vae {spec}: no vae_final.pt in this folder; expected a VAE run or a bundle")
        st = torch.load(f, weights_only=False)
        vae = CausalVAE(VAEConfig.from_dict(st["cfg"]))
        vae.load_state_dict(st["vae"])
        return vae.eval()
    if not p.is_file():
        raise CheckpointError(f"--vae {spec}: no such file or folder")
    from worldwalk.world.bundle import load_bundle

    return load_bundle(p)[1].eval()


def clips(n: int, frames: int, size=(256, 256)):
    from worldwalk.controls.intrinsics import from_fov
    from worldwalk.world.procedural.scene import Scene
    from worldwalk.world.procedural.walks import random_walk

    for i in range(n):
        rng = np.random.default_rng(HELD_OUT + i)
        scene = Scene(HELD_OUT + i)
        c2w = random_walk(frames, rng, 16)
        intr = from_fov(size[0], size[1], 60.0)
        yield scene.render(c2w, intr, size), (c2w, intr)


@torch.no_grad()
def reconstruct(vae, frames_u8: np.ndarray, noise: float, seed: int, cameras=None) -> np.ndarray:
    """(F, H, W, 3) uint8 -> the same decoded chunk by chunk (4 latents, then 3 at a time). cameras: (c2w (F, 4, 4),
    intrinsics) of the frames, for a decoder with world-anchored grain (worldwalk/world/grain.py)."""
    x = torch.from_numpy(frames_u8).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]
    z = vae.encode_video(x)
    if noise:
        z = z + noise * torch.randn(z.shape, generator=torch.Generator().manual_seed(seed))
    cache, outs = vae.new_decode_cache(), []
    bounds = [0, 4] + list(range(7, z.shape[2] + 1, 3))
    f0 = 0
    for b, e in zip(bounds[:-1], bounds[1:]):
        n = (e - b) * vae.temporal_stride - (vae.temporal_stride - 1 if b == 0 else 0)  # the chunk's frames
        cams = None if cameras is None else (cameras[0][f0:f0 + n], cameras[1])
        outs.append(vae.decode_chunk(z[:, :, b:e], cache, cameras=cams))
        f0 += n
    y = torch.cat(outs, 2)[0].permute(1, 2, 3, 0)
    return ((y.clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def summary(rows: list[dict]) -> str:
    m = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "sharp", "sharp4", "lattice")}
    foggy = 100 * float(np.mean([r["sharp"] < FOGGY for r in rows]))
    return (f"PSNR {m['psnr']:6.2f} dB  SSIM {m['ssim']:.3f}  sharpness {m['sharp']:.3f} (1/4: {m['sharp4']:.3f})  "
            f"foggy {foggy:4.1f} %  lattice {m['lattice']:+.2f} dB")


def main() -> int:
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vae", action="append", default=None, help="a bundle or VAE run folder (repeat to compare)")
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--frames", type=int, default=49, help="frames per clip (1 + 4k)")
    ap.add_argument("--noise", type=float, default=0.1, help="latent noise of the second pass (0: skip it)")
    ap.add_argument("--sheet", default=None, help="write exact-over-reconstruction frames here (JPEG)")
    a = ap.parse_args()
    if a.frames < 5 or (a.frames - 1) % 4:
        print(f"error: --frames {a.frames}: expected 1 + 4k frames, at least 5", file=sys.stderr)
        return 2
    specs = a.vae or [str(DEFAULT_BUNDLE)]
    try:
        vaes = [load_vae(s) for s in specs]
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"# vae_quality  {time.strftime('%Y-%m-%d %H:%M')}  {cpu_header()}")
    print(f"# {a.clips} held-out clips of {a.frames} frames at 256x256; noise pass {a.noise} latent std")
    data, cams = zip(*clips(a.clips, a.frames))
    sheet_rows = []
    for spec, vae in zip(specs, vaes):
        for noise in ([0.0, a.noise] if a.noise else [0.0]):
            rows, t0 = [], time.perf_counter()
            for i, ex in enumerate(data):
                rec = reconstruct(vae, ex, noise, seed=i, cameras=cams[i])
                rows += [frame_metrics(g, e) for g, e in zip(rec[1:], ex[1:])]
                if noise == 0 and i < 2:
                    sheet_rows.append((spec, i, rec))
            print(f"{Path(spec).name:>28}  noise {noise:.2f}: {summary(rows)}  ({time.perf_counter() - t0:.0f} s)")
    if a.sheet:
        pick = np.arange(0, a.frames, 8)
        rows = []
        for i in range(min(2, len(data))):
            rows.append(np.concatenate(list(data[i][pick]), 1))
            rows += [np.concatenate(list(rec[pick]), 1) for _, j, rec in sheet_rows if j == i]
        Image.fromarray(np.concatenate(rows, 0)).save(a.sheet, quality=90)
        print(f"sheet: {a.sheet} (per clip: exact, then each --vae in order; every 0.5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
