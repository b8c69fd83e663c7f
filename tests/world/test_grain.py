"""world.grain and the decoder with grain: the noise is fixed to the world's directions (a turn moves it with the
world, the same pose gives the same grain), and a decoder given it stays chunk-causal, seam-free and deterministic."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.grain import GrainField
from worldwalk.world.vae import CausalVAE, VAEConfig


def yaw(deg):
    out = np.eye(4)
    out[:3, :3] = Rotation.from_euler("y", deg, degrees=True).as_matrix()
    return out


def corr(a, b):
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def test_grain_turns_with_the_world_and_not_with_the_screen():
    field, intr = GrainField(3), from_fov(96, 64, 60.0)
    a = field.sample(np.eye(4)[None], intr, (96, 64))[0, 0]
    # unit variance; next pixels share at most half a lattice value (one lattice cell a pixel, read bilinearly)
    assert abs(float(a.std()) - 1) < 0.1 and abs(corr(a[:, 1:], a[:, :-1])) < 0.55
    px = 7  # turn right by the angle of 7 px at the centre: the world (and its grain) moves 7 px left on screen
    b = field.sample(yaw(math.degrees(math.atan(px / intr[0])))[None], intr, (96, 64))[0, 0]
    rows = slice(24, 40)  # near the centre, where a turn is a shift
    assert corr(b[rows, 40:56], a[rows, 40 + px:56 + px]) > 0.97
    assert abs(corr(b[rows, 40:56], a[rows, 40:56])) < 0.3  # not stuck to the screen
    # walking (a translation) leaves it as it is; another seed is other noise; the same call is the same grain
    step = np.eye(4)
    step[:3, 3] = (0.3, 0.0, 1.0)
    assert torch.equal(field.sample(step[None], intr, (96, 64))[0, 0], a)
    assert abs(corr(GrainField(4).sample(np.eye(4)[None], intr, (96, 64))[0, 0], a)) < 0.3


def grain_vae(scale):
    torch.manual_seed(0)
    plain = CausalVAE("test-vae").eval()
    from worldwalk.world.train.decoder_adv import add_grain

    return plain, add_grain(plain, scale).eval()


def test_decoder_with_grain_is_deterministic_and_seam_free():
    plain, vae = grain_vae(0.5)
    assert vae.cfg.grain and VAEConfig.from_dict(vae.cfg.to_dict()) == vae.cfg
    z = torch.randn(1, 4, 5, 3, 5)  # 5 latents -> 1 + 2*4 = 9 frames of 24 x 40
    poses = np.stack([yaw(3 * i) for i in range(9)])
    intr = from_fov(40, 24, 60.0)
    with torch.no_grad():
        whole = vae.decode_chunk(z, vae.new_decode_cache(), cameras=(poses, intr))
        cache = vae.new_decode_cache()
        parts = [vae.decode_chunk(z[:, :, :2], cache, cameras=(poses[:3], intr)),
                 vae.decode_chunk(z[:, :, 2:], cache, cameras=(poses[3:], intr))]
        again = vae.decode_chunk(z, vae.new_decode_cache(), cameras=(poses, intr))
        still = vae.decode_chunk(z, vae.new_decode_cache(), cameras=(poses[:1].repeat(9, 0), intr))
        bare = plain.decode_video(z)
    assert torch.allclose(torch.cat(parts, 2), whole, atol=1e-5)  # chunk by chunk = the whole clip
    assert torch.equal(again, whole)  # the same latents at the same poses: the same frames (no boiling)
    assert (still - whole).abs().mean() > 1e-3  # the grain follows the cameras
    assert (whole - bare).abs().mean() > 1e-3  # and is in use at a non-zero scale
    with pytest.raises(ValueError, match="poses for 9 frames"):
        vae.decode_chunk(z, vae.new_decode_cache(), cameras=(poses[:4], intr))


def test_grain_at_zero_scale_is_the_plain_decoder():
    plain, vae = grain_vae(0.5)
    with torch.no_grad():
        for p in vae.dec_grain:
            p.zero_()
        z = torch.randn(2, 4, 3, 3, 5)
        assert torch.allclose(vae.decode_video(z), plain.decode_video(z), atol=1e-6)


def test_session_decodes_with_the_walks_cameras(monkeypatch):
    """In a walk the decoder gets each frame's pose: a rewind and replay shows the same frames, and a turn shows
    other grain than standing still would."""
    from tests.world.test_session import image, make_model, walk
    from worldwalk.world.session import Session

    _, vae = grain_vae(0.5)
    s = Session(make_model(), vae)
    s.start(image(), seed=5)
    snap = s.snapshot()
    n = s.frames_per_step
    first = s.step(walk(0, n))
    s.restore(snap)
    assert np.array_equal(s.step(walk(0, n)), first)
    s.restore(snap)
    fixed = vae.grain_maps  # the grain of a camera that never turns
    monkeypatch.setattr(vae, "grain_maps", lambda c2w, intr, size, device=None:
                        fixed(np.tile(np.eye(4), (len(np.asarray(c2w).reshape(-1, 16)), 1, 1)), intr, size, device))
    assert not np.array_equal(s.step(walk(0, n)), first)
