"""Helpers of the app tests (imported by them; pytest collects nothing here): waiting for a condition, and replaying
a recording through the real `launch.py render` in a process of its own."""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wait_for(cond, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def render_replay(recording, out, threads: int | None = None) -> subprocess.CompletedProcess:
    """`launch.py render --replay RECORDING --out OUT` with the test preset's untrained world (the one the tests
    record with). threads: the render's CPU threads (those of the recording, for frames equal bit for bit)."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), "render", "--replay", str(recording), "--out",
                           str(out), "--random-weights", "--preset", "test"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=env)
