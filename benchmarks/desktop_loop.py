"""Display-loop rate of the desktop explorer while the world model generates (SDL dummy driver unless a display is
set with SDL_VIDEODRIVER=x11).

    python benchmarks/desktop_loop.py --preset tiny --seconds 10          # the embedded default's size
    python benchmarks/desktop_loop.py --default-world                     # the shipped default world, app settings
    python benchmarks/desktop_loop.py --preset test --steps 2 --seconds 5

Holds W the whole time and presses / releases D every second; prints the loop rate, per-iteration work (median / max),
chunks generated, the real-time ratio of generation and the input-to-display latency (input change -> first frame
planned with it on screen). Then the stop (--stops N times, after --stops-walk seconds of W from standing): W
released; how far the view on screen still moves and for how long (stop distance / stop time), with the walker's
re-planning of queued chunks on (the app) and off (--no-replan: the queued motion plays out).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from worldwalk.app.runtime import keep_freed_memory  # noqa: E402
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def main() -> int:
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--default-world", action="store_true",
                   help="the embedded default world (its weights, memory and sampler) instead of random weights")
    p.add_argument("--stops", type=int, default=3, help="W released this many times (0: no stop measurement)")
    p.add_argument("--stop-walk", type=float, default=3.0, help="seconds of W before each release")
    p.add_argument("--no-replan", action="store_true", help="queued chunks play out after a release (the old walker)")
    a = p.parse_args()
    import tempfile

    from metrics import cpu_header
    from worldwalk.app import desktop
    from worldwalk.app.desktop.scripted import key_down, key_up

    world = [] if a.default_world else ["--random-weights", "--preset", a.preset]
    argv = [*world, "--no-dialog", "--out-dir", tempfile.mkdtemp()]
    if a.steps:
        argv += ["--steps", str(a.steps)]
    ex = desktop.build(desktop.parse_args(argv))
    ex.walker.replan = not a.no_replan
    ex.open_window()
    try:
        key_down("w")
        t0, it0 = time.monotonic(), ex.loop.iterations
        behind, lat, turn = [], [], {"at": t0 + 1.0, "down": False}

        def tick() -> bool:  # every second press or release D (a change of input), note each measured latency
            behind.append(ex.behind)
            now = time.monotonic()
            if now >= turn["at"]:
                (key_up if turn["down"] else key_down)("d")
                turn["down"], turn["at"] = not turn["down"], now + 1.0
            if ex.latency_s is not None and (not lat or ex.latency_s != lat[-1]):
                lat.append(ex.latency_s)
            return False

        ex.run(until=tick, timeout=a.seconds)
        dt = time.monotonic() - t0
        busy = sorted(ex.loop.busy_ms)
        st = ex.walker.stats
        print(f"# desktop_loop  {time.strftime('%Y-%m-%d %H:%M')}  {cpu_header()}")
        print(f"{'the embedded default world' if a.default_world else 'preset ' + a.preset}  driver {os.environ['SDL_VIDEODRIVER']}  window {ex.view_wh[0]}x{ex.view_wh[1]}")
        print(f"display loop {(ex.loop.iterations - it0) / dt:.1f} Hz over {dt:.1f} s; work per iteration median "
              f"{busy[len(busy) // 2]:.2f} ms, max {busy[-1]:.1f} ms")
        print(f"chunks generated {ex.walker.session.chunk_index}; last chunk "
              f"{st.chunk_ms.get('total', float('nan')):.0f} ms = {st.generated_fps:.1f} fps = "
              f"x{ex.realtime_ratio:.2f} real time; frames shown {ex.frames_shown}; "
              f"view waiting for generation {100 * sum(behind) / max(1, len(behind)):.0f} % of iterations")
        if lat:
            lat.sort()
            print(f"input-to-display latency (D pressed / released every second): median {1000 * lat[len(lat) // 2]:.0f}"
                  f" ms, max {1000 * lat[-1]:.0f} ms over {len(lat)} changes")
        key_up("w")
        if turn["down"]:
            key_up("d")
        stops = [measure_stop(ex, a.stop_walk) for _ in range(a.stops)]
        if stops:
            dist = sorted(d for d, _, _ in stops)
            secs = sorted(t for _, t, _ in stops)
            chunk_s = ex.per_chunk / ex.fps
            print(f"stop (W released after {a.stop_walk:g} s; re-planning {'off' if a.no_replan else 'on'}): distance "
                  f"median {dist[len(dist) // 2]:.3f} m, max {dist[-1]:.3f} m; time to within 1 cm of rest median "
                  f"{secs[len(secs) // 2]:.2f} s, max {secs[-1]:.2f} s (one chunk of video = {chunk_s:.2f} s); "
                  f"walking speed {stops[0][2]:.2f} m/s; chunks dropped {ex.walker.replans}")
    finally:
        ex.close()
    return 0


def measure_stop(ex, walk_s: float) -> tuple[float, float, float]:
    """Stand still, hold W for walk_s seconds, release it -> (metres the view moved after the release, seconds until
    it came within 1 cm of where it rests, walking speed before the release in m/s). The rig itself eases to a stop
    (RigConfig.damping_time: about speed x 0.12 s of coasting); everything beyond that is motion that was queued."""
    import numpy as np

    from worldwalk.app.desktop.scripted import key_down, key_up

    track: list[tuple[float, np.ndarray]] = []

    def pos():
        return np.array(ex.shown.pose[:3, 3], dtype=float)

    def rested(s: float):
        def check() -> bool:  # no frame on screen moved more than 1 mm for s seconds
            now, p = time.monotonic(), pos()
            if not track or np.linalg.norm(p - track[-1][1]) > 1e-3:
                track.append((now, p))
            return now - track[-1][0] >= s
        return check

    ex.run(until=rested(1.5), timeout=60)
    key_down("w")
    ex.run(until=lambda: False, timeout=walk_s - 0.5)
    p0, t0 = pos(), time.monotonic()
    ex.run(until=lambda: False, timeout=0.5)
    speed = float(np.linalg.norm(pos() - p0) / (time.monotonic() - t0))
    key_up("w")
    released, at = pos(), time.monotonic()
    track.clear()
    ex.run(until=rested(2.0), timeout=60)
    rest = pos()
    settled = next(t for t, p in track if np.linalg.norm(p - rest) <= 0.01)
    return float(np.linalg.norm(rest - released)), max(0.0, settled - at), speed


if __name__ == "__main__":
    sys.exit(main())
