"""Command line of worldwalk. For now: a model summary (later issues add the explorer, the web demo and render)."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch.py", description="worldwalk: walk through the world one image opens onto")
    sub = p.add_subparsers(dest="command")
    info = sub.add_parser("info", help="print the model summary of presets")
    for q in (p, info):
        q.add_argument("--preset", action="append", default=None,
                       help="preset name (repeatable); default: all presets")
    return p


def cmd_info(args) -> int:
    from world.model import describe
    from world.presets import PRESETS

    names = args.preset or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        print(f"error: unknown preset {unknown[0]!r}; expected one of {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    for n in names:
        print(describe(n))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in (None, "info"):
        return cmd_info(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
