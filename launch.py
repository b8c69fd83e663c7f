#!/usr/bin/env python3
"""worldwalk's one entry point: parses the command and hands over to app/."""
import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
