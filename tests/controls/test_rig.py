"""controls.rig: directions, metric speeds, smoothing, frame-rate independence and chunk planning."""
import numpy as np
import pytest
from controls_testutil import assert_rotations_valid

from worldwalk.controls.rig import InputState, Rig, RigConfig
from worldwalk.controls.se3 import angles_from_rotation, rotation_from_angles


def hold(rig: Rig, inp: InputState, seconds: float, rate: float) -> np.ndarray:
    n = round(seconds * rate)
    assert abs(n - seconds * rate) < 1e-9
    poses = [rig.update(inp, 1.0 / rate) for _ in range(n)]
    return np.stack(poses)


@pytest.mark.parametrize("keys, direction", [
    ({"w"}, [0, 0, 1]), ({"s"}, [0, 0, -1]), ({"d"}, [1, 0, 0]), ({"a"}, [-1, 0, 0]),
    ({"e"}, [0, -1, 0]),  # up is -Y in OpenCV
    ({"q"}, [0, 1, 0]),
])
def test_keys_move_the_expected_way_at_walking_speed(keys, direction):
    rig = Rig()
    hold(rig, InputState(keys=keys), 3.0, 16)
    v_world = rig.pose[:3, :3] @ rig.linear_velocity
    np.testing.assert_allclose(v_world, 1.2 * np.array(direction), atol=1e-6)  # settled at walk speed
    np.testing.assert_allclose(rig.pose[:3, :3], np.eye(3))
    moved = rig.pose[:3, 3]
    assert np.dot(moved, direction) > 3.0 and np.linalg.norm(np.cross(moved, direction)) < 1e-12


def test_sprint_diagonals_and_speed_steps():
    rig = Rig()
    hold(rig, InputState(keys={"w", "shift"}), 3.0, 16)
    assert np.linalg.norm(rig.linear_velocity) == pytest.approx(1.2 * 2.5, rel=1e-6)
    rig = Rig()
    hold(rig, InputState(keys={"w", "d"}), 3.0, 16)
    assert np.linalg.norm(rig.linear_velocity) == pytest.approx(1.2, rel=1e-6)  # diagonals are not faster
    rig = Rig()
    assert rig.speed_up() == pytest.approx(1.5) and rig.speed_down() == pytest.approx(1.2)
    for _ in range(100):
        rig.speed_down()
    assert rig.speed == pytest.approx(rig.config.min_speed)


def test_release_damps_to_a_stop():
    rig = Rig()
    hold(rig, InputState(keys={"w", "right"}), 1.0, 30)
    hold(rig, InputState(), 2.0, 30)
    assert np.abs(rig.linear_velocity).max() < 1e-6 and np.abs(rig.angular_velocity).max() < 1e-6
    stopped = rig.pose
    hold(rig, InputState(), 1.0, 30)
    np.testing.assert_allclose(rig.pose, stopped, atol=1e-6)


SCRIPTS = {
    "walk": [({"w"}, 1.0)],
    "walk_and_turn": [({"w", "right"}, 1.0)],
    "sprint_strafe_look_up": [({"d", "shift", "up", "e"}, 1.0)],
    "press_and_release": [({"w", "left"}, 0.5), ({"a", "down"}, 0.25), (set(), 0.25)],
    "roll": [({"s", "z"}, 1.0)],
}


@pytest.mark.parametrize("fly", [False, True])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_same_input_same_motion_at_any_update_rate(script, fly):
    results = []
    for rate in (8, 16, 60):
        rig = Rig(RigConfig(fly=fly))
        for keys, seconds in SCRIPTS[script]:
            hold(rig, InputState(keys=keys), seconds, rate)
        results.append(rig.pose)
    assert np.linalg.norm(results[0][:3, 3]) > 0.3
    for pose in results[1:]:
        np.testing.assert_allclose(pose, results[0], atol=1e-7)


def test_mouse_turns_by_pixels_times_sensitivity_at_any_rate():
    finals = []
    for rate in (8, 16, 60):
        rig = Rig()
        n = rate // 2  # 0.5 s of mouse motion, 200 px right and 100 px down in total
        for _ in range(n):
            rig.update(InputState(keys={"w"}, mouse_dx=200 / n, mouse_dy=100 / n), 1.0 / rate)
        hold(rig, InputState(keys={"w"}), 1.0, rate)
        finals.append(rig.pose)
        np.testing.assert_allclose(rig.angles, [20.0, -10.0, 0.0], atol=1e-6)  # 0.1 deg/px, down looks down
    for pose in finals[1:]:
        # Where the walk ends depends a little on when the mouse events arrive (8 per second vs 60): centimetres.
        np.testing.assert_allclose(pose, finals[0], atol=2e-2)


def test_pitch_is_clamped_and_yaw_stays_about_world_up():
    rig = Rig()
    hold(rig, InputState(keys={"up", "right"}), 4.0, 16)
    yaw, pitch, roll = rig.angles
    assert pitch == pytest.approx(85.0) and roll == 0.0 and yaw > 150
    rig.update(InputState(mouse_dy=-5000), 0.0)  # more "up" is dropped, not stored up
    hold(rig, InputState(), 1.0, 16)
    assert rig.angles[1] == pytest.approx(85.0)
    rig.update(InputState(mouse_dy=100), 0.0)
    hold(rig, InputState(), 1.0, 16)
    assert rig.angles[1] == pytest.approx(75.0, abs=1e-6)
    # Without roll the camera's X axis is horizontal: yaw is about world up, never about a tilted axis.
    assert abs(rig.pose[1, 0]) < 1e-12


