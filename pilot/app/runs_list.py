"""``edgepilot runs list [DIR] [--json]``: a table of run folders: date, vehicle, verb, recording format and state,
duration, commands, models (sha256), key metrics. A folder that cannot be read is listed with the reason."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from edgepilot.pilot.app.runs_cmd import describe
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.runs import find_runs, load_run


# -- runs list ----------------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", type=Path, default=Path("runs"), metavar="DIR",
                        help="a run folder, or a folder of them (searched one level deep; default runs/)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run, as a JSON list on stdout")


def run(args: argparse.Namespace) -> int:
    if not args.dir.expanduser().exists():
        raise InputError(f"{args.dir} does not exist: give a folder of runs (made with --record DIR)")
    runs = [describe(load_run(folder, strict=False)) for folder in find_runs(args.dir)]
    if args.json:
        print(json.dumps(runs))
        return 0
    if not runs:
        print(f"no run folders in {args.dir} (make one with 'edgepilot fly --vehicle sim --record {args.dir}/NAME')")
        return 0
    print(_table(runs))
    return 0


def _table(runs: list[dict]) -> str:
    header = ("run", "date", "vehicle", "verb", "fmt", "version", "status", "dur s", "cmds", "models", "centred", "lane cm",
              "stops", "hand", "cmd s", "batt %")
    rows = [header]
    for r in runs:
        if r["status"] == "unreadable":
            rows.append((Path(r["folder"]).name, "-", "-", "-", r["format"], "-", "unreadable", "", "", "", "", "", "", "",
                         "", r["problem"][:120]))
            continue
        m = r["metrics"]
        lane = m["lane_offset_cm"]
        rows.append((
            Path(r["folder"]).name, _date(r["created"]), r["vehicle"], r["verb"], r["format"], r["edgepilot"] or "?",
            r["status"],
            f"{r['duration_s']:.1f}", str(len(r["commands"])),
            " ".join(f"{(sha or '?')[:8]}" for sha in r["models"].values()) or "-",
            _pct(m["tracking_centred_fraction"]), "-" if lane is None else f"{lane['mean']:.1f}", str(m["stops"]),
            str(m["handovers"]), _num(m["command_latency_s"]["median"]), _num(m["battery_used_pct"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _date(created: str | None) -> str:
    if not created:
        return "?"
    try:
        return datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
