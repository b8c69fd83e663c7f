"""controls.actions: the official WASD/IJKL action strings, with diffusers' implementation as the oracle."""
import numpy as np
import pytest
from controls_testutil import assert_rotations_valid

from worldwalk.controls.actions import actions_to_c2w, looks_like_actions, parse_actions
from worldwalk.controls.trajectory import TrajectoryError, trajectory_from_actions

cam_utils = pytest.importorskip("diffusers.pipelines.sana_wm.cam_utils")

STRINGS = [
    "w-30,jw-10,none-5",
    "w-80,jw-40,w-40",
    "i-90,k-200,l-30",  # runs into both pitch limits
    "wasd-3,WD-7 , sl-12，ikjl-4,aj-20",  # upper case, spaces, full-width comma, opposite keys
    "lw-300",  # more than a full turn
    "ik-5,ddd-2,-3",  # empty key set is "no keys", as upstream
]


@pytest.mark.parametrize("action", STRINGS)
def test_poses_match_the_official_implementation(action):
    ours = actions_to_c2w(action)
    ref = cam_utils.action_string_to_c2w(action)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-5)  # upstream rolls out in float64 and returns float32
    assert_rotations_valid(ours)


def test_speeds_are_passed_through():
    kw = dict(translation_speed=0.2, rotation_speed_deg=3.0, pitch_limit_deg=30.0)
    np.testing.assert_allclose(actions_to_c2w("wi-40,jd-20", **kw), cam_utils.action_string_to_c2w("wi-40,jd-20", **kw),
                               atol=2e-5)


@pytest.mark.parametrize("bad", ["", "   ", "w30", "w-0", "x-5", "w-5,,a-3", "w--3", "w-3.5"])
def test_bad_strings_are_rejected_like_upstream(bad):
    with pytest.raises(ValueError):
        cam_utils.action_string_to_c2w(bad)
    with pytest.raises(ValueError):
        parse_actions(bad)
    assert not looks_like_actions(bad)
    with pytest.raises(TrajectoryError, match="action string"):
        trajectory_from_actions(bad)


def test_trajectory_from_actions_carries_metadata_and_default_camera():
    traj = trajectory_from_actions("w-16,l-8")
    assert len(traj) == 25 and traj.fps == 16.0 and traj.image_size == (256, 256)
    assert traj.metadata["actions"] == "w-16,l-8"
    np.testing.assert_allclose(traj.c2w[16, :3, 3], [0, 0, 0.8])
