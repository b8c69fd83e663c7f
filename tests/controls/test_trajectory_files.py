"""controls.trajectory: round trips between every format, readers of foreign files, and clear errors for bad ones."""
import json

import numpy as np
import pytest
from controls_testutil import assert_rotations_valid, random_c2w

from worldwalk.controls.intrinsics import from_fov, to_matrix
from worldwalk.controls.se3 import invert, opencv_to_opengl
from worldwalk.controls.trajectory import Trajectory, TrajectoryError, load_trajectory, save_trajectory

WRITABLE = ["walk.json", "transforms.json", "walk.txt", "walk.npz"]


def make_traj(F: int = 13, varying: bool = True) -> Trajectory:
    intr = np.tile([300.0, 290.0, 161.5, 118.25], (F, 1))
    if varying:
        intr = intr + np.linspace(0.0, 7.0, F)[:, None]
    return Trajectory(random_c2w(F, seed=F), intr, fps=30.0, image_size=(320, 240), metadata={"name": "test"})


def assert_same(a: Trajectory, b: Trajectory, atol: float = 1e-6):
    np.testing.assert_allclose(a.c2w, b.c2w, atol=atol)
    np.testing.assert_allclose(a.intrinsics, b.intrinsics, atol=atol)
    assert a.fps == pytest.approx(b.fps) and a.image_size == b.image_size


@pytest.mark.parametrize("varying", [True, False])
@pytest.mark.parametrize("name", WRITABLE)
def test_round_trip_preserves_poses(tmp_path, name, varying):
    traj = make_traj(varying=varying)
    back = load_trajectory(save_trajectory(traj, tmp_path / name))
    assert_same(traj, back)
    assert_rotations_valid(back.c2w)
    if name != "walk.txt":
        assert back.metadata["name"] == "test"


def test_chain_through_every_format(tmp_path):
    traj = make_traj()
    current = traj
    for i, name in enumerate(WRITABLE * 2):
        folder = tmp_path / str(i)
        folder.mkdir()
        current = load_trajectory(save_trajectory(current, folder / name))
    assert_same(traj, current)


def test_npy_takes_intrinsics_in_every_official_layout(tmp_path):
    c2w = random_c2w(6)
    np.save(tmp_path / "poses.npy", c2w.astype(np.float32))
    v = np.array([200.0, 201.0, 128.0, 96.0])
    for layout in (v, to_matrix(v), np.tile(v, (6, 1)), np.tile(to_matrix(v), (6, 1, 1))):
        traj = load_trajectory(tmp_path / "poses.npy", intrinsics=layout, image_size=(256, 192), fps=8)
        np.testing.assert_allclose(traj.intrinsics, np.tile(v, (6, 1)))
        np.testing.assert_allclose(traj.c2w, c2w, atol=1e-6)
        assert_rotations_valid(traj.c2w, atol=1e-12)  # float32 rotations are projected back onto SO(3)
        assert traj.fps == 8 and "defaults" not in traj.metadata
    bare = load_trajectory(tmp_path / "poses.npy")
    np.testing.assert_allclose(bare.intrinsics[0], from_fov(256, 256))
    assert bare.metadata["defaults"] == ["image_size", "intrinsics", "fps"]


@pytest.mark.parametrize("pose_key, intr_key", [("poses", "intrinsics"), ("c2w", "K"), ("extrinsics", "Ks"),
                                                ("w2c", "intrinsic")])
def test_npz_key_names(tmp_path, pose_key, intr_key):
    c2w = random_c2w(5, seed=2)
    v = np.array([220.0, 220.0, 128.0, 128.0])
    intr = to_matrix(v) if intr_key.lower().startswith("k") else v
    stored = invert(c2w) if pose_key == "w2c" else c2w
    np.savez(tmp_path / "cams.npz", **{pose_key: stored, intr_key: intr})
    traj = load_trajectory(tmp_path / "cams.npz")
    np.testing.assert_allclose(traj.c2w, c2w, atol=1e-12)
    np.testing.assert_allclose(traj.intrinsics, np.tile(v, (5, 1)))


