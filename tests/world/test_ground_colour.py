"""world/ground_colour.py: the start picture's ground colour by elevation. The share of the picture that is open ground
per elevation (an object standing on it, a picture without ground); the correction moves a frame's block means to the
picture's ground colour at the same elevation, keeps the frame's own detail, leaves the sky and weight-0 pixels alone;
the bilinear matrix is F.interpolate's; in a session, what a turn reveals below the horizon takes the start picture's
ground colour where the memory does not see, and nothing else changes (test preset, untrained depth)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from worldwalk.controls.intrinsics import from_fov
from worldwalk.kernels.sky import lookup, sin_elevation
from worldwalk.world.depth import ray_inputs
from worldwalk.world.ground_colour import GroundColour, upsample_matrix
from worldwalk.world.memory import MemorySettings

from test_session_memory import parts, turn_chunk  # noqa: F401  (parts: the module's fixture)
from test_sky import pose

EYE, FAR = 1.6, 200.0


def picture(W=96, H=64, fov=70.0, seed=0):
    """Sky above, level ground below whose colour darkens towards the camera (as haze lightens the far ground), with
    grain; depth as the ground-plane prior gives it."""
    intr = from_fov(W, H, fov)
    px = np.zeros((H, W, 3), np.uint8)
    rows = np.arange(H)[:, None]
    px[: H // 2] = (140, 170, 240)
    g = np.random.default_rng(seed).integers(-12, 13, (H, W, 1))
    ground = np.stack([150 - 2 * rows, 170 - 2 * rows, 120 - rows], -1) + g  # (H, W, 3) over the whole picture
    px[H // 2:] = np.clip(ground[H // 2:], 0, 255)
    _, prior = ray_inputs(intr, torch.eye(4)[None], (W, H), EYE, 0.2, FAR)
    return torch.from_numpy(px), prior[0, 0].exp(), intr


def row_means(px: torch.Tensor) -> torch.Tensor:
    return px.float().mean(1)  # (H, 3)


def test_the_share_and_colour_of_the_ground_by_elevation():
    px, depth, intr = picture()
    H, W = depth.shape
    g = GroundColour(px, depth, intr, EYE, smooth=1)
    assert g.usable
    share = g.share
    # rendered back into the start camera: share 1 on the ground rows (away from the horizon), 0 above the horizon
    v = lookup(g.table, g.lo, g.step, sin_elevation(pose()[None], intr, (W, H)))[0]  # (H, W, 4)
    assert (v[H // 2 + 2:, :, 0] > 0.99).all() and (v[: H // 2 - 1, :, 0] == 0).all()
    got = v[H // 2 + 2:, :, 1:].mean(1) * 127.5 + 127.5
    want = row_means(px)[H // 2 + 2:]
    assert (got - want).abs().max() < 4  # the picture's own row colour (its grain averaged out)
    # looking down more steeply than the picture's lowest ray: its bottom values hold
    assert float(share[0]) == pytest.approx(float(share[int(((-0.4) - g.lo) / g.step)]), abs=1e-6)

    # the bins' smoothing carries no ground above the horizon
    smoothed = GroundColour(px, depth, intr, EYE)
    up = smoothed.lo + smoothed.step * torch.arange(smoothed.share.shape[0]) >= 0
    assert float(smoothed.share[up].max()) == 0 and float(smoothed.share[~up].max()) > 0.99

    # an object standing on the ground over half of some rows: the share there is about a half
    depth2 = depth.clone()
    depth2[H // 2 + 8: H // 2 + 14, : W // 2] = 1.0
    g2 = GroundColour(px, depth2, intr, EYE, smooth=1)
    v2 = lookup(g2.table, g2.lo, g2.step, sin_elevation(pose()[None], intr, (W, H)))[0]
    assert 0.35 < float(v2[H // 2 + 11, W // 2, 0]) < 0.65 and float(v2[H - 3, W // 2, 0]) > 0.99


def test_no_ground_where_the_picture_has_none():
    px, depth, intr = picture()
    H, W = depth.shape
    near = torch.full_like(depth, 0.5)  # a close-up: everything nearer than the ground would be
    g = GroundColour(px, near, intr, EYE)
    assert not g.usable and float(g.share.max()) == 0
    frames = torch.rand(2, 3, H, W) * 2 - 1
    before = frames.clone()
    g.correct(frames, np.stack([pose(), pose(yaw=30.0)]), intr, torch.ones(2, H, W))
    assert torch.equal(frames, before)


def test_the_correction_moves_block_colours_and_keeps_detail():
    px, depth, intr = picture()
    H, W = depth.shape
    g = GroundColour(px, depth, intr, EYE)
    turned = np.stack([pose(yaw=75.0)])  # a turn keeps each pixel's elevation
    wrong = torch.zeros(1, 3, H, W)
    wrong[:, 1] = 0.5  # green fog everywhere
    torch.manual_seed(0)
    wrong += 0.05 * torch.randn(1, 1, H, W)  # the model's own detail
    frames = wrong.clone()
    weight = torch.ones(1, H, W)
    weight[:, :, : W // 4] = 0  # the memory draws there
    g.correct(frames, turned, intr, weight)
    out = frames[0].permute(1, 2, 0) * 127.5 + 127.5  # (H, W, 3)
    rows = slice(H // 2 + 6, H - 4)
    # below the horizon, where the weight is 1: the picture's ground colour at the same elevation, block by block
    got = out[rows, W // 2:].mean(1)
    want = row_means(px)[rows]
    assert (got - want).abs().max() < 8 and (got - want).abs().mean() < 4
    # the frame's own detail is kept: what it adds over its block means is unchanged, up to the bilinear ramp
    diff = frames - wrong
    hi = diff - F.avg_pool2d(F.pad(diff, (2, 2, 2, 2), mode="replicate"), 5, 1)
    assert hi[0, :, rows, W // 2:].abs().max() * 127.5 < 3
    # above the horizon (no ground there) and where the weight is 0 nothing changes
    assert torch.equal(frames[..., : H // 2 - 8, :], wrong[..., : H // 2 - 8, :])
    assert torch.equal(frames[..., : W // 4], wrong[..., : W // 4])


def test_the_bilinear_matrix_is_f_interpolate():
    c = torch.randn(2, 3, 7, 9)
    for H, W in ((56, 72), (64, 64), (30, 41)):
        want = F.interpolate(c, size=(H, W), mode="bilinear", align_corners=False)
        got = upsample_matrix(H, 7) @ c @ upsample_matrix(W, 9).T
        assert torch.allclose(got, want, atol=1e-5), (H, W)


def test_a_turn_shows_the_start_picture_ground_colour_where_the_memory_does_not_see(parts):  # noqa: F811
    """The same turn with the ground colour on and off (the sky, detail and the guess's colours off): the frames differ
    only below the horizon and where the memory does not wholly draw, and there the frames with it are nearer the
    start picture's ground colour at the same elevation; a restored snapshot shows the same again; old recordings
    replay without it."""
    px, _, _ = picture()  # the test model's own size
    img = px.numpy()
    H, W = img.shape[:2]
    outs = {gain: turn_chunk(parts, img, sky=0.0, detail=0.0, ground=gain, guess_prior=False) for gain in (0.0, 1.0)}
    off, on = outs[0.0], outs[1.0]
    cov, whole = off[1], off[2]
    changed = np.abs(on[0] - off[0]).max(-1) > 0
    # (the 8-pixel blocks straddling the horizon reach a block above it)
    assert changed.any() and not changed[:, : H // 2 - 8].any() and not (changed & whole).any()
    free = np.zeros_like(cov)  # unseen, away from the memory's feathered edge, below the horizon
    free[:, H // 2 + 8: H - 2] = ~cov[:, H // 2 + 8: H - 2]
    for k in range(1, 17):
        free[:, :, k:] &= ~cov[:, :, :-k]
        free[:, :, :-k] &= ~cov[:, :, k:]
    assert free.mean() > 0.02
    rows = np.broadcast_to(row_means(px).numpy()[None, :, None, :], on[0].shape)  # a turn keeps elevations
    bias = lambda x: np.abs((x - rows)[free].mean(0)).max()  # noqa: E731  (the colour's offset, detail averaged out)
    assert bias(on[0]) + 3 < bias(off[0]), (bias(on[0]), bias(off[0]))
    with pytest.raises(ValueError, match="ground"):
        MemorySettings(ground=1.5).validate()
    assert MemorySettings.from_dict({"ground": 0.5}).ground == 0.5
