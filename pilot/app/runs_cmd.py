"""``edgepilot runs SUBCOMMAND``: run folders (recordings) as data.

    edgepilot runs list [DIR] [--json]            a table of the run folders in DIR (default runs/)
    edgepilot runs compare A B [C...] [--png F]   what differs between runs, and their metrics side by side

Each subcommand is a module with ``add_arguments(parser)`` and ``run(args) -> int``, named in :data:`SUBCOMMANDS`:
adding one is one line there. The metrics come from :mod:`edgepilot.pilot.record.runs`; for runs of the simulated
car this module adds the lane offset measured against the simulator's track (ground truth, which only the app layer
may know).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
from typing import Any

from edgepilot.pilot.record.runs import Run

#: subcommand -> (module offering add_arguments(parser) and run(args), one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "list": ("edgepilot.pilot.app.runs_list", "a table of the run folders in DIR: date, vehicle, verb, duration, "
             "commands, models, key metrics"),
    "compare": ("edgepilot.pilot.app.runs_compare", "what differs between runs (config, models, code) and their "
                "metrics side by side, with a PNG of their curves"),
    "trim": ("edgepilot.pilot.app.trim", "drop a bad end or start of a run from training (--last 5s, --first 2s)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                                       help=", ".join(SUBCOMMANDS))
    for name, (module_name, help_) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_, description=help_)
        importlib.import_module(module_name).add_arguments(sub)
        sub.set_defaults(runs_module=module_name)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args.runs_module).run(args) or 0)


# -- metrics, with the simulator's ground truth -----------------------------------------------------------------------
def metrics(run: Run) -> dict[str, Any]:
    """The run's metrics (:func:`edgepilot.pilot.record.runs.run_metrics`) plus, for the simulated car, its distance
    from the lane centre (``lane_offset_cm``: mean and max), measured on the simulator's track."""
    values = dict(run.metrics)
    values["lane_offset_cm"] = _lane_offset(run)
    return values


def is_simulated(run: Run) -> bool:
    config = run.manifest.get("config") or {}
    return run.verb == "demo" or config.get("vehicle") in ("sim", "sim-drone", "sim-car") or \
        (run.manifest.get("pilot") or {}).get("clock") == "FakeClock"


def _lane_offset(run: Run) -> dict[str, float] | None:
    offsets = lane_offsets(run)
    if offsets is None:
        return None
    return {"mean": round(statistics.fmean(offsets), 2), "max": round(max(offsets), 2)}


def lane_offsets(run: Run) -> list[float] | None:
    """Per tick, the simulated car's distance (cm) from the centre of its lane; None for other runs."""
    if run.kind != "car" or not run.ticks or not is_simulated(run):
        return None
    from edgepilot.sim.world import World

    world = World.build(int((run.manifest.get("seeds") or {}).get("world", 0)), "car")
    if world.track is None:
        return None
    origin = world.start_pose
    offsets = []
    for tick in run.ticks:
        t = tick["telemetry"]
        x, y = _compose(origin.x_cm, origin.y_cm, origin.yaw_deg, t["x_cm"], t["y_cm"])
        offsets.append(abs(world.track.project(x, y).lateral_cm))
    return offsets


def _compose(ox: float, oy: float, yaw_deg: float, x: float, y: float) -> tuple[float, float]:
    import math

    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    return ox + c * x - s * y, oy + s * x + c * y


def describe(run: Run) -> dict[str, Any]:
    """One run as ``runs list --json`` gives it."""
    if run.problem is not None:
        return {"folder": str(run.folder), "format": run.format, "status": "unreadable", "problem": run.problem}
    return {"folder": str(run.folder), "created": run.manifest.get("created"), "vehicle": run.vehicle,
            "kind": run.kind, "verb": run.verb, "format": run.format, "status": run.status,
            "edgepilot": run.manifest.get("edgepilot"), "code": run.code, "duration_s": round(run.duration_s, 3),
            "commands": [c["command"] for c in run.commands], "models": run.models,
            "replay_of": (run.manifest.get("replay_of") or {}).get("folder"), "digest": run.digest,
            "metrics": metrics(run)}
