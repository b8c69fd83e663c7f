"""The explorer window: a pygame display loop on the main thread over an app.walker.Walker generating in its worker thread.

One display-loop iteration (`Explorer.tick`), at up to `display_hz` (60) per second:
  events -> held keys / mouse -> walker.set_input (never blocks) -> results of background tasks -> chunks pulled from
  the walker's bounded queue into a short playback buffer -> the next frame shown when its time (1/fps after the previous
  one) has come -> the window redrawn if anything changed.
Frames play at the model's frame rate; when the buffer runs dry the view holds its last frame and the HUD says how far
behind real time generation is. Anything that may wait on the generator (a new start image, saving or loading a
walk, a file dialog) runs in a helper thread, so the loop itself never waits for generation.
"""
from __future__ import annotations

import collections
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygame

from worldwalk import assets_dir
from worldwalk.app.desktop import hud, style
from worldwalk.app.desktop.keys import ACTIONS, CTRL_ACTIONS, MOVE_KEYS, is_ctrl
from worldwalk.app.desktop.prompt import IMAGE_TYPES, WALK_TYPES, FileDialog, PathPrompt, dialog_available
from worldwalk.app.desktop.view import ExplorerView, heading_of
from worldwalk.app.desktop.walkfile import SUFFIX, capture, load_walk, save_walk
from worldwalk.app.walker import Walker
from worldwalk.controls.rig import InputState
from worldwalk.world.images import DEPTH_SUFFIXES, open_picture

SCENES_DIR = assets_dir() / "scenes"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_VIEW = (960, 720)  # the default window fits in this


@dataclass
class Options:
    out_dir: Path = Path("recordings")  # recordings, screenshots and saved walks go here
    scale: float | None = None  # window pixels per frame pixel; None: fit MAX_VIEW
    display_hz: int = 60
    seed: int = 0
    fov: float | None = None
    dialog: bool = True  # use the platform's file dialog where there is one
    scenes_dir: Path = SCENES_DIR
    hud: bool = True
    title: str = "worldwalk"


@dataclass
class Shown:
    """What the view shows now."""
    frame: np.ndarray  # (H, W, 3) uint8
    pose: np.ndarray  # (4, 4) c2w
    number: int  # frame number in the walk (0 = the start image)


@dataclass
class LoopStats:
    iterations: int = 0
    started: float = 0.0
    times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=121))
    busy_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=240))  # work per iteration

    @property
    def hz(self) -> float:
        """Display-loop iterations per second over the last ~2 s."""
        t = self.times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 and t[-1] > t[0] else 0.0

    @property
    def mean_hz(self) -> float:
        dt = time.monotonic() - self.started
        return self.iterations / dt if dt > 0 else 0.0


