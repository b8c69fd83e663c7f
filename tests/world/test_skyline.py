"""world/skyline.py: the start picture's standing objects, mirrored round the start camera, seeded into the world
memory. The copies fold the circle (the picture, its mirror image beside each edge, ...) without gap or overlap; which
of a picture's pixels are standing objects (not ground, not sky, not a near thing cut by the lower edge, not a crown
floating above the horizon, an object's foot included); a real memory seeded with them shows the mirrored picture one
field of view to the side and the picture again two over, and nothing new at the start view; a session seeds them only
when its settings say so."""
import math

import numpy as np
import pytest
import torch

from worldwalk.controls.intrinsics import from_fov
from worldwalk.controls.se3 import make_pose, rotation_from_angles
from worldwalk.world import skyline
from worldwalk.world.depth import ray_inputs
from worldwalk.world.memory import MemoryConfig, MemorySettings, WorldMemory

from test_session_memory import parts, session  # noqa: F401  (parts: the module's fixture)

EYE, FAR = 1.6, 200.0


def turned(yaw_deg):
    return make_pose(rotation_from_angles(yaw_deg), np.zeros(3))


def world_with_objects(W=96, H=64, fov=60.0):
    """Level ground (the plane's depth), sky above the horizon, and three things: a box standing 10 m away across the
    horizon, a near wall cut by the lower edge, and a blob floating above the horizon (a crown whose trunk is out of
    the picture). -> pixels (H, W, 3) uint8, depth (H, W), intrinsics, the standing box's mask."""
    intr = from_fov(W, H, fov)
    _, prior = ray_inputs(intr, torch.eye(4)[None], (W, H), EYE, 0.2, FAR)
    z = prior[0, 0].exp().clone()  # ground below the horizon, FAR above it
    rng = np.random.default_rng(3)
    px = rng.integers(40, 200, (H, W, 3)).astype(np.uint8)
    fy, cy = intr[1], intr[3]
    foot = int(cy + EYE * fy / 10.0)  # the row where ground 10 m away meets the box
    box = torch.zeros(H, W, dtype=torch.bool)
    box[int(cy) - 12: foot + 1, 60:72] = True
    z[box] = 10.0
    z[H - 14:, 8:20] = 2.0  # the near wall, down to the lower edge
    z[5:14, 30:40] = 30.0  # the floating blob, wholly above the horizon
    return torch.from_numpy(px), z, intr, box


def test_the_copies_fold_the_circle_without_gap_or_overlap():
    for W, fov in [(96, 60.0), (96, 70.0), (128, 90.0)]:
        intr = from_fov(W, 64, fov)
        cps = skyline.copies(intr, (W, 64))
        span = 2 * math.atan2(W / 2, intr[0])
        assert [k for k, _, _ in cps[:2]] == [1, -1]
        covered = np.zeros(3600, int)  # tenths of a degree round the circle, from -180
        for k, yaw, mirrored in [(0, 0.0, False)] + cps:
            assert yaw == pytest.approx(k * span) and mirrored == (k % 2 == 1)
            lo, hi = np.degrees(yaw - span / 2), np.degrees(yaw + span / 2)
            a = np.arange(3600) / 10 - 180 + 0.05
            covered += (a >= max(lo, -180)) & (a < min(hi, 180))
        if 360 % fov == 0:
            assert (covered == 1).all()
        else:  # the last copies each side are cut behind the start camera: they overlap there, nothing is bare
            assert (covered >= 1).all()


def test_which_pixels_are_standing_objects():
    px, z, intr, box = world_with_objects()
    mask = skyline.standing_objects(z, intr, EYE, FAR)
    assert mask is not None
    # the box whole, its foot included (the ground plane there is as far as the box), nothing else but the ground
    # right under its foot (as far, within the carry's tolerance)
    below = box.clone()
    below[1:] |= box[:-1]
    below[2:] |= box[:-2]
    assert mask[box].all() and not mask[~below].any()
    # the object network's objects, where there is one, replace the depth's rule (the same filters after it)
    given = torch.zeros_like(box)
    given[34:44, 40:50] = True  # (ground, by the depth: the network says otherwise)
    assert torch.equal(skyline.standing_objects(z, intr, EYE, FAR, objects=given), given)
    # a picture without sky (a close-up, a room) has no skyline
    assert skyline.standing_objects(torch.full_like(z, 3.0), intr, EYE, FAR) is None


