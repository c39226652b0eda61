"""``--web [HOST:]PORT`` and ``--web-token`` for the verbs that run a vehicle (fly, drive, demo)."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from edgepilot.pilot.app.web.access import TOKEN_ENV, make_token, parse_bind
from edgepilot.pilot.core.errors import InputError

if TYPE_CHECKING:
    from edgepilot.pilot.app.web.server import Cockpit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web", metavar="[HOST:]PORT",
                        help="live web cockpit on PORT (127.0.0.1 unless HOST is given; 0.0.0.0 for a phone on the "
                             "same Wi-Fi); prints the URL to open, with the run's token")
    parser.add_argument("--web-token", metavar="TOKEN",
                        help=f"a fixed token for the cockpit (default: ${TOKEN_ENV}, else a random one per run)")


def check_arguments(args: argparse.Namespace) -> None:
    """Bad --web / --web-token values fail before anything starts."""
    if args.web is None:
        if args.web_token is not None:
            raise InputError("--web-token needs --web [HOST:]PORT")
        return
    parse_bind(args.web)
    make_token(args.web_token)


def open_cockpit(args: argparse.Namespace, stack: ExitStack, out_dir: Path | None = None) -> Cockpit | None:
    """Start the cockpit if ``--web`` was given and print where to open it; it stops when ``stack`` closes. Videos
    recorded from the page go to ``out_dir``."""
    if args.web is None:
        return None
    from edgepilot.pilot.app.web.server import Cockpit

    bind = parse_bind(args.web)
    cockpit = Cockpit(bind, make_token(args.web_token), out_dir=out_dir)
    try:
        urls = cockpit.start()
    except OSError as exc:
        raise InputError(f"--web {args.web}: cannot listen there ({exc.strerror or exc}); pick another port, "
                         f"or 0 for any free one") from None
    stack.callback(cockpit.stop)
    print(f"cockpit: open {urls[0]}", file=sys.stderr, flush=True)
    for url in urls[1:]:
        print(f"         or {url}", file=sys.stderr, flush=True)
    if not bind.loopback:
        print(f"edgepilot: WARNING: the cockpit listens on {bind.host}: anyone on this network who has the URL (with "
              f"its token) can drive the vehicle. Share it only with people you trust; bind 127.0.0.1 otherwise.",
              file=sys.stderr, flush=True)
    return cockpit
