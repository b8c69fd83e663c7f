"""The depth network's stages at test size: depth-data (views exact, through the VAE and generated, with exact depth)
-> depth (with the full-resolution stage) -> its held-out figures -> a bundle carrying it (and a median); a fine stage
added to a trained run (--init)."""
import json

import numpy as np
import torch

from worldwalk.app.cli import main
from worldwalk.world.bundle import load_bundle, load_depth, random_world, save_bundle
from worldwalk.world.depth import DepthConfig
from worldwalk.world.memory import MemorySettings
from worldwalk.world.train.depth import load_trained_depth


def run(*args) -> int:
    return main([str(a) for a in args])


def test_depth_stages_end_to_end(tmp_path, capsys):
    model, vae = random_world("test")
    world = save_bundle(model, vae, tmp_path / "w.safetensors",
                        extra={"sampler": {"steps": 1, "shift": 8.0, "kind": "renoise"}})
    d = tmp_path / "dd"
    assert run("train", "depth-data", "--out", d, "--clips", 3, "--shard-size", 2, "--chunks", 1, "--world", world) == 0
    shards = sorted(d.glob("shard_*.npz"))
    assert len(shards) == 2
    assert len(np.load(shards[1])["c2w"]) * 2 == len(np.load(shards[0])["c2w"])  # 3 clips: 2, then the 1 left
    s = np.load(shards[0])
    n = 2 * (1 + model.cfg.chunk_frames * model.cfg.temporal_stride // 2)  # 2 clips, every other frame of 1 chunk
    assert all(s[k].shape[0] == n for k in ("exact", "vae", "model", "depth", "c2w", "intrinsics"))
    assert s["exact"].shape[1:] == s["model"].shape[1:] and s["exact"].dtype == np.uint8
    assert np.isinf(s["depth"]).any() and (np.isfinite(s["depth"]) & (s["depth"] > 0)).any()  # sky and ground
    rich = tmp_path / "rich"  # pictures on most surfaces, trained on beside the plain views (--dir twice)
    assert run("train", "depth-data", "--out", rich, "--clips", 1, "--shard-size", 1, "--chunks", 1, "--world", world,
               "--textures", "rich", "--closeup", 1) == 0
    assert np.load(rich / "shard_0000.npz")["exact"].shape[0] == n // 2
    out = tmp_path / "depth"
    assert run("train", "depth", "--dir", d, "--dir", rich, "--out", out, "--steps", 3, "--batch", 2, "--crop", 32,
               "--widths", "4,6", "--fine", 3, "--eval", d) == 0
    res = json.loads((out / "eval.json").read_text())
    assert set(res) == {"exact", "vae", "model"} and all(np.isfinite(m["absrel"]) for m in res.values())
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", out / "depth_final.pt",
               "--out", tmp_path / "b.safetensors", "--sampler", '{"steps": 1, "shift": 8.0, "kind": "renoise"}') == 0
    assert load_depth(tmp_path / "b.safetensors").cfg == DepthConfig(widths=(4, 6), fine=3)
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", tmp_path / "b.safetensors",
               "--depth-median", 5, "--out", tmp_path / "m.safetensors") == 0
    assert load_depth(tmp_path / "m.safetensors").cfg == DepthConfig(widths=(4, 6), fine=3, median=5)
    # a fine stage added to a trained run (--init): with nothing learnt yet it predicts as that run did
    three = tmp_path / "three"
    assert run("train", "depth", "--dir", d, "--out", three, "--steps", 2, "--batch", 2, "--crop", 32,
               "--widths", "4,6,8") == 0
    sc = tmp_path / "fine"
    assert run("train", "depth", "--dir", d, "--out", sc, "--steps", 1, "--batch", 2, "--crop", 32, "--lr", 0,
               "--widths", "4,6,8", "--fine", 3, "--init", three) == 0
    a, b = load_trained_depth(three), load_trained_depth(sc)
    assert b.cfg.fine == 3 and a.cfg.fine == 0
    x = torch.from_numpy(s["exact"][:1]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.equal(a.predict(x, s["intrinsics"][0], s["c2w"][:1]), b.predict(x, s["intrinsics"][0], s["c2w"][:1]))
    # bad flags: one line each, exit 2
    capsys.readouterr()
    assert run("train", "depth-data", "--out", tmp_path / "x", "--chunks", 0, "--world", world) == 2
    assert run("train", "depth-data", "--out", tmp_path / "x", "--closeup", 2, "--world", world) == 2
    assert run("train", "depth", "--dir", d, "--out", tmp_path / "y", "--widths", "4,six") == 2
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", tmp_path / "b.safetensors",
               "--depth-median", 4, "--out", tmp_path / "n.safetensors") == 2
    assert run("train", "depth", "--dir", d, "--out", tmp_path / "z", "--widths", "4,6", "--init", three) == 2
    assert run("train", "depth", "--dir", d, "--out", tmp_path / "z", "--init", tmp_path / "nowhere") == 2
    # resuming a run with other sizes: one line, the run's checkpoint left as it was
    before = (out / "state.pt").read_bytes()
    assert run("train", "depth", "--dir", d, "--out", out, "--steps", 5, "--batch", 2, "--crop", 32,
               "--widths", "4,6", "--fine", 5) == 2
    assert (out / "state.pt").read_bytes() == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 7 and "--chunks 0" in err[0] and "--closeup 2" in err[1] and "--widths '4,six'" in err[2]
    assert "--depth-median 4" in err[3]
    assert "--init" in err[4] and "does not fit" in err[4] and "--init" in err[5] and "nowhere" in err[5]
    assert "state.pt: its depth does not fit this run's" in err[6]
    assert not (tmp_path / "n.safetensors").exists()