def test_walking_ignores_pitch_but_flying_follows_it():
    for fly, expect_y in ((False, 0.0), (True, -1.0)):
        rig = Rig(RigConfig(fly=fly, turn_time=0.0))
        rig.update(InputState(mouse_dy=-450), 0.0)  # look up 45 degrees
        hold(rig, InputState(), 1.0, 16)
        start = rig.pose[:3, 3].copy()
        hold(rig, InputState(keys={"w"}), 2.0, 16)
        d = rig.pose[:3, 3] - start
        assert np.sign(d[1]) == expect_y and (fly or abs(d[1]) < 1e-12)


def test_gamepad_axes_drive_like_keys():
    a, b = Rig(), Rig()
    hold(a, InputState(keys={"w", "right"}), 1.0, 16)
    hold(b, InputState(move_axes=(0.0, 1.0), look_axes=(1.0, 0.0)), 1.0, 16)
    np.testing.assert_allclose(a.pose, b.pose, atol=1e-12)
    assert InputState(move_axes=(3.0, -2.0)).move_axes == (1.0, -1.0)


def test_plan_chunk_is_pure_and_advance_lands_on_the_plan():
    rig = Rig()
    hold(rig, InputState(keys={"w", "left"}), 0.5, 16)
    rig.update(InputState(keys={"w", "left", "shift"}, mouse_dx=50), 0.0)
    before = rig.pose
    plan = rig.plan_chunk(24)
    assert plan.shape == (24, 4, 4)
    np.testing.assert_array_equal(rig.pose, before)
    np.testing.assert_array_equal(rig.plan_chunk(24), plan)
    with_first = rig.plan_chunk(25, include_current=True)
    np.testing.assert_array_equal(with_first[0], before)
    np.testing.assert_array_equal(with_first[1:], plan)
    advanced = rig.advance(24)
    np.testing.assert_array_equal(advanced, plan)
    np.testing.assert_array_equal(rig.pose, plan[-1])
    # Planning equals holding the same input through update() at the chunk's frame rate.
    ghost = Rig()
    hold(ghost, InputState(keys={"w", "left"}), 0.5, 16)
    ghost.update(InputState(keys={"w", "left", "shift"}, mouse_dx=50), 0.0)
    np.testing.assert_allclose(hold(ghost, InputState(keys={"w", "left", "shift"}), 1.5, 16), plan, atol=1e-12)


def test_plan_chunk_extrapolates_current_motion():
    rig = Rig()
    hold(rig, InputState(keys={"w"}), 2.0, 16)
    plan = rig.plan_chunk(16, fps=16)
    steps = np.linalg.norm(np.diff(np.concatenate([rig.pose[None], plan])[:, :3, 3], axis=0), axis=1)
    np.testing.assert_allclose(steps, 1.2 / 16, rtol=1e-4)


def test_every_rotation_stays_orthonormal_under_random_input():
    rng = np.random.default_rng(0)
    names = ["w", "a", "s", "d", "q", "e", "shift", "left", "right", "up", "down", "z", "c"]
    rig = Rig(RigConfig(fly=True))
    poses = []
    for _ in range(300):
        keys = {k for k in names if rng.random() < 0.25}
        inp = InputState(keys=keys, mouse_dx=rng.normal(0, 30), mouse_dy=rng.normal(0, 30))
        poses.append(rig.update(inp, float(rng.uniform(0.0, 0.2))))
    poses.append(rig.plan_chunk(24))
    assert_rotations_valid(np.concatenate([np.stack(poses[:-1]), poses[-1]]), atol=1e-12)
    assert abs(rig.angles[1]) <= 85.0 + 1e-9


def test_set_pose_and_reset():
    rig = Rig()
    pose = np.eye(4)
    pose[:3, :3] = rotation_from_angles(30.0, -20.0, 5.0)
    pose[:3, 3] = [1.0, 2.0, 3.0]
    rig.set_pose(pose)
    np.testing.assert_allclose(rig.pose, pose, atol=1e-12)
    np.testing.assert_allclose(angles_from_rotation(rig.pose[:3, :3]), [30.0, -20.0, 5.0], atol=1e-9)
    rig.reset()
    np.testing.assert_array_equal(rig.pose, np.eye(4))
    with pytest.raises(ValueError):
        rig.update(InputState(), -0.1)


def test_fit_speed_walks_a_close_up_slowly_and_open_ground_at_walking_speed():
    rig = Rig(RigConfig(walk_speed=1.2, min_speed=0.1, ahead_time=4.0))
    assert rig.fit_speed(0.8) == pytest.approx(0.2)  # a cup 0.8 m ahead: 4 s to reach it
    assert rig.speed == pytest.approx(0.2)
    assert rig.fit_speed(30.0) == 1.2  # open ground: the usual pace, never faster
    assert rig.fit_speed(0.0) == 0.1  # never below min_speed
    assert rig.fit_speed(None) == 1.2 and rig.fit_speed(float("nan")) == 1.2  # not known: the usual pace
    assert rig.fit_speed(float("inf")) == 1.2
    assert Rig(RigConfig(ahead_time=0.0)).fit_speed(0.5) == RigConfig().walk_speed  # switched off
    with pytest.raises(ValueError, match="ahead -1"):
        rig.fit_speed(-1.0)
    # what W then walks in a second, from the fitted speed (held long enough to reach it)
    rig.fit_speed(0.8)
    poses = hold(rig, InputState(keys={"w"}), 2.0, 16)
    assert (poses[-1, 2, 3] - poses[-17, 2, 3]) == pytest.approx(0.2, rel=0.02)
    assert rig.speed_up() == pytest.approx(0.25)  # +/- go on from the fitted speed
