"""Serving walks on Ray (`launch.py web --ray auto|local|ADDRESS`, `pip install -e ".[cluster]"`).

Each visitor's live walk runs in a Ray actor (WalkHost) that loads the world once and holds the walk's Session,
Walker and pump, exactly the in-process LiveWalk; the Gradio front end stays one process and keeps, per visitor, a
RemoteWalk with LiveWalk's interface: it routes the visitor's input to the actor and hands the page the JPEG bytes the
actor publishes (never tensors). Without --ray nothing here is imported, and Ray is not.

- The API (start_walk / step_walk / render) goes the same way: each API walk or render gets a Session in its own
  actor (SessionHost, RemoteSession), counted in the same cap.
- Resources: an actor asks for --ray-cpus CPUs (default 1) and --ray-gpus GPUs (default 0; 1 for the release); the
  default --max-walks is what the cluster can hold at once, and visitors beyond it wait in the demo's line.
- Fault tolerance: every few seconds the front end keeps the walk's latest state (a saved walk: snapshot, rig, map
  path; constant size) from its actor. When a call finds the actor (or its node) dead, a new actor is started on
  another worker and the walk goes on from that state, with a short notice in the page instead of an error.
  Finished recordings are copied to the front end when they stop, and a recording in progress is copied as it grows
  (its fragmented MP4, its journal and its start snapshot, new bytes only, with each kept state): when the actor
  dies, what was recorded up to the last copy stays downloadable and `render --replay walk-NN.jsonl` replays it.
"""
from __future__ import annotations

import tempfile
import threading
import time
import types
from pathlib import Path

import numpy as np

from worldwalk.app.recorder import start_snapshot_path
from worldwalk.app.web.live import LiveWalk, TabWalk

CHECKPOINT_S = 2.0  # how often the front end keeps a walk's latest state
MOVED = "your walk moved to another worker after a fault and goes on from a moment ago"


def _worker_world(args, threads: int):
    """In an actor: the world loaded from the server's options, computing on the CPUs the actor was given (not the
    whole node's). -> make_session"""
    import torch

    from worldwalk.app.runtime import keep_freed_memory
    from worldwalk.app.world_args import world_factory

    keep_freed_memory()  # (a worker is its own process: the same allocator setting as the app's)
    torch.set_num_threads(max(1, threads))
    return world_factory(args)[0]


class WalkHost:
    """Runs in a Ray actor: one visitor's LiveWalk over a world loaded in this worker from the server's options."""

    def __init__(self, args, rig_config, world_desc: dict, quality: int, threads: int = 1):
        self.make_session = _worker_world(args, threads)
        self.rig_config, self.world_desc, self.quality = rig_config, dict(world_desc), quality
        self.root = Path(tempfile.mkdtemp(prefix="worldwalk-actor-"))
        self.walk: LiveWalk | None = None

    def begin(self, owner, image, seed: int, label: str, saved: bytes | None = None) -> int:
        w = LiveWalk(owner, image, seed, label, self.root, self.quality)
        w.begin(self.make_session, self.rig_config, self.world_desc, saved=_load_saved(saved, self.root))
        self.walk = w
        return w.seq

    def frame_after(self, after: int):
        return self.walk.frame_after(after)

    def set_input(self, keys, dx: float, dy: float, n):
        self.walk.set_input(keys, dx, dy, n)

    def toggle_pause(self) -> bool:
        return self.walk.toggle_pause()

    def command(self, name: str) -> str:
        return self.walk.command(name)

    def record_start(self) -> tuple[str, bool]:
        return self.walk.record_start(), self.walk.recording

    def record_stop(self) -> tuple[str, dict[str, bytes]]:
        """-> (message, the recording's files by name: MP4, sidecar JSON, start snapshot)."""
        msg, mp4, side = self.walk.record_stop()
        files = {}
        if mp4 is not None:
            for p in (mp4, side, start_snapshot_path(mp4)):
                if p is not None and p.is_file():
                    files[p.name] = p.read_bytes()
        return msg, files

    def recording_tail(self, offsets: dict) -> dict[str, bytes]:
        """The recording in progress: the bytes of its MP4, journal and start snapshot past `offsets` (name -> bytes
        the front end has). The MP4 first: the journal copied after it holds at least its chunks."""
        w = self.walk
        r = w.walker.recorder if w is not None and w.walker is not None else None
        out: dict[str, bytes] = {}
        if r is None:
            return out
        for p in (r.path, r.journal, r.start_path):
            if p is not None and p.is_file():
                with open(p, "rb") as f:
                    f.seek(int(offsets.get(p.name, 0)))
                    out[p.name] = f.read()
        return out

    def restart(self, image=None, seed=None, label=None) -> None:
        self.walk.restart(image, seed, label)

    def speed_note(self) -> str:
        """The page's line on why the walk started slower than usual ("" if it did not)."""
        return self.walk.speed_note

    def status(self, line_position: int, idle_timeout: float) -> dict:
        return self.walk.status(line_position, idle_timeout)

    def checkpoint(self) -> bytes | None:
        """The walk's state as a saved-walk file's bytes (constant size), taken at the chunk on screen."""
        from worldwalk.app.desktop.walkfile import capture, save_walk

        w = self.walk
        if w is None or w.walker is None or not w.walker.session.started:
            return None
        path = self.root / "checkpoint.walk"
        save_walk(capture(w.walker), path)
        return path.read_bytes()

    def close(self) -> None:
        if self.walk is not None:
            self.walk.close()


