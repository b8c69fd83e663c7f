"""The training pipeline end to end at test size: data -> VAE -> world model -> bundle -> a walk. Also resumption."""
import json

import numpy as np
import pytest
import torch

from worldwalk.app.cli import main
from worldwalk.world.bundle import load_bundle
from worldwalk.world.session import Session

from train_checks import params_without_grad  # noqa: E402  (tests/world, on the path as rootdir-less tests)


def run(*args):
    assert main([str(a) for a in args]) == 0


def test_pipeline_and_resume(tmp_path):
    d, v, w = tmp_path / "data", tmp_path / "vae", tmp_path / "world"
    run("train", "data", "--dir", d, "--clips", 4, "--shard-size", 2, "--preset", "test")
    assert len(list(d.glob("shard_*.npz"))) == 2
    # two processes render the same shards, in the same order
    run("train", "data", "--dir", tmp_path / "data_w2", "--clips", 4, "--shard-size", 2, "--preset", "test",
        "--workers", 2)
    for name in ("shard_0000.npz", "shard_0001.npz"):
        one, two = np.load(d / name), np.load(tmp_path / "data_w2" / name)
        assert all(np.array_equal(one[k], two[k]) for k in ("frames", "c2w", "intrinsics"))
    shard = np.load(d / "shard_0000.npz")
    assert shard["frames"].shape == (2, 13, 64, 96, 3)  # 1 + 2 chunks x 3 latents x stride 2
    run("train", "vae", "--dir", d, "--out", v, "--vae-preset", "test-vae", "--steps", 4, "--save-every", 2)
    log = [json.loads(line) for line in (v / "log.jsonl").read_text().splitlines()]
    assert log and all(np.isfinite(r["loss"]) for r in log)
    run("train", "world", "--dir", d, "--vae", v, "--out", w, "--preset", "test", "--steps", 3, "--batch", 2,
        "--save-every", 2)
    first = torch.load(w / "state.pt", weights_only=False)["step"]
    assert first == 3
    # resuming past the end does nothing more; asking for more steps continues from step 3
    run("train", "world", "--dir", d, "--vae", v, "--out", w, "--preset", "test", "--steps", 5, "--batch", 2,
        "--save-every", 2)
    assert torch.load(w / "state.pt", weights_only=False)["step"] == 5
    # one more step on the model's own one-step context, at sigma = 1
    run("train", "world", "--dir", d, "--vae", v, "--out", w, "--preset", "test", "--steps", 6, "--batch", 2,
        "--self-context", 1, "--sigma-one", 1)
    assert torch.load(w / "state.pt", weights_only=False)["step"] == 6
    # streamed rollouts over two clip sets (short and longer clips): every chunk through the engine's cache
    d4 = tmp_path / "data4"
    run("train", "data", "--dir", d4, "--clips", 2, "--shard-size", 2, "--preset", "test", "--chunks", 4)
    assert np.load(d4 / "shard_0000.npz")["frames"].shape[1] == 25  # 1 + 4 chunks x 3 latents x stride 2
    w4 = tmp_path / "world4"
    run("train", "world", "--dir", d, "--dir", d4, "--vae", v, "--out", w4, "--preset", "test", "--steps", 2,
        "--batch", 2, "--rollout", "--self-context", 0.5, "--init", w, "--ema", 0.9)
    assert (w4 / "latents_1.pt").exists()
    rows = [json.loads(line) for line in (w4 / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and np.isfinite(rows[-1]["loss"])
    # ...and with a pixel loss through the VAE's frozen decoder (rollouts only)
    run("train", "world", "--dir", d4, "--vae", v, "--out", tmp_path / "world_pix", "--preset", "test", "--steps", 1,
        "--batch", 2, "--rollout", "--init", w, "--pixel-loss", 10, "--pixel-crop", 32)
    row = json.loads((tmp_path / "world_pix" / "log.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 1 and np.isfinite(row["pixel_psnr"])
    assert main(["train", "world", "--dir", str(d4), "--vae", str(v), "--out", str(tmp_path / "bad_pix"),
                 "--preset", "test", "--pixel-loss", "1"]) == 2
    # with --ema the result is the weight average; the last raw weights are kept beside it
    fin = torch.load(w4 / "world_final.pt", weights_only=False)
    assert set(fin["model"]) == set(fin["model_raw"])
    assert any(not torch.equal(fin["model"][k], fin["model_raw"][k]) for k in fin["model"])
    assert "ema" in torch.load(w4 / "state.pt", weights_only=False)
    assert main(["train", "world", "--dir", str(d), "--vae", str(v), "--out", str(tmp_path / "bad_ema"),
                 "--preset", "test", "--ema", "1.5"]) == 2
    # the decoder stage refuses clips other than those the world run encoded (one line, exit 2)
    assert main(["train", "decoder", "--dir", str(d4), "--vae", str(v), "--world", str(w), "--out",
                 str(tmp_path / "bad")]) == 2
    # the decoder tuned on the model's generations: encoder and latent statistics untouched, decoder moved
    t = tmp_path / "decoder"
    run("train", "decoder", "--dir", d, "--vae", v, "--world", w, "--out", t, "--steps", 3, "--latents", 2)
    before = torch.load(v / "vae_final.pt", weights_only=False)["vae"]
    after = torch.load(t / "vae_final.pt", weights_only=False)["vae"]
    assert set(before) == set(after)
    for k in before:
        same = torch.equal(before[k], after[k])
        assert same if not k.startswith("dec_") else True, k
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("dec_"))
    assert torch.load(t / "generated.pt", weights_only=False).shape[2] == 7
    # a world run without cached latents: the decoder stage encodes its clips with the VAE it already holds
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "world_final.pt").write_bytes((w / "world_final.pt").read_bytes())
    run("train", "decoder", "--dir", d, "--vae", v, "--world", bare, "--out", tmp_path / "decoder2", "--steps", 1)
    assert torch.equal(torch.load(bare / "latents.pt", weights_only=False)["z"],
                       torch.load(w / "latents.pt", weights_only=False)["z"])
    out = tmp_path / "world.safetensors"
    run("train", "bundle", "--vae", t, "--world", w, "--out", out)
    # the decoder stage from a bundle's VAE and model, over two clip sets (latents cached beside it), windows of
    # 2 latents scored after the decoder's warm-up
    g = tmp_path / "decoder_b"
    run("train", "decoder", "--dir", d, "--dir", d4, "--vae", out, "--world", out, "--out", g, "--steps", 4,
        "--latents", 2, "--l1", 0)
    assert (g / "latents_1.pt").exists() and (g / "vae_final.pt").exists()
    assert torch.load(g / "generated_1.pt", weights_only=False).shape[2] == 13
    # the adversarial decoder: discriminators alone for 1 step, then the balanced adversarial loss; R1 each step;
    # resumable; the encoder and latent statistics untouched, the decoder moved
    ga = tmp_path / "decoder_adv"
    adv = ("train", "decoder-adv", "--dir", d, "--vae", out, "--world", out, "--out", ga, "--batch", 2, "--crop", 64,
           "--d-warmup", 1, "--r1-every", 1, "--d-width", 8, "--save-every", 2)
    run(*adv, "--steps", 3)
    assert torch.load(ga / "state.pt", weights_only=False)["step"] == 3
    run(*adv, "--steps", 4)
    rows = [json.loads(line) for line in (ga / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4 and all(np.isfinite([r["rec"], r["d"], r["g_adv"], r["lam"]]).all() for r in rows)
    assert rows[-1]["lam"] > 0  # the adversarial term is on after the warm-up
    before, after = load_bundle(out)[1].state_dict(), torch.load(ga / "vae_final.pt", weights_only=False)["vae"]
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("dec_"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("dec_"))
    # ...with world-anchored grain inputs (world/grain.py): the scales start at --grain and train with the decoder
    gg = tmp_path / "decoder_grain"
    run("train", "decoder-adv", "--dir", d, "--vae", out, "--world", out, "--out", gg, "--batch", 2, "--crop", 64,
        "--d-warmup", 9, "--d-width", 8, "--steps", 2, "--grain", 0.3, "--spectral-weight", 1)
    grained = torch.load(gg / "vae_final.pt", weights_only=False)
    assert grained["cfg"]["grain"] and not load_bundle(out)[1].cfg.grain
    scales = [v for k, v in grained["vae"].items() if k.startswith("dec_grain.")]
    assert len(scales) == 3 and all(torch.isfinite(v).all() and not torch.all(v == 0.3) for v in scales)
    # a warm start from the bundle's model (0 steps: the weights as loaded)
    w2 = tmp_path / "world2"
    run("train", "world", "--dir", d, "--vae", v, "--out", w2, "--preset", "test", "--steps", 0, "--init", out)
    warm = torch.load(w2 / "world_final.pt", weights_only=False)["model"]
    model, vae, extra = load_bundle(out)
    assert all(torch.equal(warm[k].bfloat16().float(), val.float()) for k, val in model.state_dict().items())
    assert extra["sampler"]["steps"] == 4
    s = Session(model, vae)
    s.start(shard["frames"][0, 0])
    frames = s.step(np.tile(np.eye(4), (6, 1, 1)))
    assert frames.shape == (6, 64, 96, 3)
    # a warm start into another block layout: block 1 turns softmax (keeps every shared tensor, drops its K convs)
    w3 = tmp_path / "world3"
    run("train", "world", "--dir", d, "--vae", v, "--out", w3, "--preset", "test", "--steps", 0, "--init", out,
        "--softmax-every", 2)
    conv = torch.load(w3 / "world_final.pt", weights_only=False)
    assert conv["cfg"]["softmax_every"] == 2
    src = model.state_dict()
    assert set(src) - set(conv["model"]) == {"blocks.1.attn.conv_k.weight", "blocks.1.attn.conv_k_cam.weight"}
    assert all(torch.equal(conv["model"][k], src[k].float()) for k in conv["model"])
    # ...and trains on, the one-chunk objective held to the first chunk
    run("train", "world", "--dir", d, "--vae", v, "--out", w3, "--preset", "test", "--steps", 2, "--batch", 2,
        "--softmax-every", 2, "--max-chunks", 1)
    rows = [json.loads(line) for line in (w3 / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and rows[-1]["chunk"] == 0
    assert main(["train", "world", "--dir", str(d), "--vae", str(v), "--out", str(tmp_path / "bad_max"),
                 "--preset", "test", "--max-chunks", "0"]) == 2
    # one forward per chunk (issue 25): from the two-pass bundle, its recycled input starting at zero; streamed
    # clips, half of them fed their own predictions; bundled, it walks with one forward a chunk
    wr = tmp_path / "world_recycle"
    recycle = ("train", "world", "--dir", d4, "--vae", v, "--out", wr, "--preset", "test", "--batch", 2,
               "--recycle", "--self-context", 0.5, "--init", out, "--save-every", 1)
    run(*recycle, "--steps", 1)
    run(*recycle, "--steps", 2)  # resumes
    rows = [json.loads(line) for line in (wr / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and rows[-1]["chunks"] == 4 and np.isfinite(rows[-1]["loss"])
    fin = torch.load(wr / "world_final.pt", weights_only=False)
    assert fin["cfg"]["recycle"] and fin["model"]["recycle_embedder.proj.weight"].abs().sum() > 0
    run("train", "bundle", "--vae", t, "--world", wr, "--out", tmp_path / "recycle.safetensors", "--sampler",
        '{"steps": 1}')
    model, vae, _ = load_bundle(tmp_path / "recycle.safetensors")
    s = Session(model, vae)
    s.start(shard["frames"][0, 0])
    assert s.step(np.tile(np.eye(4), (6, 1, 1))).shape == (6, 64, 96, 3) and "cache_write" not in s.last_timing
    for bad in (("--device", "tpu"), ("--recycle", "--rollout")) + ((("--device", "cuda"),)
                                                                    if not torch.cuda.is_available() else ()):
        assert main(["train", "world", "--dir", str(d4), "--vae", str(v), "--out", str(tmp_path / "bad_dev"),
                     "--preset", "test", *bad]) == 2, bad


@pytest.mark.parametrize("recycle", [False, True])
def test_stream_generate_is_the_engine(recycle):
    """The decoder stage's generations are exactly what a Session with the one-step sampler shows (in latents), for
    the two-pass model and for one forward per chunk."""
    from worldwalk.controls import rays
    from worldwalk.world.bundle import random_world
    from worldwalk.world.presets import get_preset
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.train.common import latent_frames, stream_generate

    model, vae = random_world(get_preset("test", recycle=recycle), seed=3)
    woken = [*model.final_layer.parameters(), *(model.recycle_embedder.parameters() if recycle else [])]
    for p in woken:  # the random init outputs zeros; give it something to say
        torch.nn.init.normal_(p, 0, 0.05, generator=torch.Generator().manual_seed(4))
    cfg = model.cfg
    s = Session(model, vae, SamplerConfig(steps=1), window_chunks=1)
    img = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    s.start(img, seed=5)
    c2w = np.tile(np.eye(4), (1 + 3 * 6, 1, 1))
    c2w[:, 0, 3] = np.linspace(0, 1, len(c2w))
    lat = [s.z0]
    for i in range(3):
        s.step(c2w[1 + 6 * i:1 + 6 * (i + 1)])
        lat.append(s.last_latents)
    intr = torch.as_tensor(s.latent_intrinsics, dtype=torch.float32)[None, None].expand(1, len(c2w), 4)
    c = torch.from_numpy(c2w).float()[None]
    cc = rays.camera_conditions(c, intr, cfg.temporal_stride)
    pl = rays.plucker_raymaps(c, intr, cfg.latent_hw, cfg.temporal_stride)
    g = torch.Generator().manual_seed(5)
    ours = stream_generate(model, s.z0, cc, pl, g)
    torch.testing.assert_close(ours, torch.cat(lat, 2), rtol=1e-4, atol=1e-4)
    assert list(latent_frames(0, 2, 4)) == [0, 1, 2, 3, 4] and list(latent_frames(2, 4, 4)) == list(range(5, 13))


def test_chunk_bounds_and_rollout_gradients():
    import types

    from worldwalk.world.model import WorldModel
    from worldwalk.world.presets import get_preset
    from worldwalk.world.train.common import chunk_bounds
    from worldwalk.world.train.world import rollout_loss

    cfg = get_preset("test")  # first chunk 4 latents, then 3
    assert chunk_bounds(cfg, 7) == [(0, 4), (4, 7)]
    assert chunk_bounds(cfg, 13) == [(0, 4), (4, 7), (7, 10), (10, 13)]
    assert chunk_bounds(cfg, 12) == [(0, 4), (4, 7), (7, 10)]  # a partial last chunk is left out
    model = WorldModel(cfg).init_weights(torch.Generator().manual_seed(0)).train()
    h, w = cfg.latent_hw
    z = torch.randn(2, cfg.latent_channels, 10, h, w)
    cc = torch.zeros(2, 10, 20)
    cc[..., :16] = torch.eye(4).flatten()
    cc[..., 16:] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    pl = torch.randn(2, 6 * cfg.temporal_stride, 10, h, w)
    a = types.SimpleNamespace(self_context=0.5, sigma_one=0.5, sigma_shift=3.0, bf16=False)
    losses, pix = rollout_loss(model, z, cc, pl, torch.Generator().manual_seed(1), a)
    assert len(losses) == 3 and all(np.isfinite(losses)) and pix == []
    # every parameter the chunk's own forward uses gets a gradient (the cache itself is detached)
    missing = params_without_grad(model)
    assert not missing, missing
    # the same under bf16 autocast (camera geometry stays float32)
    a.bf16 = True
    losses, _ = rollout_loss(model, z, cc, pl, torch.Generator().manual_seed(1), a)
    assert len(losses) == 3 and all(np.isfinite(losses))
    # with a pixel loss through a frozen decoder: each chunk's pixel MSE, gradients reach the model, not the VAE
    from worldwalk.world.vae import CausalVAE

    vae = CausalVAE("test-vae").requires_grad_(False)
    frames = np.random.default_rng(0).integers(0, 255, (2, 1 + 9 * 2, 64, 96, 3), dtype=np.uint8)
    model.zero_grad()
    a.bf16, a.pixel_loss, a.pixel_crop = False, 10.0, 32
    losses, pix = rollout_loss(model, z, cc, pl, torch.Generator().manual_seed(1), a, (vae, frames))
    assert len(pix) == 3 and all(0 < p < 4 for p in pix)
    assert all(p.grad is None for p in vae.parameters())
    assert model.final_layer.linear.weight.grad.abs().sum() > 0


def test_two_torchrun_processes_match_one(tmp_path):
    """`torchrun --nproc-per-node 2 launch.py train world` (gloo, loopback): each rank reads and encodes its own
    shards of clips and computes half of every global batch, and DistributedDataParallel averages the gradients, so
    its weights match a one-process run with the same global batch; its checkpoint resumes in one process. The same
    for `train world --recycle` and `train vae`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    d, v = tmp_path / "data", tmp_path / "vae"
    run("train", "data", "--dir", d, "--clips", 6, "--shard-size", 2, "--preset", "test")  # 3 shards
    run("train", "vae", "--dir", d, "--out", v, "--vae-preset", "test-vae", "--steps", 2)
    common = ["train", "world", "--dir", str(d), "--vae", str(v), "--preset", "test", "--batch", "4", "--lr", "1e-3",
              "--warmup", "0"]
    run(*common, "--out", tmp_path / "zero", "--steps", 0)
    init0 = torch.load(tmp_path / "zero" / "world_final.pt", weights_only=False)["model"]
    run(*common, "--out", tmp_path / "one", "--steps", 3)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun2(*args: str) -> subprocess.CompletedProcess:  # launch.py ARGS on two processes (gloo, loopback)
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               str(root / "launch.py"), *args], capture_output=True, text=True, cwd=root, env=env,
                              timeout=600)
    r = torchrun2(*common, "--out", str(tmp_path / "two"), "--steps", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "(2 processes)" in r.stdout
    # each rank read and encoded its own shards of clips (rank 0: shards 0 and 2, rank 1: shard 1), joined in order
    lat1, lat2 = (torch.load(tmp_path / w / "latents.pt", weights_only=False) for w in ("one", "two"))
    assert lat2["z"].shape == lat1["z"].shape == (6, 4, 7, 8, 12) and torch.equal(lat1["cc"], lat2["cc"])
    torch.testing.assert_close(lat2["z"], lat1["z"], rtol=1e-4, atol=1e-4)  # one thread per rank: rounding
    assert not list((tmp_path / "two").glob("*.rank*"))
    one = torch.load(tmp_path / "one" / "world_final.pt", weights_only=False)["model"]
    two = torch.load(tmp_path / "two" / "world_final.pt", weights_only=False)["model"]
    assert set(one) == set(two)
    assert any(not torch.equal(one[k], init0[k]) for k in one)  # the three steps moved the weights
    # the latents each rank encodes (one thread) differ from one process's by rounding (~1e-5); three Adam steps of
    # 1e-3 carry that to ~3e-5, while a wrong batch split or gradient average would move weights by ~1e-3
    for k in one:
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-4), (k, (one[k] - two[k]).abs().max())
    assert torch.load(tmp_path / "one" / "state.pt", weights_only=False)["step"] == 3 and torch.load(tmp_path / "two" / "state.pt", weights_only=False)["step"] == 3
    # the two-process checkpoint resumes in one process (nothing in it is per rank)
    run(*common, "--out", tmp_path / "two", "--steps", 4)
    assert torch.load(tmp_path / "two" / "state.pt", weights_only=False)["step"] == 4
    # a global batch the processes cannot share evenly is one line, exit 2
    r = torchrun2(*common, "--batch", "3", "--out", str(tmp_path / "odd"), "--steps", "1")
    assert r.returncode != 0
    assert r.stderr.count("error: --batch 3: the global batch must be a multiple of the 2 processes") == 1
    assert f'File "{root}' not in r.stderr  # no traceback through our code (torchrun reports the exit code itself)
    # one forward per chunk the same way: the whole streamed rollout is one DistributedDataParallel forward
    rec = [*common, "--recycle", "--self-context", "0.5", "--steps", "2"]
    run(*rec, "--out", tmp_path / "rec1")
    r = torchrun2(*rec, "--out", str(tmp_path / "rec2"))
    assert r.returncode == 0 and "(2 processes)" in r.stdout, r.stderr[-3000:]
    one = torch.load(tmp_path / "rec1" / "world_final.pt", weights_only=False)["model"]
    two = torch.load(tmp_path / "rec2" / "world_final.pt", weights_only=False)["model"]
    assert one["recycle_embedder.proj.weight"].abs().sum() > 0
    for k in one:
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-4), (k, (one[k] - two[k]).abs().max())
    # the VAE stage the same way: two processes, one global batch of 2
    vae_args = ["train", "vae", "--dir", str(d), "--vae-preset", "test-vae", "--batch", "2", "--steps", "2",
                "--crop", "32"]
    run(*vae_args, "--out", tmp_path / "vae1")
    r = torchrun2(*vae_args, "--out", str(tmp_path / "vae2"))
    assert r.returncode == 0 and "(2 processes)" in r.stdout, r.stderr[-3000:]
    one = torch.load(tmp_path / "vae1" / "vae_final.pt", weights_only=False)["vae"]
    two = torch.load(tmp_path / "vae2" / "vae_final.pt", weights_only=False)["vae"]
    for k in one:  # Adam steps of 1e-3: rounding in the averaged gradients moves a weight by ~1e-5 at most
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=5e-5), (k, (one[k] - two[k]).abs().max())


def test_widened_decoder_decodes_as_before():
    """A decoder widened for the adversarial fine-tune starts as the narrow one (old weights in the leading channels,
    new inputs at zero), its new channels are live (they get gradients), and its config round-trips."""
    from worldwalk.world.train.decoder_adv import widen_decoder
    from worldwalk.world.vae import CausalVAE, VAEConfig

    torch.manual_seed(0)
    vae = CausalVAE("test-vae").eval()
    wide = widen_decoder(vae, (16, 20, 12)).eval()
    assert wide.cfg.dec_widths == (16, 20, 12) and wide.cfg.widths == vae.cfg.widths
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in vae.parameters())
    z = torch.randn(2, 4, 5, 3, 5)
    with torch.no_grad():
        assert torch.allclose(wide.decode_video(z), vae.decode_video(z), atol=1e-6)
    wide.decode_video(z).square().mean().backward()
    new_in = wide.dec_space[3].weight.grad[:, 12:]  # the second upsampling's inputs from the new channels 12..19
    assert new_in.abs().sum() > 0
    again = CausalVAE(VAEConfig.from_dict(wide.cfg.to_dict()))
    again.load_state_dict(wide.state_dict())
    with pytest.raises(ValueError, match="decoder-widths"):
        widen_decoder(vae, (16, 8, 8))



def test_spectral_loss_asks_for_detail_and_not_a_grid():
    """The decoder's per-tile spectrum term: zero on the exact frames, the same for detail moved inside a tile (it
    holds for generated latents), and it sees both fog (a blur) and a grid on the 16-px latent cells."""
    import torch.nn.functional as F

    from worldwalk.world.train.decoder_adv import spectral_loss

    g = torch.Generator().manual_seed(0)
    x = F.avg_pool2d(torch.rand(2 * 3 * 3, 1, 72, 74, generator=g), 7, 1).view(2, 3, 3, 66, 68) * 2 - 1  # smooth
    assert spectral_loss(x, x) == 0
    blur = F.avg_pool3d(F.pad(x, (2, 2, 2, 2, 0, 0), mode="replicate"), (1, 5, 5), 1)
    grid = x.clone()
    grid[..., ::16, :] += 0.3
    grid[..., :, ::16] += 0.3
    moved = torch.roll(x, 2, dims=-1)  # the same detail, 2 px over
    fog, cells, shift = (float(spectral_loss(t, x)) for t in (blur, grid, moved))
    assert fog > 3 * shift and cells > 3 * shift
    y = blur.clone().requires_grad_(True)
    spectral_loss(y, x).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_decoder_noise_experiment_layers(monkeypatch, capsys):
    """scripts/decoder_noise_experiment.py: noise layers at scale 0 leave the decoder as it was; at a scale they add
    a different draw each call; a misplaced stage is refused."""
    import importlib.util
    from pathlib import Path

    from worldwalk.world.vae import CausalVAE

    path = Path(__file__).resolve().parents[2] / "scripts" / "decoder_noise_experiment.py"
    spec = importlib.util.spec_from_file_location("decoder_noise_experiment", path)
    exp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exp)
    torch.manual_seed(0)
    vae = CausalVAE("test-vae").eval()  # dec_space: 3 upsamplings (SiLU at 2, 5, 8), then the output conv
    z = torch.randn(1, 4, 3, 3, 4)
    with torch.no_grad():
        before = vae.decode_video(z)
        noisy = exp.add_noise(vae, (2, 5, 8), 0.0)
        assert exp.has_noise(noisy) and torch.equal(noisy.decode_video(z), before)
        for m in noisy.dec_space:
            if isinstance(m, exp.NoiseAdd):
                m.scale.fill_(0.5)
        a, b = noisy.decode_video(z), noisy.decode_video(z)
    assert not torch.equal(a, b) and a.shape == before.shape
    with pytest.raises(ValueError, match="NOISE_STAGES"):
        exp.add_noise(CausalVAE("test-vae"), (3,), 0.0)
    assert exp.main([]) == 2
    monkeypatch.setenv("NOISE_STAGES", "8,x")
    assert exp.main(["eval", "--vae", "x"]) == 2 and "NOISE_STAGES '8,x'" in capsys.readouterr().err
