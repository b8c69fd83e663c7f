"""`python -m worldwalk.app.web ...`: the same as `launch.py web ...` (one-line errors, exit code 2)."""
import argparse
import sys

from worldwalk.app.web import add_parser


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m worldwalk.app.web")
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    args = p.parse_args(["web", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, PermissionError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
