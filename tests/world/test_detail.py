"""world/detail.py: the start picture's ground texture tiled over the level ground. Inside its source rectangle a
pixel reads its own high-pass; a ground point reads the same from any camera (fixed to the world); sky, objects and
pixels not asked for get nothing; in a session, a turn gets texture where the frame does not show the start picture,
for display only; the farther source bands end under the horizon (test preset, untrained depth: level ground)."""
import numpy as np
import pytest
import torch

from worldwalk.controls.intrinsics import from_fov
from worldwalk.world.depth import ray_inputs
from worldwalk.world.detail import GroundDetail, box_mean, fold
from worldwalk.world.memory import MemoryConfig, MemorySettings
from worldwalk.world.sampler import SamplerConfig
from worldwalk.world.session import Session

from test_session_memory import parts  # noqa: F401  (the module's fixture)

EYE = 1.6


def test_fold_mirrors_an_interval_over_the_line():
    x = torch.tensor([1.0, 2.5, 4.0, 4.5, 5.0, 7.0, 0.5, -2.0, 13.0])
    assert fold(x, 1.0, 4.0).tolist() == pytest.approx([1.0, 2.5, 4.0, 3.5, 3.0, 1.0, 1.5, 4.0, 1.0])
    y = torch.linspace(-30, 30, 10001)
    f = fold(y, -2.0, 3.0)
    assert f.min() >= -2.0 and f.max() <= 3.0 and (f[1:] - f[:-1]).abs().max() < 0.01  # no jumps: seamless


def test_box_mean_is_a_replicated_box_filter():
    x = torch.randn(2, 3, 7, 10)
    ref = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate"), 5, 1)
    assert torch.allclose(box_mean(x, 5), ref, atol=1e-6)


