"""launch.py as a person runs it."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_info_prints_every_preset():
    r = run("info")
    assert r.returncode == 0, r.stderr
    assert "sana-wm-1600m: 2,661,800,448 parameters" in r.stdout
    assert "tiny:" in r.stdout and "test:" in r.stdout


def test_unknown_preset_is_one_line_and_exit_2():
    r = run("info", "--preset", "huge")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown preset 'huge'" in r.stderr
    assert "Traceback" not in r.stderr


def without_pyav(*args):
    """launch.py with PyAV made unimportable (a training machine without it)."""
    code = ("import sys; sys.modules['av'] = None; sys.argv = ['launch.py', *sys.argv[1:]]; "
            "from worldwalk.app.cli import main; sys.exit(main())")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_train_runs_without_pyav_and_video_output_says_what_is_missing(tmp_path):
    r = without_pyav("train", "world", "--help")
    assert r.returncode == 0 and "--recycle" in r.stdout, r.stderr
    out = tmp_path / "walk.mp4"
    r = without_pyav("render", "--random-weights", "--trajectory", "walk_forward", "--image",
                     str(ROOT / "assets/scenes/world_1.png"), "--out", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "PyAV is not installed" in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_train_bad_workers_minutes_widths_and_grain_are_one_line_and_exit_2(tmp_path):
    bundle = str(ROOT / "assets/default_world.safetensors")
    for args, says in ((("data", "--dir", str(tmp_path / "d"), "--workers", "0"), "--workers 0"),
                       (("decoder-adv", "--dir", str(tmp_path / "d"), "--vae", bundle, "--world", bundle,
                         "--out", str(tmp_path / "o"), "--minutes", "0"), "--minutes 0"),
                       (("decoder-adv", "--dir", str(tmp_path / "d"), "--vae", bundle, "--world", bundle,
                         "--out", str(tmp_path / "o"), "--decoder-widths", "64,32,32,16"), "--decoder-widths"),
                       (("decoder-adv", "--dir", str(tmp_path / "d"), "--vae", bundle, "--world", bundle,
                         "--out", str(tmp_path / "o"), "--grain", "0"), "--grain 0")):
        r = run("train", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0 and says in r.stderr, r.stderr
    assert not (tmp_path / "d").exists() and not (tmp_path / "o").exists()