def test_nerfstudio_per_frame_intrinsics_and_camera_angle(tmp_path):
    c2w = random_c2w(3, seed=5)
    frames = [{"file_path": f"img/{i}.jpg", "transform_matrix": opencv_to_opengl(c2w[i]).tolist(),
               "fl_x": 100.0 + i, "fl_y": 101.0 + i} for i in range(3)]
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps({"w": 200, "h": 100, "cx": 99.0, "cy": 51.0, "frames": frames}))
    traj = load_trajectory(path)
    np.testing.assert_allclose(traj.c2w, c2w, atol=1e-12)
    np.testing.assert_allclose(traj.intrinsics[:, :2], [[100, 101], [101, 102], [102, 103]])
    assert traj.metadata["file_paths"] == ["img/0.jpg", "img/1.jpg", "img/2.jpg"]
    # instant-ngp style: a field of view instead of focal lengths, principal point defaulting to the centre.
    path.write_text(json.dumps({"w": 256, "h": 256, "camera_angle_x": np.radians(60.0),
                                "frames": [{"transform_matrix": np.eye(4).tolist()}]}))
    np.testing.assert_allclose(load_trajectory(path).intrinsics[0], from_fov(256, 256, 60.0))
    # The original NeRF scenes give no image size at all: the caller supplies it.
    nerf = {"camera_angle_x": np.radians(60.0), "frames": [{"transform_matrix": np.eye(4).tolist()}]}
    path.write_text(json.dumps(nerf))
    with pytest.raises(TrajectoryError, match="no image size"):
        load_trajectory(path)
    np.testing.assert_allclose(load_trajectory(path, image_size=(800, 800)).intrinsics[0], from_fov(800, 800, 60.0))


def test_re10k_reads_a_dataset_style_file(tmp_path):
    c2w = random_c2w(4, seed=9)
    w2c = invert(c2w)[:, :3].reshape(4, 12)
    lines = ["https://www.youtube.com/watch?v=abcdefghijk"]
    for k in range(4):
        lines.append(" ".join(map(str, [1001000 + 33367 * k, 0.5, 0.9, 0.5, 0.5, 0.0, 0.0, *w2c[k]])))
    path = tmp_path / "abc.txt"
    path.write_text("\n".join(lines) + "\n")
    traj = load_trajectory(path, image_size=(640, 360))
    np.testing.assert_allclose(traj.c2w, c2w, atol=1e-12)
    np.testing.assert_allclose(traj.intrinsics[0], [320.0, 324.0, 320.0, 180.0])
    assert traj.fps == pytest.approx(29.97, abs=0.01) and traj.metadata["url"].startswith("https://www.youtube")
    assert "image_size" not in traj.metadata.get("defaults", [])
    assert "image_size" in load_trajectory(path).metadata["defaults"]


def test_action_files(tmp_path):
    (tmp_path / "a.txt").write_text("w-30,jw-10,none-5\n")
    (tmp_path / "b.actions").write_text("w-30, jw-10, none-5")
    a, b = load_trajectory(tmp_path / "a.txt"), load_trajectory(tmp_path / "b.actions")
    assert len(a) == 46 and a.metadata["source_format"] == "actions"
    np.testing.assert_array_equal(a.c2w, b.c2w)


def test_trajectory_helpers():
    traj = make_traj(F=17, varying=False)
    rel = traj.relative_to_first()
    np.testing.assert_array_equal(rel.c2w[0], np.eye(4))
    slow = traj.resample(15.0)
    assert len(slow) == 9 and slow.fps == 15.0
    np.testing.assert_allclose(slow.c2w[::1][-1], traj.c2w[-1], atol=1e-9)
    small = traj.resized((160, 160))
    assert small.image_size == (160, 160)
    np.testing.assert_allclose(small.latent_intrinsics(32), small.intrinsics * [5 / 160, 5 / 160, 5 / 160, 5 / 160])
    assert traj.duration == pytest.approx(16 / 30)


# ------------------------------------------------------------------------------------------------------ bad files
GOOD = make_traj(F=4, varying=False)


def _json(**override):
    obj = {"format": "worldwalk-trajectory", "version": 1, "fps": 16, "image_size": [320, 240],
           "intrinsics": GOOD.intrinsics[0].tolist(), "c2w": GOOD.c2w.tolist()}
    obj.update(override)
    return json.dumps({k: v for k, v in obj.items() if v is not None})


def _c2w_with(fn):
    c2w = GOOD.c2w.copy()
    fn(c2w)
    return c2w.tolist()


def _npz(path, **arrays):
    np.savez(path, **arrays)


def _re10k_line(extra=()):
    w2c = invert(GOOD.c2w[0])[:3].reshape(-1)
    return " ".join(map(str, [0, 0.9, 0.9, 0.5, 0.5, 0, 0, *w2c, *extra]))


def _transforms(**override):
    obj = {"w": 320, "h": 240, "fl_x": 300.0, "frames": [{"transform_matrix": np.eye(4).tolist()}]}
    obj.update(override)
    return json.dumps({k: v for k, v in obj.items() if v is not None})


