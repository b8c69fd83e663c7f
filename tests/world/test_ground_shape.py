"""The start picture's ground-shape network (world/ground_shape.py) and its stages at test size: ground-data (start
pictures with their terrain's depth ratio) -> ground-shape (held-out AbsRel) -> a bundle carrying it, whose sessions
take the start picture's ground from it; what it replaces (the ground) and what it leaves (objects, the sky)."""
import json

import numpy as np
import pytest
import torch

from worldwalk.app.cli import main
from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.bundle import load_bundle, load_depth, random_world, save_bundle
from worldwalk.world.depth import DepthNet, ray_inputs
from worldwalk.world.ground_shape import RAY_X, GroundShape, GroundShapeConfig, features
from worldwalk.world.memory import MemorySettings
from worldwalk.world.train.ground_shape import load_ground_shape


def run(*args) -> int:
    return main([str(a) for a in args])


def _plane(intr, size=(64, 48)):
    return ray_inputs(intr, torch.eye(4)[None], size, 1.6, 0.2, 200.0)[1][0, 0].exp()


def test_apply_replaces_the_ground_alone():
    """A zero-initialised network is the level plane: the ground's depth becomes the plane's; an object (nearer than
    0.7 x the plane), the sky and the rows at the horizon keep the depth network's."""
    torch.manual_seed(0)
    intr = from_fov(64, 48, 60.0)
    plane = _plane(intr)
    z = plane * (1 + 0.1 * torch.rand(48, 64))  # the network's ground, a little off
    z[30:40, 10:20] = plane[30:40, 10:20] * 0.3  # an object
    z[:24] = 200.0  # the sky
    frames = torch.rand(1, 3, 48, 64) * 2 - 1
    net = GroundShape()
    out = net.apply(frames, intr, z, 1.6, 0.2, 200.0)
    ground = (plane < 190) & (z > 0.7 * plane) & (z < 190)
    assert ground[40:].all() and not ground[:24].any() and not ground[30:40, 10:20].any()
    assert torch.allclose(out[ground], plane[ground])
    assert torch.equal(out[~ground], z[~ground])
    with torch.no_grad():  # a raised head: the ground comes nearer everywhere, smoothly
        net.head.bias.fill_(-0.1)
    out = net.apply(frames, intr, z, 1.6, 0.2, 200.0)
    assert torch.allclose(out[ground], plane[ground] * np.exp(-0.1), rtol=1e-5)


def test_features_of_a_mirrored_picture_are_mirrored_with_the_rays_turned():
    intr = from_fov(64, 64, 70.0)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    f, g = features(x, intr, 1.6, 0.2, 200.0), features(x.flip(-1), intr, 1.6, 0.2, 200.0)
    assert f.shape == (2, 10, 16, 16) and torch.isfinite(f).all()
    rest = [c for c in range(10) if c != RAY_X]
    assert torch.allclose(g[:, rest], f.flip(-1)[:, rest], atol=1e-4)
    # (the principal point sits at W/2, half a pixel right of the middle: a mirrored ray is one pixel off)
    assert torch.allclose(g[:, RAY_X], -f.flip(-1)[:, RAY_X], atol=1.01 / intr[0])


def test_config_checks_and_round_trip():
    cfg = GroundShapeConfig(width=8, dilations=(1, 3))
    assert GroundShapeConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="dilation"):
        GroundShapeConfig(dilations=()).validate()


