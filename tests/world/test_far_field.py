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


def test_the_far_field_edge_moves_to_the_picture_own():
    """A grey pillar (5 m, 20 pixels wide) against a blue sky over green ground: the network's depth ends the pillar
    3 pixels short on its right (sky there) and gives it 2 pixels of the sky on its left. sky_edges gives each back to
    the side whose colour it has; the ground's horizon, where colour and depth agree, and everything farther than the
    band from an edge stay as they were."""
    from worldwalk.world.far_field import sky_edges

    H, W = 48, 64
    sky, grey, green = torch.tensor([-0.1, 0.3, 0.95]), torch.tensor([0.4, 0.4, 0.4]), torch.tensor([-0.2, 0.3, -0.4])
    rgb = sky.view(3, 1, 1).repeat(1, H, W)
    rgb[:, 30:] = green.view(3, 1, 1)
    rgb[:, 8:30, 24:44] = grey.view(3, 1, 1)
    truth = torch.full((H, W), 200.0)
    truth[30:] = torch.linspace(40.0, 3.0, H - 30)[:, None]
    truth[8:30, 24:44] = 5.0
    z = truth.clone()
    z[8:30, 41:44] = 200.0  # the pillar's right side lost to the sky
    z[8:30, 22:24] = 5.0  # and a fringe of sky given to the pillar
    out = sky_edges(z, rgb, FAR, band=4)
    inner = slice(13, 26)  # rows more than the band away from the pillar's top and from the horizon
    assert out[inner, 41:44].sub(5.0).abs().max() < 0.5
    assert out[inner, 22:24].eq(200.0).all()
    assert torch.equal(out[30:], z[30:])  # the ground, its horizon included
    far_from = torch.ones(H, W, dtype=torch.bool)
    far_from[3:35, 17:49] = False
    assert torch.equal(out[far_from], z[far_from])
    assert sky_edges(z, rgb, FAR, band=0) is z
    plain = torch.full((8, 8), 3.0)
    assert sky_edges(plain, rgb[:, :8, :8], FAR) is plain  # no far field: nothing to move
    # a textured picture whose two sides have the same colours round the edge (noise on both): nothing moves, or
    # single pixels would change sides and leave holes in the memory's start frame
    noise = torch.rand(3, H, W, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(sky_edges(z, noise, FAR, band=4), z)
