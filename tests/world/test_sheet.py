"""world/sheet.py: a start depth that follows the picture's texture becomes one sheet; a depth of surfaces is kept."""
import numpy as np
import pytest
import torch

from worldwalk.world.memory import MemorySettings
from worldwalk.world.sheet import edge_share, smooth_sheet

FAR = 100.0
REL, INV = 0.05, 0.02  # the memory's depth-edge test (MemoryConfig.edge, edge_inv)


def _surfaces():
    """(48, 64) metres: ground-like rows from 12 m (top) to 4 m (bottom), a box at 3 m, a sky band along the top."""
    z = torch.linspace(12.0, 4.0, 48)[:, None].repeat(1, 64)
    z[20:34, 24:40] = 3.0
    z[:6] = 1000.0
    return z


def _texture(seed=0):
    """(48, 64) metres: every pixel's depth drawn anew between 0.8 and 5 m (a network following a photograph's
    texture), under a sky band along the top."""
    g = torch.Generator().manual_seed(seed)
    z = torch.exp(torch.empty(48, 64).uniform_(np.log(0.8), np.log(5.0), generator=g))
    z[:6] = 1000.0
    return z


def test_a_depth_of_surfaces_is_kept_as_it_is():
    z = _surfaces()
    out, share = smooth_sheet(z, FAR, REL, INV, limit=0.1)
    assert out is z
    assert 0 < share < 0.1  # the box's outline and the sky's edge
    t = _texture()
    assert smooth_sheet(t, FAR, REL, INV, limit=1.0)[0] is t  # a limit of 1: never smoothed


def test_a_depth_that_follows_the_texture_becomes_one_sheet():
    z = _texture()
    assert edge_share(z, REL, INV) > 0.5
    out, share = smooth_sheet(z, FAR, REL, INV, limit=0.1)
    assert share == pytest.approx(edge_share(z, REL, INV))
    near = z < FAR
    assert torch.equal(out[~near], z[~near])  # the sky neither moves ...
    assert (out[near] < 6).all() and (out[near] > 0.7).all()  # ... nor bleeds into the near pixels
    # no depth edge inside the sheet: walking in magnifies it whole
    inner = edge_share(out[6:], REL, INV)
    assert inner < 0.01, inner
    # its broad shape stays: a near half and a far half keep their order
    z2 = z.clone()
    z2[6:, :32] *= 0.5
    out2, _ = smooth_sheet(z2, FAR, REL, INV, limit=0.1)
    assert out2[20:40, 4:12].mean() < 0.8 * out2[20:40, 52:60].mean()


def test_the_setting_is_checked():
    assert MemorySettings().sheet == 0.1
    for bad in (-0.1, 1.5, True, "0.1"):
        with pytest.raises(ValueError, match="sheet"):
            MemorySettings(sheet=bad).validate()
    assert MemorySettings.from_dict({"sheet": 0}).sheet == 0


def test_a_photograph_start_frame_is_the_photograph():
    """The shipped bundle on scikit-image's coffee: its start network's depth follows the picture (a third of the
    pixels on a depth edge), which the memory left out of its start, so the start frame was the picture blurred
    there; as one sheet every pixel is lifted and the start frame is the picture. The ground and the sky are still
    read from the depth as predicted."""
    from skimage import data

    from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth
    from worldwalk.world.images import fit_to_model, load_image
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    model, vae, extra = load_bundle(DEFAULT_BUNDLE)
    depth = load_depth(DEFAULT_BUNDLE)
    img = data.coffee()
    frames, kept = {}, {}
    for on in (0.0, 0.1):
        ms = MemorySettings.from_dict({**extra.get("memory", {}), "sheet": on})
        s = Session(model, vae, SamplerConfig(**extra["sampler"]), memory=ms, depth=depth)
        frames[on] = s.start(img)[0].astype(np.float64)
        kept[on] = (s._kept_start_depth(), s._kept_start_depth(sheet=False))
    picture = fit_to_model(load_image(img)[0], (frames[0.1].shape[1], frames[0.1].shape[0]))[0].astype(np.float64)
    mse = {k: np.mean((f - picture) ** 2) for k, f in frames.items()}
    assert mse[0.1] < 1e-3 * mse[0.0] and mse[0.0] > 10  # (measured: 21.9 dB without, identical with)
    assert torch.equal(kept[0.1][1], kept[0.0][1])  # the picture's depth as predicted, both ways
    assert torch.equal(kept[0.0][0], kept[0.0][1])  # without the sheet the memory holds that depth
    assert edge_share(kept[0.1][0], REL, INV) < 0.05 < edge_share(kept[0.1][1], REL, INV)
