"""The Ray path of the web demo against in-process: what a visitor's walk costs through an actor, and how long a walk
killed with its actor takes to come back.

    python benchmarks/cluster.py                       # the embedded default world, one walk, W held 15 s
    python benchmarks/cluster.py --random-weights --preset test --seconds 8

One walk at a time, W held, the page's loop emulated (pull the newest frame every 20 ms, as the page's script does).
Per path: chunks per second and the chunk time the walk reports, frames delivered per second, and the time of one
frame_after call (the page's hot path: in-process a method call, on Ray a round trip to the actor). Then, on Ray, the
actor is killed and the time until frames flow again (the walk going on from its last kept state) is measured.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from worldwalk.app.runtime import keep_freed_memory  # noqa: E402


def drive(w, seconds: float) -> dict:
    """Hold W for `seconds`, pulling frames like the page -> measurements."""
    w.set_input(["w"], n=1)
    calls, t0, seq0 = [], time.monotonic(), w.seq
    frames0 = w.status()["frames"]
    while time.monotonic() - t0 < seconds:
        c = time.perf_counter()
        w.frame_after(w.seq)
        calls.append(1000 * (time.perf_counter() - c))
        time.sleep(0.02)
    st = w.status()
    dt = time.monotonic() - t0
    w.set_input([], n=2)
    return {"delivered_fps": (w.seq - seq0) / dt, "generated_fps": (st["frames"] - frames0) / dt,
            "chunk_ms": st["chunk_ms"], "call_ms_median": statistics.median(calls),
            "call_ms_p95": sorted(calls)[int(0.95 * (len(calls) - 1))]}


def main() -> int:
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    from metrics import cpu_header

    from worldwalk.app.web import add_parser
    from worldwalk.app.web.scenes import drawn_scenes
    from worldwalk.app.web.walks import Limits, WalkManager
    from worldwalk.app.world_args import world_factory

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--ray-cpus", type=float, default=2.0, help="CPUs of the walk's actor (default: the 2 cores)")
    a, rest = ap.parse_known_args()
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers())
    args = p.parse_args(["web", *rest])
    print(f"# cluster  {time.strftime('%Y-%m-%d %H:%M')}  {cpu_header()}")
    img = drawn_scenes()[0].image
    out = {}
    # ---- in-process
    make_session, desc = world_factory(args)
    m = WalkManager(make_session, limits=Limits(max_walks=1, idle_timeout=0), world_desc=desc,
                    workdir=tempfile.mkdtemp())
    w = m.start_live("tab", img, 0, "bench")
    drive(w, 3.0)  # warm up
    out["in-process"] = drive(w, a.seconds)
    m.shutdown()
    # ---- Ray
    import ray

    from worldwalk.app.web.cluster import Cluster
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", configure_logging=False,
             log_to_driver=False)
    c = Cluster(args, "auto", cpus=a.ray_cpus, world_desc=desc)
    m = WalkManager(None, limits=Limits(max_walks=c.capacity(), idle_timeout=0), walk_factory=c.walk_factory,
                    workdir=tempfile.mkdtemp())
    t0 = time.monotonic()
    w = m.start_live("tab", img, 0, "bench")
    start_s = time.monotonic() - t0
    drive(w, 3.0)
    out["ray"] = drive(w, a.seconds)
    while w._checkpoint is None:
        time.sleep(0.1)
    ckpt = len(w._checkpoint)
    w.set_input(["w"], n=3)
    seq = w.seq
    ray.kill(w.host, no_restart=True)
    t0 = time.monotonic()
    while True:  # the page keeps pulling: the first call finds the actor dead and moves the walk
        s, data = w.frame_after(seq)
        if data is not None and s > seq + 1:
            break
        time.sleep(0.02)
    resume_s = time.monotonic() - t0
    m.shutdown()
    ray.shutdown()
    for k, r in out.items():
        print(f"{k:>10}: chunk {r['chunk_ms']:.0f} ms, generated {r['generated_fps']:.1f} fps, delivered "
              f"{r['delivered_fps']:.1f} fps, frame_after {r['call_ms_median']:.2f} ms median "
              f"({r['call_ms_p95']:.2f} p95)")
    print(f"ray: actor start (world loaded in the worker) {start_s:.1f} s; kept state {ckpt / 2**20:.2f} MiB; "
          f"killed mid-walk -> frames again after {resume_s:.1f} s (move: {w.recovery_s[0]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
