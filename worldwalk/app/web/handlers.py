"""The page's event handlers: picking a start image, starting, pausing, bookmarks, reset, recording, a tab closing.

One method per Gradio event (page.build_demo wires them to the buttons). Every message a visitor reads goes through
files.scrub: no server path ever reaches the page.

The start image is chosen by the last of gallery click, upload and clear that the visitor made: each bumps the tab's
pick number when it begins, and one that finishes after a newer pick began changes nothing (a slow upload never
overwrites what the visitor picked since). The chosen image itself lives in the tab's `choice` state, set together
with the preview: the walk always starts from the picture the page shows.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import gradio as gr

from worldwalk.app.recorder import start_snapshot_path
from worldwalk.app.web.files import Uploads, scrub
from worldwalk.app.web.live import LiveWalk
from worldwalk.app.web.scenes import Scene
from worldwalk.app.web.uploads import parse_seed, read_upload
from worldwalk.app.web.walks import Busy, WalkGone, WalkManager

PAUSE, RESUME = "❚❚ Pause", "▶ Resume"
RECORD, STOP_RECORD = "● Record", "■ Stop recording"


def md_error(msg) -> str:
    return f"⚠️ {scrub(msg)}"


class PageHandlers:
    """downloads_html(token, mp4, side, start) -> the links under the view (page.py draws them)."""

    def __init__(self, manager: WalkManager, scenes: list[Scene], size_wh: tuple[int, int],
                 uploads: Callable[[], Uploads], downloads_html: Callable[..., str]):
        self.manager, self.scenes, self.size_wh, self.uploads = manager, scenes, size_wh, uploads
        self.downloads_html = downloads_html
        self.picks: dict[str, int] = {}
        self.picks_lock = threading.Lock()

    # -------------------------------------------------------------- which start image
    def new_pick(self, request: gr.Request) -> int:
        with self.picks_lock:
            self.picks[request.session_hash] = self.picks.get(request.session_hash, 0) + 1
            return self.picks[request.session_hash]

    def still_latest(self, request: gr.Request, pick: int) -> bool:
        with self.picks_lock:
            return self.picks.get(request.session_hash) == pick

    def scene_choice(self, i) -> dict:
        return {"kind": "scene", "index": int(i) % len(self.scenes)}

    def chosen_image(self, choice: dict):
        if choice and choice.get("kind") == "upload":
            return choice["image"], choice.get("name", "your upload")
        s = self.scenes[int((choice or {}).get("index", 0)) % len(self.scenes)]
        return s.picture, s.name  # (with its depth map where it has one)

    def on_scene(self, evt: gr.SelectData, request: gr.Request):
        self.new_pick(request)
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        choice = self.scene_choice(index if isinstance(index, int) else 0)
        s = self.scenes[choice["index"]]
        return choice, s.image, f"Start scene: **{s.name}**", None

    def on_upload(self, path, choice, request: gr.Request):
        pick = self.new_pick(request)
        if not path:
            return gr.skip(), gr.skip(), "", gr.skip()
        try:
            img, name = read_upload(self.uploads(), path, "your picture", self.size_wh,
                                    self.manager.limits.max_upload_bytes)
        except ValueError as e:
            if not self.still_latest(request, pick):
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            label = self.chosen_image(choice)[1]
            return gr.skip(), gr.skip(), md_error(f"{e}. The start image is still **{label}**."), None
        if not self.still_latest(request, pick):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return ({"kind": "upload", "image": img, "name": name, "index": int((choice or {}).get("index", 0))}, img,
                f"Start image: **{scrub(name)}**", gr.skip())

    def on_clear(self, choice, request: gr.Request):
        self.new_pick(request)
        c = self.scene_choice((choice or {}).get("index", 0))
        return c, self.scenes[c["index"]].image, f"Start scene: **{self.scenes[c['index']].name}**"

    # -------------------------------------------------------------- the walk
    def live(self, token, request: gr.Request) -> LiveWalk:
        w = self.manager.get(token, request.session_hash, "live")
        if w.state != "live" or not w.running:
            raise WalkGone("your walk has not started yet (you are in line)")
        return w

    def links(self, w: LiveWalk, mp4, side) -> str:
        return self.downloads_html(w.token, mp4, side, w.saved.get(start_snapshot_path(mp4).name))

    def saved_downloads(self, w: LiveWalk, before: str):
        """Stop a recording in progress (a restart or reset would end it) -> (message, downloads update)."""
        if not w.recording:
            return "", gr.skip()
        _, mp4, side = w.record_stop()
        if mp4 is None:
            return "", gr.skip()
        return f"Saved **{mp4.name}** {before}: download it below. ", self.links(w, mp4, side)

    def on_start(self, choice, seed, token, request: gr.Request):
        owner = request.session_hash
        saved, links = "", gr.skip()
        try:
            seed = parse_seed(seed)
            image, label = self.chosen_image(choice)
            if token:
                with contextlib.suppress(WalkGone):
                    saved, links = self.saved_downloads(self.live(token, request), "before starting again")
            w = self.manager.start_live(owner, image, seed, label, token)
        except (ValueError, Busy) as e:
            return token, token or "", saved + md_error(e), gr.update(), gr.update(), links
        if w.state == "waiting":
            msg = "⏳ " + self.manager.busy_message(self.manager.position(w.token))
        else:
            msg = (f"Walking in **{scrub(w.label)}** (seed {w.seed}). Click the view and use <kbd>W</kbd> <kbd>A</kbd> "
                   "<kbd>S</kbd> <kbd>D</kbd> to walk.")
            msg += getattr(w, "speed_note", "")  # a close-up starts slower (app/walker.py)
        return w.token, w.token, saved + msg, gr.update(value=PAUSE), gr.update(value=RECORD), links

    def on_pause(self, token, request: gr.Request):
        try:
            paused = self.live(token, request).toggle_pause()
        except WalkGone as e:
            return gr.update(), md_error(f"{e}. Press Start walking first.")
        return gr.update(value=RESUME if paused else PAUSE), ("Paused." if paused else "Walking again.")

    def on_command(self, name: str):
        """The handler of a walker request (bookmark, rewind)."""
        def fn(token, request: gr.Request):
            try:
                return scrub(self.live(token, request).command(name))
            except WalkGone as e:
                return md_error(f"{e}. Press Start walking first.")
        fn.__name__ = f"on_{name}"
        return fn

    def on_reset(self, token, request: gr.Request):
        saved, links = "", gr.skip()
        try:
            w = self.live(token, request)
            saved, links = self.saved_downloads(w, "before the reset")
            with self.manager.engine():
                w.restart()
        except (WalkGone, ValueError, Busy) as e:
            return gr.update(), saved + md_error(e), links
        return gr.update(value=PAUSE), saved + f"Back at the start of **{scrub(w.label)}** (seed {w.seed}).", links

    def on_record(self, token, request: gr.Request):
        try:
            w = self.live(token, request)
            if not w.recording:
                return gr.update(value=STOP_RECORD), w.record_start(), gr.skip()
            msg, mp4, side = w.record_stop()
        except WalkGone as e:
            return gr.update(), md_error(f"{e}. Press Start walking first."), gr.skip()
        if mp4 is None:
            return gr.update(value=RECORD), msg, gr.skip()
        return gr.update(value=RECORD), f"Saved as **{mp4.name}**: download it below.", self.links(w, mp4, side)

    def on_unload(self, request: gr.Request):
        with self.picks_lock:
            self.picks.pop(request.session_hash, None)
        self.manager.release_owner(request.session_hash)
