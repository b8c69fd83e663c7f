"""Command line of worldwalk: `launch.py [command] ...`.

Commands: `info` (model summary; also what a bare `launch.py` prints until the explorer lands) and `render`.
Every user error (bad file, bad value) is one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from app import render
    from world import train

    p = argparse.ArgumentParser(prog="launch.py", description="worldwalk: walk through the world one image opens onto")
    sub = p.add_subparsers(dest="command")
    info = sub.add_parser("info", help="print the model summary of presets")
    info.set_defaults(func=cmd_info)
    for q in (p, info):
        q.add_argument("--preset", action="append", default=None,
                       help="preset name (repeatable); default: all presets")
    render.add_parser(sub)
    train.add_parser(sub)
    p.set_defaults(func=cmd_info)
    return p


def cmd_info(args) -> int:
    from world.model import describe
    from world.presets import PRESETS

    names = args.preset or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset {unknown[0]!r}; expected one of {', '.join(PRESETS)}")
    for n in names:
        print(describe(n))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
