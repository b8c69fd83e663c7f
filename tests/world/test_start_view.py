"""world.StartView and kernels/warp: the start image, kept at its own resolution, seen through its depth from a camera
that walked towards it. The compiled kernels against their PyTorch twins on odd shapes; on a procedural world with
exact depth, the warp from a picture larger than the frame matches the exact view better and sharper than the
frame-size picture does; nothing where the start image is not magnified or does not see the memory's surface."""
import numpy as np
import pytest
import torch

from worldwalk.controls.intrinsics import from_fov
from worldwalk.kernels.warp import colour_ref, solve_ref
from worldwalk.world.procedural.scene import Scene
from worldwalk.world.start_view import StartView, StartViewConfig

numba = pytest.importorskip("numba")
from worldwalk.kernels.warp.cpu import colour_cpu, solve_cpu  # noqa: E402


def rel_rms(a, b):
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp_min(1e-12))


def forward_poses(n, step=0.15, yaw=0.02):
    out = np.tile(np.eye(4), (n, 1, 1))
    for k in range(n):
        c, s = np.cos(yaw * (k + 1)), np.sin(yaw * (k + 1))
        out[k, :3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        out[k, 2, 3] = step * (k + 1)
    return out


@pytest.fixture(scope="module")
def world():
    """A procedural scene: the start view at 1x and 2x (same pixel-centre grid), its exact depth, and exact views
    (colour and depth) from cameras that walk 0.6-1.8 m towards it."""
    W, H = 96, 80
    intr = from_fov(W, H, 60)
    fx, fy, cx, cy = intr
    intr2 = np.array([2 * fx, 2 * fy, 2 * (cx + 0.5) - 0.5, 2 * (cy + 0.5) - 0.5])
    scene = Scene(1_000_007)
    img, z0 = scene.render(np.eye(4)[None], intr, (W, H), depth=True)
    hi = scene.render(np.eye(4)[None], intr2, (2 * W, 2 * H))
    poses = forward_poses(4, step=0.45)
    exact, z = scene.render(poses, intr, (W, H), depth=True)
    return dict(W=W, H=H, intr=intr, img=torch.from_numpy(img[0]), hi=torch.from_numpy(hi[0]),
                z0=torch.from_numpy(z0[0]), poses=poses, exact=exact, z=torch.from_numpy(z))


def test_kernels_match_their_pytorch_twins_on_odd_shapes(world):
    sv = StartView(world["img"], world["hi"], world["z0"], world["intr"])
    poses = torch.as_tensor(world["poses"], dtype=torch.float32)
    z = world["z"].clone()
    covered = torch.isfinite(z)
    z[~covered] = float("nan")  # where the memory sees nothing the depth is never read
    z = z[:, 40:77, 30:59].contiguous()  # odd shapes: a crop of the cameras (the ground and what stands on it)
    covered = covered[:, 40:77, 30:59].contiguous()
    fx, fy, cx, cy = world["intr"]
    args = (poses[:, :3, :3], poses[:, :3, 3], (fx, fy, cx - 30, cy - 40), sv.intrinsics, sv._inv, sv._edges, z,
            covered)
    qx, qy, ok = solve_ref(*args)
    qx2, qy2, ok2 = solve_cpu(*args)
    assert ok.any() and (ok == ok2).float().mean() > 0.995
    both = ok & ok2
    assert rel_rms(qx2[both], qx[both]) < 1e-4 and rel_rms(qy2[both], qy[both]) < 1e-4
    for min_mag in (0.0, 0.55):  # (0.55 on this grid: some pixels are not followed)
        q_ref, q_cpu = solve_ref(*args, min_mag=min_mag), solve_cpu(*args, min_mag=min_mag)
        assert (q_ref[2] == q_cpu[2]).float().mean() > 0.995
    assert 0 < int(q_ref[2].sum()) < int(ok.sum())
    full = torch.ones(z.shape[0], 2 * z.shape[1] - 1, 2 * z.shape[2], dtype=torch.bool)  # odd rows, even columns
    full[:, :, -3:] = False
    rgb, w = colour_ref(qx, qy, ok, full, sv._img, sv._hi, from_mag=1.1)
    rgb2, w2 = colour_cpu(qx, qy, ok, full, sv._img, sv._hi, from_mag=1.1)
    assert float(w.max()) == 1 and float(w[:, :, -3:].max()) == 0
    assert torch.isfinite(rgb2).all() and torch.isfinite(w2).all()
    assert rel_rms(rgb2, rgb) < 1e-4 and rel_rms(w2, w) < 1e-4


def test_a_larger_picture_gives_the_walk_its_own_detail(world):
    """Exact depth in, the walk's exact views as the truth: where the start view takes over (weight 1), the 2x
    picture's warp is closer to the exact view and sharper than the frame-size picture's (the same warp at 1x)."""
    W, H = world["W"], world["H"]
    big = StartView(world["img"], world["hi"], world["z0"], world["intr"])
    small = StartView(world["img"], world["img"], world["z0"], world["intr"])
    assert big.scale == 2 and small.scale == 1
    z = world["z"]
    covered = torch.isfinite(z)
    rgb_b, w_b = big.warp(world["poses"], world["intr"], (W, H), torch.nan_to_num(z, posinf=1e4), covered)
    rgb_s, w_s = small.warp(world["poses"], world["intr"], (W, H), torch.nan_to_num(z, posinf=1e4), covered)
    assert torch.equal(w_b, w_s)
    full = w_b[:, 0] >= 1
    assert full.float().mean() > 0.05  # the near ground and what stands on it
    exact = torch.from_numpy(world["exact"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    m = full[:, None].expand_as(exact)
    err_b, err_s = (rgb_b - exact)[m].pow(2).mean(), (rgb_s - exact)[m].pow(2).mean()
    assert err_b < 0.7 * err_s  # (measured: 0.00068 against 0.00128, +2.8 dB)

    def grad_energy(x):  # over pixels whose right and lower neighbours are taken over too
        g = x.mean(1)
        dx, dy = g[:, :-1, 1:] - g[:, :-1, :-1], g[:, 1:, :-1] - g[:, :-1, :-1]
        k = full[:, :-1, :-1] & full[:, :-1, 1:] & full[:, 1:, :-1]
        return float((dx**2 + dy**2)[k].mean())
    assert grad_energy(rgb_b) > 1.05 * grad_energy(rgb_s)  # (measured: 1.09x)


def test_nothing_where_not_magnified_or_another_surface_shows(world):
    W, H = world["W"], world["H"]
    sv = StartView(world["img"], world["hi"], world["z0"], world["intr"])
    z0 = torch.nan_to_num(world["z0"], posinf=1e4)[None]
    _, w = sv.warp(np.eye(4)[None], world["intr"], (W, H), z0, torch.ones_like(z0, dtype=torch.bool))
    assert float(w.max()) == 0  # the start pose: the memory's own render is exact there
    z = torch.nan_to_num(world["z"], posinf=1e4)
    covered = torch.isfinite(world["z"])
    _, w_true = sv.warp(world["poses"], world["intr"], (W, H), z, covered)
    _, w_near = sv.warp(world["poses"], world["intr"], (W, H), z * 0.7, covered)  # something nearer drawn there
    _, w_none = sv.warp(world["poses"], world["intr"], (W, H), z, torch.zeros_like(covered))
    assert float(w_true.max()) == 1 and float(w_near.mean()) < 0.05 * float(w_true.mean())
    assert float(w_none.max()) == 0


def test_rays_that_miss_the_start_surface_at_once_are_not_followed(world):
    """miss: a ray whose first read (at the memory's depth) finds the start surface's inverse depth more than that
    (relative) off is left there. With a lax `agree`, a memory depth 2.5x too far still ends on the start surface
    after the secant steps; with miss=0.3 such rays are not followed (both kernels); on the true depth it leaves every
    valid pixel as it was."""
    sv = StartView(world["img"], world["hi"], world["z0"], world["intr"])
    poses = torch.as_tensor(world["poses"], dtype=torch.float32)
    z = torch.nan_to_num(world["z"], posinf=1e4)[:, ::2, ::2].contiguous()
    covered = torch.isfinite(world["z"])[:, ::2, ::2].contiguous()
    fx, fy, cx, cy = world["intr"]
    args = (poses[:, :3, :3], poses[:, :3, 3], (fx / 2, fy / 2, cx / 2, cy / 2), sv.intrinsics, sv._inv, sv._edges)
    for fn in (solve_ref, solve_cpu):
        true = fn(*args, z, covered, steps=2)[2]
        assert true.any() and torch.equal(fn(*args, z, covered, steps=2, miss=0.3)[2], true)
        far = fn(*args, z * 2.5, covered, steps=2, agree=1.0)[2]
        far_left = fn(*args, z * 2.5, covered, steps=2, agree=1.0, miss=0.3)[2]
        assert float(far.float().mean()) > 0.3 * float(true.float().mean())  # followed: they find the surface
        assert float(far_left.float().mean()) < 0.05 * float(far.float().mean())
    with pytest.raises(ValueError, match="miss >= 0"):
        StartViewConfig(miss=-1).validate()


def test_state_round_trip_and_bad_input(world):
    sv = StartView(world["img"], world["hi"], world["z0"], world["intr"])
    again = StartView.from_state(sv.state_dict())
    assert again.scale == sv.scale and torch.equal(again.hires, sv.hires) and sv.nbytes() > world["hi"].numel()
    with pytest.raises(ValueError, match="start_view.hires"):
        StartView.from_state({k: v for k, v in sv.state_dict().items() if k != "hires"})
    with pytest.raises(ValueError, match="start view"):
        StartView(world["img"], world["img"][:10], world["z0"], world["intr"])
    with pytest.raises(ValueError, match="full_at"):
        StartViewConfig(full_at=1.0).validate()


@pytest.mark.parametrize("grid", [1, 3, 4])
def test_colour_on_any_grid_matches_its_twin(world, grid):
    """colour from rays followed on every grid-th pixel, on a frame whose size is no multiple of the grid: the
    compiled kernel against the reference."""
    sv = StartView(world["img"], world["hi"], world["z0"], world["intr"])
    poses = torch.as_tensor(world["poses"], dtype=torch.float32)
    H, W = 67, 81  # (a crop of the cameras: neither a multiple of 3 nor of 4)
    z = torch.nan_to_num(world["z"], posinf=1e4)[:, :H:grid, :W:grid].contiguous()
    covered = torch.isfinite(world["z"])[:, :H, :W].contiguous()
    fx, fy, cx, cy = world["intr"]
    qx, qy, ok = solve_cpu(poses[:, :3, :3], poses[:, :3, 3], (fx / grid, fy / grid, cx / grid, cy / grid),
                           sv.intrinsics, sv._inv, sv._edges, z, covered[:, ::grid, ::grid].contiguous())
    rgb, w = colour_ref(qx, qy, ok, covered, sv._img, sv._hi, from_mag=1.1, grid=grid)
    rgb2, w2 = colour_cpu(qx, qy, ok, covered, sv._img, sv._hi, from_mag=1.1, grid=grid)
    assert float(w.max()) == 1 and torch.isfinite(rgb2).all()
    assert rel_rms(rgb2, rgb) < 1e-4 and rel_rms(w2, w) < 1e-4
    for fn in (colour_ref, colour_cpu):
        with pytest.raises(ValueError, match="ceil"):  # samples that are not this grid's
            fn(qx[:, 1:], qy[:, 1:], ok[:, 1:], covered, sv._img, sv._hi, grid=grid)


def test_every_fourth_ray_gives_the_same_view_as_every_other(world):
    """The start coordinates are interpolated between the followed rays (exact where the start surface is a plane):
    following every fourth pixel's ray draws the walk's start view as following every other pixel's does, but along
    depth edges, where the coarser grid's samples more often straddle one."""
    W, H = world["W"], world["H"]
    z = torch.nan_to_num(world["z"], posinf=1e4)
    covered = torch.isfinite(world["z"])
    views = {}
    for grid in (2, 4):
        sv = StartView(world["img"], world["hi"], world["z0"], world["intr"], StartViewConfig(grid=grid))
        views[grid] = sv.warp(world["poses"], world["intr"], (W, H), z, covered)
    (rgb2, w2), (rgb4, w4) = views[2], views[4]
    both = (w2[:, 0] > 0) & (w4[:, 0] > 0)
    either = (w2[:, 0] > 0) | (w4[:, 0] > 0)
    assert float(both.sum()) > 0.85 * float(either.sum())  # (measured: 0.94)
    diff = (rgb4 - rgb2).abs().amax(1)[both]
    assert float(diff.mean()) < 0.01 and float((diff > 0.05).float().mean()) < 0.02  # (measured: 0.001, 0.0003)
    with pytest.raises(ValueError, match="grid"):
        StartViewConfig(grid=0).validate()
