#!/usr/bin/env python3
"""Download optional models for users with internet: the same as ``edgepilot models fetch NAME`` (the table and the
checks live in edgepilot.pilot.app.models_cmd; edgepilot itself never downloads at run time).

    python scripts/fetch_models.py --list
    python scripts/fetch_models.py NAME [--dest DIR] [--sha256 HEX]
"""

from __future__ import annotations

import argparse
import sys

from edgepilot.pilot.app.cli import main as edgepilot
from edgepilot.pilot.app.models_cmd import MODELS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", choices=sorted(MODELS))
    parser.add_argument("--list", action="store_true", help="show the table")
    parser.add_argument("--dest", default=None, help="where to put it")
    parser.add_argument("--sha256", default=None, help="refuse the download unless it has this sha256")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        return edgepilot(["models", "list"])
    extra = (["--dest", args.dest] if args.dest else []) + (["--sha256", args.sha256] if args.sha256 else [])
    return edgepilot(["models", "fetch", args.name, *extra])


if __name__ == "__main__":
    sys.exit(main())
