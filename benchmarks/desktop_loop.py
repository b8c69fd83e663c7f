"""Display-loop rate of the desktop explorer while the world model generates (SDL dummy driver unless a display is
set with SDL_VIDEODRIVER=x11).

    python benchmarks/desktop_loop.py --preset tiny --seconds 10          # the embedded default's size
    python benchmarks/desktop_loop.py --preset test --steps 2 --seconds 5

Holds W the whole time and presses / releases D every second; prints the loop rate, per-iteration work (median / max),
chunks generated, the real-time ratio of generation and the input-to-display latency (input change -> first frame
planned with it on screen).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    import tempfile

    from worldwalk.app import desktop
    from worldwalk.app.desktop.scripted import key_down, key_up

    argv = ["--random-weights", "--preset", a.preset, "--no-dialog", "--out-dir", tempfile.mkdtemp()]
    if a.steps:
        argv += ["--steps", str(a.steps)]
    ex = desktop.build(desktop.parse_args(argv))
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
        print(f"preset {a.preset}  driver {os.environ['SDL_VIDEODRIVER']}  window {ex.view_wh[0]}x{ex.view_wh[1]}")
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
    finally:
        ex.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