def _load_saved(data: bytes | None, root: Path):
    if data is None:
        return None
    from worldwalk.app.desktop.walkfile import load_walk

    path = root / "resume.walk"
    path.write_bytes(data)
    return load_walk(path)


class SessionHost:
    """Runs in a Ray actor: one world.Session (an API walk or an API render)."""

    def __init__(self, args, threads: int = 1):
        self.s = _worker_world(args, threads)()

    def info(self) -> dict:
        s = self.s
        d = {"frames_per_step": s.frames_per_step, "fps": s.cfg.fps, "size_wh": tuple(s.size_wh),
             "window_chunks": s.window_chunks, "sampler": s.sampler.to_dict(), "colour_match": s.colour_match,
             "start_overlay": s.start_overlay,
             "memory": s.memory_settings.to_dict() if s.memory_settings is not None else False}
        if s.started:
            d.update(intrinsics=np.asarray(s.intrinsics).copy(), frame_index=s.frame_index, seed=s.seed,
                     image_label=s.image_label, image_sha256=s.image_sha256, depth_sha256=s.depth_sha256)
        return d

    def start(self, image, seed: int = 0, fov_deg=None, frame_intrinsics=None):
        first = self.s.start(image, seed=seed, fov_deg=fov_deg, frame_intrinsics=frame_intrinsics)
        return first, self.info()

    def step(self, poses):
        frames = self.s.step(np.asarray(poses))
        return frames, self.info()


class _AsDict:
    """A settings object of the actor's session, as recording_info reads it (to_dict())."""

    def __init__(self, d: dict):
        self._d = dict(d)

    def to_dict(self) -> dict:
        return dict(self._d)


class RemoteSession:
    """A world.Session in a Ray actor, with what the API handlers and the render path use of one: start, step,
    frames_per_step, cfg.fps, size_wh, intrinsics, frame_index, seed and the settings a sidecar records. The actor
    ends when this object is dropped."""

    def __init__(self, cluster: "Cluster"):
        self._ray = cluster.ray
        self._host = cluster.session_class.remote(cluster.args, max(1, int(cluster.cpus)))
        self.started = False
        self._apply(self._ray.get(self._host.info.remote()))

    def _apply(self, d: dict) -> None:
        self.frames_per_step, self.size_wh, self.window_chunks = d["frames_per_step"], d["size_wh"], d["window_chunks"]
        self.cfg = types.SimpleNamespace(fps=d["fps"])
        self.sampler = _AsDict(d["sampler"])
        self.colour_match, self.start_overlay = d["colour_match"], d["start_overlay"]
        self.memory_settings = _AsDict(d["memory"]) if d["memory"] else None
        for k in ("intrinsics", "frame_index", "seed", "image_label", "image_sha256", "depth_sha256"):
            if k in d:
                setattr(self, k, d[k])

    def start(self, image, seed: int = 0, fov_deg=None, frame_intrinsics=None) -> np.ndarray:
        first, d = self._ray.get(self._host.start.remote(image, seed, fov_deg, frame_intrinsics))
        self._apply(d)
        self.started = True
        return first

    def step(self, poses) -> np.ndarray:
        frames, d = self._ray.get(self._host.step.remote(np.asarray(poses)))
        self._apply(d)
        return frames


