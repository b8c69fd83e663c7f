"""`launch.py explore`: the desktop explorer — a pygame window you walk through, with recording.

    python launch.py explore --image photo.jpg                 # the embedded default world
    python launch.py explore --random-weights --preset test     # untrained engine, fast (tests, trying the window)
    python launch.py explore --resume recordings/walk-….walk    # go on with a saved walk

Keys: W/S/A/D walk, Q/E down/up, mouse-look (click; Esc releases), arrows turn, Shift sprint, +/- speed, Space pause,
R record, F12 screenshot, B bookmark, Backspace rewind, N next start scene, O open image, Ctrl+S / Ctrl+L save / load
the walk, Tab HUD, H help, Ctrl+Q quit. Recordings (MP4 + replay JSON), screenshots and saved walks go to --out-dir.

Modules: explorer (the window's state and display loop), view (drawing it), hud and minimap (the overlays), style,
keys, prompt (file dialog / typed path), walkfile (.walk files),
scripted (posting events: tests, demos, benchmarks/desktop_loop.py).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def add_parser(sub) -> None:
    p = sub.add_parser("explore", help="walk through a world in a desktop window (pygame)",
                       description="Walk through the world one image opens onto. Press H in the window for the keys.")
    add_explore_args(p)
    p.set_defaults(func=run)


def add_explore_args(p: argparse.ArgumentParser) -> None:
    from worldwalk.app.world_args import add_world_args

    g = p.add_argument_group("explorer")
    g.add_argument("--image", help="start image (PNG/JPEG/WebP); default: the first of assets/scenes")
    g.add_argument("--resume", metavar="FILE.walk", help="go on with a walk saved with Ctrl+S")
    g.add_argument("--size", type=float, default=None, metavar="SCALE",
                   help="window pixels per frame pixel (default: fit the window in 960x720)")
    g.add_argument("--out-dir", default="recordings",
                   help="folder for recordings, screenshots and saved walks (default ./recordings)")
    g.add_argument("--fov", type=float, default=None, help="horizontal field of view of the start image, degrees")
    g.add_argument("--display-hz", type=int, default=60, help="display loop rate cap (default 60)")
    g.add_argument("--no-dialog", action="store_true", help="type paths in the window instead of a file dialog")
    g.add_argument("--no-hud", action="store_true", help="start with the HUD hidden (Tab shows it)")
    g.add_argument("--frames", type=int, default=None, help=argparse.SUPPRESS)  # run N display frames, then quit
    add_world_args(p)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The explore options in `argv` (without the command name), e.g. parse_args(["--random-weights"])."""
    p = argparse.ArgumentParser(prog="launch.py explore")
    add_explore_args(p)
    return p.parse_args(argv)


def defaults() -> argparse.Namespace:
    """Every explore option at its default (for callers that build their own namespace, e.g. a bare launch.py)."""
    return parse_args([])


def complete(args) -> argparse.Namespace:
    """`args` with any explore option it lacks filled in with its default."""
    full = vars(defaults())
    full.update(vars(args))
    if isinstance(full.get("preset"), list):  # the top-level parser's --preset is repeatable (for `info`)
        full["preset"] = full["preset"][-1] if full["preset"] else None
    return argparse.Namespace(**full)


