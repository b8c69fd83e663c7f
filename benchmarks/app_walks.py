"""The app's own start scenes walked as a person walks them, against their exact views.

    python benchmarks/app_walks.py                      # the four scenes of assets/scenes, the embedded default world

The scenes in assets/scenes are renders of procedural worlds that no training or tuning saw (seeds 2,000,001, 2, 5
and 9), so every later frame of a walk into them has an exact view. Each scene starts as the app starts it (the
picture and its own depth map, world/images.open_picture) and is walked through the camera rig as the keys are held:

    W 3 s | W and the right arrow 2 s (a turn into what the picture does not show) | W 3 s |
    the left arrow 3 s (back towards what it showed) | W 3 s                                  (14 s at the model's fps)

at the speed the app starts a walk with for that picture (Rig.fit_speed). Printed per scene: the sharpness ratio
(benchmarks/metrics.py: gradient energy against the exact frame, full resolution), the median of each 2 s, PSNR and
SSIM over the walk, and the same over its last 3 s (walking on after the turn back, where the memory shows what the
start picture showed). The contact sheet has every 1 s of each walk at half size, generated over exact.
`--seconds-scale` shortens every stretch (tests).
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

from metrics import FLAT, contact_sheet, cpu_header, gradient_energy, psnr, sharpness, ssim  # noqa: E402
from photo_walks import run  # noqa: E402  (a walk's frames, chunk by chunk as the app asks for them)
from world_quality import with_settings  # noqa: E402
from worldwalk.app.runtime import keep_freed_memory  # noqa: E402
from worldwalk.controls.intrinsics import from_fov  # noqa: E402
from worldwalk.controls.rig import InputState, Rig, RigConfig  # noqa: E402
from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth  # noqa: E402
from worldwalk.world.checkpoint import CheckpointError  # noqa: E402
from worldwalk.world.images import open_picture  # noqa: E402
from worldwalk.world.memory import MemorySettings  # noqa: E402
from worldwalk.world.procedural.scene import Scene  # noqa: E402
from worldwalk.world.sampler import SamplerConfig  # noqa: E402
from worldwalk.world.session import DEFAULT_FOV, Session  # noqa: E402

SCENES = {"world_1": 2_000_001, "world_2": 2_000_002, "world_3": 2_000_005, "world_4": 2_000_009}
WALK = ((("w",), 3.0), (("w", "right"), 2.0), (("w",), 3.0), (("left",), 3.0), (("w",), 3.0))


def held_keys(fps: int, ahead: float | None, scale: float = 1.0) -> tuple[np.ndarray, float]:
    """WALK through the camera rig from standing, at the speed the app starts a walk with for a picture whose surface
    ahead is `ahead` metres away -> (poses (1 + frames, 4, 4), the start pose first; the speed)"""
    rig = Rig(RigConfig(fps=fps))
    speed = rig.fit_speed(ahead)
    poses = [np.eye(4)[None]]
    for keys, seconds in WALK:
        rig.update(InputState(keys=set(keys)), 0.0)
        poses.append(rig.advance(max(1, int(round(seconds * scale * fps)))))
    return np.concatenate(poses), speed


def main():
    keep_freed_memory()  # as the app does (worldwalk/app/runtime.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--scenes", default=",".join(SCENES), help=f"some of {', '.join(SCENES)}")
    ap.add_argument("--memory-setting", action="append", default=[], metavar="KEY=VALUE",
                    help="a memory setting other than the bundle's (repeatable; as world_quality.py)")
    ap.add_argument("--seconds-scale", type=float, default=1.0, help="every stretch of the walk this much as long")
    ap.add_argument("--sheet", default="benchmarks/app_walks_sheet.jpg")
    a = ap.parse_args()
    names = [n for n in a.scenes.split(",") if n]
    unknown = [n for n in names if n not in SCENES]
    if unknown or not names:
        sys.exit(f"error: --scenes {a.scenes!r}: expected some of {', '.join(SCENES)}")
    if not 0 < a.seconds_scale <= 4:
        sys.exit(f"error: --seconds-scale {a.seconds_scale}: expected a factor in (0, 4]")
    path = a.weights or DEFAULT_BUNDLE
    try:
        model, vae, extra = load_bundle(path)
        depth = load_depth(path) or (load_depth(DEFAULT_BUNDLE) if Path(DEFAULT_BUNDLE).is_file() else None)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    if depth is None:
        sys.exit(f"error: {path}: no depth network here or in the embedded default (the app's walks use the memory)")
    memory = with_settings(MemorySettings.from_dict(extra.get("memory", {})), a.memory_setting)
    session = Session(model, vae, SamplerConfig(**extra.get("sampler", {})), memory=memory, depth=depth)
    fps = model.cfg.fps
    W, H = session.size_wh
    folder = Path(DEFAULT_BUNDLE).parent / "scenes"
    print(f"app walks: {path} | {''.join(f'{m} | ' for m in a.memory_setting)}{cpu_header()} | "
          f"{torch.get_num_threads()} threads | {time.strftime('%Y-%m-%d')}")
    walk = ", ".join(f"{'+'.join(k.upper() if k == 'w' else k for k in keys)} {t:g} s" for keys, t in WALK)
    print(f"\n{walk}{f' (x{a.seconds_scale:g})' if a.seconds_scale != 1 else ''}; sharpness against the exact "
          f"frames\n\n"
          "| scene | speed | sharpness, median of each 2 s | PSNR | SSIM | last 3 s: sharpness, PSNR, SSIM |\n"
          "|---|---:|---|---:|---:|---:|")
    sheet, rows = [], []
    for name in names:
        picture = open_picture(folder / f"{name}.png")
        session.start(picture, fov_deg=DEFAULT_FOV)
        ahead = session.depth_ahead()
        c2w, speed = held_keys(fps, ahead, a.seconds_scale)
        gen = run(session, picture, c2w)
        exact = Scene(SCENES[name]).render(c2w, from_fov(W, H, DEFAULT_FOV), (W, H))
        sh = np.array([sharpness(g, e) if gradient_energy(e) >= FLAT else np.nan  # (a flat exact frame: no detail
                       for g, e in zip(gen[1:], exact[1:])])                          # to lose, left out)
        ps = np.array([psnr(g, e) for g, e in zip(gen[1:], exact[1:])])
        ss = np.array([ssim(g, e) for g, e in zip(gen[1:], exact[1:])])
        step, tail = 2 * fps, max(1, int(round(3 * a.seconds_scale * fps)))
        parts = " ".join(f"{np.nanmedian(sh[i:i + step]):.3f}" for i in range(0, len(sh), step))
        row = (np.nanmean(sh), ps.mean(), ss.mean(), np.nanmean(sh[-tail:]), ps[-tail:].mean(), ss[-tail:].mean())
        rows.append(row)
        print(f"| {name} | {speed:.2f} m/s | {parts} | {row[1]:.2f} dB | {row[2]:.3f} | {row[3]:.3f}, {row[4]:.2f} dB, "
              f"{row[5]:.3f} |")
        sheet.append((gen[:, ::2, ::2], exact[:, ::2, ::2]))  # (half size)
    m = np.mean(rows, 0)
    print(f"\nmean over {len(rows)} scenes: sharpness {m[0]:.3f}, PSNR {m[1]:.2f} dB, SSIM {m[2]:.3f}; last 3 s: "
          f"sharpness {m[3]:.3f}, PSNR {m[4]:.2f} dB, SSIM {m[5]:.3f}")
    if a.sheet:
        Image.fromarray(contact_sheet(sheet, fps, every=1.0)).save(a.sheet, quality=90)
        print(f"contact sheet: {a.sheet} (per scene the walk every 1 s at half size, generated over exact)")


if __name__ == "__main__":
    main()