class Cluster:
    """The Ray side of the server: connects (address: "auto" an existing cluster, "local" a new one on this machine,
    else host:port), says how many walks fit, and makes actors."""

    def __init__(self, args, address: str, cpus: float = 1.0, gpus: float = 0.0, rig_config=None,
                 world_desc: dict | None = None, quality: int = 85):
        import ray

        self.ray = ray
        if not ray.is_initialized():
            try:
                if address == "local":
                    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
                else:
                    ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ValueError(f"--ray {address}: cannot join a Ray cluster ({first}); expected a running cluster "
                                 "(ray start --head) or --ray local") from None
        self.args, self.cpus, self.gpus = args, float(cpus), float(gpus)
        self.rig_config, self.world_desc, self.quality = rig_config, dict(world_desc or {}), quality
        self.host_class = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_concurrency=8,
                                     max_restarts=0)(WalkHost)
        self.session_class = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0)(SessionHost)

    def capacity(self) -> int:
        """Walks the cluster can run at once with the resources each asks for (at least 1)."""
        res = self.ray.cluster_resources()
        n = int(res.get("CPU", 0) // self.cpus) if self.cpus > 0 else 1 << 30
        if self.gpus > 0:
            n = min(n, int(res.get("GPU", 0) // self.gpus))
        return max(1, n)

    def new_host(self):
        return self.host_class.remote(self.args, self.rig_config, self.world_desc, self.quality,
                                      max(1, int(self.cpus)))

    def make_session(self) -> RemoteSession:
        """A Session in a new actor (the API's walks and renders)."""
        return RemoteSession(self)

    def walk_factory(self, owner, image, seed, label, workdir, quality):
        return RemoteWalk(owner, image, seed, label, workdir, quality, self)


class RemoteWalk(TabWalk):
    """A browser tab's walk whose engine runs in a Ray actor: LiveWalk's interface, routed to the actor."""

    def __init__(self, owner, image, seed: int, label: str, workdir: Path, quality: int, cluster: Cluster):
        super().__init__(owner)
        self.image, self.seed, self.label = image, seed, label
        self.cluster = cluster
        self.state = "waiting"
        self.dir = workdir / f"walk-{self.token[:8]}"
        self.error: str | None = None
        self.message = ""
        self.saved: dict[str, Path] = {}
        self.seq = 0  # the page's frame numbers: the actor's, plus _seq_base after a move (they only grow)
        self._seq_base = 0
        self.host = None
        self.moves = 0  # times the walk moved to another actor after a fault
        self.recovery_s: list[float] = []  # how long each move took
        self._recording = False
        self._rec_copy: dict[str, int] = {}  # the recording in progress copied so far: name -> bytes
        self._checkpoint: bytes | None = None
        self._lock = threading.RLock()
        self._keeper: threading.Thread | None = None

    # -------------------------------------------------------------- the actor
    def _get(self, ref, timeout: float = 120.0):
        return self.cluster.ray.get(ref, timeout=timeout)

    def _call(self, name: str, *args, timeout: float = 120.0):
        """Call the actor; when it (or its node) is gone, move the walk to a new actor and call again."""
        from ray.exceptions import RayActorError

        host = self.host
        try:
            return self._get(getattr(host, name).remote(*args), timeout)
        except RayActorError:
            if self.closed:
                raise
            self._move(host)
            return self._get(getattr(self.host, name).remote(*args), timeout)

    def _move(self, dead) -> None:
        with self._lock:
            if self.host is not dead or self.closed:
                return  # another thread moved it already
            t0 = time.monotonic()
            host = self.cluster.new_host()
            self._get(host.begin.remote(self.owner, self.image, self.seed, self.label, self._checkpoint))
            self._get(host.set_input.remote(sorted(self.held), 0.0, 0.0, None))  # the keys the visitor still holds
            self.host = host
            self._seq_base = self.seq  # the new actor counts its frames from 1 again; the page's numbers go on
            self.moves += 1
            kept = self._keep_partial_recording()
            self.recovery_s.append(time.monotonic() - t0)
            self.message = MOVED + (f"; the recording was kept up to the fault ({kept})" if kept else "")

    def _copy_recording(self, host) -> None:
        """Append the new bytes of the recording in progress to the front end's copies."""
        with self._lock:
            tail = self._get(host.recording_tail.remote(dict(self._rec_copy)), timeout=60)
            for name, data in tail.items():
                if Path(name).name != name or not data:
                    continue
                with open(self.dir / name, "ab") as f:
                    f.write(data)
                self._rec_copy[name] = self._rec_copy.get(name, 0) + len(data)

    def _keep_partial_recording(self) -> str | None:
        """After a fault during a recording: what was copied becomes the recording (MP4 up to its last whole fragment,
        the journal to replay it, the start snapshot). -> the MP4's name, or None."""
        if not self._recording:
            return None
        self._recording = False
        names, self._rec_copy = list(self._rec_copy), {}
        mp4 = next((n for n in names if n.endswith(".mp4")), None)
        if mp4 is None:
            return None
        for n in names:
            self.saved[n] = self.dir / n
        return mp4

    def _keep_state(self) -> None:
        """Every CHECKPOINT_S, keep the walk's latest state from its actor (for a move after a fault)."""
        from ray.exceptions import GetTimeoutError, RayActorError

        while not self.closed:
            time.sleep(CHECKPOINT_S)
            if self.closed:
                return
            try:
                data = self._get(self.host.checkpoint.remote(), timeout=60)
            except (RayActorError, GetTimeoutError):
                continue  # the next call from the page moves the walk
            if data is not None:
                self._checkpoint = data
            if self._recording:
                try:
                    self._copy_recording(self.host)
                except (RayActorError, GetTimeoutError, OSError):
                    pass

    # -------------------------------------------------------------- LiveWalk's interface
    @property
    def running(self) -> bool:
        return self.host is not None and self.state == "live"

    @property
    def recording(self) -> bool:
        return self._recording

    def begin(self, make_session=None, rig_config=None, world_desc=None) -> None:
        """Start the walk in a new actor (the actor loads the world itself: make_session is not used)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        host = self.cluster.new_host()
        try:
            self.seq = self._get(host.begin.remote(self.owner, self.image, self.seed, self.label))
        except BaseException:
            self.cluster.ray.kill(host)
            raise
        if self.closed:
            self.cluster.ray.kill(host)
            return
        self.host = host
        self.speed_note = self._get(host.speed_note.remote())  # a close-up starts slower: the page says why
        self.state = "live"
        self.touch()
        self.fetched_at = time.monotonic()
        self._keeper = threading.Thread(target=self._keep_state, name=f"worldwalk-keep-{self.token[:6]}",
                                        daemon=True)
        self._keeper.start()

    def restart(self, image=None, seed: int | None = None, label: str | None = None) -> None:
        self._call("restart", image, seed, label)
        self.speed_note = self._call("speed_note")
        self.image = self.image if image is None else image
        self.seed = self.seed if seed is None else seed
        self.label = label or self.label
        self._checkpoint = None
        self.state, self.error = "live", None
        self.touch()

    def frame_after(self, after: int) -> tuple[int, bytes | None]:
        self.fetched_at = self.last_seen = time.monotonic()
        base = self._seq_base
        seq, data = self._call("frame_after", max(0, after - base))
        if self._seq_base != base:  # moved during the call: the new actor's frame is news
            seq, data = self._call("frame_after", 0)
        self.seq = max(self.seq, seq + self._seq_base)
        return self.seq, data

    def set_input(self, keys, dx: float = 0.0, dy: float = 0.0, n: int | None = None) -> None:
        self.touch()
        if n is None or n > self.input_n:
            self.held = frozenset(str(k).lower() for k in keys or ())
            if n is not None:
                self.input_n = n
        self._call("set_input", list(keys or ()), dx, dy, n)

    def toggle_pause(self) -> bool:
        self.touch()
        return self._call("toggle_pause")

    def command(self, name: str, *args, timeout: float = 30.0) -> str:
        self.touch()
        self.message = self._call("command", name)
        return self.message

    def record_start(self) -> str:
        self.touch()
        self._rec_copy = {}
        self.message, self._recording = self._call("record_start")
        return self.message

    def record_stop(self) -> tuple[str, Path | None, Path | None]:
        """The recording's files come to the front end (they outlive the actor). -> (message, MP4, JSON or None)."""
        self.touch()
        msg, files = self._call("record_stop")
        with self._lock:
            self._recording = False
            for name in self._rec_copy:  # the copies made while it ran: the finished files replace them
                (self.dir / name).unlink(missing_ok=True)
            self._rec_copy = {}
        mp4 = side = None
        for name, data in files.items():
            if Path(name).name != name:  # the actor's own names only (walk-01.mp4, ...), never a path
                continue
            path = self.dir / name
            path.write_bytes(data)
            self.saved[name] = path
            if name.endswith(".mp4"):
                mp4 = path
            elif name.endswith(".json"):
                side = path
        self.message = f"saved as {mp4.name}" if mp4 is not None else msg
        return self.message, mp4, side

    def status(self, line_position: int = 0, idle_timeout: float = 0.0) -> dict:
        self.last_seen = time.monotonic()
        if self.state != "live" or self.host is None:
            out = {"state": self.state, "seq": self.seq, "message": self.message, "label": self.label,
                   "seed": self.seed}
            if self.state == "waiting":
                out["position"] = line_position
            return out
        out = self._call("status", 0, 0.0)
        out["seq"] = out.get("seq", 0) + self._seq_base
        if self.message.startswith(MOVED):
            out["message"] = self.message
        out["moves"] = self.moves
        if idle_timeout > 0:
            out["idle_left"] = round(max(0.0, idle_timeout - self.idle_for(time.monotonic())), 1)
        return out

    def close(self, keep_files: bool = False):
        super().close()
        host, self.host = self.host, None
        if host is not None:
            try:
                self._get(host.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor has nothing left to close
                pass
            self.cluster.ray.kill(host)
        if not keep_files:
            import shutil
            shutil.rmtree(self.dir, ignore_errors=True)

