"""``edgepilot runs trim DIR --last 5s``: drop a bad end (or start) of a recorded drive from training.

Nothing recorded is deleted: the manifest gains ``"trim": {"from_s", "until_s"}`` (seconds from the run's start),
which ``edgepilot train`` honours; trimming again narrows it further. The manifest's sha256, which a model card
lists, changes with it, so a card says which cut of a run taught the model.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.files import MANIFEST, TICKS, read_jsonl, read_manifest, write_json_atomic

_DURATION = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>s|ms|min)?")


def seconds(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"a duration like 5s, 500ms or 1min, not {text!r}")
    return float(match["num"]) * {"s": 1.0, None: 1.0, "ms": 0.001, "min": 60.0}[match["unit"]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DIR", help="a run folder from --record")
    parser.add_argument("--last", type=seconds, default=0.0, help="drop this much of the end (e.g. 5s)")
    parser.add_argument("--first", type=seconds, default=0.0, help="drop this much of the start")
    parser.add_argument("--json", action="store_true", help="print the new trim as one JSON object")


def run(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not (folder / MANIFEST).is_file():
        raise InputError(f"{folder} is not a recorded run (no {MANIFEST})")
    if not (args.last or args.first):
        raise InputError("nothing to trim: give --last 5s and/or --first 2s")
    manifest = read_manifest(folder)
    ticks, _ = read_jsonl(folder / TICKS)
    if not ticks:
        raise InputError(f"{folder} has no ticks to trim")
    end_s = float(ticks[-1]["t_s"])
    old = manifest.get("trim") or {}
    from_s = max(float(old.get("from_s", 0.0)), args.first)
    until_s = min(float(old.get("until_s", end_s + 1e-6)), end_s - args.last)
    if until_s <= from_s:
        raise InputError(f"{folder} is {end_s:.1f} s long: trimming {args.first:g} s and {args.last:g} s leaves "
                         "nothing")
    manifest["trim"] = {"from_s": round(from_s, 3), "until_s": round(until_s, 3)}
    write_json_atomic(folder / MANIFEST, manifest)
    kept = sum(1 for t in ticks if from_s <= t["t_s"] < until_s)
    if args.json:
        print(json.dumps({**manifest["trim"], "ticks_kept": kept, "ticks": len(ticks)}), flush=True)
    else:
        print(f"{folder}: keeping {from_s:.2f}-{until_s:.2f} s of {end_s:.2f} s ({kept} of {len(ticks)} ticks)")
    return 0
