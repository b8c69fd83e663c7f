"""A start picture's own depth map beside it (photo.depth.png: world/images.Picture) through the front ends: `render`
walks the picture at that depth and records it, a replay uses it again (and refuses a missing or changed map), a
recording made without one replays without it, a bad map is one error line; the browser demo's start scenes carry
theirs, and no depth map is offered as a start scene."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worldwalk.app.video import read_video

ROOT = Path(__file__).resolve().parents[2]


def launch(*args):
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def render(image, out, *more):
    return launch("render", "--image", image, "--trajectory", "w-6,a-6", "--out", out, "--random-weights",
                  "--preset", "test", "--seed", "1", *more)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """The same picture twice: once with a depth map beside it (a wall 1.5 m away, the sky above), once without."""
    d = tmp_path_factory.mktemp("start_depth")
    img = np.zeros((64, 96, 3), np.uint8)
    img[:24] = (90, 140, 220)
    img[24:] = (150, 120, 90)
    img[30:50, 30:60] = (40, 60, 160)
    (d / "with").mkdir()
    (d / "without").mkdir()
    Image.fromarray(img).save(d / "with" / "wall.png")
    Image.fromarray(img).save(d / "without" / "wall.png")
    mm = np.zeros((64, 96), np.uint16)  # 0: the sky (none)
    mm[24:] = 1500
    Image.fromarray(mm).save(d / "with" / "wall.depth.png")
    return d


@pytest.fixture(scope="module")
def walks(pictures):
    d = pictures
    for name in ("with", "without"):
        r = render(d / name / "wall.png", d / f"{name}.mp4")
        assert r.returncode == 0, r.stderr
    return d


def test_render_walks_the_picture_at_its_own_depth_and_records_it(walks):
    d = walks
    rec = json.loads((d / "with.json").read_text())["metadata"]["worldwalk_recording"]
    plain = json.loads((d / "without.json").read_text())["metadata"]["worldwalk_recording"]
    assert len(rec["start_depth_sha256"]) == 64 and "start_depth_sha256" not in plain
    a, _ = read_video(d / "with.mp4")
    b, _ = read_video(d / "without.mp4")
    assert np.array_equal(a[0], b[0])  # the same start frame: the picture
    assert not np.array_equal(a, b)  # walked at another depth: other frames


def test_a_replay_uses_the_recorded_depth_again(walks):
    d = walks
    r = launch("render", "--replay", d / "with.json", "--out", d / "again.mp4", "--random-weights", "--preset", "test")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(read_video(d / "with.mp4")[0], read_video(d / "again.mp4")[0])
    # a recording made before depth maps (no field) replays without the map beside the picture, as it was made
    old = json.loads((d / "without.json").read_text())
    old["metadata"]["worldwalk_recording"]["image"] = str(d / "with" / "wall.png")
    (d / "old.json").write_text(json.dumps(old))
    r = launch("render", "--replay", d / "old.json", "--out", d / "old_again.mp4", "--random-weights", "--preset",
               "test")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(read_video(d / "without.mp4")[0], read_video(d / "old_again.mp4")[0])


def test_a_missing_or_changed_map_stops_a_replay_with_one_line(walks, tmp_path):
    d = walks
    shutil.copy(d / "with" / "wall.png", tmp_path / "wall.png")
    side = json.loads((d / "with.json").read_text())
    side["metadata"]["worldwalk_recording"]["image"] = str(tmp_path / "wall.png")
    (tmp_path / "rec.json").write_text(json.dumps(side))
    for setup, msg in ((None, "which is missing"), (2000, "not the one the recording walked it with")):
        if setup is not None:
            Image.fromarray(np.full((64, 96), setup, np.uint16)).save(tmp_path / "wall.depth.png")
        r = launch("render", "--replay", tmp_path / "rec.json", "--out", tmp_path / "x.mp4", "--random-weights",
                   "--preset", "test")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and msg in lines[0] and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("bad, msg", [(np.zeros((64, 96, 3), np.uint8), "16-bit PNG"),  # 8-bit colour: not a map
                                      (np.full((40, 40), 900, np.uint16), "the picture's shape")])  # square
def test_a_bad_map_beside_the_picture_is_one_error_line(tmp_path, bad, msg):
    Image.fromarray(np.zeros((64, 96, 3), np.uint8)).save(tmp_path / "p.png")
    Image.fromarray(bad).save(tmp_path / "p.depth.png")
    r = render(tmp_path / "p.png", tmp_path / "p.mp4")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "p.depth.png" in lines[0] and msg in lines[0], r.stderr
    assert not (tmp_path / "p.mp4").exists()


def test_the_demo_scenes_carry_their_depth_and_no_map_is_a_scene(tmp_path):
    from worldwalk.app.web.scenes import load_scenes
    from worldwalk.world.images import Picture

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.full((40, 40), 3000, np.uint16)).save(tmp_path / "a.depth.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(np.full((40, 20), 3000, np.uint16)).save(tmp_path / "c.depth.png")  # not its shape: left out
    scenes = load_scenes(tmp_path)
    assert [s.name for s in scenes] == ["A", "B", "C"] and scenes[2].depth is None
    assert isinstance(scenes[0].picture, Picture) and np.allclose(scenes[0].picture.depth, 3.0)
    assert scenes[1].depth is None and scenes[1].picture is scenes[1].image
    shipped = load_scenes()  # the app's own: every one with its depth map
    assert len(shipped) == 4 and all(isinstance(s.picture, Picture) for s in shipped)
