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


def test_the_fine_stage_starts_as_the_half_resolution_result_and_learns():
    """cfg.fine: a full-resolution stage whose zero-initialised head leaves the half-resolution result as it was; its
    own weights then get the gradient of a full-resolution loss."""
    torch.manual_seed(0)
    base = DepthNet(DepthConfig(widths=(4, 6, 8)))
    fine = DepthNet(DepthConfig(widths=(4, 6, 8), fine=5))
    missing, unexpected = fine.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.split(".")[0] in ("stem", "fine", "fine_head") for k in missing)
    torch.nn.init.normal_(base.head.weight, std=0.3)
    fine.head.weight.data.copy_(base.head.weight)
    intr = from_fov(40, 24, 60.0)
    x = torch.rand(1, 3, 24, 40) * 2 - 1
    z0 = base.eval().predict(x, intr, np.eye(4)[None])
    assert torch.equal(fine.eval().predict(x, intr, np.eye(4)[None]), z0)
    # a step edge in the target: training the fine stage alone brings the loss down
    rays, prior = ray_inputs(intr, torch.eye(4)[None], (64, 64), 1.6, 0.2, 200.0)
    target = torch.where(torch.arange(64) < 31, 1.0, 3.0).expand(1, 1, 64, 64)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    x[..., :31] = -0.8
    opt = torch.optim.Adam([p for n, p in fine.named_parameters() if n.split(".")[0] in ("stem", "fine", "fine_head")],
                           lr=1e-2)
    fine.train()
    losses = []
    for _ in range(60):
        loss = (fine(x, rays, prior) - target).abs().mean()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


def test_a_fine_network_round_trips_through_a_bundle(tmp_path):
    model, vae = random_world("test")
    net = DepthNet(DepthConfig(widths=(4, 6), fine=3))
    torch.nn.init.normal_(net.fine_head.weight)
    back = load_depth(save_bundle(model, vae, tmp_path / "w.safetensors", depth=net))
    assert back.cfg == net.cfg and back.cfg.fine == 3
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    with pytest.raises(ValueError, match="fine"):
        DepthConfig(fine=-1).validate()


def test_the_median_takes_out_speckle_and_keeps_edges():
    """cfg.median: predict()'s k x k median of the log depth (scipy's, edges replicated); a lone pixel goes, a step
    edge stays where it was."""
    from scipy import ndimage

    from worldwalk.world.depth import median_filter

    x = torch.randn(2, 1, 9, 11)
    ref = ndimage.median_filter(x.numpy(), size=(1, 1, 3, 3), mode="nearest")
    assert np.array_equal(median_filter(x, 3).numpy(), ref)
    step = torch.where(torch.arange(20) < 9, 1.0, 3.0).expand(1, 1, 16, 20).clone()
    step[0, 0, 5, 4] = 2.0  # a speckle
    out = median_filter(step, 5)
    assert torch.equal(out, torch.where(torch.arange(20) < 9, 1.0, 3.0).expand(1, 1, 16, 20))
    for bad in (2, -3):
        with pytest.raises(ValueError, match="median"):
            DepthConfig(median=bad).validate()
    # through predict(): the untrained network's prior, filtered
    net = DepthNet(DepthConfig(widths=(4, 6), median=3)).eval()
    intr = from_fov(24, 16, 60.0)
    z = net.predict(torch.zeros(1, 3, 16, 24), intr, np.eye(4)[None])
    plain = DepthNet(DepthConfig(widths=(4, 6))).eval()
    plain.load_state_dict(net.state_dict())
    z0 = plain.predict(torch.zeros(1, 3, 16, 24), intr, np.eye(4)[None])
    assert torch.allclose(z, median_filter(z0.log()[:, None], 3)[:, 0].exp())
    # a median for one call (the session's start picture: MemorySettings.start_median) instead of the network's own
    z5 = net.predict(torch.zeros(1, 3, 16, 24), intr, np.eye(4)[None], median=5)
    assert torch.allclose(z5, median_filter(z0.log()[:, None], 5)[:, 0].exp())
    assert torch.equal(net.predict(torch.zeros(1, 3, 16, 24), intr, np.eye(4)[None], median=0), z0)
    for bad in (4, -1):
        with pytest.raises(ValueError, match=f"median {bad}"):
            net.predict(torch.zeros(1, 3, 16, 24), intr, np.eye(4)[None], median=bad)