BAD_FILES = {
    "empty": ("t.json", ""),
    "whitespace": ("t.txt", "  \n\n"),
    "unknown extension": ("t.xyz", "1 2 3"),
    "invalid json": ("t.json", "{\"c2w\": [1, 2"),
    "json list": ("t.json", "[1, 2, 3]"),
    "missing intrinsics": ("t.json", _json(intrinsics=None)),
    "missing c2w": ("t.json", _json(c2w=None, frames=None)),
    "nan pose": ("t.json", _json(c2w=_c2w_with(lambda c: c[2].__setitem__((0, 3), np.nan)))),
    "scaled rotation": ("t.json", _json(c2w=_c2w_with(lambda c: c[1].__setitem__((slice(0, 3), slice(0, 3)),
                                                                                 2 * c[1, :3, :3])))),
    "reflection": ("t.json", _json(c2w=_c2w_with(lambda c: c[1].__setitem__((slice(0, 3), 0), -c[1, :3, 0])))),
    "bad bottom row": ("t.json", _json(c2w=_c2w_with(lambda c: c[0].__setitem__((3, 2), 1.0)))),
    "3x3 poses": ("t.json", _json(c2w=GOOD.c2w[:, :3, :3].tolist())),
    "ragged poses": ("t.json", _json(c2w=[np.eye(4).tolist(), np.eye(3).tolist()])),
    "count mismatch": ("t.json", _json(intrinsics=np.tile(GOOD.intrinsics[0], (3, 1)).tolist())),
    "negative focal": ("t.json", _json(intrinsics=[-300.0, 300.0, 160.0, 120.0])),
    "nan intrinsics": ("t.json", _json(intrinsics=[float("nan"), 300.0, 160.0, 120.0])),
    "bad image size": ("t.json", _json(image_size=[320])),
    "zero fps": ("t.json", _json(fps=0)),
    "wrong format tag": ("t.json", _json(format="something-else")),
    "npz without poses": ("t.npz", lambda p: _npz(p, intrinsics=GOOD.intrinsics)),
    "npz wrong shape": ("t.npz", lambda p: _npz(p, poses=np.zeros((4, 4)))),
    "npz count mismatch": ("t.npz", lambda p: _npz(p, poses=GOOD.c2w, intrinsics=GOOD.intrinsics[:2])),
    "npz nan": ("t.npz", lambda p: _npz(p, c2w=np.full((2, 4, 4), np.nan))),
    "npy pickled": ("t.npy", lambda p: np.save(p, np.array([{"c2w": 1}], dtype=object), allow_pickle=True)),
    "npy wrong shape": ("t.npy", lambda p: np.save(p, np.zeros((5, 6)))),
    "npy garbage": ("t.npy", "this is not numpy"),
    "npy non-rigid": ("t.npy", lambda p: np.save(p, np.tile(np.diag([1.0, 2.0, 1.0, 1.0]), (3, 1, 1)))),
    "re10k wrong columns": ("t.txt", "http://x\n" + _re10k_line(extra=[1.0]) + "\n"),
    "re10k not numbers": ("t.txt", "http://x\n" + _re10k_line().replace("0.9", "abc", 1) + "\n"),
    "re10k url only": ("t.txt", "https://www.youtube.com/watch?v=abc\n"),
    "re10k non-rigid": ("t.txt", "http://x\n" + " ".join(["0", "1", "1", ".5", ".5", "0", "0"] + ["2"] * 12)),
    "transforms no matrix": ("transforms.json", _transforms(frames=[{"file_path": "a.png"}])),
    "transforms no focal": ("transforms.json", _transforms(fl_x=None)),
    "transforms no size": ("transforms.json", _transforms(w=None, h=None)),
    "transforms no frames": ("transforms.json", _transforms(frames=[])),
    "bad action string": ("t.actions", "w-30,x-5"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_raise_one_clear_error_naming_the_file(tmp_path, kind):
    name, content = BAD_FILES[kind]
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_text(content)
    with pytest.raises(TrajectoryError) as info:
        load_trajectory(path)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert msg.startswith(str(path) + ": ") and "\n" not in msg and "expected" in msg, msg


def test_missing_file_and_unknown_forced_format(tmp_path):
    with pytest.raises(TrajectoryError, match="no such file"):
        load_trajectory(tmp_path / "nope.json")
    save_trajectory(GOOD, tmp_path / "ok.json")
    with pytest.raises(TrajectoryError, match="unknown format"):
        load_trajectory(tmp_path / "ok.json", format="vrml")
    with pytest.raises(TrajectoryError, match="cannot write"):
        save_trajectory(GOOD, tmp_path / "out.mp4")


def test_constructing_a_bad_trajectory_fails_early():
    with pytest.raises(TrajectoryError, match="not orthonormal"):
        Trajectory(np.tile(np.diag([1.0, 1.0, 3.0, 1.0]), (2, 1, 1)), from_fov(256, 256))
    with pytest.raises(TrajectoryError, match="3 intrinsics for 2 poses"):
        Trajectory(random_c2w(2), np.tile(from_fov(256, 256), (3, 1)))
