"""Every visitor's walk, and the cap on how many run at once.

A WalkManager owns the world model shared by all walks (weights are read-only) and hands each walk its own
world.Session. Two kinds of walk:

- LiveWalk: a browser tab's walk. An app.walker.Walker generates chunks from the held input; a pump thread takes them,
  encodes each frame as JPEG and publishes it at the model's frame rate (the page pulls the newest frame). When no
  page has pulled a frame for a few seconds the pump stops taking chunks, the Walker's bounded queue fills and
  generation waits: a hidden or closed tab costs no compute.
- ApiWalk: a walk stepped with explicit poses through the API (no thread of its own).

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
import io
import math
import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from worldwalk.app.recorder import start_snapshot_path
from worldwalk.app.walker import Walker
from worldwalk.app.web.files import scrub
from worldwalk.controls.rig import InputState, RigConfig
from worldwalk.world.images import MAX_PIXELS
from worldwalk.world.session import Session

KEYS = frozenset({"w", "a", "s", "d", "q", "e", "z", "c", "shift", "left", "right", "up", "down"})
UNWATCHED_S = 3.0  # a live walk whose page pulled no frame for this long stops generating until it does again
WAITING_TIMEOUT_S = 30.0  # a place in line is given up when its page stops asking about it for this long
MAX_SIDE = 16384
OUTPUT_TTL_S = 900.0  # API outputs, and the recordings of a walk that ended, are kept this long on disk
FPS_WINDOW_S = 4.0  # the HUD's frame rate counts the frames shown in this many seconds


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
    max_upload_bytes: int = 25 * 1024 * 1024
    max_api_frames: int = 16 * 60  # frames one API step or render may ask for
    jpeg_quality: int = 85


# ---------------------------------------------------------------------------------------------------- uploads
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "MPO")
WORK_LONG_SIDE = 512  # an upload is kept at this size (or the model's frame, if larger): what the walk and preview use


def check_image(data: bytes, label: str, max_bytes: int = Limits.max_upload_bytes) -> tuple[int, int]:
    """Cheap checks of an uploaded start image that never decode pixels (size, type, dimensions). -> (w, h).

    Raises ValueError with a one-line message for the page that names the file (`label`).
    """
    n = len(data)
    if n == 0:
        raise ValueError(f"{label}: the file is empty (0 bytes); choose a PNG, JPEG or WebP image")
    if n > max_bytes:
        raise ValueError(f"{label}: the file is too large ({n / 2**20:.1f} MB); the limit is "
                         f"{max_bytes / 2**20:.0f} MB")
    try:
        with warnings.catch_warnings():  # a big image is answered below, not warned about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:  # reads the header only
                w, h = im.size
                fmt = im.format
    except Image.DecompressionBombError:
        raise ValueError(f"{label}: the image is too large (more than {MAX_PIXELS:,} pixels)") from None
    except Exception:  # PIL raises many kinds for junk
        raise ValueError(f"{label}: not an image we can read; choose a PNG, JPEG or WebP image") from None
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"{label}: {fmt} images are not supported; choose a PNG, JPEG or WebP image")
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ValueError(f"{label}: the image is too large ({w}x{h} pixels); the limit is {MAX_PIXELS:,} pixels")
    if min(w, h) < 8:
        raise ValueError(f"{label}: the image is too small ({w}x{h} pixels); it needs at least 8x8")
    return w, h


def work_size(wh: tuple[int, int], frame_wh: tuple[int, int], long_side: int = WORK_LONG_SIDE) -> tuple[int, int]:
    """The size an image of size `wh` is kept at: shrunk (never enlarged, aspect kept) to `long_side` on its long side,
    but never below what covers the model's frame `frame_wh` (the walk centre-crops that from it)."""
    w, h = wh
    s = min(1.0, max(long_side / max(w, h), frame_wh[0] / w, frame_wh[1] / h))
    return max(1, round(w * s)), max(1, round(h * s))


def prepare_image(data: bytes, label: str, frame_wh: tuple[int, int],
                  max_bytes: int = Limits.max_upload_bytes) -> np.ndarray:
    """Check, decode once and shrink an uploaded start image to what the walk uses (work_size). -> uint8 (h, w, 3).

    The page shows this array and the walk starts from it, so the two are always the same picture. A JPEG is decoded
    straight at a reduced scale; other formats are decoded once and reduced in integer steps before the final filter.
    Raises ValueError with a one-line message naming the file (`label`).
    """
    w, h = check_image(data, label, max_bytes)
    tw, th = work_size((w, h), frame_wh)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format in ("JPEG", "MPO"):
                    im.draft("RGB", (tw, th))  # DCT scaling: decodes at 1/2, 1/4 or 1/8 of the size directly
                im.load()
                rgb = im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - truncated or damaged files raise OSError, SyntaxError, ValueError ...
        why = str(e).split("(")[0].strip().rstrip(".;:") or type(e).__name__
        raise ValueError(f"{label}: the image is damaged or cut short ({why}); choose another PNG, JPEG or WebP "
                         "file") from None
    if rgb.size != (tw, th):
        rgb = rgb.resize((tw, th), Image.LANCZOS, reducing_gap=3.0)
    return np.asarray(rgb)


