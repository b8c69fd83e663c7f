#!/usr/bin/env python3
"""worldwalk's one entry point: parses the command and hands over to worldwalk.app."""
import sys

from worldwalk.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
