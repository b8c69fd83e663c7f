"""The browser demo's API through gradio_client: start a walk, step it with explicit poses, render a trajectory.

A real server (test preset, untrained weights) on 127.0.0.1 and a free port, in a thread, stopped at the end.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from worldwalk.app.video import read_video
from worldwalk.app.web.scenes import drawn_scenes

pytestmark = [  # pandas 3 warnings from inside Gradio's queue
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting':DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning"),
]


def needs_web():
    """The web extra is part of the test set-up: missing, the tests fail (they do not skip) and say what to install."""
    try:
        import gradio  # noqa: F401
        import gradio_client
    except ImportError as e:
        pytest.fail(f"the browser demo's tests need the web extra ({e.name} is missing): "
                    "pip install -e '.[web]'", pytrace=False)
    return gradio_client


def web_server(*flags):
    needs_web()
    from worldwalk.app.web import add_parser, create_server

    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())
    args = p.parse_args(["web", "--random-weights", "--preset", "test", "--steps", "2", "--port", "0",
                         "--threads", "1", *flags])
    return create_server(args).start()


@pytest.fixture(scope="module")
def server():
    n = torch.get_num_threads()
    srv = web_server("--max-walks", "2")
    try:
        yield srv
    finally:
        srv.stop()
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def client(server):
    return needs_web().Client(server.url, verbose=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("web_api") / "meadow.png"
    Image.fromarray(drawn_scenes()[0].image).save(path)
    return needs_web().handle_file(str(path))


def walk(n, step=0.08):
    """n poses walking along +Z (forward), or -Z for step < 0."""
    p = np.repeat(np.eye(4)[None], n, 0)
    p[:, 2, 3] = step * np.arange(1, n + 1)
    return p


def start(client, image, seed=3):
    walk_id, frame, info = client.predict(image, seed, api_name="/start_walk")
    return walk_id, frame, info


def step(client, walk_id, poses):
    video, frames, info = client.predict(walk_id, json.dumps(np.asarray(poses).tolist()), api_name="/step_walk")
    return video, np.load(frames), info


def test_start_step_end(client, image, server):
    walk_id, frame, info = start(client, image)
    assert isinstance(walk_id, str) and len(walk_id) >= 20
    assert np.asarray(Image.open(frame)).shape == (64, 96, 3)
    assert info["frames_per_step"] == 6 and info["fps"] == 16 and info["size_wh"] == [96, 64]
    video, frames, info = step(client, walk_id, walk(12))
    assert frames.shape == (12, 64, 96, 3) and frames.dtype == np.uint8
    assert info["frames"] == 12 and info["frame_index"] == 13
    decoded, fps = read_video(video)
    assert decoded.shape == (12, 64, 96, 3) and fps == 16
    assert "ended" in client.predict(walk_id, api_name="/end_walk")
    assert server.manager.running() == 0  # its memory is freed at once
    with pytest.raises(Exception, match="ended"):
        step(client, walk_id, walk(6))


def test_walks_are_separate_and_repeatable(client, image):
    a, _, _ = start(client, image, seed=3)
    b, _, _ = start(client, image, seed=3)
    _, a1, _ = step(client, a, walk(6))
    step(client, b, walk(12, -0.1))  # another walk in between changes nothing in a
    _, a2, _ = step(client, a, walk(12)[6:])
    client.predict(b, api_name="/end_walk")
    c, _, _ = start(client, image, seed=3)
    _, c1, _ = step(client, c, walk(6))
    _, c2, _ = step(client, c, walk(12)[6:])
    client.predict(a, api_name="/end_walk")
    client.predict(c, api_name="/end_walk")
    assert np.array_equal(a1, c1) and np.array_equal(a2, c2)


def test_errors_are_one_clear_message(client, image, tmp_path):
    walk_id, _, _ = start(client, image)
    try:
        with pytest.raises(Exception, match="multiple of 6"):
            step(client, walk_id, walk(5))
        with pytest.raises(Exception, match="not valid JSON"):
            client.predict(walk_id, "[[1, 2", api_name="/step_walk")
        bent = walk(6)
        bent[:, 0, 0] = 2.0
        with pytest.raises(Exception, match="rigid"):
            step(client, walk_id, bent)
        _, _, info = step(client, walk_id, walk(6))  # the walk goes on after bad requests
        assert info["frame_index"] == 7
    finally:
        client.predict(walk_id, api_name="/end_walk")
    with pytest.raises(Exception, match="no such walk"):
        step(client, "not-a-walk", walk(6))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"hello")
    with pytest.raises(Exception, match="not an image"):
        client.predict(needs_web().handle_file(str(junk)), 0, api_name="/start_walk")


def test_the_cap_refuses_a_walk_too_many(client, image):
    a, _, _ = start(client, image)
    b, _, _ = start(client, image)
    try:
        with pytest.raises(Exception, match="busy"):
            start(client, image)
    finally:
        client.predict(a, api_name="/end_walk")
        client.predict(b, api_name="/end_walk")
    c, _, _ = start(client, image)
    client.predict(c, api_name="/end_walk")


def test_render_a_trajectory(client, image, tmp_path):
    video, sidecar, info = client.predict(image, None, "w-8,wl-5", 4, 0, api_name="/render")
    frames, fps = read_video(video)
    assert frames.shape == (14, 64, 96, 3) and fps == 16 and info["frames"] == 14
    side = json.loads(Path(sidecar).read_text())
    assert len(side["c2w"]) == 14 and side["metadata"]["worldwalk_recording"]["seed"] == 4
    traj = tmp_path / "short.actions"
    traj.write_text("s-6")
    video, _, info = client.predict(image, needs_web().handle_file(str(traj)), "", 0, 0, api_name="/render")
    assert info["frames"] == 7 and read_video(video)[0].shape[0] == 7
    with pytest.raises(Exception, match="trajectory"):
        client.predict(image, None, "", 0, 0, api_name="/render")


def test_the_command_prints_its_url_and_stops_cleanly_on_sigterm(tmp_path):
    """`python -m app.web` (what `launch.py web` runs): binds 127.0.0.1, picks how many walks it serves, prints the
    URL, serves, and on SIGTERM (as on Ctrl+C: tests/app/test_web_browser.py) stops with code 0 and removes its
    temporary folder."""
    import os
    import select
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "worldwalk.app.web", "--random-weights", "--preset", "test", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        out, url, end = "", None, time.monotonic() + 180
        while url is None and time.monotonic() < end and proc.poll() is None:
            if select.select([proc.stdout], [], [], 1.0)[0]:
                line = proc.stdout.readline()
                out += line
                if line.startswith("worldwalk web demo: "):
                    url = line.split(": ", 1)[1].strip()
        assert url and url.startswith("http://127.0.0.1:"), out
        assert "walk" in out and "at a time (the engine makes" in out  # the measured default of --max-walks
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("worldwalk-web-")]  # its private folder
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and "worldwalk" in r.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        out += proc.stdout.read()
        assert "stopped" in out and "Traceback" not in out, out
        assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())  # nothing left behind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_flags_are_one_line_errors():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    for flags, expect in ((["--random-weights", "--preset", "test", "--max-walks", "0"], "--max-walks 0"),
                          (["--weights", "nowhere.safetensors"], "no such file")):
        r = subprocess.run([sys.executable, "-m", "worldwalk.app.web", *flags], cwd=root, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and expect in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_walks_use_the_world_memory_that_memory_from_gives(monkeypatch, image):
    """create_server asks world_args.memory_from once and hands its settings and depth network to every Session it
    makes (page walks, API walks, renders); here an untrained depth network stands in for the bundle's."""
    import worldwalk.app.world_args as world_args
    from worldwalk.world.depth import DepthConfig, DepthNet
    from worldwalk.world.memory import MemoryConfig, MemorySettings

    depth = DepthNet(DepthConfig(widths=(8, 12, 16))).eval()
    settings = MemorySettings(config=MemoryConfig(capacity=1 << 13))
    asked = []
    monkeypatch.setattr(world_args, "memory_from", lambda args, recorded=None: asked.append(args) or (settings, depth))
    n = torch.get_num_threads()
    srv = web_server("--max-walks", "1")
    try:
        assert len(asked) == 1
        s = srv.manager.make_session()
        assert s.memory_settings is settings and s.depth is depth
        del s
        c = needs_web().Client(srv.url, verbose=False)
        walk_id, _, _ = start(c, image)
        _, frames, info = step(c, walk_id, walk(6))
        assert frames.shape == (6, 64, 96, 3) and info["frame_index"] == 7
        c.predict(walk_id, api_name="/end_walk")
        _, sidecar, info = c.predict(image, None, "w-6", 0, 0, api_name="/render")
        recorded = json.loads(Path(sidecar).read_text())["metadata"]["worldwalk_recording"]["memory"]
        assert info["frames"] == 7 and recorded == json.loads(json.dumps(settings.to_dict()))  # the render's too
    finally:
        srv.stop()
        torch.set_num_threads(n)
