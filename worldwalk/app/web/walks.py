"""Every visitor's walk, and the cap on how many run at once.

A WalkManager owns the world model shared by all walks (weights are read-only) and hands each walk its own
world.Session. Two kinds of walk:

- LiveWalk (web/live.py): a browser tab's walk. An app.walker.Walker generates chunks from the held input; a pump thread takes them,
  encodes each frame as JPEG and publishes it at the model's frame rate (the page pulls the newest frame). When no
  page has pulled a frame for a few seconds the pump stops taking chunks, the Walker's bounded queue fills and
  generation waits: a hidden or closed tab costs no compute.
- ApiWalk (web/live.py): a walk stepped with explicit poses through the API (no thread of its own).

Concurrency: at most `max_walks` walks (and renders) run at once. A browser Start beyond that waits in a first-come
line ("busy — you are N in line") and starts by itself when a place frees up; an API call beyond it is refused with
the same message. A walk nobody touched for `idle_timeout` seconds is closed (its memory freed) and so are all walks
of a tab that closes (Gradio's unload). Every walk is found by an unguessable token that only its tab (or API client)
knows, and Gradio handlers also check the owner (the tab's session): a walk is never shown to another visitor.

Downloads: a tab's finished recordings are found by its walk's token and the name the demo gave them
(`WalkManager.download`); a walk that ends keeps them for OUTPUT_TTL_S so that its links still work.
"""
from __future__ import annotations

import collections
import contextlib
import gc
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldwalk.app.web.files import scrub
from worldwalk.app.web.live import ApiWalk, LiveWalk, Walk
from worldwalk.app.web.uploads import MAX_UPLOAD_BYTES
from worldwalk.controls.rig import RigConfig
from worldwalk.world.session import Session

WAITING_TIMEOUT_S = 30.0  # a place in line is given up when its page stops asking about it for this long
OUTPUT_TTL_S = 900.0  # API outputs, and the recordings of a walk that ended, are kept this long on disk


class Busy(RuntimeError):
    """All places are taken."""


class WalkGone(KeyError):
    """No such walk (ended, timed out, closed, or never yours)."""

    def __str__(self):
        return self.args[0] if self.args else "no such walk"


@dataclass
class Limits:
    max_walks: int = 1  # walks generating at once (app.web.capacity picks it for the machine)
    idle_timeout: float = 180.0  # seconds without input before a walk is closed (0: never)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_api_frames: int = 16 * 60  # frames one API step or render may ask for
    jpeg_quality: int = 85



# ---------------------------------------------------------------------------------------------------- manager
STOPPING = "the server is stopping; please try again in a moment"


