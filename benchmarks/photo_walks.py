"""Walks into photographs (scikit-image's samples: out of the training distribution, no exact views to compare with).

    python benchmarks/photo_walks.py --weights assets/default_world.safetensors

For each photograph, at the default 60° field of view: a 2 m walk forward (eased, 4 s) and a 60° turn in place
(eased, 2 s, then held 2 s). A photograph has no exact frame at any other pose, so what is scored is whether the walk
keeps the picture's detail: the sharpness ratio of every frame against the photograph itself, cropped to the frame
(benchmarks/metrics.py), over seconds 1-4, and after the turn the ratio of the newly revealed part of the frame (the
columns the start view did not see) against it. The photograph, not the session's start frame: that frame is
itself scored against the photograph (until 2026-12-07 the figures were against it, and a start frame blurred where
the memory had holes made every ratio look better). Writes a contact sheet (every 0.5 s; walk then turn) of the first
two photographs.

With `--held on` (the default), W is also held for 4 s as the app walks it (the camera rig, from standing): at the
speed the app starts a walk with for that picture (controls/rig.py Rig.fit_speed, from Session.depth_ahead: a
close-up is walked slowly) and at the usual 1.2 m/s; `--held-sheet` shows both for the first two photographs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import FOGGY, contact_sheet, cpu_header, gradient_energy, magnified_match, psnr, sharpness  # noqa: E402
from world_quality import with_settings  # noqa: E402
from worldwalk.app.runtime import keep_freed_memory  # noqa: E402
from worldwalk.controls.rig import InputState, Rig, RigConfig  # noqa: E402
from worldwalk.controls.se3 import make_pose, rotation_from_angles  # noqa: E402
from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth  # noqa: E402
from worldwalk.world.checkpoint import CheckpointError  # noqa: E402
from worldwalk.world.images import fit_to_model, load_image  # noqa: E402
from worldwalk.world.memory import MemorySettings  # noqa: E402
from worldwalk.world.sampler import SamplerConfig  # noqa: E402
from worldwalk.world.session import DEFAULT_FOV, Session  # noqa: E402

PHOTOS = ("coffee", "astronaut", "chelsea", "rocket")


def eased(n: int) -> np.ndarray:
    return (1 - np.cos(np.linspace(0, np.pi, n + 1)[1:])) / 2


def forward(fps: int, metres: float = 2.0, seconds: float = 4.0) -> np.ndarray:
    z = np.concatenate([[0.0], metres * eased(int(seconds * fps))])
    return make_pose(np.tile(np.eye(3), (len(z), 1, 1)), np.stack([np.zeros_like(z), np.zeros_like(z), z], 1))


def held_w(fps: int, ahead: float | None, seconds: float = 4.0, fit: bool = True) -> tuple[np.ndarray, float]:
    """W held for `seconds` as the app walks it (the camera rig, from standing), at the speed the app starts a walk
    with for a picture whose surface ahead is `ahead` metres away (Rig.fit_speed), or at the usual pace (fit False).
    -> (poses (1 + seconds·fps, 4, 4), the speed)"""
    rig = Rig(RigConfig(fps=fps))
    speed = rig.fit_speed(ahead if fit else None)
    rig.update(InputState(keys={"w"}), 0.0)
    return np.concatenate([np.eye(4)[None], rig.advance(int(seconds * fps))]), speed


def turn(fps: int, degrees: float = 60.0, seconds: float = 2.0, hold: float = 2.0) -> np.ndarray:
    yaw = np.concatenate([[0.0], degrees * eased(int(seconds * fps)), np.full(int(hold * fps), degrees)])
    return make_pose(rotation_from_angles(yaw), np.zeros((len(yaw), 3)))


def run(session: Session, image: np.ndarray, c2w: np.ndarray, coverage: list | None = None) -> np.ndarray:
    """The walk's frames; coverage: gets each chunk's share of pixels the world memory saw (Session.last_coverage)."""
    first = session.start(image, fov_deg=DEFAULT_FOV)
    n = session.frames_per_step
    out = [first]
    for i in range(1, len(c2w), n):
        p = c2w[i:i + n]
        if len(p) < n:
            p = np.concatenate([p, np.repeat(p[-1:], n - len(p), 0)])
        out.append(session.step(p)[: len(c2w) - i])
        if coverage is not None and session.last_coverage is not None:
            coverage.append(session.last_coverage)
    return np.concatenate(out)[: len(c2w)]


def revealed_columns(width: int, degrees: float, hfov: float = DEFAULT_FOV) -> slice:
    """The columns of a frame turned right by `degrees` that the start view did not see."""
    f = 0.5 * width / np.tan(np.radians(hfov) / 2)
    edge = np.tan(np.radians(hfov / 2 - degrees))  # the start view's right edge, in the turned camera
    col = int(np.ceil(width / 2 + f * edge))
    return slice(max(0, col), width)


def main():
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--memory", choices=("on", "off"), default="on")
    ap.add_argument("--start-view", choices=("on", "off"), default="on",
                    help="the memory's start view: the photograph at its own resolution where a move magnifies it")
    ap.add_argument("--detail", choices=("on", "off"), default="on",
                    help="the memory's ground detail (world/detail.py); default on, as the app")
    ap.add_argument("--memory-setting", action="append", default=[], metavar="KEY=VALUE",
                    help="a memory setting other than the bundle's, as a number, for a probe (repeatable; as "
                         "world_quality.py)")
    ap.add_argument("--photos", default=",".join(PHOTOS))
    ap.add_argument("--held", choices=("on", "off"), default="on",
                    help="also hold W for 4 s as the app walks, at the speed it starts a walk with for the picture "
                         "(Rig.fit_speed) and at the usual speed")
    ap.add_argument("--sheet", default="benchmarks/photo_walks_sheet.jpg")
    ap.add_argument("--held-sheet", default="benchmarks/photo_walks_speed_sheet.jpg")
    a = ap.parse_args()
    from skimage import data

    path = a.weights or DEFAULT_BUNDLE
    try:
        model, vae, extra = load_bundle(path)
        depth = load_depth(path) or (load_depth(DEFAULT_BUNDLE) if DEFAULT_BUNDLE.is_file() else None)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    memory = MemorySettings.from_dict(extra.get("memory", {})) if a.memory == "on" and depth is not None else None
    if memory is not None and a.start_view == "off":
        memory = MemorySettings.from_dict({**memory.to_dict(), "start_scale": 0})
    if memory is not None and a.detail == "off":
        memory = MemorySettings.from_dict({**memory.to_dict(), "detail": 0})
    if memory is not None and a.memory_setting:
        memory = with_settings(memory, a.memory_setting)
    session = Session(model, vae, SamplerConfig(**extra.get("sampler", {})), memory=memory, depth=depth)
    fps = model.cfg.fps
    W = session.size_wh[0]
    print(f"photo walks: {path} | memory {'on' if memory else 'off'} | start view "
          f"{a.start_view if memory else 'off'} | detail {a.detail if memory else 'off'} | "
          f"{''.join(f'{m} | ' for m in a.memory_setting) if memory else ''}{cpu_header()} | "
          f"{torch.get_num_threads()} threads | {time.strftime('%Y-%m-%d')}")
    print("\nEvery figure is against the photograph itself, cropped to the frame (not against the session's start "
          "frame).\n\n| photograph | start frame: sharpness, PSNR | walk 2 m: sharpness s1-4 (foggy frames) | "
          "sharpness at 2 m | 60° turn: revealed part | turned frame | walk: memory coverage |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    rows, sheet, speed_rows, held_sheet = [], [], [], []
    cols = revealed_columns(W, 60.0)
    for name in a.photos.split(","):
        img = getattr(data, name)()
        img = img[0] if isinstance(img, tuple) else img  # a stereo pair: its left picture
        img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
        picture = fit_to_model(load_image(img)[0], session.size_wh)[0]  # what every frame is scored against
        cover = []  # the share of each chunk's pixels the memory saw (the rest: the model's drawing)
        w = run(session, img, forward(fps), cover)
        t = run(session, img, turn(fps))
        if memory is not None and a.held == "on":  # W held for 4 s as the app walks: at its start speed, the usual
            ahead = session.depth_ahead()
            got, frames = [], []
            for fit in (True, False):
                c2w, speed = held_w(fps, ahead, fit=fit)
                cov = []
                f = run(session, img, c2w, cov)
                r = np.array([sharpness(x, picture) for x in f[1:]])
                whole = np.mean([magnified_match(x, picture)[0] for x in f[1::fps // 4]])  # every 1/4 s
                at2 = magnified_match(f[2 * fps], picture)[1]  # half-way: a frame that stood still matches at 1
                got.append((speed, r.mean(), np.mean(r < FOGGY), c2w[-1, 2, 3], np.mean(cov), whole, at2))
                frames.append(f)
            speed_rows.append((name, ahead, got))
            if len(held_sheet) < 2:
                held_sheet.append((np.concatenate(frames), None))
        start = picture
        first = (sharpness(w[0], picture), psnr(w[0], picture))  # the start frame the session shows
        r = np.array([sharpness(f, start) for f in w[1:]])
        held = t[-fps:]  # the turn held: the last second
        rev = np.mean([gradient_energy(f[:, cols]) for f in held]) / gradient_energy(start)
        whole = np.mean([sharpness(f, start) for f in held])
        cov = np.mean(cover) if cover else float("nan")
        rows.append((r.mean(), np.mean(r < FOGGY), sharpness(w[-1], start), rev, whole, cov) + first)
        print(f"| {name} | {first[0]:.3f}, {first[1]:.1f} dB | {r.mean():.3f} ({100 * np.mean(r < FOGGY):.0f} %) | "
              f"{rows[-1][2]:.3f} | {rev:.3f} | {whole:.3f} | {100 * cov:.0f} % |")
        if len(sheet) < 2:
            sheet.append((np.concatenate([w, t]), None))
    m = np.mean(rows, 0)
    print(f"\nmean over {len(rows)} photographs: start frame {m[6]:.3f}, {m[7]:.2f} dB; walk sharpness {m[0]:.3f} "
          f"(foggy {100 * m[1]:.0f} %), at 2 m "
          f"{m[2]:.3f}; after a 60° turn the revealed part {m[3]:.3f}, the whole frame {m[4]:.3f}; the walk's memory "
          f"coverage {100 * m[5]:.0f} %")
    if speed_rows:
        print("\n| photograph | depth ahead | W held 4 s at the app's start speed: speed, distance, sharpness s1-4 "
              "(foggy), memory coverage, magnified SSIM (the magnification it found at 2 s) | at the usual speed |"
              "\n|---|---:|---:|---:|")
        for name, ahead, ((v, r, fog, z, c, s, m), (v1, r1, fog1, z1, c1, s1, m1)) in speed_rows:
            print(f"| {name} | {ahead:.2f} m | {v:.2f} m/s, {z:.2f} m: {r:.3f} ({100 * fog:.0f} %), {100 * c:.0f} %, "
                  f"{s:.3f} (x{m:.2f} at 2 s) | {v1:.2f} m/s, {z1:.2f} m: {r1:.3f} ({100 * fog1:.0f} %), "
                  f"{100 * c1:.0f} %, {s1:.3f} (x{m1:.2f}) |")
        held = np.mean([[g[0][5], g[1][5]] for _, _, g in speed_rows], 0)
        print(f"\nmagnified SSIM (metrics.magnified_ssim: the frame's middle half against the start picture magnified "
              f"at the best scale, every 1/4 s of s1-4), mean: {held[0]:.3f} at the start speed, {held[1]:.3f} at the "
              f"usual speed")
    if held_sheet and a.held_sheet:
        Image.fromarray(contact_sheet(held_sheet, fps)).save(a.held_sheet, quality=90)
        print(f"contact sheet: {a.held_sheet} (W held 4 s at the app's start speed, then at the usual speed)")
    if a.sheet:
        Image.fromarray(contact_sheet(sheet, fps)).save(a.sheet, quality=90)
        print(f"contact sheet: {a.sheet} ({', '.join(a.photos.split(',')[:2])}: the 2 m walk then the 60° turn, "
              "every 0.5 s)")


if __name__ == "__main__":
    main()
