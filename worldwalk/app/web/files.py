"""Which files the browser demo reads and serves, where it keeps them, and text without server paths.

One private folder per process while a server runs (removed when the last one stops):

    <tmp>/worldwalk-web-XXXXXX/gradio/  Gradio's upload and cache folder (GRADIO_TEMP_DIR): visitors' uploads, one
                                        folder per content hash, and Gradio's copies of what the demo made for them
    <tmp>/worldwalk-web-XXXXXX/walks/   the demo's own work: tabs' recordings (served by the demo's download route,
                                        by walk token and name) and API outputs (Gradio copies one into its cache,
                                        a hash-named folder, when it is handed out)

Reading: a file argument of any event, page or API, is accepted only when it is a file that Gradio's upload route
wrote into that upload folder (a regular file, no symlink, nothing outside the folder). page.GuardedBlocks checks
every file argument with `Uploads.check` before Gradio opens or copies anything; `Uploads.read` checks again where a
handler opens it. Gradio's own allowed-path checks are on as well (server.build_app marks the mounted Blocks launched).

Serving: `ServeOwnFilesOnly` lets Gradio's file routes serve only regular files inside the upload folder (no other
path, no URL, no proxy). The demo's own files (a tab's recordings) go out through its own download route
(server.py), which finds them by the walk's token and a name the demo made, never by a path.

No server path is shown: Gradio names every file it keeps by its absolute path (in upload answers, file objects and
file URLs). `HidePaths` puts `ALIAS` (`worldwalk-files`) in place of the upload folder's path in everything a visitor
receives (HTML, JSON, event streams) and back in what comes in (JSON bodies, the file route's path), so a visitor sees
`worldwalk-files/<hash>/frame.png` and Gradio, behind it, its own paths. What comes back is checked as before.

`scrub(text)`: every message shown to a visitor goes through it; an absolute path becomes its last part.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import urllib.parse
from pathlib import Path

from starlette.responses import JSONResponse

_PATH = re.compile(r"(?<![\w.~/])(?:[A-Za-z]:)?[/\\](?:[^\s'\"`<>|/\\]+[/\\])*([^\s'\"`<>|/\\]+)")


def scrub(text) -> str:
    """`text` with every absolute path replaced by its last part: safe to show a visitor."""
    return _PATH.sub(lambda m: m.group(1), str(text))


# ---------------------------------------------------------------------------------------------------- the folder
class PrivateFolder:
    """The process's private folder (see the module doc): acquire() before building the Gradio app, release() when
    the server has stopped. Several servers in one process (tests) share it; the last release removes it."""

    _lock = threading.Lock()
    _users = 0
    _root: Path | None = None
    _env_before: str | None = None

    @classmethod
    def acquire(cls) -> Path:
        with cls._lock:
            if cls._root is None or not cls._root.is_dir():
                cls._root = Path(tempfile.mkdtemp(prefix="worldwalk-web-")).resolve()
                (cls._root / "gradio").mkdir()
                (cls._root / "walks").mkdir()
                cls._env_before = os.environ.get("GRADIO_TEMP_DIR")
                os.environ["GRADIO_TEMP_DIR"] = str(cls._root / "gradio")  # read by Gradio when it builds the app
            cls._users += 1
            return cls._root

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users = max(0, cls._users - 1)
            if cls._users or cls._root is None:
                return
            shutil.rmtree(cls._root, ignore_errors=True)
            if cls._env_before is None:
                os.environ.pop("GRADIO_TEMP_DIR", None)
            else:
                os.environ["GRADIO_TEMP_DIR"] = cls._env_before
            cls._root = None


def inside(path: str | Path, folder: Path) -> bool:
    """True if `path`, both as written (normalised) and with every symlink resolved, lies inside `folder`."""
    p = os.path.abspath(str(path))
    f = str(folder)
    return (p.startswith(f + os.sep) and os.path.realpath(p).startswith(os.path.realpath(f) + os.sep))


# ---------------------------------------------------------------------------------------------------- reading
REFUSED = ("not a file you uploaded; only an upload sent with this request (or a built-in scene by name) is "
           "accepted, never a path on the server")


class Uploads:
    """What a visitor may hand in: files Gradio's upload route wrote into the upload folder (`uploaded`: Gradio's
    Blocks.upload_file_set, which that route fills)."""

    def __init__(self, folder: Path, uploaded: set):
        self.folder = Path(folder)
        self.uploaded = uploaded

    def allowed(self, path) -> bool:
        if not isinstance(path, (str, Path)) or not str(path) or "\0" in str(path):
            return False
        p = os.path.abspath(str(path))
        if p not in self.uploaded or not inside(p, self.folder):
            return False
        try:
            st = os.lstat(p)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode)

    def check(self, value, what: str) -> None:
        """Raise ValueError unless every file `value` (an event's argument as sent) names is an upload."""
        for ref in file_refs(value):
            if not self.allowed(ref):
                raise ValueError(f"{what}: {REFUSED}")

    def read(self, path, what: str, max_bytes: int) -> bytes:
        """The bytes of an upload (opened without following links). Raises ValueError with a message for the page."""
        if not self.allowed(path):
            raise ValueError(f"{what}: {REFUSED}")
        name = Path(str(path)).name
        try:
            fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            raise ValueError(f"{what}: {name}: the upload is gone; please upload it again") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{what}: {REFUSED}")
            if st.st_size > max_bytes:
                raise ValueError(f"{what}: {name}: the file is too large ({st.st_size / 2**20:.1f} MB); the limit "
                                 f"is {max_bytes / 2**20:.0f} MB")
            return f.read(max_bytes + 1)


def file_refs(value):
    """Every path an event argument names: the `path` (else `url`) of each file object in it, with or without Gradio's
    meta tag, however deeply nested."""
    if isinstance(value, dict):
        if "path" in value or (value.get("meta") or {}).get("_type") == "gradio.FileData":
            yield value.get("path") if value.get("path") is not None else value.get("url")
        for k, v in value.items():
            if k not in ("path", "url", "meta"):
                yield from file_refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from file_refs(v)


# ---------------------------------------------------------------------------------------------------- serving
_FILE_ROUTE = re.compile(r"^/(?:gradio_api/)?(?P<kind>file=|file/|proxy=|process_recording)(?P<target>.*)$", re.S)


class ServeOwnFilesOnly:
    """ASGI middleware: Gradio's file routes (`/gradio_api/file=<path>` and its old spellings) serve only regular
    files inside `folder`; its proxy route and its screen-recording converter (which the page does not offer) serve
    nothing. Anything else is 404 before Gradio sees it."""

    def __init__(self, app, folder: Path):
        self.app = app
        self.folder = Path(folder)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            m = _FILE_ROUTE.match(scope.get("path", ""))
            if m and (m.group("kind") in ("proxy=", "process_recording") or not self.serves(m.group("target"))):
                resp = JSONResponse({"detail": "not found"}, status_code=404, headers={"Cache-Control": "no-store"})
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def serves(self, target: str) -> bool:
        if not target or "\0" in target or "://" in target or target.lower().startswith(("http:", "https:")):
            return False
        if not inside(target, self.folder):
            return False
        try:
            st = os.lstat(os.path.abspath(target))
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode)


