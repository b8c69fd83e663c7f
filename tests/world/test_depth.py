"""world.depth: the ray inputs and the ground-plane prior, the network's shapes and padding, the metrics, the bundle."""
import math

import numpy as np
import pytest
import torch

from worldwalk.controls.intrinsics import from_fov
from worldwalk.controls.se3 import make_pose, rotation_from_angles
from worldwalk.world.bundle import load_depth, random_world, save_bundle
from worldwalk.world.checkpoint import CheckpointError
from worldwalk.world.depth import DepthConfig, DepthNet, depth_metrics, ray_inputs


def test_the_prior_is_the_exact_depth_of_level_ground():
    """For a flat world (no objects: the ground plane eye_height below the start camera) the prior is exact,
    for a level camera, a pitched one and one that moved."""
    W, H = 40, 30
    intr = from_fov(W, H, 70.0)
    fx, fy, cx, cy = intr
    poses = np.stack([np.eye(4), make_pose(rotation_from_angles(20.0, -15.0), np.array([1.0, 0.3, 2.0]))])
    rays, prior = ray_inputs(intr, torch.from_numpy(poses).float(), (W, H), 1.6, 0.2, 200.0)
    assert rays.shape == (2, 2, H, W) and prior.shape == (2, 1, H, W)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    for i, pose in enumerate(poses):
        d = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1) @ pose[:3, :3].T  # world ray per unit z
        with np.errstate(divide="ignore"):
            t = (1.6 - pose[1, 3]) / d[..., 1]  # ground at world y = 1.6
        hit = (d[..., 1] > 1e-6) & (t > 0)
        z = np.where(hit, np.clip(t, 0.2, 200.0), 200.0)
        assert np.allclose(prior[i, 0].exp().numpy(), z, rtol=1e-4)
        assert hit.any() and (~hit).any()


def test_an_untrained_network_predicts_the_prior_at_any_size():
    net = DepthNet(DepthConfig(widths=(4, 6, 8))).eval()
    intr = from_fov(37, 23, 60.0)
    x = torch.rand(2, 3, 23, 37) * 2 - 1
    z = net.predict(x, intr, np.stack([np.eye(4)] * 2))
    assert z.shape == (2, 23, 37) and torch.isfinite(z).all()
    _, prior = ray_inputs(intr, torch.eye(4)[None], (37, 23), 1.6, 0.2, 200.0)
    # zero-initialised head: the prior, pooled to half resolution and back (the horizon, where it jumps, blurs)
    diff = (z[0].log() - prior[0, 0]).abs()
    assert (diff < 0.05).float().mean() > 0.75 and diff.median() < 0.01


def test_metrics():
    true = np.array([[1.0, 2.0], [np.inf, 4.0]])
    m = depth_metrics(np.array([[1.1, 2.0], [200.0, 8.0]]), true, 200.0)
    assert m["pixels"] == 3
    assert math.isclose(m["absrel"], (0.1 + 0 + 1.0) / 3)
    assert math.isclose(m["delta1"], 2 / 3) and m["sky_far"] == 1.0


def test_bundle_round_trip(tmp_path):
    model, vae = random_world("test")
    net = DepthNet(DepthConfig(widths=(4, 6)))
    torch.nn.init.normal_(net.head.weight)
    p = save_bundle(model, vae, tmp_path / "w.safetensors", depth=net)
    back = load_depth(p)
    assert back.cfg == net.cfg
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    assert load_depth(save_bundle(model, vae, tmp_path / "plain.safetensors")) is None
    with pytest.raises(CheckpointError):
        load_depth(tmp_path / "missing.safetensors")
