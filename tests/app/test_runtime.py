"""The app's allocator setting (worldwalk/app/runtime.py): large freed buffers stay in the heap for the next chunk.

Checked on the C library itself, in fresh processes: glibc's mallinfo2 counts the bytes it handed out through mmap.
"""
import ctypes
import ctypes.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallinfo2")


PROBE = textwrap.dedent("""
    import ctypes, ctypes.util, sys
    import torch
    from worldwalk.app.runtime import keep_freed_memory, allocator_label

    class MallInfo2(ctypes.Structure):
        _fields_ = [(k, ctypes.c_size_t) for k in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "call":
        keep_freed_memory()
    before = libc.mallinfo2().hblkhd
    x = torch.empty(16 << 20)  # 64 MiB of float32, as large as a chunk's biggest decoder activation
    x.fill_(1.0)
    mapped = libc.mallinfo2().hblkhd - before
    del x
    y = torch.empty(16 << 20)  # the same size again
    print(allocator_label())
    print(mapped >> 20)
""")


def probe(arg: str, **env) -> tuple[str, int]:
    e = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    r = subprocess.run([sys.executable, "-c", PROBE, arg], capture_output=True, text=True, env=e, timeout=120)
    assert r.returncode == 0, r.stderr
    label, mib = r.stdout.strip().splitlines()[-2:]
    return label, int(mib)


@pytest.mark.skipif(not glibc(), reason="glibc's malloc only")
def test_large_buffers_come_from_the_heap():
    label, mapped = probe("call")
    assert label == "heap" and mapped == 0  # not handed out through mmap: freed, it stays for the next chunk
    label, mapped = probe("skip")  # without the setting, glibc maps it (and unmaps it on free)
    assert label == "system" and mapped >= 64


@pytest.mark.skipif(not glibc(), reason="glibc's malloc only")
def test_worldwalk_malloc_system_leaves_the_c_library_alone():
    label, mapped = probe("call", WORLDWALK_MALLOC="system")
    assert label == "system (WORLDWALK_MALLOC=system)" and mapped >= 64


def test_an_unknown_worldwalk_malloc_is_one_clear_error(tmp_path):
    """A misspelt opt-out is not silently ignored: the command stops before anything runs, exit 2, one line naming
    the variable, its value and the choices; "heap" and an empty value are the default."""
    code = ("import sys; from worldwalk.app.cli import main; "
            "sys.exit(main(['render', '--trajectory', 'w-12', '--out', sys.argv[1]]))")
    out = tmp_path / "out.mp4"
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "WORLDWALK_MALLOC": "sytem"})
    assert r.returncode == 2 and not out.exists(), r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: WORLDWALK_MALLOC='sytem': expected 'heap'")
    assert "system" in lines[0] and "Traceback" not in r.stderr
    for ok in ("heap", "", " System "):
        label, _ = probe("call", WORLDWALK_MALLOC=ok)
        assert label.startswith("system (WORLDWALK_MALLOC") == (ok.strip().lower() == "system")


def test_the_command_line_sets_it_before_any_command(tmp_path):
    """Every command goes through it (here a render that fails on a missing trajectory: exit 2, one line)."""
    code = ("import sys; from worldwalk.app.cli import main; from worldwalk.app.runtime import allocator_label; "
            "rc = main(['render', '--trajectory', sys.argv[1], '--out', sys.argv[2]]); print(rc); print(allocator_label())")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.json"), str(tmp_path / "out.mp4")],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    rc, label = r.stdout.strip().splitlines()[-2:]
    assert rc == "2" and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert label == "heap" if glibc() else label.startswith("system (")


def test_slow_start_notice_speaks_only_when_slow():
    import io
    import time

    from worldwalk.app.runtime import SlowStartNotice

    out = io.StringIO()
    with SlowStartNotice(after=0.2, stream=out) as n:
        time.sleep(0.6)
    assert n.shown and out.getvalue().count("\n") == 1 and "first run on a machine compiles" in out.getvalue()
    out = io.StringIO()
    with SlowStartNotice(after=0.5, stream=out) as n:
        pass
    time.sleep(0.8)  # (the timer was cancelled: nothing comes later either)
    assert not n.shown and out.getvalue() == ""


def test_a_first_run_says_why_it_is_slow_and_the_next_one_is_quick(tmp_path):
    """A render on a machine whose numba cache is empty (here: a fresh NUMBA_CACHE_DIR) compiles the memory's
    kernels at start, some 20-30 s in which nothing else shows: the notice says why, once. The next run finds the
    kernels on disk and says nothing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    cmd = [sys.executable, str(ROOT / "launch.py"), "render", "--image", str(ROOT / "assets/scenes/world_1.png"),
           "--trajectory", "w-12", "--out", str(tmp_path / "walk.mp4")]
    notices = []
    for _ in range(2):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "walk.mp4").stat().st_size > 0
        notices.append(r.stderr.count("first run on a machine compiles"))
    assert notices == [1, 0]
