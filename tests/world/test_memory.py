"""world.memory: lifting views with depth, rendering them into other cameras, the size cap and eviction, state."""
import numpy as np
import pytest
import torch

from worldwalk.controls.intrinsics import from_fov
from worldwalk.controls.se3 import make_pose, rotation_from_angles
from worldwalk.world.memory import MemoryConfig, MemorySettings, WorldMemory, depth_edges
from worldwalk.world.procedural.scene import Scene

W, H = 96, 64
INTR = from_fov(W, H, 60.0)


def psnr(a, b, mask=None):
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    d = d[mask] if mask is not None else d
    return 10 * np.log10(255.0**2 / max(d.mean(), 1e-10))


def to_u8(view):
    return ((view.rgb.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene():
    return Scene(1_000_123)


def lifted(scene, capacity=1 << 14):
    frame, depth = scene.render(np.eye(4)[None], INTR, (W, H), depth=True)
    mem = WorldMemory(MemoryConfig(capacity=capacity))
    n = mem.add(torch.from_numpy(frame[0]), torch.from_numpy(depth[0]), np.eye(4), INTR, pinned=True)
    return mem, frame[0], depth[0], n


def test_the_view_comes_back_where_it_was_lifted(scene):
    mem, frame, depth, n = lifted(scene)
    assert 0.8 * W * H < n <= W * H and mem.count == n  # all but the depth-edge pixels
    view = mem.render(np.eye(4)[None], INTR, (W, H))
    img = to_u8(view)[0]
    assert view.coverage.all()
    same = (img == frame).all(-1)
    assert same.sum() >= n, (same.sum(), n)  # every lifted pixel lands on itself; edge pixels are filled
    assert psnr(img, frame) > 22  # this small, object-rich view is 15 % edge pixels (256 x 256 views: ~1 %)
    z = view.depth[0].numpy()
    ok = np.isfinite(depth) & same
    assert np.allclose(z[ok], depth[ok], rtol=1e-4)


def test_rotation_and_a_step_match_the_exact_render_better_than_copying(scene):
    mem, frame, _, _ = lifted(scene)
    turn = make_pose(rotation_from_angles(12.0), np.zeros(3))
    step = make_pose(np.eye(3), np.array([0.1, 0.0, 0.8]))
    for pose in (turn, step):
        exact = scene.render(pose[None], INTR, (W, H))[0]
        view = mem.render(pose[None], INTR, (W, H))
        cov = view.coverage[0].numpy()
        img = to_u8(view)[0]
        assert 0.6 < cov.mean() < 1.0 if pose is turn else cov.mean() > 0.9
        assert psnr(img, exact, cov) > psnr(frame, exact) + 3, (psnr(img, exact, cov), psnr(frame, exact))


def test_magnified_surfaces_have_no_holes_and_hide_what_is_behind():
    """A wall 4 m ahead with the sky behind, lifted, then seen from 2.5 m closer (1.6x): every pixel of the wall's
    image is covered, by wall colour, not by sky seen through the gaps between its points."""
    depth = torch.full((H, W), float("inf"))
    depth[10:50, 20:70] = 4.0
    rgb = torch.zeros(H, W, 3, dtype=torch.uint8)
    rgb[..., 2] = 255  # blue sky
    rgb[10:50, 20:70] = torch.tensor([200, 40, 40], dtype=torch.uint8)
    mem = WorldMemory(MemoryConfig(capacity=W * H))
    mem.add(rgb, depth, np.eye(4), INTR)
    view = mem.render(make_pose(np.eye(3), np.array([0.0, 0.0, 2.5]))[None], INTR, (W, H))
    img = to_u8(view)[0]
    cx, cy = INTR[2], INTR[3]
    inner = np.zeros((H, W), bool)  # the wall's image at 1.6x, less a 2-pixel margin
    s = 4.0 / 1.5
    inner[int(cy + (12 - cy) * s):int(cy + (48 - cy) * s), int(cx + (22 - cx) * s):int(cx + (68 - cx) * s)] = True
    assert inner.sum() > 400
    assert view.coverage[0].numpy()[inner].all()
    assert (np.abs(img[inner].astype(int) - [200, 40, 40]).max(-1) < 30).mean() > 0.99


def test_depth_edges_are_not_lifted_but_far_ground_is():
    z = torch.full((8, 8), 5.0)
    z[:, 4:] = 10.0  # a step: 5 m -> 10 m
    e = depth_edges(z, 0.05, 0.02)
    assert e[:, 3:5].all() and not e[:, :3].any() and not e[:, 5:].any()
    far = torch.linspace(60.0, 140.0, 8)[:, None].expand(8, 8)  # steep in log depth, not in inverse depth
    assert not depth_edges(far, 0.05, 0.02).any()


def test_the_cap_holds_pinned_points_stay_and_the_oldest_go(scene):
    mem, frame, depth, n = lifted(scene, capacity=W * H + 500)
    nbytes = mem.nbytes()
    pinned = mem.pinned.clone()
    other = torch.from_numpy(np.full((H, W, 3), 7, np.uint8))
    z = torch.full((H, W), 3.0)
    for k in range(4):  # 4 x 6,144 unpinned points through 500 + free slots
        mem.tick()
        mem.add(other, z, make_pose(np.eye(3), np.array([k, 0.0, 0.0])), INTR, conf=0.8)
        assert mem.count <= mem.cfg.capacity and mem.nbytes() == nbytes
        assert bool(mem.pinned[pinned].all()) and int(mem.pinned.sum()) == n  # the start view is never evicted
    assert int(mem.seen[~mem.pinned & (mem.conf > 0)].min()) == 4  # only the newest unpinned points are left


def test_state_round_trip_and_errors(scene):
    mem, *_ = lifted(scene)
    sd = mem.state_dict()
    other = WorldMemory(MemoryConfig(capacity=1 << 14))
    other.load_state_dict(sd)
    pose = make_pose(rotation_from_angles(11.0), np.array([0.2, 0.0, 0.3]))[None]
    a, b = mem.render(pose, INTR, (W, H), stamp=False), other.render(pose, INTR, (W, H), stamp=False)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.confidence, b.confidence)
    small = WorldMemory(MemoryConfig(capacity=100))
    with pytest.raises(ValueError, match="memory.xyz"):
        small.load_state_dict(sd)
    assert small.count == 0  # nothing changed


def test_empty_memory_renders_nothing():
    view = WorldMemory(MemoryConfig(capacity=10)).render(np.eye(4)[None], INTR, (W, H))
    assert not view.coverage.any() and view.rgb.shape == (1, 3, H, W)


def test_settings_round_trip_and_refuse_unknown_fields():
    ms = MemorySettings(config=MemoryConfig(capacity=1000), guess=0.4, start_grid=3)
    assert MemorySettings.from_dict(ms.to_dict()) == ms
    assert MemorySettings.from_dict({}) == MemorySettings()
    with pytest.raises(ValueError, match="unknown fields"):
        MemorySettings.from_dict({"blend": 1})
    with pytest.raises(ValueError, match="guess"):
        MemorySettings(guess=1.5).validate()
    for bad in (0, 9, True, 2.0):
        with pytest.raises(ValueError, match="start_grid"):
            MemorySettings(start_grid=bad).validate()


def test_rendering_only_the_points_just_added_is_rendering_a_memory_of_them_alone(scene):
    """render(only=last_added): what the session asks while lifting a chunk's later frames (the chunk's earlier
    frames' new points, without drawing the whole memory again)."""
    mem, _, _, _ = lifted(scene)
    turn = make_pose(rotation_from_angles(25.0), np.zeros(3))
    frame, depth = scene.render(turn[None], INTR, (W, H), depth=True)
    unseen = ~mem.render(turn[None], INTR, (W, H), stamp=False).coverage[0]
    n = mem.add(torch.from_numpy(frame[0]), torch.from_numpy(depth[0]), turn, INTR, mask=unseen)
    assert n > 0 and mem.last_added.numel() == n
    alone = WorldMemory(MemoryConfig(capacity=1 << 14))
    assert alone.add(torch.from_numpy(frame[0]), torch.from_numpy(depth[0]), turn, INTR, mask=unseen) == n
    look = make_pose(rotation_from_angles(30.0), np.zeros(3))[None]
    a = mem.render(look, INTR, (W, H), stamp=False, only=mem.last_added)
    b = alone.render(look, INTR, (W, H), stamp=False)
    assert a.coverage.any() and torch.equal(a.coverage, b.coverage) and torch.equal(a.rgb, b.rgb)
    full = mem.render(look, INTR, (W, H), stamp=False)
    assert bool((full.coverage | ~a.coverage).all())  # what the new points cover, the whole memory covers too
    # a stamping render of a subset marks exactly the subset's points it draws, in the memory's slots
    mem.tick()
    before = mem.seen.clone()
    view = mem.render(look, INTR, (W, H), only=mem.last_added)
    changed = (mem.seen != before).nonzero()[:, 0]
    assert changed.numel() > 0 and bool(torch.isin(changed, mem.last_added).all())
    assert bool((mem.seen[changed] == mem.clock).all()) and view.coverage.any()
    before = mem.seen.clone()
    empty = mem.render(look, INTR, (W, H), only=mem.last_added[:0])  # nothing to draw, nothing marked
    assert not empty.coverage.any() and torch.equal(mem.seen, before)
