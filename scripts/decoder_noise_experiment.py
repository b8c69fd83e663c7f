"""The noise-input experiment of benchmarks/RESULTS.md (issue 25, "A noise input"): the VAE decoder with fresh
Gaussian noise added after some of its upsampling stages, times a learned per-channel scale, fine-tuned by
`train decoder-adv` and measured by `benchmarks/vae_quality.py`. Not part of the app: the noise is drawn afresh for
every frame, so a decoder trained this way boils at a standing pose and is never bundled.

    NOISE_STAGES=2,5,8,11 NOISE_INIT=0.3 python scripts/decoder_noise_experiment.py train decoder-adv --dir D \\
        --vae assets/default_world.safetensors --world assets/default_world.safetensors --out runs/N3 --steps 600 \\
        --batch 4 --crop 128 --adv-weight 0 --d-warmup 100000 --d-width 16 --spectral-weight 3 --l1 0 --lr 3e-4
    NOISE_STAGES=2,5,8,11 python scripts/decoder_noise_experiment.py eval --vae runs/N3 --clips 3

NOISE_STAGES: indices in the decoder's dec_space after which noise enters (the SiLU of each upsampling: 2, 5, 8, 11
for the tiny VAE; default 8,11); NOISE_INIT: the scales' starting value (default 0.05; at 0 their gradient is only
chance). The same NOISE_STAGES must be given to eval.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class NoiseAdd(nn.Module):
    """x (N, C, H, W) + scale (C,) x fresh N(0, 1) noise (N, 1, H, W)."""

    def __init__(self, c: int, init: float):
        super().__init__()
        self.scale = nn.Parameter(torch.full((c,), init))

    def forward(self, x):
        return x + self.scale.view(1, -1, 1, 1) * torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device)


def stages() -> tuple[int, ...]:
    try:
        return tuple(int(i) for i in os.environ.get("NOISE_STAGES", "8,11").split(","))
    except ValueError:
        raise ValueError(f"NOISE_STAGES {os.environ['NOISE_STAGES']!r}: expected indices like 2,5,8,11") from None


def add_noise(vae, at: tuple[int, ...], init: float):
    """vae with NoiseAdd after dec_space[i] for i in `at` (each the SiLU after an upsampling conv and its shuffle)."""
    from worldwalk.world.layers import SiLU

    mods, out = list(vae.dec_space), []
    for i, m in enumerate(mods):
        out.append(m)
        if i in at:
            if not (isinstance(m, (SiLU, nn.SiLU)) and isinstance(mods[i - 2], nn.Conv2d)):
                raise ValueError(f"NOISE_STAGES: dec_space[{i}] is not the SiLU after an upsampling")
            out.append(NoiseAdd(mods[i - 2].out_channels // 4, init))
    vae.dec_space = nn.Sequential(*out).to(memory_format=torch.channels_last)
    return vae


def has_noise(vae) -> bool:
    return any(isinstance(m, NoiseAdd) for m in vae.dec_space)


def main(argv: list[str]) -> int:
    """One line and exit 2 on bad input, as launch.py does."""
    from worldwalk.world.checkpoint import CheckpointError

    try:
        return _main(argv)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("train", "eval"):
        print("usage: decoder_noise_experiment.py train <train decoder-adv args> | eval <vae_quality args>",
              file=sys.stderr)
        return 2
    at = stages()
    if argv[0] == "train":
        import argparse

        import worldwalk.world.train.decoder_adv as da
        from worldwalk.app.train_args import add_parser

        load = da.load_any_vae
        try:
            init = float(os.environ.get("NOISE_INIT", "0.05"))
        except ValueError:
            raise ValueError(f"NOISE_INIT {os.environ['NOISE_INIT']!r}: expected a number like 0.3") from None
        da.load_any_vae = lambda p: (lambda v: v if has_noise(v) else add_noise(v, at, init))(load(p))
        p = argparse.ArgumentParser()
        add_parser(p.add_subparsers(dest="cmd"))
        a = p.parse_args(["train", *argv[1:]])
        return a.func(a)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import vae_quality as vq

    from worldwalk.world.vae import CausalVAE, VAEConfig

    plain = vq.load_vae

    def load_vae(spec):
        f = Path(spec) / "vae_final.pt"
        st = torch.load(f, weights_only=False) if f.is_file() else None
        if st is None or not any(k.endswith(".scale") for k in st["vae"]):
            return plain(spec)
        vae = add_noise(CausalVAE(VAEConfig.from_dict(st["cfg"])), at, 0.0)
        vae.load_state_dict(st["vae"])
        print(spec, "noise scales", [round(float(m.scale.detach().abs().mean()), 4) for m in vae.dec_space
                                     if isinstance(m, NoiseAdd)])
        return vae.eval()

    vq.load_vae = load_vae
    sys.argv = ["vae_quality.py", *argv[1:]]
    return vq.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