def parse_seed(seed) -> int:
    if seed is None or seed == "":
        return 0
    try:
        f = float(seed)
    except (TypeError, ValueError):
        raise ValueError(f"seed: {seed!r} is not a number") from None
    if not math.isfinite(f) or f != int(f) or not 0 <= f < 2**31:
        raise ValueError(f"seed: {seed!r}; expected a whole number from 0 to {2**31 - 1}")
    return int(f)


def jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def yaw_deg(pose: np.ndarray) -> float:
    """Heading of an OpenCV c2w pose about world up (-Y): 0 = the start direction, + = turned right."""
    fwd = pose[:3, 2]
    return math.degrees(math.atan2(fwd[0], fwd[2]))


# ---------------------------------------------------------------------------------------------------- walks
class _Walk:
    kind = "walk"

    def __init__(self, owner: str | None):
        self.token = secrets.token_urlsafe(18)
        self.owner = owner
        self.created = self.last_active = self.last_seen = time.monotonic()
        self.state = "starting"
        self.closed = False

    def touch(self):
        self.last_active = self.last_seen = time.monotonic()

    def idle_for(self, now: float) -> float:
        return now - self.last_active

    def close(self):
        self.closed = True


class ApiWalk(_Walk):
    kind = "api"

    def __init__(self, owner, session: Session):
        super().__init__(owner)
        self.session = session
        self.lock = threading.Lock()

    def close(self):
        super().close()
        with self.lock:
            self.session = None


