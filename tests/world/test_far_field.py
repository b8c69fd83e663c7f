"""world/far_field.py: the start picture's far field only where it can be sky."""
import numpy as np
import torch

from worldwalk.world.far_field import HALO, enclosed_far, open_sky

FAR = 100.0


def _scene():
    """(32, 40) metres: a wall at 2 m (left half) and 4 m (right half), a sky band along the top, a far region
    reaching the left side above the middle, one reaching the right side below it, and an enclosed far disc."""
    z = torch.full((32, 40), 2.0)
    z[:, 20:] = 4.0
    z[:3] = 200.0  # sky along the top
    z[8:12, :4] = torch.inf  # reaches the left side above the middle row: open
    z[22:26, 36:] = 200.0  # reaches the right side below the middle row: enclosed
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(40), indexing="ij")
    disc = (yy - 16) ** 2 + (xx - 20) ** 2 <= 9  # straddles the two walls
    z[disc] = 200.0
    return z, disc


def test_only_far_regions_that_reach_neither_the_top_nor_a_side_above_the_middle_are_enclosed():
    z, disc = _scene()
    e = enclosed_far(z, FAR)
    assert e[disc].all() and e[22:26, 36:].all()
    assert not e[:3].any() and not e[8:12, :4].any()
    assert int(e.sum()) == int(disc.sum()) + 16
    assert not enclosed_far(torch.full((8, 8), 3.0), FAR).any()  # nothing far
    assert not enclosed_far(torch.full((8, 8), 300.0), FAR).any()  # all sky: it reaches the top


def test_enclosed_far_regions_and_their_band_take_the_depth_around_them():
    z, disc = _scene()
    # the network's band: one pixel around the disc half-way in log depth
    ring = torch.nn.functional.max_pool2d(disc[None, None].float(), 3, 1, 1)[0, 0].bool() & ~disc
    z[ring] = 20.0
    out = open_sky(z, FAR)
    assert torch.isfinite(out[torch.isfinite(z)]).all()
    assert out[:3].eq(200.0).all() and torch.isinf(out[8:12, :4]).all()  # the open far field as it was
    assert (out[disc] >= 2.0).all() and (out[disc] <= 4.0).all()  # between the two walls it straddles
    assert (out[ring] <= 4.0).all()  # the band went with it
    assert out[16, 18] < out[16, 22]  # and each side leans to its own wall
    assert out[22:26, 36:].sub(4.0).abs().max() < 0.5  # the enclosed one on the right: the 4 m wall around it
    far_from = torch.ones_like(disc)
    far_from[4:28, 12:28] = False  # pixels more than HALO away from anything changed
    assert HALO < 8 and torch.equal(out[far_from & (z < FAR)], z[far_from & (z < FAR)])
    plain = torch.full((8, 8), 3.0)
    assert open_sky(plain, FAR) is plain  # nothing to fill: the same tensor


def test_a_photograph_keeps_no_far_region_inside_its_frame():
    """The shipped start network on scikit-image's coffee: the cup's white rim comes out as sky (a far ring inside
    the frame); the session's start depth fills it, and with MemorySettings(open_sky=False) keeps it as predicted."""
    from skimage import data

    from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth
    from worldwalk.world.memory import MemorySettings
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    model, vae, extra = load_bundle(DEFAULT_BUNDLE)
    depth = load_depth(DEFAULT_BUNDLE)
    far = depth.cfg.max_depth / 2
    kept = {}
    for on in (False, True):
        ms = MemorySettings.from_dict({**extra.get("memory", {}), "open_sky": on})
        s = Session(model, vae, SamplerConfig(**extra["sampler"]), memory=ms, depth=depth)
        s.start(data.coffee())
        kept[on] = s._kept_start_depth()
    ring = enclosed_far(kept[False], far)
    assert ring.float().mean() > 0.02  # (measured: 4 % of the frame)
    assert not enclosed_far(kept[True], far).any()
    assert (kept[True][ring] < 10).all()  # the rim at the cup's depth (about a metre), not 100 m or more
    assert np.isfinite(kept[True].numpy()).all()