def test_closeup_walks_start_in_front_of_an_object():
    """depth_views(closeup=True): the first camera stands level at eye height a little way in front of an object,
    facing it: most of the middle of the picture is near; the poses are the walk's own, from the identity."""
    from worldwalk.world.train.depth import depth_views

    near = []
    for seed in range(4):
        v = depth_views(seed, 5, size=(64, 64), closeup=True)
        assert np.allclose(v["c2w"][0], np.eye(4), atol=1e-6)
        z = np.where(np.isfinite(v["depth"][0]), v["depth"][0], 1e3)
        near.append(np.median(z[24:48, 16:48]))
        far = depth_views(seed, 5, size=(64, 64))["depth"][0]
        assert np.array_equal(far, depth_views(seed, 5, size=(64, 64))["depth"][0])  # plain: as before
    assert np.median(near) < 6.0


def test_the_start_picture_network_stages(tmp_path, capsys):
    """depth-data --start-only (the walks' first frames, exact only, no world) -> depth --exact-only --object-weight
    from the frames' network (--init) -> its held-out figures, objects among them -> a bundle carrying both networks
    (--start-depth), whose sessions take the start picture's depth from the start network."""
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    d = tmp_path / "sd"
    assert run("train", "depth-data", "--out", d, "--clips", 3, "--shard-size", 3, "--start-only") == 0
    s = np.load(d / "shard_0000.npz")
    assert set(s.files) == {"exact", "depth", "c2w", "intrinsics"} and s["exact"].shape == (3, 256, 256, 3)
    assert all(np.allclose(c, np.eye(4), atol=1e-6) for c in s["c2w"])  # start pictures: the walk's first camera
    model, vae = random_world("test")
    world = save_bundle(model, vae, tmp_path / "w.safetensors",
                        extra={"sampler": {"steps": 1, "shift": 8.0, "kind": "renoise"}})
    frames = tmp_path / "frames"
    assert run("train", "depth", "--dir", d, "--out", frames, "--steps", 1, "--batch", 2, "--crop", 64,
               "--widths", "4,6", "--exact-only") == 0
    out = tmp_path / "start"
    assert run("train", "depth", "--dir", d, "--out", out, "--steps", 3, "--batch", 2, "--crop", 64, "--lr", 1e-2,
               "--widths", "4,6", "--exact-only", "--object-weight", 4, "--init", frames, "--eval", d) == 0
    res = json.loads((out / "eval.json").read_text())
    assert set(res) == {"exact"} and np.isfinite(res["exact"]["objects_absrel"])
    assert "objects AbsRel" in capsys.readouterr().out
    b = tmp_path / "b.safetensors"
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", frames / "depth_final.pt",
               "--start-depth", out, "--out", b, "--sampler", '{"steps": 1, "shift": 8.0, "kind": "renoise"}') == 0
    net = load_depth(b)
    start = load_trained_depth(out)
    assert net.start is not None and all(torch.equal(net.start.state_dict()[k], v)
                                         for k, v in start.state_dict().items())
    m, v, extra = load_bundle(b)
    sess = Session(m, v, SamplerConfig(**extra["sampler"]), memory=MemorySettings(sky_edge=0), depth=net)
    img = s["exact"][0]
    sess.start(img, seed=0)
    x = torch.from_numpy(sess.start_pixels.numpy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    want = start.predict(x, sess.intrinsics, np.eye(4)[None])[0]
    assert torch.equal(sess.start_view.depth, want)
    assert not torch.allclose(want, net.predict(x, sess.intrinsics, np.eye(4)[None])[0])
    # bad uses: one line each, exit 2
    capsys.readouterr()
    assert run("train", "depth", "--dir", d, "--out", tmp_path / "x", "--steps", 1, "--widths", "4,6") == 2
    assert run("train", "depth", "--dir", d, "--out", tmp_path / "y", "--exact-only", "--object-weight", -1) == 2
    assert run("train", "depth-data", "--out", tmp_path / "z", "--clips", 1) == 2
    assert run("train", "bundle", "--vae", world, "--world", world, "--start-depth", out,
               "--out", tmp_path / "n.safetensors") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "--exact-only" in err[0] and "--object-weight -1" in err[1] and "--world" in err[2]
    assert "--start-depth" in err[3] and not (tmp_path / "n.safetensors").exists()


def test_denormals_are_flushed_inside_training_only():
    """train/common.flush_denormals (train_depth's loop runs in it): a denormal float counts as zero inside, as itself
    after (the process is left as it was for whatever runs next)."""
    from worldwalk.world.train.common import flush_denormals

    tiny = torch.tensor([1e-39], dtype=torch.float32)  # below float32's smallest normal (1.2e-38)
    with flush_denormals():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() > 0.0
