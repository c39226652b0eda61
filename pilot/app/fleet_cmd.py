"""``edgepilot fleet``: ``run SHOW.toml`` plays a show on the bus (see :mod:`edgepilot.pilot.app.show`);
``emulate --tellos N --cars M`` starts a fleet on this machine (see :mod:`edgepilot.pilot.app.fleet_emulate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepilot.pilot.app import bus
from edgepilot.pilot.core.errors import VehicleError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="play a show (one script per vehicle, in lockstep) on the bus")
    run.add_argument("show", type=Path, help="the show file (TOML; see the README's fleet section)")
    run.add_argument("--json", action="store_true", help="end stdout with one JSON object describing the show")
    bus.add_arguments(run, vehicle=False)
    emulate = actions.add_parser("emulate", help="Tello emulators and simulated cars, each vehicle its own "
                                 "edgepilot process on the bus (needs root for the network namespaces)")
    from edgepilot.pilot.app import fleet_emulate

    fleet_emulate.add_arguments(emulate)


def run(args: argparse.Namespace) -> int:
    if args.action == "emulate":
        from edgepilot.pilot.app import fleet_emulate

        return fleet_emulate.run(args)
    from edgepilot.pilot.app.fleet_view import FleetView
    from edgepilot.pilot.app.show import TAG, Show, ShowRunner

    show = Show.load(args.show)  # before joining the bus: a typo moves nothing
    session = bus.open_session(bus.config_from_args(args))
    view = FleetView(session, tag=TAG)
    try:
        result = ShowRunner(view, show, say=lambda text: print(text, flush=True)).run()
    finally:
        view.close()
        session.close()
    if args.json:
        print(json.dumps(result.as_dict()), flush=True)
    if not result.completed:
        raise VehicleError(f"the show did not complete: {result.failure}")
    return 0
