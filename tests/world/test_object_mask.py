"""The start picture's object network (world/object_mask.py) and its stage at test size: ground-data shards keep the
objects -> object-mask (held-out IoU) -> a bundle carrying it, whose sessions stand the start picture's objects on
their feet; the rule itself (`stand`) on drawn regions: what it moves and what it leaves."""
import json

import numpy as np
import pytest
import torch

from worldwalk.app.cli import main
from worldwalk.world.bundle import load_bundle, load_depth, random_world, save_bundle
from worldwalk.world.depth import DepthNet, ray_inputs
from worldwalk.world.memory import MemorySettings
from worldwalk.world.object_mask import ObjectMask, ObjectMaskConfig, stand
from worldwalk.world.train.object_mask import load_object_mask

FAR = 190.0


def run(*args) -> int:
    return main([str(a) for a in args])


def _ground(H=40, W=30):
    """A ground map: far (200) above row 10 (the horizon), nearer row by row below it."""
    g = torch.full((H, W), 200.0)
    rows = torch.arange(11, H, dtype=torch.float32)
    g[11:] = (50.0 / (rows - 10))[:, None] + 0.01 * torch.arange(W)[None]  # a little tilt across
    return g


def test_stand_puts_an_object_at_its_foot_and_its_overhang_at_the_feet_median():
    """A tree: trunk columns 10-11 down to row 25, a crown over columns 7-14 rows 5-15. The trunk takes the ground's
    depth just below its foot (row 26) column by column; the crown's columns without a foot take their median. The
    depth elsewhere is left alone."""
    H, W = 40, 30
    g = _ground(H, W)
    z = torch.linspace(3, 30, H)[:, None].expand(H, W).clone()  # a depth network's: growing down every column
    obj = torch.zeros(H, W, dtype=torch.bool)
    obj[5:16, 7:15] = True  # the crown
    obj[16:26, 10:12] = True  # the trunk
    out = stand(z, obj, g, FAR)
    for c in (10, 11):
        assert torch.allclose(out[5:26, c], g[26, c].expand(21))
    feet = torch.tensor([g[26, 10], g[26, 11]])
    for c in (7, 8, 13, 14):
        assert torch.allclose(out[5:16, c], feet.median().expand(11)) or torch.allclose(
            out[5:16, c], feet.mean().expand(11))
    assert torch.equal(out[~obj], z[~obj])


def test_stand_leaves_objects_without_a_foot_on_the_ground():
    """A region cut by the picture's lower edge (a near thing: its foot is not seen), one over the sky (nothing but
    the far limit below it), and one whose foot rests on another region (a box on a box: ground neither) keep their
    depth."""
    H, W = 40, 30
    g = _ground(H, W)
    z = torch.rand(H, W) * 10 + 1
    obj = torch.zeros(H, W, dtype=torch.bool)
    obj[30:, 2:6] = True  # to the lower edge
    obj[2:6, 20:25] = True  # in the sky: the far limit below
    out = stand(z, obj, g, FAR)
    assert torch.equal(out, z)
    assert torch.equal(stand(z, torch.zeros_like(obj), g, FAR), z)  # no objects


def test_object_network_shapes_and_config():
    net = ObjectMask(ObjectMaskConfig(widths=(4, 6)))
    x = torch.randn(2, 6, 32, 48)
    assert net(x).shape == (2, 1, 32, 48)
    intr = np.array([40.0, 40.0, 25.0, 17.0])
    rays, prior = ray_inputs(intr, torch.eye(4)[None], (50, 35), 1.6, 0.2, 200.0)  # not a multiple of 4: padded
    m = net.predict(torch.rand(1, 3, 35, 50) * 2 - 1, rays, prior)
    assert m.shape == (35, 50) and m.dtype == torch.bool
    cfg = ObjectMaskConfig(widths=(8, 12, 16))
    assert ObjectMaskConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg and cfg.factor == 8
    with pytest.raises(ValueError, match="widths"):
        ObjectMaskConfig(widths=(8,)).validate()


