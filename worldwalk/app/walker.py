"""A live walk: a world.Session driven by a camera Rig from a worker thread; frames come out through a bounded queue.

Every front end (desktop window, browser demo) runs one Walker per walk:

    w = Walker(session)
    first = w.start(image, seed=0)            # (1, H, W, 3) start frame
    w.set_input(InputState(keys={"w"}))        # any time, from any thread: the input held from now on
    item = w.frames.get(timeout=1)             # Chunk(frames (N, H, W, 3), poses (N, 4, 4), timing, ...)
    w.pause(); w.resume(); w.bookmark(); w.rewind(); w.record_start(path); w.record_stop()
    w.close()

The worker plans each chunk from the input held when the chunk starts (rig.update(input, 0) then rig.advance(n)), so
the poses given to the model are exactly the poses shown. Nothing a front end calls waits for generation: input goes
through its own small lock, and bookmark / rewind / record / speed requests are queued and carried out by the worker
between chunks (`sync()` waits for them; `message` says what happened). The queue is bounded: when the display falls behind, the
worker waits instead of piling up frames (memory stays flat), and it plans a chunk only once the queue has room for it,
so each chunk reads the input held as late as possible (latency ~ one chunk on screen + one generation); when generation falls behind, the display holds its last
frame and `behind` tells the HUD so.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from worldwalk.app.recorder import Recorder, recording_info
from worldwalk.controls.rig import InputState, Rig, RigConfig
from worldwalk.world.session import Session, Snapshot


@dataclass
class Chunk:
    frames: np.ndarray  # (N, H, W, 3) uint8
    poses: np.ndarray  # (N, 4, 4) c2w of each frame
    timing: dict  # seconds per phase of the step that made it
    index: int  # chunk index in the walk
    generation: int  # bumps at every rewind/restart: chunks of an older generation are stale


@dataclass
class Bookmark:
    snapshot: Snapshot
    rig: Rig
    path: list
    frame_index: int


@dataclass
class WalkStats:
    chunk_ms: dict = field(default_factory=dict)  # last step's phases in ms
    generated_fps: float = 0.0  # frames per second of generation (last chunk)
    position: tuple = (0.0, 0.0, 0.0)  # metres, session frame
    heading_deg: float = 0.0
    frames: int = 0


class Walker:
    def __init__(self, session: Session, rig_config: RigConfig | None = None, queue_chunks: int = 2,
                 world_desc: dict | None = None):
        self.session = session
        self.rig_config = rig_config or RigConfig(fps=session.cfg.fps)
        self.rig = Rig(self.rig_config)
        self.frames: queue.Queue[Chunk] = queue.Queue(maxsize=queue_chunks)
        self.world_desc = dict(world_desc or {})
        self._input = InputState()
        self._in_lock = threading.Lock()  # the held input: never held for long
        self._lock = threading.RLock()  # session, rig, recorder, bookmarks: held by the worker during a step
        self._cmds: queue.Queue = queue.Queue()
        self._run = threading.Event()  # set = generating, clear = paused
        self._stop = threading.Event()
        self._idle = threading.Event()  # set while no command is being carried out
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self.bookmarks: list[Bookmark] = []
        self.path: list[tuple[float, float]] = [(0.0, 0.0)]  # (x, z) of every chunk end, for the map
        self.recorder: Recorder | None = None
        self.stats = WalkStats()
        self.error: str | None = None
        self.message = ""  # the last thing the worker did on request (for the HUD)
        self.image = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, image, seed: int = 0, **camera) -> np.ndarray:
        """(Re)start the walk at `image` (camera: intrinsics= / fov_deg= / frame_intrinsics=). -> start frame.

        Waits for a chunk in progress to finish. Raises ValueError for a bad image, leaving the walk as it was.
        """
        with self._lock:
            first = self.session.start(image, seed=seed, **camera)
            self._record_stop()
            self.image = image
            self.rig = Rig(self.rig_config)
            self.path = [(0.0, 0.0)]
            self.bookmarks.clear()
            self._new_generation()
            self.stats = WalkStats(frames=1)
            self.error = None
        with self._in_lock:
            self._input = InputState()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="worldwalk-generator", daemon=True)
            self._thread.start()
        self._run.set()
        return first

    def close(self) -> None:
        self._stop.set()
        self._run.set()
        self._drain()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._lock:
            self._record_stop()

    # ------------------------------------------------------------------ input and control (never block)
    def set_input(self, inp: InputState) -> None:
        """The input held from now on; mouse deltas add up until the next chunk takes them."""
        with self._in_lock:
            dx, dy = self._input.mouse_dx + inp.mouse_dx, self._input.mouse_dy + inp.mouse_dy
            self._input = InputState(keys=inp.keys, mouse_dx=dx, mouse_dy=dy, move_axes=inp.move_axes,
                                     look_axes=inp.look_axes, lift_axis=inp.lift_axis)

    def _take_input(self) -> InputState:
        with self._in_lock:
            inp = self._input
            self._input = InputState(keys=inp.keys, move_axes=inp.move_axes, look_axes=inp.look_axes,
                                     lift_axis=inp.lift_axis)
            return inp

    @property
    def paused(self) -> bool:
        return not self._run.is_set()

    def pause(self) -> None:
        self._run.clear()

    def resume(self) -> None:
        if self.error is None:
            self._run.set()

    def toggle_pause(self) -> bool:
        (self.resume if self.paused else self.pause)()
        return self.paused

    def request(self, name: str, *args) -> None:
        """Queue one of: bookmark, rewind, record_start(path), record_stop, speed_up, speed_down."""
        if name not in ("bookmark", "rewind", "record_start", "record_stop", "speed_up", "speed_down"):
            raise ValueError(f"walker request {name!r}: unknown")
        self._idle.clear()
        self._cmds.put((name, args))

    def bookmark(self):
        self.request("bookmark")

    def rewind(self):
        self.request("rewind")

    def record_start(self, path: str | Path):
        self.request("record_start", Path(path))

    def record_stop(self):
        self.request("record_stop")

    def speed_up(self):
        self.request("speed_up")

    def speed_down(self):
        self.request("speed_down")

    def sync(self, timeout: float = 60.0) -> bool:
        """Wait until every queued request has been carried out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            # block on the worker's signal; never spin on the queue, which would starve the worker of the GIL
            if self._idle.wait(timeout=0.05):
                if self._cmds.empty():
                    return True
                time.sleep(0.005)  # set just before a newer request landed: the worker picks it up next
        return False

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    # ------------------------------------------------------------------ carried out by the worker, under _lock
    def _do(self, name: str, args) -> None:
        import copy
        if name == "bookmark":
            if not self.session.started:
                return
            self.bookmarks.append(Bookmark(self.session.snapshot(), copy.deepcopy(self.rig), list(self.path),
                                           self.session.frame_index))
            self.message = f"bookmark {len(self.bookmarks)} at frame {self.session.frame_index}"
        elif name == "rewind":
            if not self.bookmarks:
                self.message = "no bookmark to rewind to (press B first)"
                return
            b = self.bookmarks[-1]
            self.session.restore(b.snapshot)
            self.rig = copy.deepcopy(b.rig)
            self.path = list(b.path)
            self._new_generation()
            self.message = f"rewound to bookmark {len(self.bookmarks)} (frame {b.frame_index})"
        elif name == "record_start":
            self._record_stop()
            s = self.session
            info = recording_info(s, self.world_desc, s.window_chunks, self.image)
            try:
                # the state before the next chunk, the recording's first: render --replay restores it (exact replay)
                self.recorder = Recorder(args[0], s.cfg.fps, s.size_wh, s.intrinsics, info,
                                         start=s.snapshot() if s.started else None)
                self.message = f"recording to {self.recorder.path}"
            except (ValueError, OSError) as e:
                self.message = f"cannot record: {e}"
        elif name == "record_stop":
            out = self._record_stop()
            self.message = f"saved {out[0]} and {out[1]}" if out else "not recording"
        elif name in ("speed_up", "speed_down"):
            v = getattr(self.rig, name)()
            self.message = f"speed {v:.2f} m/s"

    def _record_stop(self):
        if self.recorder is None:
            return None
        out = self.recorder.close()
        self.recorder = None
        return out

    def _new_generation(self):
        self._generation += 1
        self._drain()

    def _drain(self):
        try:
            while True:
                self.frames.get_nowait()
        except queue.Empty:
            pass

    # ------------------------------------------------------------------ the worker
    def _run_commands(self):
        """Carry out queued requests (under _lock); a failing one is reported in `message`, the walk goes on."""
        with self._lock:
            while not self._cmds.empty():
                name, args = self._cmds.get_nowait()
                try:
                    self._do(name, args)
                except Exception as e:  # noqa: BLE001 - a request must never stop the generator
                    self.message = f"{name} failed: {e}"
            self._idle.set()

    def _loop(self):
        while not self._stop.is_set():
            self._run_commands()
            if not self._run.wait(timeout=0.05) or self._stop.is_set() or not self._cmds.empty():
                continue
            if self.frames.full():  # plan only when the chunk can be handed over at once: it reads the newest input
                time.sleep(0.005)
                continue
            with self._lock:
                gen = self._generation
                rig = self.rig
                rig.update(self._take_input(), 0.0)
                poses = rig.plan_chunk(self.session.frames_per_step)
                try:
                    frames = self.session.step(poses)
                except Exception as e:  # keep the front end alive; it shows the message
                    self.error = f"{type(e).__name__}: {e}"
                    self._run.clear()
                    continue
                rig.advance(self.session.frames_per_step)
                if self.recorder is not None:
                    self.recorder.add(frames, poses)
                t = self.session.last_timing
                p = poses[-1][:3, 3]
                self.path.append((float(p[0]), float(p[2])))
                self.stats = WalkStats(
                    chunk_ms={k: 1000 * v for k, v in t.items()},
                    generated_fps=len(frames) / max(t.get("total", 1e-9), 1e-9),
                    position=tuple(float(x) for x in p), heading_deg=float(rig.angles[0]),
                    frames=self.session.frame_index)
                chunk = Chunk(frames, poses, dict(t), self.session.chunk_index - 1, gen)
            while not self._stop.is_set():  # hand over, waiting while the display is behind
                try:
                    self.frames.put(chunk, timeout=0.1)
                    break
                except queue.Full:
                    if gen != self._generation or not self._cmds.empty():
                        if gen != self._generation:
                            break
                        self._run_commands()

    @property
    def generation(self) -> int:
        return self._generation

    def wait_chunk(self, timeout: float = 5.0) -> Chunk | None:
        """The next chunk of the current generation, or None after `timeout` seconds."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                c = self.frames.get(timeout=left)
            except queue.Empty:
                return None
            if c.generation == self._generation:
                return c
