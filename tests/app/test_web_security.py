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

And a visitor never sees a server path: everything one receives while opening the page, uploading, starting a walk,
recording, stopping the recording, downloading it and calling every API endpoint (page HTML and every link in it,
JSON answers, the status JSON, the event streams, the downloaded camera path) is searched for the server's private
folder, the checkout's path and "/tmp/" (as written, percent-encoded and JSON-escaped). A recording is fetched only
with its own walk's token and the name the demo gave it; anything else is 404.
"""
import argparse
import html.parser
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
ALIAS = "worldwalk-files"  # what visitors see in place of the upload folder (app/web/files.py)
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


def api(server, name, data, seen=None):
    status, body = http(f"{server.url}gradio_api/call/{name}", {"data": data})
    assert status == 200, body
    event_id = json.loads(body)["event_id"]
    status, body = http(f"{server.url}gradio_api/call/{name}/{event_id}")
    if seen is not None:
        seen.append((f"call {name}", body.decode()))
    return sse_result(body.decode())


def page_event(server, fn_name, data, session=None, seen=None):
    """A page event sent the way the page sends it (queue/join with its fn_index), then its result. `session`: the
    tab's session hash (default a new one); `seen`: a list that gets every answer's text."""
    demo = server.app.state.demo
    fn_index = next(i for i, f in demo.fns.items() if f.name == fn_name)
    session = session or uuid.uuid4().hex[:11]
    status, body = http(f"{server.url}gradio_api/queue/join",
                        {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                         "trigger_id": None})
    assert status == 200, body
    if seen is not None:
        seen.append((f"queue/join {fn_name}", body.decode()))
    status, body = http(f"{server.url}gradio_api/queue/data?session_hash={session}")
    if seen is not None:
        seen.append((f"queue/data {fn_name}", body.decode()))
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
    swapped = upload(server, "swapped.png", png_bytes())  # the name the visitor sees ...
    real = gradio_dir / swapped.removeprefix(f"{ALIAS}/")  # ... for this file, swapped behind the server's back
    real.unlink()
    real.symlink_to("/etc/passwd")
    paths = {
        "absolute /etc/passwd": "/etc/passwd",
        "a directory": "/etc",
        "a start image of the checkout": str(SCENE),
        "relative to the server's folder": os.path.relpath(SCENE, Path.cwd()),
        "/proc/self/cmdline": "/proc/self/cmdline",
        "/proc/self/environ": "/proc/self/environ",
        "'..' out of the upload folder": f"{gradio_dir}/{'a' * 64}/../../../../../../etc/passwd",
        "'..' to the demo's own folder": f"{gradio_dir}/../walks/{recording.relative_to(gradio_dir.parent / 'walks')}",
        "'..' out of the name visitors see": f"{ALIAS}/{'a' * 64}/../../../../../../etc/passwd",
        "'..' from the name visitors see to the demo's folder":
            f"{ALIAS}/../walks/{recording.relative_to(gradio_dir.parent / 'walks')}",
        "a NUL byte": "/etc/passwd\x00.png",
        "a URL": f"{server.url}gradio_api/file=/etc/passwd",
        "another visitor's recording": str(recording),
        "a symlink planted in the upload folder": str(planted),
        "an upload swapped for a symlink": swapped,
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


# ---------------------------------------------------------------------------------------------------- no path shown
class Links(html.parser.HTMLParser):
    """Every address in a piece of HTML (href, src, action, poster, srcset)."""

    def __init__(self, text=""):
        super().__init__()
        self.links = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("href", "src", "action", "poster", "srcset") and v]


def server_paths(server) -> list[str]:
    """What no answer may contain: the private folder, the checkout and /tmp/, as written, percent-encoded (all of it,
    or all but the slashes) and JSON-escaped."""
    root = server.manager.workdir.parents[1]
    words = {str(root), os.path.realpath(root), str(ROOT), os.path.realpath(ROOT), "/tmp/"}
    return sorted({f for w in words for f in (w, urllib.parse.quote(w, safe=""), urllib.parse.quote(w, safe="/"),
                                              w.replace("/", "\\/"))})


def fetch(url):
    """GET -> (status, headers, body)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def walk_poses(n):
    p = np.repeat(np.eye(4)[None], n, 0)
    p[:, 2, 3] = 0.08 * np.arange(1, n + 1)
    return json.dumps(p.tolist())


