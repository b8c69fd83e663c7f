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
    # 14 frames: 1 start + 13 generated (3 chunks of 6, trimmed); the turn reveals what the picture did not show,
    # which the model draws (where the world memory sees, the frames are its render of the picture, whatever the
    # sampler or the colour map)
    (d / "walk.actions").write_text("w-4,l-9")
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


# ---- bad values: one error line, exit 2, and no output left behind (issue 26) ----

def bad_value_cases(tmp):
    """id -> (arguments, what the error line must say); the test adds --image, --trajectory and --out (tmp/o.mp4)
    where a case does not give them."""
    (tmp / "folder.mp4").mkdir()
    (tmp / "imgdir").mkdir()
    (tmp / "bad_actions.txt").write_text("w-8,xx-5\n")
    (tmp / "prose.txt").write_text("walk forward for a while, then turn left\n")
    return {
        "shift nan": (["--shift", "nan"], "argument --shift: 'nan' is not a finite number"),
        "shift inf": (["--shift", "inf"], "argument --shift: 'inf' is not a finite number"),
        "shift -inf": (["--shift=-inf"], "argument --shift: '-inf' is not a finite number"),
        "shift 0": (["--shift", "0"], "argument --shift: '0' is not > 0"),
        "fov nan": (["--fov", "nan"], "argument --fov: 'nan' is not a finite number"),
        "fov inf": (["--fov", "inf"], "argument --fov: 'inf' is not a finite number"),
        "fov out of range": (["--fov", "170"], "argument --fov: '170' is out of range; expected a horizontal field"),
        "reproject nan": (["--reproject", "nan"], "argument --reproject: 'nan'"),
        "seed huge": (["--seed", str(2**70)], f"argument --seed: '{2**70}' is out of range; expected a seed from 0"),
        "seed expression": (["--seed", "2**70"], "argument --seed: '2**70' is not a whole number"),
        "seed negative": (["--seed", "-1"], "argument --seed: '-1' is out of range"),
        "steps 0": (["--steps", "0"], "argument --steps: '0' is below 1"),
        "window 0": (["--window", "0"], "argument --window: '0' is below 1"),
        "device unknown": (["--device", "floppy"], "--device floppy: unknown device; expected cpu or cuda"),
        "out in /proc": (["--out", "/proc/x.mp4"], "--out /proc/x.mp4: cannot write there"),
        "out is a directory": (["--out", tmp / "folder.mp4"], f"--out {tmp / 'folder.mp4'}: is a directory"),
        "out folder missing": (["--out", tmp / "nowhere" / "o.mp4"], "nowhere: no such folder"),
        "trajectory unknown": (["--trajectory", "walk_sideways"],
                               ("--trajectory walk_sideways: no such file, built-in or action string; expected a "
                                "trajectory file")),
        "trajectory bad actions": (["--trajectory", "w-8,xx-5"],
                                   "--trajectory w-8,xx-5: action segment 'xx-5' uses keys ['x']"),
        "trajectory directory": (["--trajectory", tmp / "imgdir"], "imgdir: is a directory; expected a trajectory"),
        "txt bad actions": (["--trajectory", tmp / "bad_actions.txt"],
                            f"--trajectory {tmp / 'bad_actions.txt'}: read as an action string: action segment 'xx-5'"),
        "txt prose": (["--trajectory", tmp / "prose.txt"],
                      f"--trajectory {tmp / 'prose.txt'}: neither an action string nor RealEstate10K camera lines"),
        "image directory": (["--image", tmp / "imgdir"],
                            f"--image {tmp / 'imgdir'}: is a directory; expected a PNG/JPEG/WebP image file"),
        "image missing": (["--image", tmp / "nope.png"], "nope.png: no such file; expected a PNG/JPEG/WebP image"),
    }


BAD_VALUE_IDS = ["shift nan", "shift inf", "shift -inf", "shift 0", "fov nan", "fov inf", "fov out of range",
                 "reproject nan", "seed huge", "seed expression", "seed negative", "steps 0", "window 0",
                 "device unknown", "out in /proc", "out is a directory", "out folder missing", "trajectory unknown",
                 "trajectory bad actions", "trajectory directory", "txt bad actions", "txt prose", "image directory",
                 "image missing"]


def one_error_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    err = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(err) == 1 and err[0].startswith("error: "), r.stderr
    return err[0]


