"""`launch.py web`: the browser demo (Gradio 6). Visitors pick a start scene or upload a picture and walk through the
world it opens onto with keyboard and mouse, each in their own walk, a few at a time.

    python launch.py web                                   # http://127.0.0.1:7860/ (the first free port from 7860)
    python launch.py web --host 0.0.0.0 --port 8080 --max-walks 8 --idle-timeout 300
    python launch.py web --random-weights --preset test    # the engine on untrained weights (tests, smoke runs)

Modules: walks (per-visitor walks, the cap and the line, idle timeout, uploads), page (Gradio Blocks and the API),
server (FastAPI routes for frames and input, uvicorn in a thread), files (the private folder, which files are read and
served, text without server paths), capacity (the default --max-walks), scenes (start scenes), static/ (JS and CSS).

Stopping: Ctrl+C (SIGINT) or SIGTERM, at any moment: every walk is closed once its chunk in progress is done, the
HTTP server stops, the temporary folder is removed, exit code 0.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from worldwalk.app.runtime import SlowStartNotice
from worldwalk.app.world_args import add_world_args

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a demo that may run offline


def add_parser(sub) -> None:
    p = sub.add_parser("web", help="serve the browser demo: walk through a world in a browser tab, many visitors at once")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for everyone)")
    p.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    p.add_argument("--max-walks", type=int, default=None,
                   help="walks generating at the same time; more visitors wait in line with their place shown "
                        "(default: as many as this machine serves at real time, measured at start: one on two CPU "
                        "cores)")
    p.add_argument("--idle-timeout", type=float, default=180.0,
                   help="seconds without input before a walk ends and frees its memory (default 180; 0: never)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest start image accepted (default 25 MB)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per step with --device cpu (default: cores / max-walks, at least 1)")
    p.add_argument("--scenes", default=None,
                   help="folder of start images (default assets/scenes/, else a few drawn ones)")
    p.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="run every live walk in a Ray actor: auto = the Ray cluster this machine belongs to, local = "
                        "a new one on this machine, else its address (needs pip install -e '.[cluster]')")
    p.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs each walk's actor asks for (default 1)")
    p.add_argument("--ray-gpus", type=float, default=0.0,
                   help="GPUs each walk's actor asks for (default 0; 1 for the official release)")
    add_world_args(p)
    p.set_defaults(func=run)


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port; port None: the first free one from 7860 (as Gradio does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for p in ([port] if port is not None else list(range(7860, 7960)) + [0]):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, p))
        except OSError as e:
            s.close()
            if port is not None:
                raise ValueError(f"--host {host} --port {port}: cannot listen there ({e.strerror})") from None
            continue
        s.listen(128)
        return s
    raise ValueError(f"--host {host}: no free port")


def create_server(args):
    """Load the world once and build the server (not started). -> app.web.server.WebServer"""
    import torch

    from worldwalk.app.world_args import world_factory

    if args.max_walks is not None and args.max_walks < 1:
        raise ValueError(f"--max-walks {args.max_walks}: expected at least 1")
    if args.idle_timeout < 0:
        raise ValueError(f"--idle-timeout {args.idle_timeout}: expected seconds >= 0 (0: never)")
    if args.max_upload_mb <= 0:
        raise ValueError(f"--max-upload-mb {args.max_upload_mb}: expected a positive size")
    if args.port is not None and not 0 <= args.port < 65536:
        raise ValueError(f"--port {args.port}: expected 0-65535")
    if args.scenes and not Path(args.scenes).is_dir():
        raise ValueError(f"--scenes {args.scenes}: no such folder")
    if args.ray is not None:
        if importlib.util.find_spec("ray") is None:
            raise ValueError("--ray: Ray is not installed; expected pip install -e '.[cluster]'")
        if not args.ray_cpus > 0 or args.ray_gpus < 0:
            raise ValueError(f"--ray-cpus {args.ray_cpus:g} / --ray-gpus {args.ray_gpus:g}: expected CPUs > 0 and "
                             "GPUs >= 0")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads {args.threads}: expected at least 1")
    cpu = str(args.device).startswith("cpu")
    if cpu:
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
    sock = bind(args.host, args.port)  # a port in use is reported before the world loads
    root = None
    try:
        make_session, world_desc = world_factory(args)  # with the 3-D world memory when a depth network is at hand
        # recordings a visitor downloads name the weights by file name only: visitors never see a server path
        world_desc = {**world_desc, "weights": Path(str(world_desc.get("weights", ""))).name or "unknown"}

        from worldwalk.app.web.capacity import measure
        from worldwalk.app.web.files import PrivateFolder
        from worldwalk.app.web.scenes import load_scenes

        # before gradio is imported (it reads GRADIO_TEMP_DIR then, and again when it builds the app): everything it
        # writes goes to our private folder. gradio is imported only once the flags and weights are fine.
        root = PrivateFolder.acquire()
        from worldwalk.app.web.server import WebServer, build_app
        from worldwalk.app.web.walks import Limits, WalkManager

        scenes = load_scenes(args.scenes)
        probe = make_session()
        size_wh, frames_per_step, fps = probe.size_wh, probe.frames_per_step, float(probe.cfg.fps)
        cluster = None
        fixed_cap = args.max_walks is not None  # --max-walks given: it stays; else it follows the cluster
        if args.ray:  # each live walk in a Ray actor; the line and the default cap follow the cluster's resources
            from worldwalk.app.web.cluster import Cluster
            cluster = Cluster(args, args.ray, cpus=args.ray_cpus, gpus=args.ray_gpus, world_desc=world_desc)
            if args.max_walks is None:
                args.max_walks = cluster.capacity()
                print(f"worldwalk web: Ray cluster: {args.max_walks} walk(s) at once "
                      f"({args.ray_cpus:g} CPU, {args.ray_gpus:g} GPU each)", flush=True)
        if args.max_walks is None:
            # a visitor's picture larger than the frame also pays for the start view (world/start_view.py): measure
            # with the first scene enlarged past the frame, the slower case
            from PIL import Image

            big = Image.fromarray(scenes[0].image).resize((4 * size_wh[0], 4 * size_wh[1]), Image.BICUBIC)
            with SlowStartNotice():  # (the first run on a machine compiles the kernels here)
                cap = measure(probe, big)
            args.max_walks = cap.max_walks
            print(f"worldwalk web: {cap.describe()}", flush=True)
        del probe
        if cpu:  # walks step at once: more OpenMP threads than cores makes every one of them crawl
            torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // args.max_walks))
        ray_kw = {}  # with --ray: walks in actors, and (unless --max-walks was given) the cap follows the cluster
        if cluster is not None:
            ray_kw = {"walk_factory": cluster.walk_factory, "capacity": None if fixed_cap else cluster.capacity}
        limits = Limits(max_walks=args.max_walks, idle_timeout=args.idle_timeout,
                        max_upload_bytes=int(args.max_upload_mb * 2**20))
        manager = WalkManager(cluster.make_session if cluster is not None else make_session, limits=limits,
                              world_desc=world_desc,
                              workdir=tempfile.mkdtemp(dir=root / "walks"), own_workdir=True,
                              **ray_kw)
        try:
            app = build_app(manager, scenes, size_wh, frames_per_step, fps)
        except BaseException:
            manager.shutdown()
            raise
    except BaseException:
        sock.close()
        if root is not None:
            PrivateFolder.release()
        raise
    return WebServer(app, manager, args.host, args.port, sock=sock, private=True)


class _Stop:
    """SIGINT and SIGTERM handling for run(): before the server runs, a signal interrupts the start (KeyboardInterrupt);
    once it runs, a signal only asks the main loop to stop, so that nothing interrupts the clean-up itself."""

    def __init__(self):
        self.requested = False
        self.serving = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, frame):
        if not self.serving:
            raise KeyboardInterrupt
        if self.requested:
            print("still stopping: the walks finish their chunks first", flush=True)
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def run(args) -> int:
    with _Stop() as stop:
        server = None
        try:
            server = create_server(args)
            server.start()
            stop.serving = True  # from here on a signal only sets stop.requested
        except KeyboardInterrupt:
            if server is not None:
                server.stop()
            print("stopped before the demo started", flush=True)
            return 0
        print(f"worldwalk web demo: {server.url}", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"  listening on {args.host}:{server.port}: anyone who can reach this machine can walk", flush=True)
        print("  (Ctrl+C to stop)", flush=True)
        try:
            while server.running and not stop.requested:
                time.sleep(0.2)
        finally:
            print("stopping", flush=True)
            idle = server.stop()
    if not idle:
        # a chunk is still being made after a minute: leaving now, with that thread inside torch, would abort the
        # process at exit ("terminate called without an active exception"); everything else is already cleaned up
        print("stopped (a chunk was still being made)", flush=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    print("stopped", flush=True)
    return 0