def test_a_visitor_never_sees_a_server_path(server):
    seen = []  # (what, text) of every answer a visitor got

    def get(route):
        status, body = http(server.url + route)
        seen.append((route or "the page", body.decode(errors="replace")))
        return status, body

    # the page, its config and the API's description
    status, page = get("")
    assert status == 200
    links = Links(page.decode()).links
    for route in ("config", "gradio_api/info", "gradio_api/info?all_endpoints=true"):
        assert get(route)[0] == 200
    # an upload: the name it comes back with is the one visitors see
    mine = upload(server, "mine.png", png_bytes())
    seen.append(("upload", mine))
    assert mine.startswith(f"{ALIAS}/") and mine.endswith("/mine.png"), mine
    # a tab: picks its upload, starts walking, records, walks, stops recording
    tab = uuid.uuid4().hex[:11]
    kind, out = page_event(server, "on_upload", [fd(mine), None], tab, seen)
    assert kind == "complete", out
    kind, out = page_event(server, "on_start", [None, 0, None], tab, seen)
    assert kind == "complete", out
    token = out[1]
    assert server.manager.get(token, tab, "live").state == "live"
    kind, out = page_event(server, "on_record", [None], tab, seen)
    assert kind == "complete" and "recording" in json.dumps(out), out
    assert http(f"{server.url}worldwalk/input/{token}", {"keys": ["w"], "n": 1})[0] == 204
    end = time.monotonic() + 30
    while True:  # the page pulling frames while W is held
        assert http(f"{server.url}worldwalk/frame/{token}?after=0")[0] in (200, 204)
        status, body = get(f"worldwalk/status/{token}")
        if json.loads(body)["frames"] > 8:
            break
        assert time.monotonic() < end, "the walk made no frames"
        time.sleep(0.05)
    http(f"{server.url}worldwalk/input/{token}", {"keys": [], "n": 2})
    kind, out = page_event(server, "on_record", [None], tab, seen)
    assert kind == "complete", out
    downloads = Links(out[2]).links
    assert downloads == [f"worldwalk/download/{token}/walk-01.mp4", f"worldwalk/download/{token}/walk-01.json",
                         f"worldwalk/download/{token}/walk-01.start.safetensors"], out
    links += downloads
    # the downloads: attachments, by the walk's token and the name the demo gave them
    got = {}
    for link in downloads:
        status, headers, body = fetch(server.url + link)
        name = link.rsplit("/", 1)[1]
        assert status == 200, (link, status, body[:200])
        assert headers["Content-Disposition"] == f'attachment; filename="{name}"', headers["Content-Disposition"]
        got[name] = body
    assert got["walk-01.mp4"][4:8] == b"ftyp"
    side = json.loads(got["walk-01.json"])
    assert len(side["c2w"]) >= 6  # a chunk at least
    seen.append(("the camera path downloaded", got["walk-01.json"].decode()))
    snap = got["walk-01.start.safetensors"]  # safetensors: 8-byte header length, then the JSON header (metadata)
    seen.append(("the start state downloaded", snap[8:8 + int.from_bytes(snap[:8], "little")].decode()))
    # the recording stays the walk's own: another visitor's token, or any other name, finds nothing
    other = server.manager.start_live("visitor-c", np.full((64, 96, 3), 60, np.uint8), 0, "theirs")
    recording = server.manager.download(token, "walk-01.mp4")
    try:
        for t, name in ((other.token, "walk-01.mp4"), (other.token, "walk-01.json"), ("x" * 24, "walk-01.mp4"),
                        (token, "walk-02.mp4"), (token, "walk-01.npy"), (token, "walk-01"), (token, "..%2Fwalk-01.mp4"),
                        (token, urllib.parse.quote(str(recording), safe="")), (token[:-1], "walk-01.mp4"),
                        (token, "%2E%2E"), ("..", "walk-01.mp4")):
            status, _, body = fetch(f"{server.url}worldwalk/download/{t}/{name}")
            assert status == 404 and body != got["walk-01.mp4"], (t, name, status)
    finally:
        server.manager.close(other.token)
    # a walk that ends keeps its recordings a while, so the page's links still work (and its place is free again)
    server.manager.close(token, "idle for 180 s")
    status, _, body = fetch(server.url + downloads[0])
    assert status == 200 and body == got["walk-01.mp4"]
    # the API, every endpoint, over plain HTTP
    kind, out = api(server, "start_walk", [fd(mine), 0, ""], seen)
    assert kind == "complete", out
    walk_id, files = out[0], [out[1]]
    kind, out = api(server, "step_walk", [walk_id, walk_poses(6)], seen)
    assert kind == "complete", out
    files += out[:2]
    kind, out = api(server, "step_walk", [walk_id, walk_poses(5)], seen)  # an error answer too
    assert kind == "error" and "multiple of 6" in out
    assert api(server, "end_walk", [walk_id], seen)[0] == "complete"
    kind, out = api(server, "render", [None, None, "w-6", 0, 0, "World 1"], seen)
    assert kind == "complete", out
    files += out[:2]
    for f in files:  # file objects name files as visitors see them, and their URLs serve them
        assert f["path"].startswith(f"{ALIAS}/") and f"/gradio_api/file={ALIAS}/" in f["url"], f
        status, _, body = fetch(f["url"])
        assert status == 200 and body, f
        if f["path"].endswith(".json"):
            seen.append((f"the API's {f['orig_name']}", body.decode()))
    # nothing anywhere names a server path
    words = server_paths(server)
    assert len(seen) > 12
    for what, text in seen + [(f"link {link}", link) for link in links]:
        for w in words:
            assert w not in text, f"{what} shows a server path ({w!r}): ...{text[max(0, text.find(w) - 80):][:200]}..."


