"""A live walk: a world.Session driven by a camera Rig from a worker thread; frames come out through a bounded queue.

Every front end (desktop window, browser demo) runs one Walker per walk, as it is (no front end subclasses it):

    w = Walker(session)
    first = w.start(image, seed=0)            # (1, H, W, 3) start frame; or w.start_from(snapshot, rig, path)
    w.set_input(InputState(keys={"w"}))        # any time, from any thread: the input held from now on
    item = w.take(timeout=1)                   # the next chunk for the display (None if none came): Chunk(frames
                                               # (N, H, W, 3), poses (N, 4, 4), timing, ...)
    w.plan_at(t)                               # the display's pace: the next chunk is planned no sooner than t
    w.pause(); w.resume(); w.bookmark(); w.rewind(); w.record_start(path); w.record_stop()
    w.close()

The worker plans each chunk from the input held when the chunk starts (rig.update(input, 0) then rig.advance(n)), so
the poses given to the model are exactly the poses shown. Nothing a front end calls waits for generation: input goes
through its own small lock, and bookmark / rewind / record / speed requests are queued and carried out by the worker
between chunks (`sync()` waits for them; `message` says what happened). The queue is bounded: when the display falls behind, the
worker waits instead of piling up frames (memory stays flat), and it plans a chunk only once the queue has room for it,
so each chunk reads the input held as late as possible (latency ~ one chunk on screen + one generation); when generation falls behind, the display holds its last
frame and `behind` tells the HUD so.

What the display has taken is what the walk is (`take`): a chunk still waiting in the queue can be taken back.
- A stop that stops: every chunk remembers the input it was planned with and the walk's state before it. When nothing
  that moves is held any more (keys, sticks released) and a queued chunk was planned moving, the worker drops it and
  everything after it, restores the state before it and plans again from the input held now, so releasing W stops the
  view at the end of the chunk on screen (the mouse motion the dropped chunks had taken is given back). Only a stop
  drops chunks: a chunk planned standing still is never dropped, so input that changes faster than a chunk is made
  can never starve the display.
- Bookmarks, saved walks and the start of a recording are taken at the chunk on screen (the state after the last chunk
  taken), not where the generator has got to; a recording gets the chunks as the display takes them.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
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
class WalkState:
    """The walk between two chunks: what a bookmark, a saved walk or a dropped chunk comes back to."""
    snapshot: Snapshot
    rig: Rig
    path: list  # the map's (x, z) per chunk end
    frame_index: int  # the walk's frames so far (the next chunk's first frame number)
    stats: "WalkStats"

    @property
    def frame(self) -> np.ndarray | None:
        """(H, W, 3) uint8: the last frame of the walk at this point (kept on the snapshot; shown at a rewind)."""
        return getattr(self.snapshot, "last_frame", None)


@dataclass
class Chunk:
    frames: np.ndarray  # (N, H, W, 3) uint8
    poses: np.ndarray  # (N, 4, 4) c2w of each frame
    timing: dict  # seconds per phase of the step that made it
    index: int  # chunk index in the walk
    generation: int  # bumps at every rewind/restart: chunks of an older generation are stale
    taken_input: InputState | None = None  # the input it was planned with (its mouse motion included)
    before: WalkState | None = None  # the walk before it: restored when it is dropped
    read_at: float = 0.0  # monotonic time the worker read the input for it (input-to-display latency)
    input_seq: int = 0  # the walker's input_seq when it read the input: every set_input up to this one is in it


def moving(inp: InputState, sprint_keys=("shift",)) -> bool:
    """Whether the held part of an input (keys and sticks, not the mouse motion a chunk uses up) asks for motion."""
    return (bool(set(inp.keys) - set(sprint_keys)) or any(inp.move_axes) or any(inp.look_axes)
            or bool(inp.lift_axis))


@dataclass
class Bookmark:
    snapshot: Snapshot  # .last_frame: the frame the walk stood at (shown again at a rewind)
    rig: Rig
    path: list
    frame_index: int

    @property
    def frame(self) -> np.ndarray | None:
        return getattr(self.snapshot, "last_frame", None)


@dataclass
class WalkStats:
    chunk_ms: dict = field(default_factory=dict)  # last step's phases in ms
    generated_fps: float = 0.0  # frames per second of generation (last chunk)
    position: tuple = (0.0, 0.0, 0.0)  # metres, session frame
    heading_deg: float = 0.0
    frames: int = 0


class Walker:
    def __init__(self, session: Session, rig_config: RigConfig | None = None, queue_chunks: int = 2,
                 world_desc: dict | None = None, replan: bool = True):
        self.session = session
        self.rig_config = rig_config or RigConfig(fps=session.cfg.fps)
        self.rig = Rig(self.rig_config)
        self.queue_chunks = queue_chunks
        self._queue: collections.deque[Chunk] = collections.deque()  # made, not yet taken by the display
        self._q = threading.Condition()  # guards _queue and _taken
        self._taken: collections.deque[Chunk] = collections.deque()  # taken by the display, not yet recorded
        self.replan = replan  # drop queued chunks whose motion the input no longer asks for
        self.replans = 0  # chunks dropped so far (for tests and benchmarks)
        self._plan_at = 0.0  # monotonic time before which no chunk is planned (the display's pace; plan_at)
        self.last_frame: np.ndarray | None = None  # (H, W, 3): the newest frame of the walk (steps go on from it)
        self.input_seq = 0  # bumps at every set_input
        self.message_seq = 0  # bumps each time a request has been carried out (`message` says how it went)
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
        self.slowed: tuple[float, float] | None = None  # (m/s, metres ahead) where the walk started slower than usual
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
            self.last_frame = first[-1]
            self.rig = Rig(self.rig_config)
            self.message = self._fit_speed()
            self.path = [(0.0, 0.0)]
            self.bookmarks.clear()
            self._new_generation()
            self.stats = WalkStats(frames=1)
            self.error = None
        with self._in_lock:
            self._input = InputState()
        self._start_thread()
        self._run.set()
        return first

    def _fit_speed(self) -> str:
        """The rig's walking speed for the picture just started (Rig.fit_speed: slower where what lies ahead is near,
        so a close-up is not walked through in a second). -> a message for the HUD when it is slower than usual."""
        ahead = self.session.depth_ahead()
        v = self.rig.fit_speed(ahead)
        self.slowed = None if ahead is None or v >= self.rig_config.walk_speed else (v, ahead)
        if self.slowed is None:
            return ""
        return f"speed {v:.2f} m/s: what lies ahead is {ahead:.1f} m away (+/- to change)"

    def start_from(self, snap: Snapshot, rig: Rig, path: list, image=None) -> None:
        """Continue a saved walk: the session restored to `snap` (its .last_frame shown), the rig and map path as
        saved. The saved moment becomes bookmark 1, so a rewind comes back to it. The walk is left paused.

        A snapshot of another model raises ValueError and leaves a walk in progress as it was.
        """
        with self._lock:  # the worker is between chunks while this is held
            self.session.restore(snap)  # ValueError here changes nothing
            self._run.clear()
            self._record_stop()  # a recording of the walk before ends here
            self.image = image
            self.rig, self.path = copy.deepcopy(rig), list(path)
            self.last_frame = getattr(snap, "last_frame", None)
            clone = Snapshot({k: v.clone() for k, v in snap.tensors.items()}, dict(snap.meta))
            clone.last_frame = self.last_frame
            self.bookmarks[:] = [Bookmark(clone, copy.deepcopy(rig), list(path), self.session.frame_index)]
            self._new_generation()
            p = self.rig.pose[:3, 3]
            self.stats = WalkStats(position=tuple(float(x) for x in p), heading_deg=float(self.rig.angles[0]),
                                   frames=self.session.frame_index)
            self.error = None
        with self._in_lock:
            self._input = InputState()
        self._start_thread()

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="worldwalk-generator", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._run.set()
        self._drain()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._lock:
            self._record_stop()

    # ------------------------------------------------------------------ the display's side
    def take(self, timeout: float = 0.0, hold: bool = False) -> Chunk | None:
        """The next chunk for the display (waiting up to `timeout` s), or None. Taken is shown: it cannot be dropped
        any more, and a recording gets it. hold: plan no next chunk until the display says when (plan_at)."""
        end = time.monotonic() + timeout
        with self._q:
            while not self._queue:
                left = end - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._q.wait(left)
            c = self._queue.popleft()
            self._taken.append(c)
            if hold:
                self._plan_at = float("inf")
            self._q.notify_all()
            return c

    def plan_at(self, t: float) -> None:
        """Plan the next chunk no sooner than monotonic time t (when it is needed, so it reads the newest input)."""
        with self._q:
            self._plan_at = t

    @property
    def queued(self) -> int:
        with self._q:
            return len(self._queue)

    # ------------------------------------------------------------------ input and control (never block)
    def set_input(self, inp: InputState) -> int:
        """The input held from now on; mouse deltas add up until the next chunk takes them. -> its input_seq (a
        chunk with this input_seq or later was planned with it)."""
        with self._in_lock:
            self._input = dataclasses.replace(inp, mouse_dx=self._input.mouse_dx + inp.mouse_dx,
                                              mouse_dy=self._input.mouse_dy + inp.mouse_dy)
            self.input_seq += 1
            return self.input_seq

    def _take_input(self) -> tuple[InputState, float, int]:
        """-> (the input held now, when it was read, its input_seq); its mouse motion is used up."""
        with self._in_lock:
            inp = self._input
            self._input = dataclasses.replace(inp, mouse_dx=0.0, mouse_dy=0.0)
            return inp, time.monotonic(), self.input_seq

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
    def shown_state(self) -> WalkState:
        """The walk after the last chunk the display took (the one on screen), between two chunks: the state before
        the first chunk still queued, else the walk as it stands. Waits for a chunk in progress."""
        with self._lock:  # (queued chunks are all of this generation: a new one empties the queue under _lock)
            with self._q:
                first = self._queue[0] if self._queue else None
            if first is not None and first.before is not None:
                b = first.before
                return WalkState(b.snapshot, copy.deepcopy(b.rig), list(b.path), b.frame_index, b.stats)
            return self._state()

    def _state(self) -> WalkState:
        snap = self.session.snapshot()
        snap.last_frame = self.last_frame  # the frame kept once: on the state (a bookmark's, a saved walk's)
        return WalkState(snap, copy.deepcopy(self.rig), list(self.path), self.session.frame_index, self.stats)

    def _do(self, name: str, args) -> None:
        if name == "bookmark":
            if not self.session.started:
                return
            st = self.shown_state()
            self.bookmarks.append(Bookmark(st.snapshot, st.rig, st.path, st.frame_index))
            self.message = f"bookmark {len(self.bookmarks)} at frame {st.frame_index}"
        elif name == "rewind":
            if not self.bookmarks:
                self.message = "no bookmark to rewind to (press B first)"
                return
            b = self.bookmarks[-1]
            self.session.restore(b.snapshot)
            self.last_frame = b.frame
            self.rig = copy.deepcopy(b.rig)
            self.path = list(b.path)
            self._new_generation()
            self.message = f"rewound to bookmark {len(self.bookmarks)} (frame {b.frame_index})"
        elif name == "record_start":
            self._commit()
            self._record_stop()
            s = self.session
            info = recording_info(s, self.world_desc, s.window_chunks, self.image)
            try:
                # the walk after the chunk on screen: the recording gets the chunks taken from here on, and render
                # --replay restores this state to make them again (exact replay)
                start = self.shown_state().snapshot if s.started else None
                self.recorder = Recorder(args[0], s.cfg.fps, s.size_wh, s.intrinsics, info, start=start)
                self.message = f"recording to {self.recorder.path}"
            except (ValueError, OSError) as e:
                self.message = f"cannot record: {e}"
        elif name == "record_stop":
            self._commit()
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
        self._plan_at = 0.0  # a new walk, a rewind: the next chunk at once

    def _drain(self):
        with self._q:
            self._queue.clear()
            self._taken.clear()
            self._q.notify_all()

    def _commit(self) -> None:
        """Hand the chunks the display has taken to the recording (in order; those from before it started are not its).
        Under _lock: a new generation empties `_taken` under it, so every chunk here is of this generation."""
        while True:
            with self._q:
                if not self._taken:
                    return
                c = self._taken.popleft()
            r = self.recorder
            if r is None:
                continue
            first = c.before.frame_index if c.before is not None else None
            if first is not None and first < r.info.get("start_frame", 0):
                continue
            r.add(c.frames, c.poses)

    def _stale(self, chunk: Chunk) -> bool:
        """A chunk planned moving when nothing that moves is held any more (a stop): made again, not shown."""
        sprint = self.rig_config.keymap.get("sprint", ("shift",))
        with self._in_lock:
            held = self._input
        return (chunk.before is not None and chunk.taken_input is not None and moving(chunk.taken_input, sprint)
                and not moving(held, sprint))

    def _drop_stale(self) -> bool:
        """Drop the queued chunks from the first stale one (see _stale), and go back to the walk before it (under
        _lock). -> whether anything was dropped."""
        with self._q:
            q = list(self._queue)
            i = next((k for k, c in enumerate(q) if self._stale(c)), None)
            if i is None:
                return False
            dropped = q[i:]
            for _ in dropped:
                self._queue.pop()
        self._drop(dropped)
        return True

    def _drop(self, dropped: list[Chunk]) -> None:
        """Go back to the walk before dropped[0] (under _lock); the mouse motion the chunks used up is given back."""
        b = dropped[0].before
        self.session.restore(b.snapshot)
        self.rig, self.path, self.stats, self.last_frame = copy.deepcopy(b.rig), list(b.path), b.stats, b.frame
        with self._in_lock:  # the mouse motion the dropped chunks used up is looked again
            inp = self._input
            self._input = dataclasses.replace(inp, mouse_dx=inp.mouse_dx + sum(c.taken_input.mouse_dx for c in dropped),
                                              mouse_dy=inp.mouse_dy + sum(c.taken_input.mouse_dy for c in dropped))
        self.replans += len(dropped)

    # ------------------------------------------------------------------ the worker
    def _run_commands(self):
        """Carry out queued requests (under _lock); a failing one is reported in `message`, the walk goes on."""
        with self._lock:
            self._commit()
            while not self._cmds.empty():
                name, args = self._cmds.get_nowait()
                try:
                    self._do(name, args)
                except Exception as e:  # noqa: BLE001 - a request must never stop the generator
                    self.message = f"{name} failed: {e}"
                self.message_seq += 1
            self._idle.set()

    def _loop(self):
        while not self._stop.is_set():
            self._run_commands()
            if self.replan and self.session.started:
                with self._lock:
                    try:
                        self._drop_stale()
                    except ValueError as e:  # a snapshot of this very walk always fits; never stop the walk for it
                        self.message = f"could not re-plan: {e}"
            if not self._run.wait(timeout=0.05) or self._stop.is_set() or not self._cmds.empty():
                continue
            with self._q:  # plan only when the chunk can be handed over at once (it reads the newest input), and not
                # before the display wants it
                wait = len(self._queue) >= self.queue_chunks or time.monotonic() < self._plan_at
            if wait:
                time.sleep(0.005)
                continue
            with self._lock:
                gen = self._generation
                rig = self.rig
                before = self._state() if self.replan else None
                inp, read_at, seq = self._take_input()
                rig.update(inp, 0.0)
                poses = rig.plan_chunk(self.session.frames_per_step)
                try:
                    frames = self.session.step(poses)
                except Exception as e:  # keep the front end alive; it shows the message
                    self.error = f"{type(e).__name__}: {e}"
                    self._run.clear()
                    continue
                rig.advance(self.session.frames_per_step)
                self.last_frame = frames[-1]
                t = self.session.last_timing
                p = poses[-1][:3, 3]
                self.path.append((float(p[0]), float(p[2])))
                self.stats = WalkStats(
                    chunk_ms={k: 1000 * v for k, v in t.items()},
                    generated_fps=len(frames) / max(t.get("total", 1e-9), 1e-9),
                    position=tuple(float(x) for x in p), heading_deg=float(rig.angles[0]),
                    frames=self.session.frame_index)
                chunk = Chunk(frames, poses, dict(t), self.session.chunk_index - 1, gen, inp, before, read_at, seq)
                # released while it was being made (a display waiting for it would take it at once): a stop, so it
                # is not handed over but made again from the input held now
                if self._stale(chunk):
                    self._drop([chunk])
                    continue
                with self._q:  # there is room: planning waited for it, and only the display takes from the queue
                    self._queue.append(chunk)
                    self._q.notify_all()

    @property
    def generation(self) -> int:
        return self._generation

    def wait_chunk(self, timeout: float = 5.0, hold: bool = False) -> Chunk | None:
        """The next chunk of the current generation (taken: see `take`), or None after `timeout` seconds."""
        end = time.monotonic() + timeout
        while True:
            c = self.take(max(0.0, end - time.monotonic()), hold=hold)
            if c is None or c.generation == self._generation:
                return c
