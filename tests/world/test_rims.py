"""world/rims.py: the start picture's pixels on a depth edge go with the side whose colour they have; lifted, the start
frame is the picture."""
import numpy as np
import pytest
import torch

from worldwalk.world.memory import MemoryConfig, MemorySettings, WorldMemory
from worldwalk.world.rims import rim_pixels, snap_rims

FAR, REL, INV = 150.0, 0.05, 0.02  # the memory's far field and depth-edge test


def _box():
    """(40, 48): a red box 2 m away on a blue wall 10 m away, the depth passing from one to the other through a pixel
    (a network's soft edge) on the box's left side, the picture's own edge on that pixel's left;
    one purple pixel (half box, half wall) and one green one (no side's colour) in the band."""
    z = torch.full((40, 48), 10.0)
    z[10:30, 20:36] = 2.0
    z[10:30, 19] = float(np.sqrt(2.0 * 10.0))  # column 19: half-way in log depth, the soft edge left of the box
    rgb = torch.zeros(3, 40, 48)
    rgb[2] = 0.8  # blue wall
    rgb[:, 10:30, 19:36] = torch.tensor([0.8, -0.8, -0.8])[:, None, None]  # red from column 19: the picture's edge
    rgb[:, 15, 19] = torch.tensor([0.0, -0.8, 0.0])  # purple: half box, half wall
    rgb[:, 25, 19] = torch.tensor([-0.8, 0.8, -0.8])  # green: neither
    return z, rgb


def test_rim_pixels_go_with_the_side_whose_colour_they_have():
    z, rgb = _box()
    rim = rim_pixels(z, FAR, REL, INV)
    assert rim[12, 18:21].all() and not rim[12, 17] and not rim[12, 26] and not rim[2, 2]
    found, zs = snap_rims(z, rgb, FAR, REL, INV)
    assert found[12, 19] and zs[12, 19] == 2.0  # the soft edge's pixel, red: the box
    assert found[12, 18] and zs[12, 18] == 10.0  # a blue one: the wall
    assert not found[15, 19] and zs[15, 19] == z[15, 19]  # half of each: left out, as before
    assert not found[25, 19] and zs[25, 19] == z[25, 19]  # no side's colour: likewise
    assert torch.equal(zs[~found], z[~found])
    # where the two sides' colours are alike, a pixel the front matches nearly as well as the back goes with the
    # front: a blend left on the far side would stay behind as a line where the object has moved on
    alike = rgb.clone()
    alike[:, :, :] = torch.tensor([0.3, 0.0, 0.0])[:, None, None]
    alike[:, 10:30, 19:36] = torch.tensor([0.5, 0.0, 0.0])[:, None, None]
    alike[:, 15, 19] = torch.tensor([0.38, 0.0, 0.0])  # nearer the wall's colour (0.0064 against 0.0144)
    found, zs = snap_rims(z, alike, FAR, REL, INV)
    assert found[15, 19] and zs[15, 19] == 2.0
    flat = torch.full((8, 8), 3.0)
    assert not snap_rims(flat, torch.zeros(3, 8, 8), FAR, REL, INV)[0].any()


def test_lifted_rims_give_the_picture_back_at_its_own_pose():
    z, rgb = _box()
    px = ((rgb.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    intr = [40.0, 40.0, 23.5, 19.5]
    views = {}
    for on in (False, True):
        mem = WorldMemory(MemoryConfig(capacity=1 << 12))
        mem.add(px, z, np.eye(4), intr, pinned=True)
        if on:
            found, zs = snap_rims(z, rgb, FAR, REL, INV)
            n = mem.add(px, zs, np.eye(4), intr, mask=found, pinned=True, rims=True)
            assert n == int(found.sum())
        views[on] = mem.render(np.eye(4)[None], intr, (48, 40))
    want = rgb
    err = {k: (v.rgb[0] - want).abs().amax(0) for k, v in views.items()}
    found = snap_rims(z, rgb, FAR, REL, INV)[0]
    assert (err[True][found] < 0.01).all()  # every lifted rim pixel is drawn as the picture has it
    assert (err[False][found] > 0.1).float().mean() > 0.3  # without them, filled from the coarser levels
    assert views[True].pinned[0][found].all()


def test_the_setting_is_checked():
    assert MemorySettings().rims is True
    with pytest.raises(ValueError, match="rims"):
        MemorySettings(rims=1).validate()
    assert MemorySettings.from_dict({"rims": False}).rims is False


def test_the_default_world_start_frame_is_its_picture():
    """The shipped bundle on the app's first start scene: without the rims the start frame is the picture with every
    outline filled from the render's coarser levels (measured: 911 pixels off by more than 30 levels); with them,
    a handful."""
    from pathlib import Path

    from PIL import Image

    from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    model, vae, extra = load_bundle(DEFAULT_BUNDLE)
    depth = load_depth(DEFAULT_BUNDLE)
    img = np.array(Image.open(Path(DEFAULT_BUNDLE).parent / "scenes" / "world_1.png").convert("RGB"))
    off = {}
    for on in (False, True):
        ms = MemorySettings.from_dict({**extra.get("memory", {}), "rims": on})
        s = Session(model, vae, SamplerConfig(**extra["sampler"]), memory=ms, depth=depth)
        first = s.start(img)[0].astype(np.int64)
        off[on] = int((np.abs(first - s.start_pixels.numpy()).max(-1) > 30).sum())
    assert off[False] > 400 and off[True] < 40, off
