"""The browser demo reads only what a visitor uploaded and serves only what it made: path traversal through every
endpoint and argument that takes a file, and through Gradio's file routes, is refused.

Tried against a real server (test preset, untrained weights) over plain HTTP, as an attacker would, not through
gradio_client (which only ever sends uploads). Every file argument of every event, API and page alike (start_walk's
and render's image, render's trajectory_file, the page's upload box), gets each of these paths:

    absolute paths (/etc/passwd, /etc, a start image of the checkout), a relative one, /proc/self/cmdline and
    /proc/self/environ, '..' out of the upload folder, a NUL byte, a URL, another visitor's recording (its real place
    under the demo's folder), a symlink planted in the upload folder, and a real upload swapped for a symlink to
    /etc/passwd; as a file object with Gradio's meta tag, without it, and as a bare string.

Each must be refused with the one-line message (no traceback, no server path), and afterwards no file in the demo's
folders may hold the bytes of any of them. The same paths, and more, through /gradio_api/file=, /gradio_api/file/,
/file= and /gradio_api/proxy= must not be served.
"""
import argparse
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / "assets" / "scenes" / "world_1.png"
REFUSED = "not a file you uploaded"
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting':DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def server():
    from worldwalk.app.web import add_parser, create_server

    n = torch.get_num_threads()
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())
    args = p.parse_args(["web", "--random-weights", "--preset", "test", "--steps", "1", "--port", "0",
                         "--threads", "1", "--max-walks", "2"])
    srv = create_server(args).start()
    try:
        yield srv
    finally:
        root = srv.manager.workdir.parents[1]
        srv.stop()
        torch.set_num_threads(n)
        assert not root.exists()  # the private folder goes with the server


