"""world/sky.py: the start picture's sky by elevation. Elevations of rays from any camera; the share of the picture
that is sky per elevation (objects in front of part of it, a far patch inside a close-up that is not sky, a picture
without sky); the same colour at every azimuth; in a session, what a turn reveals above the horizon takes the start
picture's sky where the memory does not see, and nothing else changes (test preset, untrained depth: far above the
horizon)."""
import numpy as np
import pytest
import torch

from worldwalk.controls.intrinsics import from_fov
from worldwalk.controls.se3 import make_pose, rotation_from_angles
from worldwalk.world.depth import ray_inputs
from worldwalk.world.memory import MemorySettings
from worldwalk.world.sky import SkyProfile, elevation

from test_session_memory import parts, turn_chunk  # noqa: F401  (parts: the module's fixture)

EYE, FAR = 1.6, 200.0


def pose(yaw=0.0, pitch=0.0):
    return make_pose(rotation_from_angles(yaw, pitch), np.zeros(3))


def picture(W=96, H=64, fov=70.0):
    """A sky whose blue falls off with height over level ground; depth as the ground-plane prior gives it (the far
    limit above the horizon)."""
    intr = from_fov(W, H, fov)
    px = np.zeros((H, W, 3), np.uint8)
    rows = np.arange(H)[:, None]
    px[..., 0] = 120 + rows  # brighter towards the horizon
    px[..., 1] = 150 + rows
    px[..., 2] = 250 - rows // 2
    px[H // 2 + 1:] = np.random.default_rng(0).integers(60, 120, (H - H // 2 - 1, W, 3))
    _, prior = ray_inputs(intr, torch.eye(4)[None], (W, H), EYE, 0.2, FAR)
    return torch.from_numpy(px), prior[0, 0].exp(), intr


def test_elevation_of_rays_from_any_camera():
    W, H = 97, 65  # odd: the centre pixel's ray is the optical axis
    intr = from_fov(W, H, 70.0)
    e = elevation(np.stack([pose(), pose(pitch=12.0), pose(yaw=70.0, pitch=-5.0)]), intr, (W, H))
    assert e.shape == (3, H, W)
    assert e[:, H // 2, W // 2].tolist() == pytest.approx([0.0, 12.0, -5.0], abs=1e-3)
    assert (e[0, : H // 2] > 0).all() and (e[0, H // 2 + 1:] < 0).all()  # y is down: the top looks up
    # turning on the spot keeps every pixel's elevation (the sky reads the same at every azimuth)
    assert torch.allclose(elevation(pose(yaw=40.0)[None], intr, (W, H)), e[:1], atol=1e-3)


def test_the_share_and_colour_of_the_sky_by_elevation():
    px, depth, intr = picture()
    H, W = depth.shape
    s = SkyProfile(px, depth, intr, FAR)
    assert s.usable
    colour, share = s.render(pose(yaw=60.0)[None], intr, (W, H))
    assert colour.shape == (1, 3, H, W) and share.shape == (1, H, W)
    assert (share[0, : H // 2 - 3] > 0.99).all() and (share[0, H // 2 + 1:] == 0).all()  # sky above, none below
    # the sky's colour at the same elevation: the picture's own where the turn keeps pixels at their elevation
    got = (colour[0].permute(1, 2, 0) * 127.5 + 127.5)[4: H // 2 - 4, 20:-20]
    want = px[4: H // 2 - 4, 20:-20].float()
    assert (got - want).abs().mean() < 1.5 and (got - want).abs().max() < 6
    # above the picture's highest ray its top values hold
    colour, share = s.render(pose(pitch=50.0)[None], intr, (W, H))
    assert (share[0] > 0.99).all() and (colour[0, 2] * 127.5 + 127.5 - px[0, W // 2, 2].float()).abs().max() < 3

    # something standing in front of half the sky's lowest rows: the share there is about a half
    depth2 = depth.clone()
    depth2[H // 2 - 6: H // 2 + 1, : W // 2] = 5.0
    s2 = SkyProfile(px, depth2, intr, FAR, smooth=1)
    share2 = s2.render(pose()[None], intr, (W, H))[1][0]
    assert 0.35 < float(share2[H // 2 - 3, W // 2]) < 0.65 and float(share2[5, W // 2]) > 0.99


def test_no_sky_where_the_picture_has_none():
    px, depth, intr = picture()
    H, W = depth.shape
    near = torch.full_like(depth, 3.0)
    s = SkyProfile(px, near, intr, FAR)
    assert not s.usable and float(s.render(pose()[None], intr, (W, H))[1].max()) == 0
    # a far patch inside a close-up (the dark rim of a cup a depth network puts far away) is not joined to the top
    rim = near.clone()
    rim[8:20, 30:60] = FAR
    assert not SkyProfile(px, rim, intr, FAR).usable
    # a sliver of sky along the top, under 1 % of the picture, is none either
    sliver = near.clone()
    sliver[0, :40] = FAR
    assert not SkyProfile(px, sliver, intr, FAR).usable


def test_a_turn_shows_the_start_picture_sky_where_the_memory_does_not_see(parts):  # noqa: F811
    """The same turn with the sky on and off (the guess's colours off): the frames differ only above the horizon where
    the memory does not see, and there the frames with it show the start picture's sky colour at the same elevation;
    a restored snapshot shows the same again."""
    px, _, _ = picture()  # the test model's own size
    img = px.numpy()
    outs = {gain: turn_chunk(parts, img, sky=gain, detail=0.0, guess_prior=False) for gain in (0.0, 1.0)}
    off, on = outs[0.0], outs[1.0]
    cov, whole = off[1], off[2]
    H = cov.shape[1]
    changed = np.abs(on[0] - off[0]).max(-1) > 0
    assert changed.any() and not changed[:, H // 2 + 1:].any() and not (changed & whole).any()
    free = np.zeros_like(cov)  # unseen, away from the memory's feathered edge, above the horizon
    free[:, 2: H // 2 - 2] = ~cov[:, 2: H // 2 - 2]
    for k in range(1, 9):
        free[:, :, k:] &= ~cov[:, :, :-k]
        free[:, :, :-k] &= ~cov[:, :, k:]
    assert free.mean() > 0.05
    sky = np.broadcast_to(img[None].astype(np.float64), on[0].shape)  # a turn keeps each pixel's elevation
    assert np.abs(on[0] - sky)[free].mean() < 3 < np.abs(off[0] - sky)[free].mean()
    with pytest.raises(ValueError, match="sky"):
        MemorySettings(sky=1.5).validate()
    assert MemorySettings.from_dict({"sky": 0.5}).sky == 0.5


def test_a_sun_in_the_picture_does_not_tint_its_elevation_all_the_way_round():
    px, depth, intr = picture()
    H, W = depth.shape
    sun = px.clone()
    yy, xx = np.mgrid[:H, :W]
    disc = torch.from_numpy((yy - 12) ** 2 + (xx - 70) ** 2 <= 16)  # a bright disc at row 12 (depth: far, sky)
    sun[disc] = 255
    turned = pose(yaw=-90.0)[None]  # the sun's elevation, seen where the picture had plain sky
    plain = SkyProfile(px, depth, intr, FAR).render(turned, intr, (W, H))[0]
    kept = SkyProfile(sun, depth, intr, FAR).render(turned, intr, (W, H))[0]
    untrimmed = SkyProfile(sun, depth, intr, FAR, trim=10.0).render(turned, intr, (W, H))[0]
    rows = slice(9, 16)
    assert (kept - plain)[:, :, rows].abs().max() * 127.5 < 1.5
    assert (untrimmed - plain)[:, :, rows].abs().max() * 127.5 > 5  # the mean alone takes in the sun


def test_the_guess_takes_the_start_picture_sky_where_the_memory_does_not_see(parts):  # noqa: F811
    """MemorySettings.guess_prior: the guess's frames (a dark smear, as the smooth extension of a remembered tree
    gave them) take the start picture's sky colour at the same elevation where the memory does not see, above the
    horizon, and keep what it sees; a turning chunk with it replays exactly from a snapshot and differs from one
    without it."""
    from test_session_memory import session

    px, _, _ = picture()
    img = px.numpy()
    s = session(parts, guess_prior=True, detail=0.0)
    s.start(img, seed=1)
    H, W = img.shape[:2]
    poses = np.stack([pose(yaw=a) for a in (20.0, 40.0, 60.0)])
    clip = torch.full((3, 3, H, W), -0.8).contiguous(memory_format=torch.channels_last)
    holes = torch.zeros(3, H, W, dtype=torch.bool)
    holes[:, :, W // 3:] = True  # the memory sees the left third
    s._guess_prior(clip, poses, holes)
    sky = torch.from_numpy(img).float().permute(2, 0, 1) / 127.5 - 1  # a turn keeps each pixel's elevation
    up = slice(2, H // 2 - 2)
    assert (clip[:, :, up, W // 3:] - sky[:, up, W // 3:]).abs().mean() * 127.5 < 3
    assert (clip[:, :, :, : W // 3] == -0.8).all()  # what the memory sees stays as it is
    on = turn_chunk(parts, img, sky=1.0, detail=0.0)[0]  # (on by default)
    off = turn_chunk(parts, img, sky=1.0, detail=0.0, guess_prior=False)[0]
    assert not np.array_equal(on, off)
    with pytest.raises(ValueError, match="guess_prior"):
        MemorySettings(guess_prior=1).validate()
    assert MemorySettings().guess_prior and not MemorySettings.from_dict({"guess_prior": False}).guess_prior