def test_ground_shape_stages_end_to_end(tmp_path, capsys):
    """ground-data (train and held out) -> ground-shape with its held-out AbsRel -> bundle --ground-shape: load_depth
    carries it, a session's start depth takes its ground from it (and the bf16 twin of the frames' network does not
    copy it); bad uses: one line, exit 2."""
    from worldwalk.world.depth import frames_net
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    d, v = tmp_path / "gd", tmp_path / "gv"
    assert run("train", "ground-data", "--out", d, "--pictures", 3, "--shard-size", 2, "--fov", 55, 65) == 0
    assert run("train", "ground-data", "--out", v, "--pictures", 2, "--held-out") == 0
    s = np.load(d / "shard_0000.npz")
    assert s["imgs"].shape == (2, 256, 256, 3) and s["ratio"].shape == s["mask"].shape == (2, 64, 64)
    fov = np.degrees(2 * np.arctan(128 / s["intrinsics"][:, 0]))
    assert ((fov > 55 - 1e-3) & (fov < 65 + 1e-3)).all() and fov[0] != fov[1]
    assert s["mask"].mean() > 0.1 and not s["mask"][:, :32].any()  # ground below the horizon only
    assert np.abs(s["ratio"][s["mask"]]).max() < 1.0 and np.abs(s["ratio"][s["mask"]]).mean() > 1e-3
    g = tmp_path / "g"
    assert run("train", "ground-shape", "--dir", d, "--eval", v, "--out", g, "--steps", 4, "--batch", 2,
               "--width", 8) == 0
    logs = [json.loads(line) for line in (g / "log.jsonl").read_text().splitlines()]
    assert logs[-1]["step"] == 4 and 0 < logs[-1]["plane_absrel"] < 1 and np.isfinite(logs[-1]["absrel"])
    assert "held-out ground AbsRel" in capsys.readouterr().out
    model, vae = random_world("test")
    world = save_bundle(model, vae, tmp_path / "w.safetensors",
                        extra={"sampler": {"steps": 1, "shift": 8.0, "kind": "renoise"}},
                        depth=DepthNet(), dtype=None)
    b = tmp_path / "b.safetensors"
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", world, "--ground-shape", g,
               "--out", b, "--sampler", '{"steps": 1, "shift": 8.0, "kind": "renoise"}') == 0
    net, trained = load_depth(b), load_ground_shape(g)
    assert net.ground_shape is not None and net.ground_shape.cfg.width == 8
    assert all(torch.equal(net.ground_shape.state_dict()[k], t) for k, t in trained.state_dict().items())
    assert frames_net(net).ground_shape is None and net.ground_shape is not None
    again = load_ground_shape(b)  # (a bundle as the source, as `bundle --ground-shape B.safetensors` takes it)
    assert all(torch.equal(again.state_dict()[k], t) for k, t in trained.state_dict().items())
    m, vv, extra = load_bundle(b)
    sess = Session(m, vv, SamplerConfig(**extra["sampler"]),
                   memory=MemorySettings(start_median=0, open_sky=False, sky_edge=0), depth=net)
    sess.start(s["imgs"][0], seed=0, intrinsics=s["intrinsics"][0])  # (256 x 256 -> the model's 96 x 64)
    x = torch.from_numpy(sess.start_pixels.numpy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    plain = net.predict(x, sess.intrinsics, np.eye(4)[None], median=0)[0]
    want = trained.apply(x, sess.intrinsics, plain, 1.6, 0.2, 200.0)
    # (the session's networks run channels-last: the same sums in another order)
    assert torch.allclose(sess.start_view.depth, want, rtol=1e-5) and (want - plain).abs().max() > 1e-3
    # bad uses: one line each, exit 2, no bundle written
    capsys.readouterr()
    assert run("train", "ground-shape", "--dir", tmp_path / "none", "--out", tmp_path / "x") == 2
    assert run("train", "ground-data", "--out", tmp_path / "y", "--fov", 70, 50) == 2
    assert run("train", "bundle", "--vae", world, "--world", world, "--depth", world, "--ground-shape",
               tmp_path / "none", "--out", tmp_path / "n.safetensors") == 2
    assert run("train", "bundle", "--vae", world, "--world", world, "--ground-shape", g,
               "--out", tmp_path / "n.safetensors") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "--dir" in err[0] and "--fov 70 50" in err[1] and "--ground-shape" in err[2]
    assert "needs --depth" in err[3] and not (tmp_path / "n.safetensors").exists()