def start_picture(W=96, H=64, fov=70.0, obj=False):
    intr = from_fov(W, H, fov)
    rng = np.random.default_rng(0)
    px = np.full((H, W, 3), 170, np.uint8)
    px[H // 2 + 1:] = rng.integers(90, 150, (H - H // 2 - 1, W, 3))  # grass-like: no edges in its box means
    _, prior = ray_inputs(intr, torch.eye(4)[None], (W, H), EYE, 0.2, 200.0)
    depth = prior[0, 0].exp()
    if obj:
        depth[H // 2 + 1:, :20] = 1.5  # something standing in front of the ground on the left
    return torch.from_numpy(px), depth, intr


def project(K, c2w, p):
    fx, fy, cx, cy = K
    q = np.linalg.inv(c2w) @ np.append(p, 1.0)
    return fx * q[0] / q[2] + cx, fy * q[1] / q[2] + cy


def yaw_pose(a, t=(0.0, 0.0, 0.0)):
    c2w = np.eye(4)
    c2w[0, 0] = c2w[2, 2] = np.cos(a)
    c2w[0, 2], c2w[2, 0] = np.sin(a), -np.sin(a)
    c2w[:3, 3] = t
    return c2w


def test_ground_points_read_the_same_texture_from_any_camera():
    px, depth, K = start_picture()
    g = GroundDetail(px, depth, K, EYE, blur=5)
    W, H = g.size_wh
    assert g.usable and 0 < g.w and g.z0 < g.z1
    # the start camera: inside the source rectangle each ground pixel reads its own high-pass; the sky reads nothing
    d = g.render(np.eye(4)[None], K, (W, H), torch.ones(1, H, W, dtype=torch.bool))[0]
    rows = [v for v in range(H) if g.z0 + 0.3 < EYE * K[1] / max(v - K[3], 1e-6) < g.z1 - 0.3]
    assert rows and torch.allclose(d[:, rows, W // 2 - 5:W // 2 + 5], g.high[0][:, rows, W // 2 - 5:W // 2 + 5],
                                   atol=1e-5)
    assert d[:, rows].abs().mean() > 0.02 and d[:, :H // 2].abs().max() == 0
    # a ground point well beyond the rectangle (folded into it), seen from two cameras no farther from it than the
    # picture from its source: the same value from both (each camera's principal point shifted so that the point
    # falls on a pixel centre)
    for p in (np.array([0.7, EYE, 0.5 * (g.z0 + g.z1)]), np.array([2.9 * g.w, EYE, 1.7 * g.z1])):
        vals = []
        cams = (yaw_pose(0.0, (p[0] - 0.2, 0.0, p[2] - 1.2 * g.z0)),
                yaw_pose(0.1, (p[0] + 0.2, 0.0, p[2] - 1.1 * g.z0)))
        for c2w in cams:
            u, v = project(K, c2w, p)
            K2 = np.array([K[0], K[1], K[2] + round(u) - u, K[3] + round(v) - v])
            assert 0 <= round(u) < W and 0 <= round(v) < H
            hole = torch.zeros(1, H, W, dtype=torch.bool)
            hole[0, round(v), round(u)] = True
            out = g.render(c2w[None], K2, (W, H), hole)[0]
            assert out.abs().sum() == out[:, round(v), round(u)].abs().sum()  # only where asked
            vals.append(out[:, round(v), round(u)])
        assert torch.allclose(vals[0], vals[1], atol=1e-4) and vals[0].abs().sum() > 0


def test_objects_in_the_start_picture_are_not_copied():
    px, depth, K = start_picture(obj=True)
    H = depth.shape[0]
    obj = px.clone()
    obj[H // 2 + 1:, :20] = torch.from_numpy(np.indices((H - H // 2 - 1, 20)).sum(0) % 2 * 160 + 40)[..., None]
    g = GroundDetail(obj, depth, K, EYE, blur=5)
    hp = g.high[0]
    assert hp[:, H // 2 + 4:, 40:].abs().mean() > 0.02
    # the object and the pixels its edge reaches (20 + 3 columns) hold none of the object's checker (whose high-pass
    # is +-0.2, the clamp), but the ground's texture from beside them or below them (the fill), in every row
    rows = slice(H // 2 + 1, H)
    inside = hp[:, rows, :23]
    sign = torch.from_numpy(np.indices((H - H // 2 - 1, 23)).sum(0) % 2 * 2 - 1).float()
    assert inside.abs().mean() > 0.02 and bool((inside.abs().sum(0) > 0).all())
    assert (inside * sign).mean().abs() < 0.1 * inside.abs().mean()
    kept = GroundDetail(obj, depth, K, EYE, blur=5, edge=10.0, object_ratio=0.0).high[0]  # (the checker, were it kept)
    assert (kept[:, H // 2 + 4:, :17] * sign[3:, :17]).mean() > 0.1
    flat = GroundDetail(torch.full((64, 96, 3), 90, dtype=torch.uint8), depth, K, EYE)
    assert flat.high.abs().max() < 1e-6  # a picture without texture gives none


def started(parts, gain: float) -> Session:  # noqa: F811  (the fixture's value, passed on)
    """A session of the test model with the ground detail at `gain`, started on the test's start picture (the test
    model's own size)."""
    model, vae, depth = parts
    ms = MemorySettings(config=MemoryConfig(capacity=1 << 13), detail=gain)
    s = Session(model, vae, SamplerConfig(steps=1), memory=ms, depth=depth)
    s.start(start_picture()[0].numpy(), seed=1)
    return s


def test_a_turn_gets_texture_where_the_frame_does_not_show_the_start_picture(parts, tmp_path):  # noqa: F811
    """The same turn with detail on and off: the frames differ only where the memory does not draw the start picture's
    own points, and there the frames with detail have more fine structure; the memory and the next chunk are the same
    either way (display only); a restored snapshot draws the same texture again."""
    outs = {}
    for gain in (0.0, 1.0):
        s = started(parts, gain)
        n = s.frames_per_step
        poses = np.stack([yaw_pose(a) for a in np.linspace(0.1, 0.7, n)])
        snap = s.snapshot()
        view = s.memory.render(poses, s.intrinsics, s.size_wh)
        first = s.step(poses)
        s.step(poses[::-1].copy())
        outs[gain] = (first.astype(np.float64), view.pinned.numpy(), view.coverage.numpy(), None,
                      s.memory.rgb.clone(), s.state_nbytes())
        s.restore(snap)
        assert np.array_equal(s.step(poses), first)
    off, on = outs[0.0], outs[1.0]
    pinned, cov = off[1], off[2]
    changed = np.abs(on[0] - off[0]).max(-1) > 0
    assert changed.any() and not (changed & pinned).any()  # never over the start picture's own points
    unseen = ~cov[:, 40:, 1:] & ~cov[:, 40:, :-1]  # ground rows, pairs of neighbours the memory did not see
    assert unseen.mean() > 0.1
    fine = lambda f: np.abs(np.diff(f[:, 40:], axis=2)).max(-1)[unseen].mean()  # noqa: E731
    assert fine(on[0]) > 1.5 * fine(off[0])
    # display only: after a second chunk the memory (what the model drew in both, lifted) and the state are the same
    assert torch.equal(on[4], off[4]) and on[5] == off[5]
    with pytest.raises(ValueError, match="detail"):
        MemorySettings(detail=-1).validate()
    assert MemorySettings.from_dict({"detail": 0.5}).detail == 0.5


def test_edges_on_the_ground_leave_no_lines():
    """A shadow's border across the ground (a step of 60 levels along a diagonal): its high-pass would be a band of
    one sign on each side, which the tiling would repeat as a lattice of lines; it is left out and filled with the
    texture of other rows, so the band holds texture with no sign of the step."""
    px, depth, K = start_picture(W=96, H=96)
    H, W = depth.shape
    v, u = np.mgrid[0:H, 0:W]
    dark = (u < v - 30) & (v > H // 2)
    img = px.numpy().astype(int)
    img[dark] -= 60
    g = GroundDetail(torch.from_numpy(img.clip(0, 255).astype(np.uint8)), depth, K, EYE, blur=5)
    near = (np.abs(u - (v - 30)) <= 2) & (v > H // 2 + 8) & (v < H - 3)  # the step's band
    hp = g.high[0].numpy()
    assert np.abs(hp[:, near & dark].mean()) < 0.02 and np.abs(hp[:, near & ~dark].mean()) < 0.02
    assert np.abs(hp[:, near]).mean() > 0.02  # texture there, not a bare band
    # without the edge test the band is the step's response: dark below it, bright above
    raw = GroundDetail(torch.from_numpy(img.clip(0, 255).astype(np.uint8)), depth, K, EYE, blur=5, edge=10.0)
    assert raw.high[0].numpy()[:, near & dark].mean() < -0.05


def test_a_coarse_texture_is_mostly_kept():
    """Grass in blotches of 4 px, +-30 levels: its 9-px box means step by more than the edge threshold from one box
    to the next, but over the edge test's larger box they average away, so most ground pixels keep their own
    high-pass instead of being left out as an edge and filled from elsewhere."""
    W, H = 192, 128
    K = from_fov(W, H, 70.0)
    rng = np.random.default_rng(3)
    blot = np.kron(rng.integers(-30, 31, (H // 4 + 1, W // 4 + 1, 1)), np.ones((4, 4, 1)))[:H, :W]
    px = np.full((H, W, 3), 170.0)
    px[H // 2 + 1:] = 120 + blot[H // 2 + 1:]
    _, prior = ray_inputs(K, torch.eye(4)[None], (W, H), EYE, 0.2, 200.0)
    img = torch.from_numpy(px.astype(np.uint8))
    x = img.permute(2, 0, 1)[None].float() / 127.5 - 1
    own = (x - box_mean(x, 9)).clamp(-0.2, 0.2)[0]
    rows = slice(int(K[3]) + 25, H - 5)  # the ground, off the horizon (a step from the sky) and the lower edge
    kept = [float((GroundDetail(img, prior[0, 0].exp(), K, EYE, edge_box=b).high[0][:, rows] == own[:, rows])
                  .all(0).float().mean()) for b in (None, 9)]
    assert kept[0] > 0.75 and kept[1] < 0.3, kept


def test_magnified_is_where_the_start_pictures_ground_is_enlarged():
    """Walking forward by dz, a ground pixel the camera sees at z-depth t was seen by the start camera at t + dz:
    magnified (t + dz) / t. The weight is 0 up to 1.2x, 1 from 2x, linear between; 0 on the sky, where the frame shows
    something nearer than the ground (an object), at the start pose, and less where the picture was kept larger."""
    px, depth, K = start_picture(W=96, H=64)
    g = GroundDetail(px, depth, K, EYE, blur=5)
    W, H = g.size_wh
    assert g.magnified(np.eye(4)[None], K, (W, H), depth[None]).max() == 0  # the start view: not magnified
    dz = 3.0
    c2w = np.eye(4)[None].copy()
    c2w[0, 2, 3] = dz
    m = g.magnified(c2w, K, (W, H), depth[None])[0]
    rows = torch.arange(H, dtype=torch.float32)
    t = EYE * K[1] / (rows - K[3])  # the ground's z-depth in each row below the horizon
    expect = (((t + dz) / t - 1.2) / 0.8).clamp(0, 1)
    below = rows > K[3] + 0.5
    assert torch.allclose(m[below], expect[below, None].expand(-1, W), atol=1e-4)
    assert m[~below].max() == 0 and m[-1].min() > 0.5 and m[below].min() == 0  # far ground: hardly magnified
    obj = depth.clone()
    obj[H - 20:, :30] *= 0.5  # something standing on the ground, nearer than it
    mo = g.magnified(c2w, K, (W, H), obj[None])[0]
    assert mo[H - 20:, :30].max() == 0 and torch.equal(mo[:, 30:], m[:, 30:])
    m2 = g.magnified(c2w, K, (W, H), depth[None], scale=2.0)[0]  # a picture kept at twice the frame's size
    expect2 = (((t + dz) / t / 2 - 1.2) / 0.8).clamp(0, 1)
    assert torch.allclose(m2[below], expect2[below, None].expand(-1, W), atol=1e-4) and (m2 <= m).all()


def test_walking_forward_gets_texture_on_the_enlarged_ground(parts):  # noqa: F811
    """Walking 1.5 m straight ahead, the near ground of the frame is the start picture's, enlarged up to 1.3x: the
    session asks for the detail there at least as much as `magnified` says, also where the frame shows the start
    picture's own points (pinned) or the start view, where before it asked for none; the sky gets none. With the
    detail on, the lowest rows differ from the detail off, and the memory is the same either way (display only)."""
    outs = {}
    for gain in (0.0, 1.0):
        s = started(parts, gain)
        n = s.frames_per_step
        poses = np.repeat(np.eye(4)[None], n, 0)
        poses[:, 2, 3] = np.linspace(0.2, 1.5, n)
        if gain:
            W, H = s.size_wh
            view = s.memory.render(poses, s.intrinsics, s.size_wh)
            _, asked = s._blend(torch.zeros(1, 3, n, H, W), view, poses)
            mag = s._ground_detail().magnified(poses, s.intrinsics, s.size_wh, view.depth, s.start_view.scale)
            shown = view.pinned if view.pinned is not None else view.coverage  # the start picture's own points
            assert bool(((mag > 0) & shown).any()) and bool((asked >= mag - 1e-6).all())
            assert asked[:, : H // 3].max() == 0
        outs[gain] = (s.step(poses).astype(np.float64), s.memory.rgb.clone())
    off, on = outs[0.0], outs[1.0]
    H = off[0].shape[1]
    diff = np.abs(on[0][-1] - off[0][-1]).max(-1)
    assert diff[H - H // 6:].mean() > 0.5 and diff[: H // 3].max() == 0
    assert torch.equal(on[1], off[1])


def test_farther_bands_end_under_the_horizon():
    """Each farther source band is 2.5 times as far as the one before; only bands that end 3 rows or more under the
    horizon are used, at most as many as asked for."""
    px, depth, K = start_picture(W=256, H=256, fov=60.0)
    fy = K[1]
    g = GroundDetail(px, depth, K, EYE)
    assert 2 <= g.bands <= 4 and g.z1 * 2.5 ** (g.bands - 1) <= EYE * fy / 3
    assert g.bands == 4 or g.z1 * 2.5 ** g.bands > EYE * fy / 3  # no room for another
    assert GroundDetail(px, depth, K, EYE, bands=1).bands == 1
