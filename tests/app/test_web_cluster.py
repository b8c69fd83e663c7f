"""Serving walks on Ray (app/web/cluster.py): a local Ray cluster on 127.0.0.1 with 2 CPUs, three visitors over two
one-CPU actors (test preset, untrained weights): capacity, isolation, the line, and an actor killed mid-walk whose
visitor goes on from the walk's last kept state."""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the cluster path needs Ray (pip install -e '.[cluster]')")

from app_helpers import render_replay, wait_for  # noqa: E402
from worldwalk.app.video import read_video  # noqa: E402
from worldwalk.app.web import add_parser  # noqa: E402
from worldwalk.app.web.cluster import MOVED, Cluster  # noqa: E402
from worldwalk.app.web.scenes import drawn_scenes  # noqa: E402
from worldwalk.app.web.walks import Limits, WalkManager  # noqa: E402


def test_no_cluster_to_join_is_one_line():
    """`--ray auto` with no Ray cluster running (this test runs before the module's cluster starts): one error line,
    exit 2, nothing left listening."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run([sys.executable, str(root / "launch.py"), "web", "--ray", "auto", "--random-weights", "--preset",
                        "test", "--port", "0"], capture_output=True, text=True, cwd=root, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --ray auto: cannot join a Ray cluster"), r.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", configure_logging=False,
             log_to_driver=False)
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())
    args = p.parse_args(["web", "--random-weights", "--preset", "test", "--steps", "1", "--ray", "auto"])
    c = Cluster(args, "auto", cpus=1)
    c.args_used = args
    m = WalkManager(c.make_session, limits=Limits(max_walks=c.capacity(), idle_timeout=0), walk_factory=c.walk_factory,
                    workdir=tmp_path_factory.mktemp("walks"), capacity=c.capacity)
    yield c, m
    m.shutdown()
    ray.shutdown()


def frames_in(path) -> int:
    """Frames a (partial) MP4 holds so far: the fragments written up to now (0 before the first)."""
    try:
        return len(read_video(path)[0])
    except Exception:  # noqa: BLE001 - no file yet, or no complete fragment yet
        return 0


def walk_on(w, until, what):
    """The page: pull frames while keys are held, until `until()`."""
    wait_for(lambda: (w.frame_after(w.seq), until())[1], timeout=120.0, what=what)


def test_three_visitors_two_workers_isolation_line_and_a_killed_actor(cluster):
    c, m = cluster
    assert c.capacity() == 2 and m.limits.max_walks == 2 and m.follow_capacity() == 2
    img = drawn_scenes()[0].image
    a = m.start_live("tab-a", img, 0, "Meadow")
    b = m.start_live("tab-b", img, 1, "Meadow")
    d = m.start_live("tab-c", img, 2, "Meadow")
    assert (a.state, b.state, d.state) == ("live", "live", "waiting") and m.position(d.token) == 1
    assert d.status(m.position(d.token))["position"] == 1
    # isolation: a walks forward, b stands still, each in its own actor
    a.set_input(["w"], n=1)
    walk_on(a, lambda: a.status()["pos"][2] > 0.3, "a walking forward")
    sb = b.status()
    assert sb["pos"][2] == 0.0  # b stands where it started (its actor generates what b holds: nothing)
    assert a.speed_note == "" and sb["speed"] == 1.2  # no depth network here: the usual pace, nothing to say
    b.set_input(["faster"], n=1)  # + over Ray: one step, in b's own actor
    wait_for(lambda: b.status()["speed"] == 1.5, timeout=60.0, what="b one step faster")
    assert a.status()["speed"] == 1.2
    seq, jpeg = a.frame_after(0)
    assert seq > 1 and jpeg[:2] == b"\xff\xd8"  # JPEG bytes, not tensors
    # a recording made before the fault is kept on the front end
    assert a.record_start() == "recording…"
    at = a.status()["frames"]
    walk_on(a, lambda: a.status()["frames"] > at + 24, "a recording")
    msg, mp4, side = a.record_stop()
    assert mp4 is not None and mp4.is_file() and m.download(a.token, mp4.name) == mp4, msg
    # the state kept by the front end, a second recording under way, then the actor dies mid-walk
    wait_for(lambda: a._checkpoint is not None, timeout=120.0, what="a kept state")
    kept_z = a.status()["pos"][2]
    assert a.record_start() == "recording…"
    walk_on(a, lambda: frames_in(a.dir / "walk-02.mp4") >= 6, "the recording in progress copied")
    ray.kill(a.host, no_restart=True)
    t0 = time.monotonic()
    # ray.kill returns before the actor is gone: calls reach it until then, and the first that finds it gone moves
    # the walk
    wait_for(lambda: a.status()["moves"] == 1, timeout=30.0, what="the walk to move after the kill")
    s = a.status()
    assert a.moves == 1 and s["message"].startswith(MOVED) and s["state"] == "live"
    assert s["pos"][2] >= kept_z - 1e-6  # it goes on from its last kept state, not from the start
    walk_on(a, lambda: a.status()["pos"][2] > s["pos"][2] + 0.2, "a walking on after the move")
    assert time.monotonic() - t0 < 60 and a.recovery_s[0] < 60
    assert m.download(a.token, mp4.name) == mp4 and mp4.is_file()  # the recording survived
    # the recording in progress at the fault is kept up to its last copy, and replays from its journal
    assert "recording was kept" in s["message"] and not a.recording
    part = m.download(a.token, "walk-02.mp4")
    journal = m.download(a.token, "walk-02.jsonl")
    assert part is not None and journal is not None and m.download(a.token, "walk-02.start.safetensors")
    partial, _ = read_video(part)
    r = render_replay(journal, part.parent / "again.mp4", threads=1)  # the actors compute with 1 thread
    assert r.returncode == 0, r.stderr
    again, _ = read_video(part.parent / "again.mp4")
    assert len(partial) >= 6 and len(again) >= len(partial) and np.array_equal(again[:len(partial)], partial)
    # a place frees up: the visitor in line starts by itself
    m.close(b.token, "tab closed")
    wait_for(lambda: d.state == "live", timeout=120.0, what="the visitor in line to start")
    assert d.status()["pos"][2] == 0.0 and d.seed == 2
    # the API goes the same way: an API walk's Session lives in an actor, within the same cap
    m.close(a.token, "tab closed")
    w, first = m.start_api("client", img, 3)
    assert type(w.session).__name__ == "RemoteSession" and first.shape == (1, 64, 96, 3)
    poses = np.tile(np.eye(4), (w.session.frames_per_step, 1, 1))
    poses[:, 2, 3] = np.arange(1, w.session.frames_per_step + 1) * 0.05
    frames = w.session.step(poses)
    assert frames.shape == (w.session.frames_per_step, 64, 96, 3) and w.session.frame_index == 1 + len(poses)
    from worldwalk.app.world_args import world_factory
    local = world_factory(c.args_used)[0]()  # the same world and settings in this process
    local.start(img, seed=3)
    diff = np.abs(local.step(poses).astype(int) - frames).mean()
    assert diff < 1.0, diff  # the same walk (up to the thread count's rounding)
    m.close(w.token, "ended by the client")