def test_hide_paths_on_its_own(tmp_path):
    """files.HidePaths without a server: a path cut across the chunks of a stream, a whole answer (its length fixed),
    a JSON request body and the file route's path going in; files being served pass as they are."""
    import asyncio

    from worldwalk.app.web.files import HidePaths

    folder = tmp_path / "gradio"
    real = str(folder).encode()
    got = {}

    async def app(scope, receive, send):
        got["path"], got["body"] = scope["path"], (await receive())["body"]
        got["headers"] = dict(scope["headers"])
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            msg = b'data: {"path": "' + real + b'/abc/x.png"}\n\n'
            for i in range(0, len(msg), 7):  # the path arrives cut in pieces
                await send({"type": "http.response.body", "body": msg[i:i + 7], "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            body = b'{"url": "/gradio_api/file=' + real + b'/abc/x.png"}'
            kind = b"video/mp4" if scope["path"].startswith("/worldwalk/download/") else b"application/json"
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body, "more_body": False})

    def call(path, body=b""):
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(m):
            sent.append(m)

        scope = {"type": "http", "path": path, "raw_path": path.encode(), "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"accept-encoding", b"gzip")]}
        asyncio.run(HidePaths(app, folder)(scope, receive, send))
        out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return dict(sent[0].get("headers", [])), out

    headers, out = call("/stream")
    assert out == b'data: {"path": "worldwalk-files/abc/x.png"}\n\n'
    headers, out = call("/gradio_api/call/x", b'{"data": [{"path": "worldwalk-files/abc/x.png"}]}')
    assert out == b'{"url": "/gradio_api/file=worldwalk-files/abc/x.png"}'
    assert int(headers[b"content-length"]) == len(out)
    assert got["body"] == b'{"data": [{"path": "' + real + b'/abc/x.png"}]}'  # the folder is back for Gradio
    assert int(got["headers"][b"content-length"]) == len(got["body"]) and b"accept-encoding" not in got["headers"]
    call("/gradio_api/file=worldwalk-files/abc/x.png")
    assert got["path"] == f"/gradio_api/file={folder}/abc/x.png"
    headers, out = call("/worldwalk/download/t/walk-01.mp4")  # a file being served: as it is
    assert real in out