class WalkManager:
    """workdir: where walks record and the API writes (default: a new temporary folder); own_workdir: remove it at
    shutdown (default: when it was made here)."""

    def __init__(self, make_session: Callable[[], Session], *, limits: Limits | None = None,
                 world_desc: dict | None = None, rig_config: RigConfig | None = None, workdir: str | Path | None = None,
                 own_workdir: bool | None = None, walk_factory: Callable[..., Walk] = LiveWalk,
                 capacity: Callable[[], int] | None = None):
        self.make_session = make_session
        self.capacity = capacity  # the walks the engine holds now (a Ray cluster's workers), polled: max_walks follows
        self.walk_factory = walk_factory  # LiveWalk here, or cluster.RemoteWalk (each walk in a Ray actor)
        self.limits = limits or Limits()
        self.world_desc = dict(world_desc or {})
        self.rig_config = rig_config
        self._own_dir = workdir is None if own_workdir is None else own_workdir
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="worldwalk-web-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.stopping = False
        self._engine_users = 0  # threads inside the engine: starting, stepping, rendering or closing a walk
        self._engine_idle = threading.Condition(self._lock)
        self.walks: dict[str, Walk] = {}
        self.line: list[str] = []  # tokens of LiveWalks waiting for a place, first come first
        self.ended: collections.OrderedDict[str, str] = collections.OrderedDict()  # token -> why it ended
        self._jobs = 0  # renders running
        self._kept: dict[str, tuple[float, dict[str, Path], Path]] = {}  # ended walk's token -> (when, files, folder)
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="worldwalk-reaper", daemon=True)
        self._reaper.start()

    # -------------------------------------------------------------- counting
    def running(self) -> int:
        with self._lock:
            return self._jobs + sum(1 for w in self.walks.values() if w.state != "waiting")

    def free(self) -> int:
        return self.limits.max_walks - self.running()

    def busy_message(self, position: int | None = None) -> str:
        n = self.limits.max_walks
        if position is None:
            return (f"busy — all {n} walk{'s' * (n != 1)} are in use; please try again in a moment")
        return (f"busy — all {n} walk{'s' * (n != 1)} are in use; you are {position} in line. "
                "Your walk starts by itself when a place frees up.")

    def position(self, token: str) -> int:
        with self._lock:
            return self.line.index(token) + 1 if token in self.line else 0

    @contextlib.contextmanager
    def engine(self, refuse: bool = True):
        """Hold this around anything that runs the engine, so that shutdown() can wait until no thread is inside it
        (a thread still inside torch when the process exits aborts it). Raises Busy once the server is stopping,
        unless refuse=False (closing a walk)."""
        with self._lock:
            if refuse and self.stopping:
                raise Busy(STOPPING)
            self._engine_users += 1
        try:
            yield
        finally:
            with self._lock:
                self._engine_users -= 1
                self._engine_idle.notify_all()

    # -------------------------------------------------------------- finding walks
    def get(self, token: str | None, owner: str | None = None, kind: str | None = None) -> Walk:
        with self._lock:
            w = self.walks.get(token or "")
        if w is None or w.closed or (owner is not None and w.owner != owner) or (kind and w.kind != kind):
            reason = self.ended.get(token or "") if w is None else None
            raise WalkGone(f"this walk has ended ({reason})" if reason else "no such walk (it ended or never began)")
        return w

    def download(self, token: str | None, name: str | None) -> Path | None:
        """A finished recording of the walk `token` by the name the demo gave it (walk-01.mp4, walk-01.json), while the
        walk lives and for OUTPUT_TTL_S after it ended; None for anything else. Never joins a path it was given."""
        with self._lock:
            w = self.walks.get(token or "")
            if w is not None and w.kind == "live" and not w.closed:
                files = w.saved
            else:
                ended, files, _ = self._kept.get(token or "", (0.0, {}, None))
                if time.monotonic() - ended > OUTPUT_TTL_S:
                    files = {}
            path = files.get(name or "") if isinstance(name, str) else None
        if path is None:
            return None
        try:
            st = os.lstat(path)
        except OSError:
            return None
        return path if stat.S_ISREG(st.st_mode) else None

    def of_owner(self, owner: str) -> list[Walk]:
        with self._lock:
            return [w for w in self.walks.values() if w.owner == owner]

    # -------------------------------------------------------------- live walks (browser)
    def start_live(self, owner: str, image, seed: int, label: str, token: str | None = None) -> LiveWalk:
        """Start (or restart) this tab's walk. Beyond the cap it waits in line (state "waiting").

        Raises ValueError for a bad image; the tab's walk, if any, goes on unchanged.
        """
        if self.stopping:
            raise Busy(STOPPING)
        if token:
            with contextlib.suppress(WalkGone):
                w = self.get(token, owner, "live")
                if w.state == "live":
                    with self.engine():
                        w.restart(image, seed, label)
                    return w
                if w.state == "waiting":
                    w.image, w.seed, w.label = image, seed, label
                    w.touch()
                    return w
                self.close(w.token, "restarted")
        w = self.walk_factory(owner, image, seed, label, self.workdir, self.limits.jpeg_quality)
        with self._lock:
            go = self.free() > 0 and not self.line
            w.state = "starting" if go else "waiting"
            self.walks[w.token] = w
            if not go:
                self.line.append(w.token)
        if go:
            try:
                with self.engine():
                    w.begin(self.make_session, self.rig_config, self.world_desc)
            except BaseException:
                self.close(w.token, "could not start")
                raise
        return w

    def _promote(self) -> None:
        """Start the first walks in line while there are free places (in the background: start takes a moment)."""
        while True:
            with self._lock:
                if not self.line or self.free() <= 0 or self.stopping:
                    return
                w = self.walks.get(self.line.pop(0))
                if w is None or w.closed:
                    continue
                w.state = "starting"
            threading.Thread(target=self._begin_bg, args=(w,), daemon=True).start()

    def _begin_bg(self, w: LiveWalk) -> None:
        try:
            with self.engine():
                w.begin(self.make_session, self.rig_config, self.world_desc)
        except Exception as e:  # noqa: BLE001 - shown in the page
            w.error, w.state = scrub(e), "error"
            self.close(w.token, f"could not start: {scrub(e)}")

    # -------------------------------------------------------------- API walks
    def start_api(self, owner: str | None, image, seed: int) -> tuple[ApiWalk, np.ndarray]:
        with self._lock:
            if self.stopping:
                raise Busy(STOPPING)
            if self.free() <= 0 or self.line:
                raise Busy(self.busy_message())
            w = ApiWalk(owner, None)
            self.walks[w.token] = w
        try:
            with self.engine():
                w.session = self.make_session()
                first = w.session.start(image, seed=seed)
        except BaseException:
            self._forget(w.token, "could not start")
            raise
        w.state = "live"
        return w, first

    @contextlib.contextmanager
    def job(self):
        """A place for a one-off job (a render) for as long as it runs; raises Busy when there is none. The job checks
        `stopping` between chunks."""
        with self._lock:
            if self.stopping:
                raise Busy(STOPPING)
            if self.free() <= 0 or self.line:
                raise Busy(self.busy_message())
            self._jobs += 1
        try:
            with self.engine():
                yield
        finally:
            with self._lock:
                self._jobs -= 1
            self._promote()

    # -------------------------------------------------------------- ending walks
    def _forget(self, token: str, reason: str) -> Walk | None:
        with self._lock:
            w = self.walks.pop(token, None)
            if token in self.line:
                self.line.remove(token)
            self.ended[token] = reason
            while len(self.ended) > 1024:
                self.ended.popitem(last=False)
        return w

    def close(self, token: str, reason: str = "closed") -> bool:
        with self._lock:
            w = self.walks.get(token)
            keep = w.kind == "live" and bool(w.saved) and not self.stopping
            if keep:  # its recordings stay downloadable a while (sweep_outputs removes them)
                self._kept[token] = (time.monotonic(), dict(w.saved), w.dir)
            w = self._forget(token, reason)
        if w is None:
            return False
        with self.engine(refuse=False):
            if keep:
                w.close(keep_files=True)
            else:
                w.close()  # joins the walk's threads (a chunk in progress finishes) and drops its Session and memory
            del w
            gc.collect()
        self._promote()
        return True

    def release_owner(self, owner: str, reason: str = "the tab was closed") -> int:
        """Close every walk of a tab (Gradio's unload)."""
        return sum(self.close(w.token, reason) for w in self.of_owner(owner))

    def follow_capacity(self) -> int:
        """max_walks from `capacity()` (a cluster whose workers come and go), never below 1; the line moves when it
        grows. -> max_walks."""
        if self.capacity is not None:
            n = max(1, int(self.capacity()))
            if n != self.limits.max_walks:
                self.limits.max_walks = n
                self._promote()
        return self.limits.max_walks

    def reap(self) -> list[str]:
        """Close idle walks and abandoned places in line; -> the tokens closed."""
        now = time.monotonic()
        idle = self.limits.idle_timeout
        out = []
        with self._lock:
            walks = list(self.walks.values())
        for w in walks:
            if w.state == "waiting":
                if now - w.last_seen > WAITING_TIMEOUT_S:
                    out.append((w.token, "gave up the place in line (the page stopped asking)"))
            elif idle > 0 and w.state != "starting" and w.idle_for(now) > idle:
                out.append((w.token, f"idle for {idle:.0f} s; it was closed to make room for others"))
        for token, reason in out:
            self.close(token, reason)
        self._promote()
        return [t for t, _ in out]

    def sweep_outputs(self, older_than: float = OUTPUT_TTL_S) -> None:
        """Delete API outputs (step videos, renders) that Gradio has long since copied into its own cache, and the
        recordings of walks that ended as long ago."""
        now = time.monotonic()
        with self._lock:
            gone = [t for t, (ended, _, _) in self._kept.items() if now - ended >= older_than]
            dirs = [self._kept.pop(t)[2] for t in gone]
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        api = self.workdir / "api"
        if not api.is_dir():
            return
        cutoff = time.time() - older_than
        for d in api.iterdir():
            with contextlib.suppress(OSError):
                if d.stat().st_mtime < cutoff:
                    shutil.rmtree(d, ignore_errors=True)

    def _reap_loop(self):
        n = 0
        while not self._stop.wait(0.5):
            n += 1
            try:
                self.reap()
                if n % 10 == 0:  # every 5 s
                    self.follow_capacity()
                if n % 120 == 0:
                    self.sweep_outputs()
            except Exception as e:  # noqa: BLE001 - the reaper must outlive any one walk's trouble
                print(f"worldwalk web: reaper: {type(e).__name__}: {e}")

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Refuse new work, close every walk (all at once: each lets its chunk in progress finish) and wait until no
        thread is inside the engine; then remove the workdir (when it is ours). Safe at any moment and twice.
        -> True when the engine went idle within `timeout` seconds."""
        end = time.monotonic() + timeout
        with self._lock:
            self.stopping = True
            tokens = list(self.walks)
        self._stop.set()
        closers = [threading.Thread(target=self.close, args=(t, "the server stopped"), daemon=True,
                                    name="worldwalk-close") for t in tokens]
        for c in closers:
            c.start()
        for c in closers:
            c.join(max(0.0, end - time.monotonic()))
        with self._lock:
            idle = self._engine_idle.wait_for(lambda: self._engine_users == 0, max(0.0, end - time.monotonic()))
        if self._reaper.is_alive() and self._reaper is not threading.current_thread():
            self._reaper.join(max(0.0, min(5.0, end - time.monotonic())))
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return idle