def build(args):
    """-> an Explorer with its walk started (window not open yet). Raises ValueError for any bad input."""
    from worldwalk.app.desktop.explorer import Explorer, Options, SCENES_DIR, default_image
    from worldwalk.app.desktop.walkfile import load_walk
    from worldwalk.app.runtime import SlowStartNotice
    from worldwalk.app.world_args import world_factory
    from worldwalk.app.walker import Walker
    from worldwalk.world.images import DEPTH_SUFFIXES, load_image, open_picture

    args = complete(args)
    if args.size is not None and not 0.1 <= args.size <= 16:
        raise ValueError(f"--size {args.size:g}: expected a window scale between 0.1 and 16")
    if not 5 <= args.display_hz <= 500:
        raise ValueError(f"--display-hz {args.display_hz}: expected 5 to 500")
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames {args.frames}: expected a positive number")
    if args.resume and args.image:
        raise ValueError("--resume and --image: choose one (a saved walk carries its own start)")
    saved = load_walk(args.resume) if args.resume else None
    image, note = args.image, ""
    if image:
        load_image(image)  # a bad image is a one-line error before any window opens
    elif saved is None:
        scenes = sorted(p for p in SCENES_DIR.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
                        and not p.name.lower().endswith(DEPTH_SUFFIXES))
        if scenes:
            image = str(scenes[0])
        else:
            image, note = default_image(), "no start image and no assets/scenes: a placeholder scene (O opens an image)"
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir}: exists and is not a folder")

    # a saved walk's settings: its world description (weights, prompt) and its sampler, window, memory, ...
    recorded = {**saved.meta, **(saved.meta.get("world") or {})} if saved else None
    seed = args.seed if args.seed is not None else int(saved.meta.get("seed", 0)) if saved else 0
    window = int(saved.meta.get("window_chunks") or args.window) if saved else args.window
    make_session, desc = world_factory(args, recorded, window=window)
    session = make_session()
    walker = Walker(session, queue_chunks=1, world_desc=desc)
    if saved is not None:
        try:
            with SlowStartNotice():
                walker.start_from(saved.snapshot, saved.rig, saved.path, image=saved.meta.get("image"))
        except ValueError as e:
            walker.close()
            raise ValueError(f"--resume {args.resume}: {e}") from None
        note = f"resumed {Path(args.resume).name} at frame {saved.frame_index} — Space to walk on"
    else:
        with SlowStartNotice():  # (the first run on a machine compiles the kernels before the window opens)
            walker.start(open_picture(image), seed=seed, fov_deg=args.fov)  # (with its depth map beside it)
        note = " — ".join(m for m in (note, walker.message) if m)  # a close-up starts slower (app/walker.py)
    name = desc.get("preset", session.cfg.name)
    opts = Options(out_dir=out_dir, scale=args.size, display_hz=args.display_hz, seed=seed, fov=args.fov,
                   dialog=not args.no_dialog, hud=not args.no_hud, title=f"worldwalk — {name}")
    ex = Explorer(walker, opts)
    if saved is not None:
        ex.last_walk = Path(args.resume)
    if note:
        ex.say(note, seconds=8)
    return ex


def run(args) -> int:
    """The explorer until its window closes. Bad input: ValueError (app.cli prints one line, exit 2)."""
    import importlib.util

    if importlib.util.find_spec("pygame") is None:
        raise ValueError("the desktop explorer needs pygame: pip install 'worldwalk[desktop]' (or pip install "
                         "pygame)")
    import pygame

    from worldwalk.app.desktop.explorer import no_display_error

    if sys.platform.startswith("linux") and not (os.environ.get("SDL_VIDEODRIVER") or os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise no_display_error("neither DISPLAY nor WAYLAND_DISPLAY is set")
    try:  # no display: say so before spending time on the model
        pygame.display.init()
    except pygame.error as e:
        raise no_display_error(e) from None
    driver = pygame.display.get_driver()
    if driver in ("offscreen", "dummy") and os.environ.get("SDL_VIDEODRIVER") != driver:
        pygame.display.quit()  # SDL fell back to a window nobody sees (asked for by name, it is fine: tests)
        raise no_display_error(f"SDL found no display, only its {driver!r} driver")
    try:
        ex = build(args)
    except BaseException:
        pygame.display.quit()
        raise
    try:
        ex.open_window()
    except ValueError:
        ex.walker.close()
        pygame.display.quit()
        raise
    try:
        ex.run(frames=complete(args).frames)
    except KeyboardInterrupt:
        pass
    finally:
        ex.close()
    for p in ex.saved_files:
        if p.exists():
            print(f"saved {p}" + (f" and {p.with_suffix('.json')}" if p.suffix == ".mp4" and
                                  p.with_suffix(".json").exists() else ""))
    return 0
