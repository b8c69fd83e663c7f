"""A visitor's walk: LiveWalk (a browser tab's: an app.walker.Walker generating from the held input, a pump thread
taking its chunks, encoding each frame as JPEG and publishing it at the model's frame rate; when no page has pulled a
frame for a few seconds the pump stops taking chunks and generation waits: a hidden or closed tab costs no compute)
and ApiWalk (stepped with explicit poses through the API, no thread of its own). The manager (web/walks.py) makes
them, caps them and ends them."""
from __future__ import annotations

import collections
import math
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from worldwalk.app.recorder import start_snapshot_path
from worldwalk.app.walker import Walker
from worldwalk.app.web.files import scrub
from worldwalk.app.web.uploads import jpeg
from worldwalk.controls.rig import InputState, RigConfig
from worldwalk.world.session import Session

KEYS = frozenset({"w", "a", "s", "d", "q", "e", "z", "c", "shift", "left", "right", "up", "down"})
SPEED_KEYS = {"faster": "speed_up", "slower": "speed_down"}  # + / -: one step of the walking speed per press
UNWATCHED_S = 3.0  # a live walk whose page pulled no frame for this long stops generating until it does again
FPS_WINDOW_S = 4.0  # the HUD's frame rate counts the frames shown in this many seconds


def speed_note(walker: Walker) -> str:
    """A line for the page when the walk started slower than usual (a close-up picture: Walker.slowed), else ""."""
    if walker.slowed is None:
        return ""
    v, ahead = walker.slowed
    return (f" What lies ahead is {ahead:.1f} m away, so this walk goes at {v:.2f} m/s (<kbd>+</kbd> <kbd>−</kbd> "
            "change it, <kbd>Shift</kbd> runs).")


def yaw_deg(pose: np.ndarray) -> float:
    """Heading of an OpenCV c2w pose about world up (-Y): 0 = the start direction, + = turned right."""
    fwd = pose[:3, 2]
    return math.degrees(math.atan2(fwd[0], fwd[2]))


# ---------------------------------------------------------------------------------------------------- walks
class Walk:
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


class ApiWalk(Walk):
    kind = "api"

    def __init__(self, owner, session: Session):
        super().__init__(owner)
        self.session = session
        self.lock = threading.Lock()

    def close(self):
        super().close()
        with self.lock:
            self.session = None


class TabWalk(Walk):
    """A browser tab's walk, wherever its engine runs (here: LiveWalk; in a Ray actor: cluster.RemoteWalk): the keys
    its page holds and when the page last pulled a frame."""

    kind = "live"

    def __init__(self, owner):
        super().__init__(owner)
        self.fetched_at = time.monotonic()
        self.held: frozenset = frozenset()
        self.input_n = -1
        self.speed_note = ""  # for the page when the walk starts slower than usual (a close-up: app/walker.py)

    def idle_for(self, now: float) -> float:
        """Seconds since the visitor last did something; 0 while keys are held on a page that is watching."""
        if self.held and now - self.fetched_at < UNWATCHED_S:
            return 0.0
        return now - self.last_active


class LiveWalk(TabWalk):
    """A browser tab's walk: Walker + pump thread publishing JPEG frames."""

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
        self.user_paused = False

    @property
    def running(self) -> bool:
        return self.walker is not None

    @property
    def recording(self) -> bool:
        return self.walker is not None and self.walker.recording

    # -------------------------------------------------------------- lifecycle
    def begin(self, make_session: Callable[[], Session], rig_config: RigConfig | None, world_desc: dict,
              saved=None) -> None:
        """Create the walk's Session and Walker and show the start frame. Raises ValueError for a bad image.
        saved: a desktop.walkfile.SavedWalk to go on from instead (a walk moved from a worker that died), walking."""
        self.dir.mkdir(parents=True, exist_ok=True)
        walker = Walker(make_session(), rig_config=rig_config, queue_chunks=1, world_desc=world_desc)
        try:
            if saved is None:
                first, pose = walker.start(self.image, seed=self.seed)[0], np.eye(4)
            else:
                walker.start_from(saved.snapshot, saved.rig, saved.path)
                walker.resume()
                first, pose = walker.last_frame, saved.rig.pose
        except BaseException:
            walker.close()
            raise
        if self.closed:  # closed (tab gone, server stopping) while it was starting
            walker.close()
            return
        self.walker = walker
        self.speed_note = speed_note(walker) if saved is None else ""
        self._publish(first, pose)
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
        self.speed_note = speed_note(self.walker)
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
        keys = frozenset(k for k in (str(k).lower() for k in keys or ()) if k in KEYS or k in SPEED_KEYS)
        dx = float(np.clip(dx, -4000, 4000)) if math.isfinite(dx) else 0.0
        dy = float(np.clip(dy, -4000, 4000)) if math.isfinite(dy) else 0.0
        self.touch()
        pressed = keys - self.held
        self.held = keys
        if self.walker is not None:
            for k in sorted(pressed & SPEED_KEYS.keys()):  # a press, not a hold: one step each
                self.walker.request(SPEED_KEYS[k])
            self.walker.set_input(InputState(keys=keys - SPEED_KEYS.keys(), mouse_dx=dx, mouse_dy=dy))

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
            "speed": round(float(w.rig.speed), 2),
            "frames": w.stats.frames, "path": [[round(x, 3), round(z, 3)] for x, z in path] + [
                [round(float(p[0]), 3), round(float(p[2]), 3)]],
        })
        if w.error:
            out["state"] = "error"
        if idle_timeout > 0:
            out["idle_left"] = round(max(0.0, idle_timeout - self.idle_for(now)), 1)
        return out