def test_a_seeded_memory_shows_the_mirrored_picture_to_the_side():
    px, z, intr, box = world_with_objects()
    H, W = z.shape
    mem = WorldMemory(MemoryConfig(capacity=1 << 15))
    mem.add(px, z, np.eye(4), intr, pinned=True)
    before = mem.render(np.stack([turned(0.0), turned(60.0)]), intr, (W, H), stamp=False)
    mask = skyline.standing_objects(z, intr, EYE, FAR)
    n = skyline.seed(mem, px, z, intr, mask, conf=0.8, jitter=0.0)  # (each copy's objects where the fold puts them)
    # copies at +-60 (mirrored), +-120, and the two halves of 180 (mirrored, cut behind): the box (right of the
    # picture's middle) is in the half the copy at +180 keeps, so five times what the box alone lifts
    one = WorldMemory(MemoryConfig(capacity=1 << 15)).add(px, z, np.eye(4), intr, mask=mask)
    assert n == pytest.approx(5 * one, rel=0.02)
    after = mem.render(np.stack([turned(0.0), turned(60.0), turned(120.0), turned(-120.0)]), intr, (W, H),
                       stamp=False)
    # nothing new at the start view
    assert torch.equal(after.coverage[0], before.coverage[0]) and torch.equal(after.rgb[0], before.rgb[0])
    # one field of view to the right: the picture's box mirrored left-right, where the start view saw nothing
    inner = torch.zeros_like(box)
    inner[int(intr[3]) - 10: int(intr[3]) + 2, 62:70] = True  # inside the box, away from its edges
    assert not before.coverage[1][inner.flip(1)].any() and after.coverage[1][inner.flip(1)].all()

    def u8(rgb):
        return rgb.permute(1, 2, 0) * 127.5 + 127.5

    assert (u8(after.rgb[1])[inner.flip(1)] - px.flip(1)[inner.flip(1)].float()).abs().mean() < 2
    # two fields of view over, either way: the picture itself again
    for i in (2, 3):
        assert (u8(after.rgb[i])[inner] - px[inner].float()).abs().mean() < 2
    # the copies are the memory's own points, at the confidence given, pinned (never evicted by a walk's lifts)
    seeded = mem.conf == 0.8
    assert int(seeded.sum()) == n and bool(mem.pinned[seeded].all())


def test_a_session_seeds_the_skyline_only_when_its_settings_say_so(parts):  # noqa: F811
    px, z, intr, box = world_with_objects()
    img = px.numpy()
    counts = {}
    for on in (False, True):
        s = session(parts, capacity=1 << 15, skyline=on)
        s.start(img, seed=1, frame_intrinsics=intr)
        counts[on] = s.memory.count
        if on:  # the start depth the test network gives is its own; the seeding itself, with the picture's
            mem = WorldMemory(MemoryConfig(capacity=1 << 15))
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
            s._seed_skyline(mem, img, z, x, s.intrinsics, 1)
            one = WorldMemory(MemoryConfig(capacity=1 << 15)).add(px, z, np.eye(4), intr, mask=box)
            assert mem.count == pytest.approx(5 * one, rel=0.05)
    assert counts[True] >= counts[False]
    assert MemorySettings.from_dict({"skyline": True}).skyline and not MemorySettings().skyline
    with pytest.raises(ValueError, match="skyline 'no': expected true or false"):
        MemorySettings.from_dict({"skyline": "no"})  # (a recording's or bundle's text would otherwise turn it on)


def test_each_copy_turns_its_objects_on_its_own_but_not_those_the_sides_cut():
    px, z, intr, box = world_with_objects()
    H, W = z.shape
    z[int(intr[3]) - 8: int(intr[3]) + 3, : 6] = 12.0  # a second object, cut by the picture's left side
    edge = torch.zeros_like(box)
    edge[int(intr[3]) - 8: int(intr[3]) + 3, : 6] = True
    mask = skyline.standing_objects(z, intr, EYE, FAR)
    assert mask[edge].all()
    views = np.stack([turned(60.0), turned(120.0)])

    def seeded(**kw):
        mem = WorldMemory(MemoryConfig(capacity=1 << 15))
        n = skyline.seed(mem, px, z, intr, mask, conf=0.8, **kw)
        return n, mem.render(views, intr, (W, H), stamp=False).coverage

    n0, still = seeded(jitter=0.0)
    n1, moved = seeded(jitter=0.5, rng_seed=4)
    n2, again = seeded(jitter=0.5, rng_seed=4)
    n3, other = seeded(jitter=0.5, rng_seed=5)
    assert torch.equal(moved, again) and n1 == n2  # the same seed, the same world
    assert abs(n1 - n0) <= 0.02 * n0 and not torch.equal(moved, other)
    # the object the side cuts stays joined to its mirror image; the box moves
    edge_only, box_only = mask & edge, mask & ~edge
    for part, moves in ((edge_only, False), (box_only, True)):
        covs = []
        for j in (0.0, 0.5):
            mem = WorldMemory(MemoryConfig(capacity=1 << 15))
            skyline.seed(mem, px, z, intr, part, conf=0.8, jitter=j, rng_seed=4)
            covs.append(mem.render(np.stack([turned(a) for a in range(-180, 180, 30)]), intr, (W, H),
                                   stamp=False).coverage)
        assert covs[0].any() and torch.equal(covs[0], covs[1]) != moves
