"""Adversarial post-training of the one-step generator (train world-adv, world/train/world_adv.py) at test size."""
import json

import numpy as np
import torch
import torch.nn.functional as F

from worldwalk.app.cli import main
from worldwalk.world.discriminator import LatentDiscriminator, latent_r1
from worldwalk.world.train.world_adv import detail


def run(*args):
    assert main([str(a) for a in args]) == 0


def test_latent_discriminator_shapes_and_r1():
    d = LatentDiscriminator(latent_channels=4, plucker_channels=12, width=8)
    x, z0, pl = torch.randn(2, 4, 3, 8, 12), torch.randn(2, 4, 1, 8, 12), torch.randn(2, 12, 3, 8, 12)
    assert d(x, z0, pl).shape == (2, 1, 3, 2, 3)
    r1 = latent_r1(d, x, z0, pl)
    assert r1.ndim == 0 and torch.isfinite(r1) and r1 > 0
    r1.backward()  # the penalty trains the discriminator
    assert all(p.grad is not None for n, p in d.named_parameters() if n.endswith("weight"))


def test_detail_sees_fog():
    x = torch.randn(3, 4, 2, 16, 16)
    fog = F.avg_pool3d(x, (1, 5, 5), 1, (0, 2, 2), count_include_pad=False)
    assert (detail(fog) < 0.3 * detail(x)).all()
    assert torch.allclose(detail(x), detail(x.flip(-1)))


def test_world_adv_stage(tmp_path):
    d, v, w, a = (tmp_path / n for n in ("data", "vae", "world", "adv"))
    run("train", "data", "--dir", d, "--clips", 2, "--shard-size", 2, "--preset", "test", "--chunks", 3)
    run("train", "vae", "--dir", d, "--out", v, "--vae-preset", "test-vae", "--steps", 1)
    run("train", "world", "--dir", d, "--vae", v, "--out", w, "--preset", "test", "--steps", 1, "--batch", 2,
        "--recycle")
    args = ("train", "world-adv", "--dir", d, "--vae", v, "--world", w, "--out", a, "--batch", 2, "--chunks", 3,
            "--d-warmup", 1, "--d-width", 8, "--r1-every", 1, "--save-every", 2, "--ema", 0.5, "--lr", 1e-3,
            "--snapshot-every", 2, "--adv-unseen-only", "--sigma-one", 0.5)
    run(*args, "--steps", 3)
    assert torch.load(a / "state.pt", weights_only=False)["step"] == 3
    run(*args, "--steps", 4)  # resumes from step 3
    rows = [json.loads(line) for line in (a / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4
    assert all(np.isfinite([r["d"], r["adv"], r["reg"], r["detail_ratio"]]).all() for r in rows)
    before = torch.load(w / "world_final.pt", weights_only=False)["model"]
    after = torch.load(a / "world_final.pt", weights_only=False)
    assert after["cfg"]["recycle"] and set(after["model"]) == set(before)
    assert any(not torch.equal(before[k], after["model"][k]) for k in before)  # the generator moved
    assert (a / "snapshot_000002" / "world_final.pt").exists()
    # the result bundles and walks like any world run
    out = tmp_path / "adv.safetensors"
    run("train", "bundle", "--vae", v, "--world", a, "--out", out)
    # a two-pass model, clips too short for the chunks asked, a negative weight: one line, exit 2
    w2 = tmp_path / "world2"
    run("train", "world", "--dir", d, "--vae", v, "--out", w2, "--preset", "test", "--steps", 0)
    base = ("train", "world-adv", "--dir", str(d), "--vae", str(v), "--steps", "1")
    assert main([*base, "--world", str(w2), "--out", str(tmp_path / "bad1")]) == 2
    assert main([*base, "--world", str(w), "--out", str(tmp_path / "bad2"), "--chunks", "9"]) == 2
    assert main([*base, "--world", str(w), "--out", str(tmp_path / "bad3"), "--adv-weight", "-1"]) == 2
    if not torch.cuda.is_available():  # asked for a GPU the machine lacks: one line, exit 2, before any training
        assert main([*base, "--world", str(w), "--out", str(tmp_path / "bad4"), "--device", "cuda"]) == 2