def test_a_start_picture_network_round_trips_and_predicts_the_start(tmp_path):
    """net.start: the start picture's own network, stored under depth.start.* with its own config; predict_start
    goes through it where there is one, through the frames' network where there is not."""
    model, vae = random_world("test")
    net = DepthNet(DepthConfig(widths=(4, 6)))
    torch.nn.init.normal_(net.head.weight, std=0.3)
    intr = from_fov(32, 32, 60.0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    alone = net.eval().predict_start(x, intr)
    assert torch.equal(alone, net.predict(x, intr, np.eye(4)[None]))  # no start network: the frames' own
    net.start = DepthNet(DepthConfig(widths=(4, 6, 8), fine=3, median=3))
    torch.nn.init.normal_(net.start.fine_head.weight, std=0.3)
    back = load_depth(save_bundle(model, vae, tmp_path / "w.safetensors", depth=net))
    assert back.cfg == net.cfg and back.start.cfg == net.start.cfg
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    own = back.predict_start(x, intr)
    assert torch.equal(own, net.start.eval().predict(x, intr, np.eye(4)[None]))
    assert not torch.allclose(own, alone)
    assert torch.equal(back.predict(x, intr, np.eye(4)[None]), alone)  # the frames' network is as it was
    plain = DepthNet(DepthConfig(widths=(4, 6)))  # a bundle without one loads without one
    assert load_depth(save_bundle(model, vae, tmp_path / "p.safetensors", depth=plain)).start is None


def test_the_frames_network_is_bfloat16_only_where_the_cpu_computes_it_natively(monkeypatch):
    import worldwalk.world.depth as D

    torch.manual_seed(0)
    net = DepthNet(DepthConfig(widths=(8, 16), fine=4)).eval()
    for p in net.parameters():  # a network that predicts more than its prior
        p.data.normal_(0, 0.05)
    net.start = DepthNet(DepthConfig(widths=(8, 16))).eval()
    frames = torch.rand(2, 3, 24, 40) * 2 - 1
    intr, c2w = from_fov(40, 24, 60.0), np.stack([np.eye(4)] * 2)
    monkeypatch.setattr(D, "cpu_native_bf16", lambda: False)
    assert D.frames_net(net) is net  # emulated bf16 elsewhere: never picked
    monkeypatch.setattr(D, "cpu_native_bf16", lambda: True)
    twin = D.frames_net(net)
    assert twin is not net and next(twin.parameters()).dtype == torch.bfloat16 and twin.start is None
    assert net.start is not None and next(net.parameters()).dtype == torch.float32  # the network itself untouched
    ref, got = net.predict(frames, intr, c2w), twin.predict(frames, intr, c2w)
    assert got.dtype == torch.float32 and got.shape == ref.shape
    assert float((got.log() - ref.log()).abs().mean()) < 0.02
    assert D.frames_net(net) is twin  # one copy per network, shared by its sessions ...
    with torch.no_grad():
        net.head.bias.add_(0.1)
    assert D.frames_net(net) is not twin  # ... made again once its weights change
    assert D.frames_net(net.to(torch.bfloat16)) is net  # only a float32 network gets a copy


def test_native_bfloat16_is_off_where_onednn_is_held_to_avx2(monkeypatch):
    from worldwalk.kernels import _runtime

    _runtime.cpu_native_bf16.cache_clear()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    try:
        assert _runtime.cpu_native_bf16() is False
    finally:
        _runtime.cpu_native_bf16.cache_clear()