# ---------------------------------------------------------------------------------------------------- HTTP, as is
def http(url, body=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sse_result(text: str):
    """('complete', data) or ('error', message) from a Gradio event stream."""
    event = None
    for line in text.splitlines():
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: ") and event in ("complete", "error"):
            data = json.loads(line[6:])
            return (event, data) if event == "complete" else (event, (data or {}).get("error"))
        elif line.startswith("data: ") and event is None:  # the queue's stream: one JSON message a line
            msg = json.loads(line[6:])
            if msg.get("msg") == "process_completed":
                out = msg.get("output") or {}
                return ("complete", out.get("data")) if msg.get("success") else ("error", out.get("error"))
    return None, text


def api(server, name, data):
    status, body = http(f"{server.url}gradio_api/call/{name}", {"data": data})
    assert status == 200, body
    event_id = json.loads(body)["event_id"]
    status, body = http(f"{server.url}gradio_api/call/{name}/{event_id}")
    return sse_result(body.decode())


def page_event(server, fn_name, data):
    """A page event sent the way the page sends it (queue/join with its fn_index), then its result."""
    demo = server.app.state.demo
    fn_index = next(i for i, f in demo.fns.items() if f.name == fn_name)
    session = uuid.uuid4().hex[:11]
    status, body = http(f"{server.url}gradio_api/queue/join",
                        {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                         "trigger_id": None})
    assert status == 200, body
    status, body = http(f"{server.url}gradio_api/queue/data?session_hash={session}")
    return sse_result(body.decode())


def upload(server, name, data: bytes) -> str:
    """POST /gradio_api/upload as the page does -> the path Gradio gives the upload."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{server.url}gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())[0]


def fd(path, meta=True):
    d = {"path": path, "orig_name": os.path.basename(str(path)) or "x"}
    if meta:
        d["meta"] = {"_type": "gradio.FileData"}
    return d


def png_bytes(a=None) -> bytes:
    import io
    buf = io.BytesIO()
    Image.fromarray(a if a is not None else np.full((64, 96, 3), 120, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------- the paths
@pytest.fixture(scope="module")
def targets(server, tmp_path_factory):
    """name -> path an attacker tries, plus the bytes that must never be copied or served."""
    gradio_dir = server.app.state.demo.uploads.folder
    # another visitor's recording, made for real by a live walk of someone else's tab
    w = server.manager.start_live("someone-else", np.full((64, 96, 3), 90, np.uint8), 0, "theirs")
    w.record_start()
    w.set_input(["w"])
    for _ in range(600):  # the page pulling frames while W is held
        w.frame_after(w.seq)
        if w.walker.stats.frames > 8:
            break
        time.sleep(0.05)
    _, recording, _ = w.record_stop()
    assert recording is not None and recording.exists()
    # a symlink planted inside the upload folder, and a real upload swapped for a symlink afterwards
    planted = gradio_dir / ("0" * 64) / "planted.png"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.symlink_to("/etc/passwd")
    swapped = Path(upload(server, "swapped.png", png_bytes()))
    swapped.unlink()
    swapped.symlink_to("/etc/passwd")
    paths = {
        "absolute /etc/passwd": "/etc/passwd",
        "a directory": "/etc",
        "a start image of the checkout": str(SCENE),
        "relative to the server's folder": os.path.relpath(SCENE, Path.cwd()),
        "/proc/self/cmdline": "/proc/self/cmdline",
        "/proc/self/environ": "/proc/self/environ",
        "'..' out of the upload folder": f"{gradio_dir}/{'a' * 64}/../../../../../../etc/passwd",
        "'..' to the demo's own folder": f"{gradio_dir}/../walks/{recording.relative_to(gradio_dir.parent / 'walks')}",
        "a NUL byte": "/etc/passwd\x00.png",
        "a URL": f"{server.url}gradio_api/file=/etc/passwd",
        "another visitor's recording": str(recording),
        "a symlink planted in the upload folder": str(planted),
        "an upload swapped for a symlink": str(swapped),
    }
    secrets = {p: Path(p).read_bytes() for p in ("/etc/passwd", "/proc/self/cmdline", str(SCENE), str(recording))}
    yield paths, secrets
    server.manager.close(w.token)


def assert_refused(result, where):
    kind, msg = result
    assert kind == "error", f"{where}: accepted: {str(msg)[:300]}"
    assert msg and REFUSED in msg, f"{where}: {msg!r}"
    assert "\n" not in msg and "/" not in msg.split(":", 1)[1], f"{where}: {msg!r}"  # one line, no path


def test_every_file_argument_refuses_every_path(server, targets):
    paths, secrets = targets
    good = upload(server, "good.png", png_bytes())
    tried = 0
    for label, path in paths.items():
        for shape, value in (("file object", fd(path)), ("without meta", fd(path, meta=False)), ("string", path)):
            where = f"{label} as a {shape}"
            assert_refused(api(server, "start_walk", [value, 0, ""]), f"start_walk image: {where}")
            assert_refused(api(server, "render", [value, None, "w-6", 0, 0, ""]), f"render image: {where}")
            assert_refused(api(server, "render", [fd(good), value, "", 0, 0, ""]),
                           f"render trajectory_file: {where}")
            kind, out = page_event(server, "on_upload", [value, None])
            assert_refused((kind, out), f"the page's upload: {where}")
            tried += 4
    assert tried == 4 * 3 * len(paths)
    # and nothing they name was copied anywhere the demo keeps files
    root = server.manager.workdir.parents[1]
    for f in root.rglob("*"):
        if f.is_file() and not f.is_symlink() and str(f) != paths["another visitor's recording"]:
            assert f.read_bytes() not in secrets.values(), f"{f} is a copy of a file the visitor named"


def test_uploads_and_scene_names_are_accepted(server):
    """The control: what a visitor sends with the request, or a start scene by name, works."""
    good = upload(server, "mine.png", png_bytes())
    kind, out = api(server, "start_walk", [fd(good), 0, ""])
    assert kind == "complete", out
    assert api(server, "end_walk", [out[0]])[0] == "complete"
    kind, out = api(server, "start_walk", [None, 0, "world_1"])
    assert kind == "complete", out
    assert api(server, "end_walk", [out[0]])[0] == "complete"
    kind, msg = api(server, "start_walk", [None, 0, "../../etc/passwd"])
    assert kind == "error" and "not a start scene" in msg and "World 1" in msg
    kind, out = page_event(server, "on_upload", [fd(good), None])
    assert kind == "complete" and "mine.png" in json.dumps(out)


def test_only_files_the_demo_made_are_served(server, targets):
    paths, secrets = targets
    gradio_dir = server.app.state.demo.uploads.folder
    # a file the demo made for a visitor, handed out through Gradio's cache: served
    good = upload(server, "served.png", png_bytes())
    kind, out = api(server, "start_walk", [fd(good), 0, ""])
    assert kind == "complete", out
    api(server, "end_walk", [out[0]])
    url = out[1]["url"]
    status, body = http(url)
    assert status == 200 and body[:4] == b"\x89PNG"
    tries = list(paths.values()) + [str(gradio_dir), str(gradio_dir.parent), "http://example.com/x.png",
                                    f"{server.url}gradio_api/upload"]
    for path in tries:
        q = urllib.parse.quote(path, safe="/:")
        for route in (f"gradio_api/file={q}", f"gradio_api/file/{q.lstrip('/')}", f"file={q}",
                      f"gradio_api/proxy={q}"):
            status, body = http(server.url + route)
            assert status in (403, 404), f"{route}: {status}"
            assert not any(body == s for s in secrets.values()) and b"root:" not in body, route