class LiveWalk(_Walk):
    """A browser tab's walk: Walker + pump thread publishing JPEG frames."""

    kind = "live"

    def __init__(self, owner, image: bytes | np.ndarray, seed: int, label: str, workdir: Path, quality: int = 85):
        super().__init__(owner)
        self.image, self.seed, self.label = image, seed, label
        self.state = "waiting"
        self.dir = workdir / f"walk-{self.token[:8]}"
        self.walker: Walker | None = None
        self.quality = quality
        self.error: str | None = None
        self.message = ""
        self.records = 0
        self.saved: dict[str, Path] = {}  # finished recordings by the name the demo gave them (walk-01.mp4, ...)
        self._pump: threading.Thread | None = None
        self._cond = threading.Condition()
        self.seq = 0  # number of the frame published last
        self.frame: bytes | None = None
        self.pose = np.eye(4)
        self.shown_at: collections.deque = collections.deque(maxlen=200)
        self.latency_ms: float | None = None
        self.fetched_at = time.monotonic()
        self.held: frozenset = frozenset()
        self.input_n = -1
        self.user_paused = False

    def idle_for(self, now: float) -> float:
        """Seconds since the visitor last did something; 0 while keys are held on a page that is watching."""
        if self.held and now - self.fetched_at < UNWATCHED_S:
            return 0.0
        return now - self.last_active

    # -------------------------------------------------------------- lifecycle
    def begin(self, make_session: Callable[[], Session], rig_config: RigConfig | None, world_desc: dict) -> None:
        """Create the walk's Session and Walker and show the start frame. Raises ValueError for a bad image."""
        self.dir.mkdir(parents=True, exist_ok=True)
        walker = Walker(make_session(), rig_config=rig_config, queue_chunks=1, world_desc=world_desc)
        try:
            first = walker.start(self.image, seed=self.seed)
        except BaseException:
            walker.close()
            raise
        if self.closed:  # closed (tab gone, server stopping) while it was starting
            walker.close()
            return
        self.walker = walker
        self._publish(first[0], np.eye(4))
        self.state = "live"
        self.touch()
        self.fetched_at = time.monotonic()
        self._pump = threading.Thread(target=self._pump_loop, name=f"worldwalk-pump-{self.token[:6]}", daemon=True)
        self._pump.start()

    def restart(self, image=None, seed: int | None = None, label: str | None = None) -> None:
        """Start again (a new image and seed, or the same ones: reset). Raises ValueError and keeps the walk."""
        image = self.image if image is None else image
        seed = self.seed if seed is None else seed
        first = self.walker.start(image, seed=seed)  # (this resumes the walker)
        self.user_paused = False
        self.state = "live"
        self.image, self.seed = image, seed
        self.label = label or self.label
        self.error = None
        self._publish(first[0], np.eye(4))
        self.touch()

    def close(self, keep_files: bool = False):
        """End the walk; its folder (the recordings) goes too unless keep_files (WalkManager keeps it a while)."""
        super().close()
        if self.walker is not None:
            self.walker.close()
        if self._pump is not None:
            self._pump.join(timeout=10)
        self.walker = None
        with self._cond:
            self._cond.notify_all()
        if not keep_files:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -------------------------------------------------------------- frames
    def _publish(self, frame: np.ndarray, pose: np.ndarray) -> None:
        data = jpeg(frame, self.quality)
        with self._cond:
            self.frame = data
            self.pose = np.asarray(pose, dtype=np.float64)
            self.seq += 1
            self.shown_at.append(time.monotonic())
            self._cond.notify_all()

    def _wait_until(self, t: float) -> None:
        """Sleep until monotonic time t (or the walk closes)."""
        while not self.closed:
            now = time.monotonic()
            if now >= t:
                return
            time.sleep(min(0.05, t - now))

    def _pump_loop(self):
        walker = self.walker
        fps = float(walker.session.cfg.fps)
        next_t = time.monotonic()
        est = None  # seconds to generate a chunk (moving average)
        while not self.closed:
            if walker.error:
                self.error, self.state = walker.error, "error"
            if time.monotonic() - self.fetched_at > UNWATCHED_S:
                time.sleep(0.05)  # nobody is looking: the gate stays shut, generation waits
                continue
            chunk = walker.wait_chunk(0.05, hold=True)  # the next one is planned when this one says (plan_at)
            if chunk is None:
                continue
            gen = chunk.timing.get("total", 0.0)
            est = gen if est is None else 0.7 * est + 0.3 * gen
            # frames play at the model's frame rate; when generation is slower than that, slower (evenly spread
            # until the next chunk is due) instead of a burst and a freeze
            dt = max(1.0 / fps, est / len(chunk.frames))
            start = max(next_t, time.monotonic())
            next_t = start
            # the next chunk must be ready when this one has played: start it that much earlier (with a margin), and
            # no earlier, so that it reads the freshest input (latency ~ the time to generate one chunk)
            walker.plan_at(start + dt * len(chunk.frames) - 1.25 * est - 0.04)
            read = chunk.read_at
            for i, frame in enumerate(chunk.frames):
                if self.closed or chunk.generation != walker.generation:
                    break  # rewound or restarted: these frames belong to a world that is gone
                while self.user_paused and not self.closed and chunk.generation == walker.generation:
                    time.sleep(0.02)  # Pause stops at the frame on screen; the rest of the chunk waits
                    next_t = time.monotonic()
                if next_t < time.monotonic() - 0.25:  # generation is slower than real time: no catching up
                    next_t = time.monotonic()
                self._wait_until(next_t)  # shown at the model's frame rate, as a video plays
                self._publish(frame, chunk.poses[i])
                if i == 0 and read is not None:
                    ms = 1000 * (time.monotonic() - read)
                    self.latency_ms = ms if self.latency_ms is None else 0.7 * self.latency_ms + 0.3 * ms
                next_t += dt

    def frame_after(self, after: int) -> tuple[int, bytes | None]:
        """The newest frame if it is newer than `after` (else None), without waiting; marks the page as watching."""
        self.fetched_at = self.last_seen = time.monotonic()
        with self._cond:
            return self.seq, (self.frame if self.seq > after else None)

    # -------------------------------------------------------------- input and controls
    def set_input(self, keys, dx: float = 0.0, dy: float = 0.0, n: int | None = None) -> None:
        """The keys held from now on and the mouse motion since the last call. `n` numbers the page's messages:
        one older than the newest already seen (they can overtake each other on the way) changes no keys."""
        if n is not None:
            if n <= self.input_n:
                keys = self.held
            else:
                self.input_n = n
        keys = frozenset(k for k in (str(k).lower() for k in keys or ()) if k in KEYS)
        dx = float(np.clip(dx, -4000, 4000)) if math.isfinite(dx) else 0.0
        dy = float(np.clip(dy, -4000, 4000)) if math.isfinite(dy) else 0.0
        self.touch()
        self.held = keys
        if self.walker is not None:
            self.walker.set_input(InputState(keys=keys, mouse_dx=dx, mouse_dy=dy))

    def toggle_pause(self) -> bool:
        self.touch()
        self.user_paused = not self.user_paused
        if self.user_paused:
            self.walker.pause()
        elif not self.closed:
            self.walker.resume()
        self.message = "paused" if self.user_paused else "walking"
        return self.user_paused

    def command(self, name: str, *args, timeout: float = 30.0) -> str:
        """bookmark / rewind / record_start / record_stop, carried out between chunks; -> the walker's message."""
        self.touch()
        w = self.walker
        w.request(name, *args)
        if not w.sync(timeout):
            self.message = f"{name}: still waiting for the world to finish a chunk"
            return self.message
        self.message = scrub(w.message)
        if name == "rewind" and w.bookmarks and "rewound" in w.message:
            b = w.bookmarks[-1]
            if b.frame is not None:
                self._publish(b.frame, b.rig.pose)  # the view jumps back at once, even while paused
            else:
                with self._cond:
                    self.pose = b.rig.pose
        return self.message

    def record_start(self) -> str:
        """-> a message for the page ("recording…"; never the file's place on the server)."""
        self.records += 1
        msg = self.command("record_start", self.dir / f"walk-{self.records:02d}.mp4")
        if self.walker.recording:
            self.message = "recording…"
        else:
            self.message = scrub(msg)
        return self.message

    def record_stop(self) -> tuple[str, Path | None, Path | None]:
        """-> (message, MP4, camera path JSON or None); (message, None, None) when nothing was recorded."""
        path = self.walker.recorder.path if self.walker.recorder is not None else None
        msg = self.command("record_stop")
        if path is None or not path.exists():
            self.message = scrub(msg)
            return self.message, None, None
        side = path.with_suffix(".json")
        side = side if side.exists() else None
        self.saved[path.name] = path
        if side is not None:
            self.saved[side.name] = side
        start = start_snapshot_path(path)
        if start.is_file():  # the walk's state when the recording started: render --replay needs it beside the JSON
            self.saved[start.name] = start
        self.message = f"saved as {path.name}"
        return self.message, path, side

    # -------------------------------------------------------------- status for the page
    def status(self, line_position: int = 0, idle_timeout: float = 0.0) -> dict:
        self.last_seen = time.monotonic()
        w = self.walker
        out = {"state": self.state, "seq": self.seq, "message": scrub(self.message), "label": self.label,
               "seed": self.seed}
        if self.state == "waiting":
            out["position"] = line_position
            return out
        if w is None:
            return out
        now = time.monotonic()
        with self._cond:
            pose, times = self.pose.copy(), list(self.shown_at)
        recent = [t for t in times if now - t < FPS_WINDOW_S]
        # frames per second over the frames shown lately, to now: steady at 1-2 fps too, and falls to 0 when paused
        fps = (len(recent) - 1) / max(now - recent[0], 1e-3) if len(recent) >= 2 else 0.0
        p = pose[:3, 3]
        path = w.path[-600:]
        out.update({
            "paused": self.user_paused, "recording": w.recording, "bookmarks": len(w.bookmarks),
            "error": scrub(self.error or w.error) if (self.error or w.error) else None,
            "fps": round(fps, 1), "gen_fps": round(w.stats.generated_fps, 1),
            "chunk_ms": round(w.stats.chunk_ms.get("total", 0.0), 1),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms),
            "pos": [round(float(v), 3) for v in p], "heading": round(yaw_deg(pose), 1),
            "frames": w.stats.frames, "path": [[round(x, 3), round(z, 3)] for x, z in path] + [
                [round(float(p[0]), 3), round(float(p[2]), 3)]],
        })
        if w.error:
            out["state"] = "error"
        if idle_timeout > 0:
            out["idle_left"] = round(max(0.0, idle_timeout - self.idle_for(now)), 1)
        return out


# ---------------------------------------------------------------------------------------------------- manager
STOPPING = "the server is stopping; please try again in a moment"


class WalkManager:
    """workdir: where walks record and the API writes (default: a new temporary folder); own_workdir: remove it at
    shutdown (default: when it was made here)."""

    def __init__(self, make_session: Callable[[], Session], *, limits: Limits | None = None,
                 world_desc: dict | None = None, rig_config: RigConfig | None = None, workdir: str | Path | None = None,
                 own_workdir: bool | None = None):
        self.make_session = make_session
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
        self.walks: dict[str, _Walk] = {}
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
    def get(self, token: str | None, owner: str | None = None, kind: str | None = None) -> _Walk:
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
            if isinstance(w, LiveWalk) and not w.closed:
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

    def of_owner(self, owner: str) -> list[_Walk]:
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
        w = LiveWalk(owner, image, seed, label, self.workdir, self.limits.jpeg_quality)
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
    def _forget(self, token: str, reason: str) -> _Walk | None:
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
            keep = isinstance(w, LiveWalk) and bool(w.saved) and not self.stopping
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
