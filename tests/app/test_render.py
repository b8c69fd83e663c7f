"""`launch.py render` end to end: a real MP4 (PyAV), its sidecar, replay, and one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worldwalk.app.video import read_video

ROOT = Path(__file__).resolve().parents[2]


def launch(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("render")
    img = np.zeros((90, 120, 3), np.uint8)
    img[:45] = (90, 140, 220)  # sky
    img[45:] = (70, 120, 60)  # grass
    img[30:70, 50:70] = (160, 60, 40)  # a box
    Image.fromarray(img).save(d / "start.png")
    (d / "walk.actions").write_text("w-8,wl-5")  # 14 frames: 1 start + 13 generated (3 chunks of 6, trimmed)
    return d


@pytest.fixture(scope="module")
def rendered(scene):
    r = launch("render", "--image", scene / "start.png", "--trajectory", scene / "walk.actions",
               "--out", scene / "walk.mp4", "--random-weights", "--preset", "test", "--seed", "3")
    assert r.returncode == 0, r.stderr
    return scene / "walk.mp4"


def test_render_writes_a_real_video_and_sidecar(rendered):
    frames, fps = read_video(rendered)
    assert frames.shape == (14, 64, 96, 3) and fps == 16
    side = json.loads(rendered.with_suffix(".json").read_text())
    assert len(side["c2w"]) == 14 and side["fps"] == 16 and side["image_size"] == [96, 64]
    rec = side["metadata"]["worldwalk_recording"]
    assert rec["seed"] == 3 and rec["preset"] == "test" and rec["sampler"]["steps"] == 4
    assert rec["colour_match"] is True and rec["start_overlay"] is True
    assert len(rec["image_sha256"]) == 64


def test_replay_reproduces_the_walk(rendered, scene):
    r = launch("render", "--replay", rendered.with_suffix(".json"), "--out", scene / "again.mp4",
               "--random-weights", "--preset", "test")
    assert r.returncode == 0, r.stderr
    a, _ = read_video(rendered)
    b, _ = read_video(scene / "again.mp4")
    assert np.array_equal(a, b)
    # other sampler settings give another rendering of the same walk
    r = launch("render", "--replay", rendered.with_suffix(".json"), "--out", scene / "more.mp4",
               "--random-weights", "--preset", "test", "--steps", "2")
    assert r.returncode == 0, r.stderr
    c, _ = read_video(scene / "more.mp4")
    assert c.shape == a.shape and not np.array_equal(a, c)


def test_colour_match_off_is_recorded_and_replayed(rendered, scene):
    off = scene / "off.mp4"
    r = launch("render", "--replay", rendered.with_suffix(".json"), "--out", off, "--random-weights", "--preset",
               "test", "--colour-match", "off")
    assert r.returncode == 0, r.stderr
    assert json.loads(off.with_suffix(".json").read_text())["metadata"]["worldwalk_recording"]["colour_match"] is False
    a, _ = read_video(rendered)
    b, _ = read_video(off)
    assert b.shape == a.shape and not np.array_equal(a, b)  # same latents, other colours
    r = launch("render", "--replay", off.with_suffix(".json"), "--out", scene / "off2.mp4", "--random-weights",
               "--preset", "test")  # the recording's setting, without the flag
    assert r.returncode == 0, r.stderr
    c, _ = read_video(scene / "off2.mp4")
    assert np.array_equal(b, c)


@pytest.mark.parametrize("case,args,msg", [
    ("missing image", ["--image", "nope.png", "--trajectory", "orbit"], "no such file"),
    ("not an image", ["--image", "walk.actions", "--trajectory", "orbit"], "not a readable image"),
    ("bad trajectory", ["--image", "start.png", "--trajectory", "start.png"], "unknown trajectory format"),
    ("bad out", ["--image", "start.png", "--trajectory", "orbit", "--out", "x.avi"], "expected a .mp4"),
    ("no weights", ["--image", "start.png", "--trajectory", "orbit", "--weights", "none.safetensors"], "no such file"),
])
def test_errors_are_one_line(scene, case, args, msg):
    if "--out" not in args:
        args = args + ["--out", "o.mp4"]
    if "--weights" not in args:
        args = args + ["--random-weights", "--preset", "test"]
    r = launch("render", *args, cwd=scene)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and msg in err[0], r.stderr


BUNDLE = ROOT / "assets" / "default_world.safetensors"


@pytest.mark.parametrize("world,flag,msg", [
    (["--random-weights", "--preset", "test"], ["--prompt", "a beach"],
     ("error: --prompt: the --random-weights world has no text branch; prompts need --weights DIR with "
      "text_encoder/ and tokenizer/")),
    ([], ["--prompt", "a beach"], "error: --prompt: the embedded default world has no text branch"),
    (["--weights", BUNDLE], ["--prompt", "a beach"], f"error: --prompt: the world bundle {BUNDLE} has no text branch"),
    (["--random-weights"], ["--fp8"], "error: --fp8: only for a release directory (--weights DIR)"),
    (["--weights", BUNDLE], ["--fp8"], "error: --fp8: only for a release directory (--weights DIR)"),
], ids=["prompt-random", "prompt-default", "prompt-bundle", "fp8-random", "fp8-bundle"])
def test_release_only_options_are_one_line_errors_elsewhere(scene, world, flag, msg):
    if not BUNDLE.exists() and "--random-weights" not in world:
        pytest.skip("the embedded default world is not in this checkout")
    r = launch("render", "--image", "start.png", "--trajectory", "orbit", "--out", "o.mp4", *world, *flag, cwd=scene)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(msg), r.stderr


def test_replay_of_a_prompted_walk_needs_a_text_branch(rendered, scene):
    side = json.loads(rendered.with_suffix(".json").read_text())
    side["metadata"]["worldwalk_recording"]["prompt"] = "a beach"
    (scene / "prompted.json").write_text(json.dumps(side))
    r = launch("render", "--replay", scene / "prompted.json", "--out", scene / "p.mp4", "--random-weights",
               "--preset", "test")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "error: the recording's prompt 'a beach': the --random-weights world has no text branch; prompts need "
        "--weights DIR with text_encoder/ and tokenizer/")
