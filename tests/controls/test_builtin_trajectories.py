"""The built-in trajectories shipped in assets/trajectories."""
import numpy as np
import pytest
from controls_testutil import assert_rotations_valid

from worldwalk.controls.builtin import BUILTINS, builtin_path, load_builtin, make_builtin, write_builtins
from worldwalk.controls.intrinsics import fov_deg


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_shipped_file_is_valid_metric_and_up_to_date(name):
    path = builtin_path(name)
    assert path.is_file(), f"{path} missing: run python -m worldwalk.controls.builtin"
    traj = load_builtin(name)
    fresh = make_builtin(name)
    # The committed asset is what the generator makes today (otherwise: python -m worldwalk.controls.builtin).
    np.testing.assert_allclose(traj.c2w, fresh.c2w, atol=1e-9)
    np.testing.assert_array_equal(traj.intrinsics, fresh.intrinsics)
    assert_rotations_valid(traj.c2w, atol=1e-12)
    np.testing.assert_array_equal(traj.c2w[0], np.eye(4))
    assert traj.fps == 16.0 and traj.image_size == (256, 256)
    assert fov_deg(traj.intrinsics, 256, 256)[0] == pytest.approx(60.0)
    assert (len(traj) - 1) % 8 == 0 and 4.0 <= traj.duration <= 10.0
    speed = np.linalg.norm(np.diff(traj.c2w[:, :3, 3], axis=0), axis=1) * traj.fps
    assert speed.max() < 1.5  # walking pace
    assert traj.metadata["name"] == name and traj.metadata["description"]


def test_out_and_back_returns_exactly_to_its_start():
    traj = load_builtin("out_and_back")
    np.testing.assert_allclose(traj.c2w[-1], traj.c2w[0], atol=1e-12)
    assert np.linalg.norm(traj.c2w[:, :3, 3], axis=1).max() == pytest.approx(2.0)


def test_each_builtin_does_what_its_name_says():
    walk = make_builtin("walk_forward").c2w
    assert walk[-1, 2, 3] > 5.0 and np.abs(walk[:, :2, 3]).max() < 1e-12
    strafe = make_builtin("strafe").c2w
    assert strafe[-1, 0, 3] > 4.0 and np.abs(strafe[:, 1:3, 3]).max() < 1e-12
    np.testing.assert_allclose(strafe[:, :3, :3], np.broadcast_to(np.eye(3), (len(strafe), 3, 3)))
    look = make_builtin("look_around").c2w
    assert np.abs(look[:, :3, 3]).max() == 0.0 and look[:, 0, 2].max() > 0.7  # turns ~50 degrees
    orbit = make_builtin("orbit").c2w
    pivot = np.array([0.0, 0.0, 3.0])
    np.testing.assert_allclose(np.linalg.norm(orbit[:, :3, 3] - pivot, axis=1), 3.0)
    to_pivot = pivot - orbit[:, :3, 3]
    np.testing.assert_allclose(np.einsum("fi,fi->f", orbit[:, :3, 2], to_pivot / 3.0), 1.0)  # always facing it


def test_generator_writes_every_builtin(tmp_path):
    paths = write_builtins(tmp_path)
    assert sorted(p.stem for p in paths) == sorted(BUILTINS)