def default_image(w: int = 512, h: int = 384) -> np.ndarray:
    """A plain start scene (sky, horizon, a tiled floor) for when no image and no start scene is at hand."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    horizon = h * 0.45
    sky = np.clip(y / horizon, 0, 1)[..., None]
    img[:] = (1 - sky) * np.array([70, 130, 210]) + sky * np.array([190, 215, 235])
    below = y > horizon
    depth = 40.0 / np.maximum(y - horizon, 1)  # metres along the floor
    u = (x - w / 2) * depth / 180
    tile = ((np.floor(u) + np.floor(depth)) % 2)[..., None]
    floor = tile * np.array([150, 130, 100]) + (1 - tile) * np.array([110, 95, 75])
    fog = np.clip(depth / 30, 0, 1)[..., None]
    floor = (1 - fog) * floor + fog * np.array([190, 205, 215])
    img[below] = floor[below]
    return img.round().astype(np.uint8)


def no_display_error(e: Exception) -> ValueError:
    return ValueError(f"cannot open a window ({e}); the desktop explorer needs a display; without one use the "
                      "web demo")


def stamp(prefix: str, suffix: str, folder: Path) -> Path:
    """folder/prefix-YYYYmmdd-HHMMSS.suffix, with -2, -3 ... if that exists."""
    base = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    p = folder / f"{base}{suffix}"
    n = 2
    while p.exists() or p.with_suffix(".json").exists() and suffix == ".mp4":
        p = folder / f"{base}-{n}{suffix}"
        n += 1
    return p


class Explorer(ExplorerView):
    def __init__(self, walker: Walker, options: Options | None = None):
        self.walker = walker
        self.opt = options or Options()
        s = walker.session
        self.fps = float(s.cfg.fps)
        self.frame_wh = s.size_wh
        self.per_chunk = s.frames_per_step
        scale = self.opt.scale or min(MAX_VIEW[0] / self.frame_wh[0], MAX_VIEW[1] / self.frame_wh[1])
        self.view_wh = (max(1, round(self.frame_wh[0] * scale)), max(1, round(self.frame_wh[1] * scale)))
        self.screen: pygame.Surface | None = None
        self.running = False
        # what is shown, what is queued for showing
        self.shown: Shown | None = None
        self.buffer: collections.deque = collections.deque()  # (frame, pose, number, chunk key or None)
        self.gen = -1
        self.next_due = 0.0  # monotonic time the next frame may be shown
        self.waiting_since: float | None = None  # playback wanted a frame and none was there
        self.frames_shown = 0
        self.history: collections.deque = collections.deque(maxlen=4096)  # (monotonic, number, z, heading) per frame
        # input
        self.held: set[str] = set()
        self._sent_keys: frozenset = frozenset()
        self.mouse = [0.0, 0.0]
        self.captured = False
        self.changes: collections.deque = collections.deque(maxlen=1000)  # (seq, monotonic) of changes not yet seen
        self.latency_s: float | None = None  # last input change -> the first frame planned with it on screen
        self.pipeline_s: float | None = None  # chunk planned -> its first frame on screen
        # UI state
        self.hud_on = self.opt.hud
        self.help_on = False
        self.prompt: PathPrompt | None = None
        self.dialog = FileDialog()
        self.toasts: list[tuple[float, str, tuple]] = []
        self._seen_message = walker.message_seq
        self.scene_index = -1
        self.recording_wanted = False
        self.last_walk: Path | None = None
        self.saved_files: list[Path] = []
        # helper-thread tasks (start / save / load): one at a time, results back through a queue
        self._task: threading.Thread | None = None
        self._task_name = ""
        self._results: queue.Queue = queue.Queue()
        # drawing caches
        self._dirty = True
        self._view_surf: pygame.Surface | None = None
        self._hud_cache: dict = {}
        self._hud_due = 0.0
        self._rss = (0.0, 0)
        self.loop = LoopStats()

    # ------------------------------------------------------------------ window
    def open_window(self) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            pygame.display.init()
            pygame.font.init()
            self.screen = pygame.display.set_mode(self.view_wh)
        except pygame.error as e:
            raise no_display_error(e) from None
        pygame.display.set_caption(self.opt.title)
        self.fonts = hud.Fonts()
        self.clock = pygame.time.Clock()
        pygame.key.set_repeat()  # held keys are tracked from KEYDOWN/KEYUP; no auto-repeat
        if self.walker.session.started and self.walker.last_frame is not None:
            s = self.walker.session
            self._show(Shown(self.walker.last_frame, np.array(s.last_pose, dtype=np.float64), s.frame_index - 1))
        self.gen = self.walker.generation
        self.running = True
        self.loop = LoopStats(started=time.monotonic())

    def close(self) -> None:
        self.running = False
        self._release_mouse()
        if self._task is not None:
            self._task.join(timeout=120)
        self.walker.close()
        if pygame.display.get_init():
            pygame.display.quit()

    # ------------------------------------------------------------------ the loop
    def run(self, frames: int | None = None, until=None, timeout: float | None = None) -> str:
        """Run the display loop until the window closes ("quit"), `frames` iterations ("frames"), `until()` is true
        ("until") or `timeout` seconds ("timeout")."""
        end = time.monotonic() + timeout if timeout is not None else math.inf
        n = 0
        while self.running:
            self.tick()
            n += 1
            if until is not None and until():
                return "until"
            if frames is not None and n >= frames:
                return "frames"
            if time.monotonic() >= end:
                return "timeout"
        return "quit"

    def tick(self) -> None:
        t0 = time.monotonic()
        self._events(t0)
        self._send_input(t0)
        self._poll_tasks()
        self._check_generation()
        self._pull_chunks()
        self._play(t0)
        self._check_messages(t0)
        self._draw(t0)
        now = time.monotonic()
        self.loop.busy_ms.append(1000 * (now - t0))
        self.loop.iterations += 1
        self.loop.times.append(now)
        self.clock.tick(self.opt.display_hz)

    # ------------------------------------------------------------------ input
    def _events(self, now: float) -> None:
        for ev in pygame.event.get():
            t = ev.type
            if t == pygame.QUIT:
                self.running = False
            elif t in (pygame.WINDOWFOCUSLOST, pygame.WINDOWMINIMIZED):
                self.held.clear()
                self._release_mouse()
            elif t in (pygame.WINDOWEXPOSED, pygame.WINDOWRESTORED, pygame.VIDEOEXPOSE):
                self._dirty = True
            elif self.prompt is not None and t in (pygame.KEYDOWN, pygame.TEXTINPUT):
                self._prompt_event(ev)
            elif t == pygame.KEYDOWN:
                self._keydown(ev)
            elif t == pygame.KEYUP:
                name = MOVE_KEYS.get(ev.key)
                if name:
                    self.held.discard(name)
            elif t == pygame.MOUSEBUTTONDOWN and ev.button == 1 and not self.captured and self.prompt is None:
                self._capture_mouse()
            elif t == pygame.MOUSEMOTION and self.captured:
                self.mouse[0] += ev.rel[0]
                self.mouse[1] += ev.rel[1]

    def _keydown(self, ev) -> None:
        mod = getattr(ev, "mod", 0)
        if is_ctrl(mod):
            action = CTRL_ACTIONS.get(ev.key)
            if action:
                self.do(action)
            return
        if ev.key == pygame.K_F12 and mod & pygame.KMOD_SHIFT:
            self.do("frame_shot")
            return
        name = MOVE_KEYS.get(ev.key)
        if name:
            self.held.add(name)
            return
        action = ACTIONS.get(ev.key)
        if action:
            self.do(action)

    def _send_input(self, now: float) -> None:
        keys = frozenset(self.held) if self.prompt is None else frozenset()
        dx, dy = self.mouse
        if keys != self._sent_keys or dx or dy:
            seq = self.walker.set_input(InputState(keys=keys, mouse_dx=dx, mouse_dy=dy))
            if not self.walker.paused and (not self.changes or now - self.changes[-1][1] > 0.05):
                self.changes.append((seq, now))  # coalesced: mouse motion comes every frame
            self._sent_keys = keys
            self.mouse = [0.0, 0.0]

    def _capture_mouse(self) -> None:
        pygame.event.set_grab(True)
        pygame.mouse.set_visible(False)
        pygame.mouse.get_rel()  # forget motion from before the capture
        self.captured = True
        self._invalidate()

    def _release_mouse(self) -> None:
        if self.captured and pygame.display.get_init():
            pygame.event.set_grab(False)
            pygame.mouse.set_visible(True)
        self.captured = False
        self._invalidate()

    # ------------------------------------------------------------------ actions
    def do(self, action: str) -> None:
        """Carry out one of the actions of keys.ACTIONS / CTRL_ACTIONS (also for scripted use)."""
        w = self.walker
        self._invalidate()
        if action == "pause":
            if w.error:
                self.say("generation stopped after an error; press N or O to start again", style.RED)
            else:
                self.say("paused" if w.toggle_pause() else "walking on")
        elif action == "record":
            self.toggle_recording()
        elif action == "screenshot":
            self.screenshot()
        elif action == "frame_shot":
            self.screenshot(frame_only=True)
        elif action == "bookmark":
            w.bookmark()
        elif action == "rewind":
            w.rewind()
        elif action in ("speed_up", "speed_down"):
            getattr(w, action)()
        elif action == "next_scene":
            self.next_scene()
        elif action == "open_image":
            self.choose("image", "Open a start image", IMAGE_TYPES, str(Path.cwd()) + os.sep, IMAGE_SUFFIXES)
        elif action == "save_walk":
            self.save()
        elif action == "load_walk":
            initial = self.last_walk or self._newest_walk()
            self.choose("walk", "Load a saved walk (.walk)", WALK_TYPES,
                        str(initial) if initial else str(self.opt.out_dir) + os.sep, (SUFFIX,))
        elif action == "help":
            self.help_on = not self.help_on
        elif action == "hud":
            self.hud_on = not self.hud_on
        elif action == "escape":
            if self.captured:
                self._release_mouse()
            elif self.help_on:
                self.help_on = False
            else:
                self.say("Ctrl+Q or closing the window quits")
        elif action == "quit":
            self.running = False
        else:
            raise ValueError(f"explorer: unknown action {action!r}")

    def say(self, text: str, color=style.TEXT, seconds: float = 4.0) -> None:
        self.toasts.append((time.monotonic() + seconds, text, color))
        self.toasts = self.toasts[-4:]
        self._invalidate()

    def _invalidate(self) -> None:
        """Overlays changed: render them again at the next draw."""
        self._hud_cache.clear()
        self._dirty = True

    def _out_dir(self) -> Path | None:
        try:
            self.opt.out_dir.mkdir(parents=True, exist_ok=True)
            return self.opt.out_dir
        except OSError as e:
            self.say(f"cannot use output folder {self.opt.out_dir}: {e.strerror or e}", style.RED)
            return None

    def toggle_recording(self) -> None:
        if self.recording_wanted:
            self.walker.record_stop()
            self.recording_wanted = False
            return
        folder = self._out_dir()
        if folder is None:
            return
        path = stamp("walk", ".mp4", folder)
        self.walker.record_start(path)
        self.recording_wanted = True
        self.saved_files.append(path)

    def screenshot(self, frame_only: bool = False) -> Path | None:
        folder = self._out_dir()
        if folder is None or self.screen is None:
            return None
        path = stamp("frame" if frame_only else "shot", ".png", folder)
        try:
            if frame_only:
                from PIL import Image
                Image.fromarray(self.shown.frame).save(path)
            else:
                self._draw(time.monotonic(), force=True)
                pygame.image.save(self.screen, str(path))
        except (OSError, pygame.error, AttributeError) as e:
            self.say(f"screenshot failed: {e}", style.RED)
            return None
        self.say(f"screenshot {path}")
        self.saved_files.append(path)
        return path

    def scenes(self) -> list[Path]:
        d = self.opt.scenes_dir
        return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                      and not p.name.lower().endswith(DEPTH_SUFFIXES)) if d.is_dir() else []  # (depth maps: no)

    def next_scene(self) -> None:
        scenes = self.scenes()
        if not scenes:
            self.say(f"no start scenes in {self.opt.scenes_dir} — keeping the current image (O opens one)",
                     style.AMBER)
            return
        self.scene_index = (self.scene_index + 1) % len(scenes)
        self.open_image(scenes[self.scene_index])

    def open_image(self, path) -> None:
        """Restart the walk at the image `path` (in the background); a bad image leaves the walk as it was."""
        def job():
            self.walker.start(open_picture(str(path)), seed=self.opt.seed, fov_deg=self.opt.fov)
            speed = self.walker.message  # a close-up starts slower (app/walker.py)
            return f"new walk from {Path(path).name}" + (f" — {speed}" if speed else "")
        self._start_task("open image", job)

    def save(self, path: str | Path | None = None) -> None:
        folder = self._out_dir() if path is None else Path(path).parent
        if folder is None:
            return
        target = Path(path) if path else stamp("walk", SUFFIX, folder)

        def job():
            saved = capture(self.walker)
            out = save_walk(saved, target)
            self.last_walk = out
            self.saved_files.append(out)
            return f"saved walk (frame {saved.frame_index}) to {out}"
        self._start_task("save walk", job)

    def load(self, path: str | Path) -> None:
        def job():
            saved = load_walk(path)
            try:
                self.walker.start_from(saved.snapshot, saved.rig, saved.path, image=saved.meta.get("image"))
            except ValueError as e:
                raise ValueError(f"walk file: {path}: {e}") from None
            self.last_walk = Path(path)
            return f"loaded {Path(path).name} at frame {saved.frame_index} — Space to walk on"
        self._start_task("load walk", job)

    def _newest_walk(self) -> Path | None:
        d = self.opt.out_dir
        walks = sorted(d.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime) if d.is_dir() else []
        return walks[-1] if walks else None

    # ------------------------------------------------------------------ choosing files
    def choose(self, purpose: str, title: str, types, initial: str, suffixes) -> None:
        if self.prompt is not None or self.dialog.busy:
            return
        self._release_mouse()
        self.held.clear()
        if self.opt.dialog and dialog_available():
            folder = initial if os.path.isdir(initial) else os.path.dirname(initial) or "."
            self.dialog.ask(purpose, title, types, folder)
            self.say(f"{title}: choose in the file dialog")
        else:
            self.prompt = PathPrompt(purpose, title, initial, suffixes)
            pygame.key.start_text_input()

    def _prompt_event(self, ev) -> None:
        self._invalidate()
        r = self.prompt.handle(ev)
        if r is None:
            return
        p, self.prompt = self.prompt, None
        if r == "accept":
            self._chosen(p.purpose, p.path)

    def _chosen(self, purpose: str, path: str) -> None:
        if purpose == "image":
            self.open_image(path)
        elif purpose == "walk":
            self.load(path)

    # ------------------------------------------------------------------ background tasks
    def _start_task(self, name: str, fn) -> bool:
        if self._task is not None and self._task.is_alive():
            self.say(f"busy ({self._task_name}); try again in a moment", style.AMBER)
            return False
        self._task_name = name

        def body():
            try:
                self._results.put((name, True, fn()))
            except (ValueError, OSError, RuntimeError) as e:
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                self._results.put((name, False, msg))
        self._task = threading.Thread(target=body, name=f"worldwalk-{name}", daemon=True)
        self._task.start()
        self.say(f"{name}…", style.DIM, seconds=1.5)
        return True

    @property
    def busy(self) -> bool:
        return self._task is not None and self._task.is_alive()

    def _poll_tasks(self) -> None:
        while True:
            try:
                name, ok, value = self._results.get_nowait()
            except queue.Empty:
                break
            self._seen_message = self.walker.message_seq  # the walker's own note of a load is not news
            if ok:
                if name in ("open image", "load walk") and self.recording_wanted:  # a new walk ends the recording
                    self.recording_wanted = False
                    mp4 = next((p for p in reversed(self.saved_files) if p.suffix == ".mp4"), None)
                    self.say(f"recording stopped by the new walk: saved {mp4}")
                self.say(value, style.ACCENT)
            else:
                self.say(f"{name} failed: {value}", style.RED, seconds=7)
        r = self.dialog.poll()
        if r is not None:
            purpose, path = r
            if path.startswith("\0"):  # no usable dialog after all: type the path instead
                self.opt.dialog = False
                self.prompt = PathPrompt(purpose, "Path", str(Path.cwd()) + os.sep,
                                         IMAGE_SUFFIXES if purpose == "image" else (SUFFIX,))
            elif path:
                self._chosen(purpose, path)

    def _check_messages(self, now: float) -> None:
        seq = self.walker.message_seq  # first: the message is set before the count moves
        m = self.walker.message
        if seq != self._seen_message and not self.busy and self._results.empty():
            self._seen_message = seq
            if m:
                self.say(m, style.RED if m.startswith(("cannot", "no bookmark")) else style.TEXT)
            if m.startswith("cannot record"):
                self.recording_wanted = False
        if self.toasts and self.toasts[0][0] < now:
            self.toasts = [t for t in self.toasts if t[0] >= now]
            self._invalidate()

    # ------------------------------------------------------------------ frames
    def _check_generation(self) -> None:
        w = self.walker
        if w.generation == self.gen:
            return
        self.gen = w.generation  # a start, rewind or load: what was queued belongs to the old walk
        self.buffer.clear()
        self.waiting_since = None
        s = w.session
        if w.last_frame is not None:
            self._show(Shown(w.last_frame, np.array(s.last_pose, dtype=np.float64), s.frame_index - 1))

    def _pull_chunks(self) -> None:
        w = self.walker
        while not self.buffer:  # only when the buffer runs dry: what waits in the queue waits with old input
            c = w.take()
            if c is None:
                return
            if c.generation != w.generation:
                continue
            first = 1 + c.index * self.per_chunk
            for i, (f, p) in enumerate(zip(c.frames, c.poses)):
                self.buffer.append((f, p, first + i, c if i == 0 else None))

    def _play(self, now: float) -> None:
        if self.walker.paused:
            self.waiting_since = None
            self.next_due = max(self.next_due, now)
            return
        if now < self.next_due:
            return
        if not self.buffer:
            if self.waiting_since is None:
                self.waiting_since = now
            return
        f, p, number, chunk = self.buffer.popleft()
        late = now - self.next_due
        self.next_due = (self.next_due if late < 1.0 / self.fps else now) + 1.0 / self.fps
        self.waiting_since = None
        self._show(Shown(f, p, number))
        if chunk is not None:
            self._chunk_on_screen(chunk, now)

    def _chunk_on_screen(self, chunk, now: float) -> None:
        """The first frame of `chunk` is on screen: latency of the input changes it was the first to be planned with."""
        t_taken, seq = chunk.read_at, chunk.input_seq
        self.pipeline_s = now - t_taken
        first = None
        while self.changes and self.changes[0][0] <= seq:
            _, t = self.changes.popleft()
            first = t if first is None else first
        if first is not None:
            self.latency_s = now - first

    def _show(self, shown: Shown) -> None:
        self.shown = shown
        self.frames_shown += 1
        self.history.append((time.monotonic(), shown.number, float(shown.pose[2, 3]), heading_of(shown.pose)))
        self._view_surf = None
        self._dirty = True

    @property
    def behind(self) -> bool:
        """Playback is waiting for generation (the view holds its last frame)."""
        return self.waiting_since is not None and time.monotonic() - self.waiting_since > 1.5 / self.fps

    @property
    def realtime_ratio(self) -> float:
        return self.walker.stats.generated_fps / self.fps
