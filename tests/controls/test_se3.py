"""controls.se3: conventions, inverses, rigidity checks and slerp/lerp resampling."""
import numpy as np
import pytest
from controls_testutil import assert_rotations_valid, random_c2w

from worldwalk.controls import se3


def test_angle_conventions_follow_opencv_axes():
    forward = lambda R: R[:, 2]  # noqa: E731
    # Turning right (positive yaw) swings the view towards +X; looking up (positive pitch) towards -Y (world up).
    np.testing.assert_allclose(forward(se3.rotation_from_angles(90.0)), [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(forward(se3.rotation_from_angles(0.0, 90.0)), [0, -1, 0], atol=1e-12)
    # Positive roll: the camera's right axis goes down (+Y).
    np.testing.assert_allclose(se3.rotation_from_angles(0.0, 0.0, 90.0)[:, 0], [0, 1, 0], atol=1e-12)


def test_angles_round_trip_and_yaw_is_about_world_up():
    rng = np.random.default_rng(0)
    angles = np.stack([rng.uniform(-179, 179, 50), rng.uniform(-85, 85, 50), rng.uniform(-60, 60, 50)], axis=-1)
    R = se3.rotation_from_angles(angles[:, 0], angles[:, 1], angles[:, 2])
    assert_rotations_valid(se3.make_pose(R))
    np.testing.assert_allclose(se3.angles_from_rotation(R), angles, atol=1e-9)
    # Yaw composes on the left about world Y: R(y1 + y2, p) == R_y(y1) @ R(y2, p).
    np.testing.assert_allclose(se3.rotation_from_angles(30.0 + 20.0, 10.0),
                               se3.rotation_from_angles(30.0) @ se3.rotation_from_angles(20.0, 10.0), atol=1e-12)


def test_invert_and_relative_to_first():
    c2w = random_c2w(10)
    np.testing.assert_allclose(se3.invert(c2w) @ c2w, np.broadcast_to(np.eye(4), c2w.shape), atol=1e-12)
    rel = se3.relative_to_first(c2w)
    np.testing.assert_array_equal(rel[0], np.eye(4))
    np.testing.assert_allclose(c2w[0] @ rel, c2w, atol=1e-12)
    assert_rotations_valid(rel)


def test_opengl_flip_is_an_involution():
    c2w = random_c2w(4)
    gl = se3.opencv_to_opengl(c2w)
    np.testing.assert_allclose(gl[:, :3, 1], -c2w[:, :3, 1])
    np.testing.assert_allclose(gl[:, :3, 2], -c2w[:, :3, 2])
    np.testing.assert_array_equal(se3.opengl_to_opencv(gl), c2w)


def test_look_at_points_z_at_target_with_up_as_minus_y():
    eye, target = np.array([1.0, -0.5, 0.0]), np.array([3.0, 0.0, 4.0])
    pose = se3.look_at(eye, target)
    assert_rotations_valid(pose)
    d = (target - eye) / np.linalg.norm(target - eye)
    np.testing.assert_allclose(pose[:3, 2], d, atol=1e-12)
    assert abs(pose[1, 0]) < 1e-12  # camera X stays horizontal
    np.testing.assert_allclose(pose[:3, 3], eye)


@pytest.mark.parametrize("case, expected", [
    ("scale", "not orthonormal"),
    ("reflection", "determinant"),
    ("nan", "NaN"),
    ("bottom", "bottom row"),
    ("shape", "shape"),
])
def test_rigidity_problem_names_the_bad_pose(case, expected):
    c2w = random_c2w(5)
    if case == "scale":
        c2w[3, :3, :3] *= 1.1
    elif case == "reflection":
        c2w[3, :3, 0] *= -1
    elif case == "nan":
        c2w[3, 0, 3] = np.nan
    elif case == "bottom":
        c2w[3, 3, 0] = 0.5
    else:
        c2w = c2w[:, :3]
    problem = se3.rigidity_problem(c2w)
    assert problem is not None and expected in problem
    if case != "shape":
        assert "pose 3" in problem
    assert se3.is_rigid(random_c2w(5))


def test_orthonormalize_repairs_float32_rounding():
    c2w = random_c2w(20).astype(np.float32).astype(np.float64)
    assert se3.is_rigid(c2w)
    fixed = se3.orthonormalize(c2w)
    assert_rotations_valid(fixed, atol=1e-13)
    np.testing.assert_allclose(fixed, c2w, atol=1e-6)


def test_interpolate_hits_knots_and_slerps_between():
    a = se3.make_pose(se3.rotation_from_angles(0.0), [0.0, 0.0, 0.0])
    b = se3.make_pose(se3.rotation_from_angles(90.0), [2.0, 0.0, 4.0])
    out = se3.interpolate(np.stack([a, b]), np.array([0.0, 1.0]), np.array([0.0, 0.25, 0.5, 1.0, 2.0]))
    assert_rotations_valid(out)
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[3], b)
    np.testing.assert_array_equal(out[4], b)  # clamped, no extrapolation
    np.testing.assert_allclose(se3.angles_from_rotation(out[1:3, :3, :3])[:, 0], [22.5, 45.0], atol=1e-9)
    np.testing.assert_allclose(out[2, :3, 3], [1.0, 0.0, 2.0])
    np.testing.assert_allclose(se3.interpolate_pair(a, b, 0.5), out[2])


def test_resample_keeps_motion_and_endpoints():
    t = np.arange(33) / 16.0
    c2w = se3.make_pose(se3.rotation_from_angles(20.0 * t), np.stack([t, 0 * t, 2 * t], axis=-1))
    up = se3.resample(c2w, 16.0, 30.0)
    assert len(up) == 61  # 2 s at 30 fps, inclusive
    assert_rotations_valid(up)
    tq = np.arange(61) / 30.0
    np.testing.assert_allclose(up[:, :3, 3], np.stack([tq, 0 * tq, 2 * tq], axis=-1), atol=1e-12)
    np.testing.assert_allclose(se3.angles_from_rotation(up[:, :3, :3])[:, 0], 20.0 * tq, atol=1e-9)
    back = se3.resample(up, 30.0, 16.0)
    np.testing.assert_allclose(back, c2w, atol=1e-9)
