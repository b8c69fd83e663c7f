"""world.reproject and the sampler's reprojection start: geometry against the exact renderer, the noise levels, the
session path (off by default, exact snapshots, the plain path untouched where the camera moves too fast); the start
overlay (exact under rotation, fading with travel, never touching the walk's state)."""
import numpy as np
import pytest
import torch

from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.procedural.scene import Scene
from worldwalk.world.reproject import OVERLAY_FEATHER, OVERLAY_RADIUS, ground_plane_grid, overlay_start, reproject_chunk, start_levels, warp
from worldwalk.world.sampler import SamplerConfig, sample_chunk
from worldwalk.world.session import Session

from test_session import image, make_model
from worldwalk.world.vae import CausalVAE

W = H = 96
INTR = from_fov(W, H, 60.0)


def pose(yaw_deg=0.0, x=0.0, z=0.0):
    a = np.radians(yaw_deg)
    p = np.eye(4)
    p[0, 0], p[0, 2], p[2, 0], p[2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    p[0, 3], p[2, 3] = x, z
    return p


def psnr(a, b, mask=None):
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = d[mask].mean() if mask is not None else d.mean()
    return 10 * np.log10(255.0**2 / mse)


def to_u8(x):
    return ((x.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def to_f(u8):
    return torch.from_numpy(u8).permute(2, 0, 1).float() / 127.5 - 1


@pytest.fixture(scope="module")
def parts():
    return make_model(), CausalVAE("test-vae").eval()


@pytest.fixture(scope="module")
def views():
    """Exact renders of one scene: the start view, turned 12° and 25°, and 0.5 m forward."""
    poses = np.stack([pose(), pose(12), pose(-25), pose(z=0.5)])
    return poses, Scene(7).render(poses, INTR, (W, H))


def test_identity_reads_every_pixel_at_its_own_place():
    grid, seen = ground_plane_grid(np.eye(4), np.eye(4)[None], INTR, (W, H))
    assert seen.all()
    img = torch.rand(3, H, W)
    torch.testing.assert_close(warp(img, grid)[0], img, atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [1, 2])
def test_a_turn_is_reprojected_exactly_where_the_start_view_sees(views, k):
    poses, frames = views
    grid, seen = ground_plane_grid(poses[0], poses[k:k + 1], INTR, (W, H))
    guess = to_u8(warp(to_f(frames[0]), grid)[0])
    m = seen[0].numpy()
    assert 0.4 < m.mean() < 0.95  # part of the turned view was never seen
    assert psnr(guess, frames[k], m) > 26  # bilinear resampling only
    assert psnr(guess, frames[k], m) > psnr(frames[0], frames[k], m) + 6  # far better than not moving the image


def test_walking_forward_the_ground_flows_as_the_ground_plane_says(views):
    poses, frames = views
    grid, _ = ground_plane_grid(poses[0], poses[3:4], INTR, (W, H))
    guess = to_u8(warp(to_f(frames[0]), grid)[0])
    below = np.zeros((H, W), bool)
    below[int(0.75 * H):] = True  # the near ground
    assert psnr(guess, frames[3], below) > psnr(frames[0], frames[3], below) + 1


def test_chunk_guess_takes_the_start_image_near_the_start_and_the_last_frame_elsewhere():
    start, last = torch.full((3, H, W), 0.5), torch.full((3, H, W), -0.5)
    near = np.stack([pose(5), pose(5, z=1.0)])  # the second is 1 m from where the image was taken
    out, seen = reproject_chunk(start, last, np.eye(4), near, INTR, radius=0.25)
    assert torch.allclose(out[0, :, H // 2, W // 2], torch.tensor(0.5))  # seen by the start image
    assert torch.allclose(out[1], torch.tensor(-0.5))  # too far: the last frame shown only
    assert torch.isfinite(out).all()
    assert seen.shape == (2, H, W) and seen[:, H // 2, W // 2].all()
    # turned 40° right from both images: only the left third of a 60° view was seen
    _, seen = reproject_chunk(start, last, np.eye(4), pose(40)[None], INTR, radius=0.25)
    assert 0.3 < seen.float().mean() < 0.4 and seen[0, :, 0].all() and not seen[0, :, -1].any()


def test_start_levels():
    lat = np.stack([pose(20), pose(x=0.1), pose(z=0.25), pose(z=3.0)])
    lv = start_levels(np.eye(4), lat, lowest=0.5, radius=0.25)
    torch.testing.assert_close(lv, torch.tensor([0.5, 0.7, 1.0, 1.0]))


def test_sample_chunk_from_a_guess():
    x0, noise, guess = torch.randn(1, 2, 3, 4, 4), torch.randn(1, 2, 3, 4, 4), torch.randn(1, 2, 3, 4, 4)
    seen = []

    def exact(x, s):  # the flow's exact velocity towards x0, whatever the start
        seen.append(s)
        sig = s.view(1, 1, -1, 1, 1) if torch.is_tensor(s) else s
        return (x - x0) / sig

    for cfg in (SamplerConfig(steps=1), SamplerConfig(steps=3), SamplerConfig(steps=4, kind="euler")):
        out = sample_chunk(exact, noise, cfg, torch.Generator().manual_seed(0), guess, torch.tensor([0.3, 0.6, 1.0]))
        torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(seen[0], torch.tensor([0.3, 0.6, 1.0]))  # each frame starts at its own level
    # every level at 1: the plain path from the same noise (bit for bit in one step; the session never passes a
    # guess whose levels are all 1, see below)
    v = lambda x, s: torch.tanh(x) * (s if not torch.is_tensor(s) else s.view(1, 1, -1, 1, 1))  # noqa: E731
    for steps in (1, 2):
        plain = sample_chunk(v, noise, SamplerConfig(steps=steps), torch.Generator().manual_seed(1))
        ones = sample_chunk(v, noise, SamplerConfig(steps=steps), torch.Generator().manual_seed(1), guess,
                            torch.ones(3))
        assert torch.equal(plain, ones) if steps == 1 else torch.allclose(plain, ones, atol=1e-6, rtol=0)


def test_sampler_refuses_bad_levels():
    with pytest.raises(ValueError, match="reproject"):
        SamplerConfig(reproject=0.0).validate()
    with pytest.raises(ValueError, match="reproject_radius"):
        SamplerConfig(reproject=0.5, reproject_radius=-1).validate()


def turning(k, n, deg=1.5):
    return np.stack([pose(deg * (k * n + i + 1)) for i in range(n)])


def test_session_turning_in_place_starts_from_the_reprojection(parts, tmp_path):
    model, vae = parts
    on = Session(model, vae, SamplerConfig(steps=1, reproject=0.5))
    off = Session(model, vae, SamplerConfig(steps=1))
    for s in (on, off):
        s.start(image(), seed=3)
    n = on.frames_per_step
    a, b = on.step(turning(0, n)), off.step(turning(0, n))
    assert "reproject" in on.last_timing and "reproject" not in off.last_timing
    assert not np.array_equal(a, b)
    assert on.shown_frame.dtype == torch.uint8 and np.array_equal(on.shown_frame.numpy(), a[-1])
    # the two frames travel with snapshots: a restored walk goes on bit for bit
    snap = on.snapshot()
    snap.save(tmp_path / "w.safetensors")
    want = on.step(turning(1, n))
    fork = Session(model, vae, SamplerConfig(steps=1, reproject=0.5))
    fork.restore(type(snap).load(tmp_path / "w.safetensors"))
    assert np.array_equal(fork.step(turning(1, n)), want)
    # a snapshot from before reprojection cannot go on reprojecting; one without the sampler setting can
    del snap.tensors["start_pixels"]
    with pytest.raises(ValueError, match="incomplete or damaged.*start_pixels"):
        fork.restore(snap)
    plain = Session(model, vae, SamplerConfig(steps=1))
    plain.restore(snap)
    plain.step(turning(1, n))
    plain.snapshot().save(tmp_path / "old.safetensors")  # and it can be saved again (without the two frames)
    assert "start_pixels" not in type(snap).load(tmp_path / "old.safetensors").tensors
    snap.tensors["start_pixels"] = torch.zeros(4, 4, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="start_pixels is"):
        fork.restore(snap)


def test_session_moving_fast_is_the_plain_path_bit_for_bit(parts):
    model, vae = parts
    on = Session(model, vae, SamplerConfig(steps=2, reproject=0.5, reproject_radius=0.05))
    off = Session(model, vae, SamplerConfig(steps=2))
    for s in (on, off):
        s.start(image(), seed=5)
    n = on.frames_per_step
    for k in range(2):
        p = np.stack([pose(z=0.1 * (k * n + i + 1)) for i in range(n)])  # 0.1 m per raw frame
        assert np.array_equal(on.step(p), off.step(p))
        assert "reproject" not in on.last_timing


# ---------------------------------------------------------------------------------------------- start overlay
def grow(mask, px):
    """(H, W) bool dilated by px pixels"""
    return torch.nn.functional.max_pool2d(mask[None, None].float(), 2 * px + 1, 1, px)[0, 0].bool()


def test_overlay_shows_the_start_view_where_it_sees_and_fades_with_travel(views):
    poses, exact = views
    start = to_f(exact[0])
    noise = torch.rand(3, 3, H, W) * 2 - 1  # what a model might have drawn
    turned = np.stack([poses[0], poses[1], poses[2]])
    out = overlay_start(noise, start, turned, INTR)
    assert torch.isfinite(out).all()
    assert np.array_equal(to_u8(out[0]), exact[0])  # at the start pose: the image itself, every pixel
    for k in (1, 2):  # turned: the exact view where the start view saw, away from the feathered edge; noise elsewhere
        seen = ground_plane_grid(np.eye(4), turned[k:k + 1], INTR, (W, H))[1][0]
        # away from the mask's edge: inside, past the feathered ramp (erosion + blur, 2 feathers); outside, 1 px
        inner, unseen = ~grow(~seen, 2 * OVERLAY_FEATHER), ~grow(seen, 1)
        assert inner.sum() > H * W / 4 and psnr(to_u8(out[k]), exact[k], inner.numpy()) > 26
        assert unseen.any() and torch.equal(out[k][:, unseen], noise[k][:, unseen])
    # half the radius away: half the start view, half the frame; at the radius the frame itself, the same tensor
    half, gone = pose(z=OVERLAY_RADIUS / 2), pose(z=OVERLAY_RADIUS)
    frames = torch.zeros(1, 3, H, W)
    mid = overlay_start(frames, start, half[None], INTR, feather=0)
    grid, seen = ground_plane_grid(np.eye(4), half[None], INTR, (W, H))
    torch.testing.assert_close(mid[0][:, seen[0]], 0.5 * warp(start, grid)[0][:, seen[0]], atol=1e-5, rtol=0)
    assert overlay_start(frames, start, gone[None], INTR) is frames
    assert overlay_start(frames, start, pose(z=-1)[None], INTR, radius=2.0) is not frames
    with pytest.raises(ValueError, match="poses"):
        overlay_start(frames, start, turned, INTR)


def test_session_overlay_changes_what_is_shown_never_the_walk(parts):
    model, vae = parts
    on = Session(model, vae, SamplerConfig(steps=1))
    off = Session(model, vae, SamplerConfig(steps=1), start_overlay=False)
    img = image()
    a0, b0 = on.start(img, seed=3), off.start(img, seed=3)
    assert np.array_equal(a0[0], on.start_pixels.numpy())  # the start frame is the image, cropped to the frame
    assert not np.array_equal(b0, a0)  # without: the image as the VAE decodes it
    n = on.frames_per_step
    a, b = on.step(turning(0, n)), off.step(turning(0, n))
    assert "overlay" in on.last_timing and "overlay" not in off.last_timing
    assert not np.array_equal(a, b)
    assert torch.equal(on.last_latents, off.last_latents)  # the model saw the same walk
    # far from the start (no reprojection here), both show the same frames again, bit for bit
    away = np.stack([pose(z=1.0 + 0.05 * i) for i in range(n)])
    assert np.array_equal(on.step(away), off.step(away))
