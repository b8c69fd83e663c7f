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