@pytest.mark.parametrize("case", BAD_VALUE_IDS)
def test_bad_values_are_one_line_and_leave_no_output(scene, tmp_path, case):
    if case == "out in /proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    args, msg = bad_value_cases(tmp_path)[case]
    args = [str(a) for a in args]
    if "--image" not in args:
        args += ["--image", str(scene / "start.png")]
    if "--trajectory" not in args:
        args += ["--trajectory", str(scene / "walk.actions")]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "o.mp4")]
    out = Path(args[args.index("--out") + 1])
    before = sorted(p.name for p in tmp_path.iterdir())
    r = launch("render", *args, "--random-weights", "--preset", "test", cwd=tmp_path)
    err = one_error_line(r)
    assert msg in err, err
    assert not out.is_file() and not out.with_suffix(".json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written (no probe or temporary file left)
    if out.is_dir():
        assert not any(out.iterdir())


def test_a_sidecar_may_not_overwrite_the_trajectory(scene, tmp_path):
    from worldwalk.controls import save_trajectory, trajectory_from_actions
    walk = save_trajectory(trajectory_from_actions("w-3"), tmp_path / "walk.json")
    text = walk.read_text()
    r = launch("render", "--image", scene / "start.png", "--trajectory", walk, "--out", tmp_path / "walk.mp4",
               "--random-weights", "--preset", "test")
    assert f"--out {tmp_path / 'walk.mp4'}: its sidecar {walk} would overwrite the input" in one_error_line(r)
    assert walk.read_text() == text and not (tmp_path / "walk.mp4").exists()


def test_a_bad_value_leaves_an_earlier_render_alone(scene, tmp_path):
    (tmp_path / "o.mp4").write_bytes(b"an earlier render")
    (tmp_path / "o.json").write_text("{}")
    r = launch("render", "--image", scene / "start.png", "--trajectory", "w-3", "--out", tmp_path / "o.mp4",
               "--random-weights", "--preset", "test", "--shift", "nan")
    one_error_line(r)
    assert (tmp_path / "o.mp4").read_bytes() == b"an earlier render" and (tmp_path / "o.json").read_text() == "{}"


@pytest.mark.parametrize("exc,rc", [(ValueError("step: the sampler gave NaN"), 2), (KeyboardInterrupt(), 130)],
                         ids=["error", "ctrl-c"])
def test_a_render_that_fails_midway_removes_its_partial_output(scene, tmp_path, monkeypatch, capsys, exc, rc):
    from worldwalk.app import cli
    from worldwalk.world.session import Session

    def fail(self, poses):
        raise exc
    monkeypatch.setattr(Session, "step", fail)
    out = tmp_path / "o.mp4"
    assert cli.main(["render", "--image", str(scene / "start.png"), "--trajectory", "w-3", "--out", str(out),
                     "--random-weights", "--preset", "test"]) == rc
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc == 2:
        assert err.strip().splitlines()[-1] == "error: step: the sampler gave NaN"
    assert list(tmp_path.iterdir()) == []  # neither the 1-frame MP4 nor a sidecar


def test_trajectory_takes_an_action_string(scene, tmp_path):
    from worldwalk.controls import trajectory_from_actions
    out = tmp_path / "inline.mp4"
    r = launch("render", "--image", scene / "start.png", "--trajectory", "w-2,jw-3", "--out", out,
               "--random-weights", "--preset", "test", "--seed", "1")
    assert r.returncode == 0, r.stderr
    frames, fps = read_video(out)
    assert frames.shape == (6, 64, 96, 3) and fps == 16  # 1 start frame + 5 of actions
    side = json.loads(out.with_suffix(".json").read_text())
    assert np.allclose(side["c2w"], trajectory_from_actions("w-2,jw-3").relative_to_first().c2w)


def test_a_killed_recording_replays_from_its_journal(scene, tmp_path):
    """kill -9 while rendering: the fragmented MP4 and the .jsonl journal (flushed per chunk) survive, and
    `render --replay <journal>` reproduces the partial video's frames exactly."""
    import os
    import signal
    import time

    out = tmp_path / "long.mp4"
    journal = out.with_suffix(".jsonl")
    p = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "render", "--image", str(scene / "start.png"),
                          "--trajectory", "w-900", "--out", str(out), "--random-weights", "--preset", "test",
                          "--seed", "5"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None:
            if journal.is_file() and len(journal.read_text().splitlines()) >= 8:  # header + 7 chunks (>= 37 frames)
                break
            time.sleep(0.05)
        assert p.poll() is None, p.stderr.read().decode()
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
    partial, _ = read_video(out)  # up to the last complete fragment
    assert 16 <= len(partial) < 900
    r = launch("render", "--replay", journal, "--out", tmp_path / "again.mp4", "--random-weights", "--preset", "test")
    assert r.returncode == 0, r.stderr
    again, _ = read_video(tmp_path / "again.mp4")
    assert len(again) >= len(partial)
    assert np.array_equal(again[:len(partial)], partial)
    assert not (tmp_path / "again.jsonl").exists()  # a recording that closes removes its journal


def test_a_journal_cut_mid_line_keeps_its_complete_chunks(tmp_path):
    from worldwalk.app.recorder import Recorder
    from worldwalk.controls import load_trajectory

    rec = Recorder(tmp_path / "w.mp4", 16, (32, 32), [30.0, 30.0, 16.0, 16.0], {"seed": 1})
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, 2, 3] = [0.1, 0.2, 0.3]
    rec.add(np.zeros((3, 32, 32, 3), np.uint8), poses)
    later = poses.copy()
    later[:, 0, 3] = 1.0
    rec.add(np.zeros((3, 32, 32, 3), np.uint8), later)
    text = (tmp_path / "w.jsonl").read_text()
    (tmp_path / "cut.jsonl").write_text(text[:-20])  # the second chunk's line cut short, as by a crash
    traj = load_trajectory(tmp_path / "cut.jsonl")
    assert np.allclose(traj.c2w, poses) and traj.fps == 16 and tuple(traj.image_size) == (32, 32)
    assert traj.metadata["worldwalk_recording"] == {"seed": 1}
    assert len(load_trajectory(tmp_path / "w.jsonl").c2w) == 6
    rec.close()
    assert not (tmp_path / "w.jsonl").exists() and (tmp_path / "w.json").is_file()
