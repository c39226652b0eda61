"""``edgepilot runs ACTION ...``: work on recorded run folders. Each action is its own module offering
``add_arguments(parser)`` and ``run(args)``; :data:`ACTIONS` lists them."""

from __future__ import annotations

import argparse
import importlib

#: action -> (module, one-line help)
ACTIONS: dict[str, tuple[str, str]] = {
    "trim": ("edgepilot.pilot.app.trim", "drop a bad end or start of a run from training (--last 5s, --first 2s)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, (module, help_) in ACTIONS.items():
        importlib.import_module(module).add_arguments(actions.add_parser(name, help=help_, description=help_))


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(ACTIONS[args.action][0]).run(args) or 0)