# ---------------------------------------------------------------------------------------------------- no paths shown
ALIAS = "worldwalk-files"  # what a visitor sees in place of the upload folder's path
_TEXT_TYPES = (b"text/html", b"application/json", b"text/event-stream", b"text/plain")


def _header(headers, name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


class HidePaths:
    """ASGI middleware (outside ServeOwnFilesOnly): the upload folder's path becomes ALIAS in every HTML, JSON, event
    stream and plain-text answer (as written, percent-encoded and JSON-escaped), and ALIAS becomes the path again in a
    JSON request body and in the path of Gradio's file routes. Files being served (Gradio's file routes, the demo's
    downloads) pass as they are. Requests ask for no compression, so every answer can be read."""

    def __init__(self, app, folder: Path, alias: str = ALIAS):
        self.app = app
        self.alias = alias
        folders = dict.fromkeys([str(folder), os.path.realpath(folder)])
        out = {}
        for f in folders:
            for form in (f, urllib.parse.quote(f, safe="/"), f.replace("/", "\\/")):
                out[form.encode()] = alias.encode()
        self.out = sorted(out.items(), key=lambda kv: -len(kv[0]))  # longest first
        real = str(folder)
        self.inward = [((alias + "/").encode(), (real + "/").encode()),
                       ((alias + "\\/").encode(), (real.replace("/", "\\/") + "\\/").encode())]

    def hide(self, data: bytes) -> bytes:
        for real, alias in self.out:
            if real in data:
                data = data.replace(real, alias)
        return data

    def _held(self, data: bytes) -> int:
        """How many bytes at the end of `data` could begin a path still to come (kept until the next chunk)."""
        keep = 0
        for real, _ in self.out:
            for n in range(min(len(real) - 1, len(data)), keep, -1):
                if data.endswith(real[:n]):
                    keep = n
                    break
        return keep

    def reveal(self, data: bytes) -> bytes:
        for alias, real in self.inward:
            data = data.replace(alias, real)
        return data

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"]
        scope = dict(scope, headers=headers)
        path = scope.get("path", "")
        served = _FILE_ROUTE.match(path) is not None or path.startswith("/worldwalk/download/")
        if _FILE_ROUTE.match(path) and self.alias in path:
            scope["path"] = self.reveal(path.encode()).decode()
            scope["raw_path"] = self.reveal(scope.get("raw_path") or path.encode())
        if (_header(headers, b"content-type") or b"").split(b";")[0].strip().lower() == b"application/json":
            receive = await self._reveal_body(scope, receive)
            if receive is None:
                return  # the client went away while sending
        await self.app(scope, receive, send if served else self._hiding(send))

    async def _reveal_body(self, scope, receive):
        body, more = bytearray(), True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        data = self.reveal(bytes(body))
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"] + [
            (b"content-length", str(len(data)).encode())]
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return replay

    def _hiding(self, send):
        state = {"on": False, "whole": False, "start": None, "body": bytearray(), "held": b""}

        async def hiding_send(message):
            kind = message["type"]
            if kind == "http.response.start":
                hs = message.get("headers", [])
                ctype = (_header(hs, b"content-type") or b"").split(b";")[0].strip().lower()
                state["on"] = ctype in _TEXT_TYPES and _header(hs, b"content-encoding") is None
                state["whole"] = state["on"] and _header(hs, b"content-length") is not None
                if state["whole"]:
                    state["start"] = message  # sent with the body, once its new length is known
                    return
                await send(message)
            elif kind == "http.response.body" and state["on"]:
                more = message.get("more_body", False)
                if state["whole"]:
                    state["body"] += message.get("body", b"")
                    if more:
                        return
                    data = self.hide(bytes(state["body"]))
                    start = state["start"]
                    hs = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    await send({**start, "headers": hs + [(b"content-length", str(len(data)).encode())]})
                    await send({"type": "http.response.body", "body": data, "more_body": False})
                    return
                data = self.hide(state["held"] + message.get("body", b""))  # a stream: sent as it comes
                keep = self._held(data) if more else 0
                state["held"] = data[len(data) - keep:] if keep else b""
                await send({"type": "http.response.body", "body": data[:len(data) - keep], "more_body": more})
            else:
                await send(message)

        return hiding_send