def test_object_mask_stage_end_to_end(tmp_path, capsys):
    """ground-data keeps each picture's objects -> object-mask with its held-out IoU -> bundle --object-mask:
    load_depth carries it, a session's start depth stands its objects (the bf16 twin of the frames' network does not
    copy it); bad uses: one line, exit 2."""
    from worldwalk.world.depth import frames_net
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    d = tmp_path / "gd"
    assert run("train", "ground-data", "--out", d, "--pictures", 2, "--shard-size", 2) == 0
    s = np.load(d / "shard_0000.npz")
    objects = np.unpackbits(s["objects"], axis=-1, count=256).astype(bool)
    assert objects.shape == (2, 256, 256) and 0 < objects.mean() < 0.5
    o = tmp_path / "o"
    assert run("train", "object-mask", "--dir", d, "--eval", d, "--out", o, "--steps", 3, "--batch", 2,
               "--crop", 64) == 0
    logs = [json.loads(line) for line in (o / "log.jsonl").read_text().splitlines()]
    assert logs[-1]["step"] == 3 and 0 <= logs[-1]["iou"] <= 1
    assert "held-out objects' IoU" in capsys.readouterr().out
    trained = load_object_mask(o)
    model, vae = random_world("test")
    world = save_bundle(model, vae, tmp_path / "w.safetensors",
                        extra={"sampler": {"steps": 1, "shift": 8.0, "kind": "renoise"}},
                        depth=DepthNet(), dtype=None)
    b = tmp_path / "b.safetensors"
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", world, "--object-mask", o,
               "--out", b, "--sampler", '{"steps": 1, "shift": 8.0, "kind": "renoise"}') == 0
    net = load_depth(b)
    assert net.object_mask is not None and frames_net(net).object_mask is None and net.object_mask is not None
    assert all(torch.equal(net.object_mask.state_dict()[k], t) for k, t in trained.state_dict().items())
    again = load_object_mask(b)  # (a bundle as the source)
    assert all(torch.equal(again.state_dict()[k], t) for k, t in trained.state_dict().items())
    m, vv, extra = load_bundle(b)
    H, W = m.cfg.resolution
    box = torch.zeros(H, W, dtype=torch.bool)
    box[H // 3:H - 8, W // 3:W // 2] = True  # (an untrained network's mask is noise: the session gets this one)
    seen = []
    net.object_mask.predict = lambda frames, rays, prior: seen.append(frames.shape) or box
    sess = Session(m, vv, SamplerConfig(**extra["sampler"]),
                   memory=MemorySettings(start_median=0, open_sky=False, sky_edge=0), depth=net)
    sess.start(s["imgs"][0], seed=0, intrinsics=s["intrinsics"][0])
    assert seen == [(1, 3, H, W)]
    x = torch.from_numpy(sess.start_pixels.numpy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    plain = net.predict(x, sess.intrinsics, np.eye(4)[None], median=0)[0]
    rays, prior = ray_inputs(sess.intrinsics, torch.eye(4)[None], (W, H), 1.6, 0.2, 200.0)
    want = stand(plain, box, prior[0, 0].exp().clamp(0.2, 200.0), 190.0)
    assert torch.allclose(sess.start_view.depth, want, rtol=1e-5) and not torch.allclose(want, plain)
    assert torch.allclose(want[H - 9, W // 3:W // 2], prior[0, 0, H - 8, W // 3:W // 2].exp(), rtol=1e-5)
    # bad uses: one line each, exit 2, no bundle written
    old = tmp_path / "old"
    old.mkdir()
    np.savez(old / "shard_0000.npz", imgs=s["imgs"], ratio=s["ratio"], mask=s["mask"], intrinsics=s["intrinsics"])
    capsys.readouterr()
    assert run("train", "object-mask", "--dir", old, "--out", tmp_path / "x") == 2
    assert run("train", "object-mask", "--dir", d, "--out", tmp_path / "y", "--steps", 0) == 2
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", world, "--object-mask",
               tmp_path / "none", "--out", tmp_path / "n.safetensors") == 2
    assert run("train", "bundle", "--vae", world, "--world", world, "--object-mask", o,
               "--out", tmp_path / "n.safetensors") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "no object masks" in err[0] and "--steps 0" in err[1] and "--object-mask" in err[2]
    assert "needs --depth" in err[3] and not (tmp_path / "n.safetensors").exists()
