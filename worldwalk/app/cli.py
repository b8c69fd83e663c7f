"""Command line of worldwalk: `launch.py [command] ...`.

With no command it opens the explorer on the embedded default world: the desktop window where there is a display
(DISPLAY or WAYLAND_DISPLAY set), the browser demo otherwise (it prints the local URL).
Commands: explore (desktop window), web (browser demo), render (offline MP4), train (the embedded default), info.
Every user error (bad file, bad value) is one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

from worldwalk.app.runtime import keep_freed_memory


def build_parser() -> argparse.ArgumentParser:
    from worldwalk.app import desktop, render, train_args, web

    p = argparse.ArgumentParser(prog="launch.py", description="worldwalk: walk through the world one image opens "
                                                              "onto. Without a command: the explorer (a window where "
                                                              "there is a display, the browser demo otherwise).")
    sub = p.add_subparsers(dest="command")
    desktop.add_parser(sub)
    web.add_parser(sub)
    render.add_parser(sub)
    train_args.add_parser(sub)
    info = sub.add_parser("info", help="print the model summary of presets")
    info.add_argument("--preset", action="append", default=None, help="preset name (repeatable); default: all")
    info.set_defaults(func=cmd_info)
    return p


def cmd_info(args) -> int:
    from worldwalk.world.model import describe
    from worldwalk.world.presets import PRESETS

    names = args.preset or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset {unknown[0]!r}; expected one of {', '.join(PRESETS)}")
    for n in names:
        print(describe(n))
    return 0


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["explore" if has_display() else "web"] + argv
    args = parser.parse_args(argv)
    try:
        keep_freed_memory()  # large buffers reused chunk after chunk instead of fresh pages (app/runtime.py)
        return args.func(args)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
