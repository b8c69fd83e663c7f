"""The web server: the Gradio page and API mounted on a FastAPI app with the demo's own low-latency routes, run by
uvicorn in a thread (so tests and `launch.py web` start and stop it the same way).

Routes besides Gradio's (the page's script uses them; <walk> is the tab's unguessable walk token):
    GET  /worldwalk/frame/<walk>?after=<seq>  the newest JPEG frame newer than seq (header X-Frame-Seq); waits up to
                                              2 s for one, else 204. 404 {"detail": why} once the walk has ended.
    GET  /worldwalk/status/<walk>             HUD numbers, path for the map, state, place in line
    POST /worldwalk/input/<walk>              {"keys": [...], "dx": px, "dy": px, "n": message number} -> 204
    GET  /worldwalk/download/<walk>/<name>    a finished recording of that walk by the name the demo gave it
                                              (walk-01.mp4, walk-01.json), as an attachment; 404 for anything else.
                                              It works while the walk lives and for a while after it ended.

Gradio's routes answer as Gradio does, with one difference: no answer names a server path (files.HidePaths).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from worldwalk.app.web import bind
from worldwalk.app.web.files import HidePaths, PrivateFolder, ServeOwnFilesOnly, Uploads
from worldwalk.app.web.page import assets, build_demo
from worldwalk.app.web.scenes import Scene
from worldwalk.app.web.walks import WalkGone, WalkManager

FRAME_WAIT_S = 2.0
MAX_INPUT_BODY = 4096
MEDIA_TYPES = {".mp4": "video/mp4", ".json": "application/json"}


def add_routes(app: FastAPI, manager: WalkManager) -> None:
    def gone(e: WalkGone) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404, headers={"Cache-Control": "no-store"})

    @app.get("/worldwalk/frame/{token}")
    async def frame(token: str, after: int = 0):
        end = time.monotonic() + FRAME_WAIT_S
        while True:
            try:
                w = manager.get(token, kind="live")
            except WalkGone as e:
                return gone(e)
            seq, data = w.frame_after(after)
            if data is not None:
                return Response(data, media_type="image/jpeg",
                                headers={"X-Frame-Seq": str(seq), "Cache-Control": "no-store"})
            if time.monotonic() > end:
                return Response(status_code=204, headers={"Cache-Control": "no-store"})
            await asyncio.sleep(0.01)

    @app.get("/worldwalk/status/{token}")
    async def status(token: str):
        try:
            w = manager.get(token, kind="live")
        except WalkGone as e:
            return gone(e)
        return JSONResponse(w.status(manager.position(token), manager.limits.idle_timeout),
                            headers={"Cache-Control": "no-store"})

    @app.post("/worldwalk/input/{token}")
    async def set_input(token: str, request: Request):
        try:
            w = manager.get(token, kind="live")
        except WalkGone as e:
            return gone(e)
        raw = await request.body()
        if len(raw) > MAX_INPUT_BODY:
            return JSONResponse({"detail": "input: too large"}, status_code=413)
        try:
            body = json.loads(raw or b"{}")
            keys = body.get("keys") or []
            if not isinstance(keys, list):
                raise TypeError("keys")
            dx, dy = float(body.get("dx") or 0), float(body.get("dy") or 0)
            n = body.get("n")
            n = int(n) if n is not None else None
        except (ValueError, TypeError, AttributeError):
            return JSONResponse({"detail": "input: expected {keys: [...], dx, dy, n}"}, status_code=400)
        w.set_input(keys[:32], dx, dy, n)
        return Response(status_code=204)

    @app.get("/worldwalk/download/{token}/{name}")
    async def download(token: str, name: str):
        path = manager.download(token, name)  # looked up among that walk's recordings; no path is ever joined
        if path is None:
            return JSONResponse({"detail": "no such recording (the walk ended a while ago, or it is not yours)"},
                                status_code=404, headers={"Cache-Control": "no-store"})
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                            filename=path.name, content_disposition_type="attachment",
                            headers={"Cache-Control": "no-store"})


def build_app(manager: WalkManager, scenes: list[Scene], size_wh: tuple[int, int], frames_per_step: int,
              fps: float) -> FastAPI:
    """The FastAPI app: our routes, then the Gradio page and API (uploads go to Gradio's upload folder: with
    files.PrivateFolder acquired, the server's private one)."""
    demo = build_demo(manager, scenes, size_wh, frames_per_step, fps)
    demo.queue(default_concurrency_limit=manager.limits.max_walks)
    app = FastAPI(title="worldwalk", docs_url=None, redoc_url=None, openapi_url=None)
    add_routes(app, manager)
    # no allowed_paths: Gradio serves its upload folder and its copies of our outputs, nothing of ours directly;
    # show_error off: only our gr.Error messages (scrubbed of server paths) reach visitors, never an exception's text
    gr.mount_gradio_app(app, demo, path="/", footer_links=["api", "gradio"], run_history=False, ssr_mode=False,
                        allowed_paths=[], show_error=False,
                        max_file_size=4 * manager.limits.max_upload_bytes, **assets())
    # Gradio checks the paths in events only once its Blocks has "launched", which mounting never sets
    demo.has_launched = True
    folder = Path(next(r.app for r in app.routes if hasattr(getattr(r, "app", None), "uploaded_file_dir"))
                  .uploaded_file_dir).resolve()
    demo.uploads = Uploads(folder, demo.upload_file_set)
    app.add_middleware(ServeOwnFilesOnly, folder=folder)
    app.add_middleware(HidePaths, folder=folder)  # added last: the outermost, so the others see real paths
    app.state.demo = demo
    return app


class WebServer:
    """uvicorn serving `app` from a thread: start() returns once it accepts connections; stop() ends everything.

    private: the server holds files.PrivateFolder (create_server acquires it) and releases it when it stops.
    """

    def __init__(self, app: FastAPI, manager: WalkManager, host: str = "127.0.0.1", port: int | None = None,
                 sock=None, private: bool = False):
        self.app, self.manager, self.host = app, manager, host
        self.sock = sock if sock is not None else bind(host, port)
        self.port = self.sock.getsockname()[1]
        cfg = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3, lifespan="on",
                             timeout_keep_alive=5)
        self.server = uvicorn.Server(cfg)
        self.thread: threading.Thread | None = None
        self._private = private
        self._stop_lock = threading.Lock()
        self.stopped = False

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else ("[::1]" if self.host == "::" else self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 120.0) -> WebServer:
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="worldwalk-web", daemon=True)
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                self.stop()
                raise RuntimeError("the web server did not start")
            time.sleep(0.05)
        return self

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _gradio_apps(self):
        for r in self.app.routes:
            sub = getattr(r, "app", None)
            if sub is not None and hasattr(sub, "stop_event"):
                yield sub

    def stop(self) -> bool:
        """Stop at any moment: every walk is closed and every chunk in progress finishes first (so no thread is inside
        the engine when the process exits), then the HTTP server, then the private folder is removed. Safe to call
        twice and from any thread. -> True when the engine went idle in time (False: something is still running)."""
        with self._stop_lock:
            if self.stopped:
                return True
            self.stopped = True
        idle = self.manager.shutdown()  # refuses new work, closes every walk, waits for the engine
        for g in self._gradio_apps():  # ends the pages' event streams so the HTTP server stops promptly
            g.stop_event.set()
        demo = getattr(self.app.state, "demo", None)
        if demo is not None:
            demo.is_running = False  # ends Gradio's heartbeat loops
        self.server.should_exit = True
        if self.thread is not None and self.thread.is_alive():
            self.thread.join(timeout=15)
        try:
            self.sock.close()
        except OSError:
            pass
        if self._private:
            PrivateFolder.release()
        return idle

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
