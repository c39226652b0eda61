"""``edgepilot runs compare A B [C...] [--png OUT.png] [--json]``: what differs between runs and how well each went.

Differences: the run's configuration (the verb's options, seeds, the pilot's rate, safety limits and follow gains, the
behaviour and perception settings), the models by sha256 (with what their model card says), the face database,
edgepilot's version and git revision. Left out, because they differ between any two runs: when it ran, its command
line and output folders. Then the metrics side by side (see :mod:`edgepilot.pilot.record.runs`) and whether the
runs decided the same (their decisions' sha256). Runs that decided the same with the same setup are ``identical``,
as two replays of one recording are. ``--png`` overlays their main curves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgepilot.pilot.app.runs_cmd import describe, lane_offsets
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.runs import Run, load_run, model_card, target_offsets

#: Manifest parts that describe the setup of a run (compared); everything else describes one occasion.
SETUP = ("config", "seeds", "vehicle", "pilot", "perception", "faces", "edgepilot")
#: Options that only say where outputs go or how they are printed.
OCCASION_OPTIONS = {"record", "out", "json", "no_video", "input", "jsonl", "report"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="two or more run folders")
    parser.add_argument("--png", type=Path, metavar="OUT.png", help="draw the runs' main curves overlaid")
    parser.add_argument("--json", action="store_true", help="print the comparison as one JSON object")


def setup_of(run: Run) -> dict[str, Any]:
    """The run's setup as flat ``section.key`` -> value."""
    manifest = run.manifest
    flat: dict[str, Any] = {}
    for section in SETUP:
        value = manifest.get(section)
        if section == "config" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in OCCASION_OPTIONS}
        _flatten(section, value, flat)
    git = manifest.get("git") or {}
    flat["git.revision"] = git.get("revision")
    flat["git.dirty"] = git.get("dirty")
    for name, sha in run.models.items():
        flat[f"models.{name}"] = sha
    return flat


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    else:
        out[prefix] = value


def compare(runs: list[Run]) -> dict[str, Any]:
    setups = [setup_of(r) for r in runs]
    keys = sorted(set().union(*setups))
    differences = {k: [s.get(k) for s in setups] for k in keys
                   if any(json.dumps(s.get(k), sort_keys=True) != json.dumps(setups[0].get(k), sort_keys=True)
                          for s in setups)}
    models = {}
    for run in runs:
        for m in run.manifest.get("models") or []:
            models.setdefault(m.get("sha256"), {"name": m["name"], "sha256": m.get("sha256"),
                                                "card": model_card(m.get("path"), m.get("sha256")), "runs": []})
            models[m.get("sha256")]["runs"].append(str(run.folder))
    described = [describe(r) for r in runs]
    same_decisions = len({d["digest"] for d in described}) == 1
    return {
        "runs": described,
        "identical": same_decisions and not differences,
        "same_decisions": same_decisions,
        "differences": differences,
        "models": list(models.values()),
        "metrics": {key: [d["metrics"][key] for d in described] for key in described[0]["metrics"]},
    }


def run(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise InputError("give two or more run folders to compare")
    runs = [load_run(folder) for folder in args.runs]
    result = compare(runs)
    if args.png is not None:
        draw(runs, args.png)
        result["png"] = str(args.png)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(_text(runs, result)))
    return 0


def _text(runs: list[Run], result: dict) -> list[str]:
    names = _names(runs)
    lines = [f"{name}: {r.verb} {r.vehicle}, {r.manifest.get('created', '?')}, edgepilot {r.code}, format "
             f"{r.format}, {r.status}, decisions {r.digest[:12]}" for name, r in zip(names, runs, strict=True)]
    if result["identical"]:
        lines.append("identical: same setup, models and code, and the same decisions on every tick")
    else:
        lines.append("decisions: " + ("the same on every tick" if result["same_decisions"] else "DIFFERENT"))
    if result["differences"]:
        lines.append("differences:")
        rows = _collapsed(result["differences"])
        width = max(len(k) for k in rows)
        for key, values in rows.items():
            lines.append(f"  {key.ljust(width)}  " + "  |  ".join(values))
    lines.append("models:")
    for m in result["models"]:
        used = "all runs" if len(m["runs"]) == len(runs) else ", ".join(Path(f).name for f in m["runs"])
        lines.append(f"  {m['name']} sha256 {(m['sha256'] or '?')[:16]} ({used})"
                     + (f": {m['card']}" if m["card"] else ""))
    lines.append("metrics:")
    rows = [("", *names)] + [(key, *(_short(v) for v in values)) for key, values in result["metrics"].items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if "png" in result:
        lines.append(f"curves: {result['png']}")
    return lines


def _collapsed(differences: dict[str, list]) -> dict[str, list[str]]:
    """One line for a whole group of settings (``pilot.follow_config``) that some runs do not have at all."""
    groups: dict[str, list[str]] = {}
    for key in differences:
        groups.setdefault(".".join(key.split(".")[:2]), []).append(key)
    rows: dict[str, list[str]] = {}
    for group, keys in groups.items():
        absent = [all(differences[k][i] is None for k in keys) for i in range(len(next(iter(differences.values()))))]
        if len(keys) > 1 and any(absent) and not all(absent):
            rows[group] = ["-" if gone else f"({len(keys)} settings)" for gone in absent]
        else:
            rows.update({k: [_short(v) for v in differences[k]] for k in keys})
    return rows


def _names(runs: list[Run]) -> list[str]:
    names = [r.folder.name for r in runs]
    return names if len(set(names)) == len(names) else [str(r.folder) for r in runs]


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    text = "-" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def draw(runs: list[Run], png: Path) -> None:
    """Height (drone) or speed (car), yaw, the yaw-rate set-point, the target's or lane's offset, battery, and the
    path seen from above, one colour per run."""
    import math

    from edgepilot.pilot.app.report import _pyplot, _save

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--png needs matplotlib: pip install 'edgepilot[all]' (or pip install matplotlib)") from None
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), dpi=100)
    (ax_xy, ax_z, ax_yaw), (ax_rate, ax_off, ax_bat) = axes
    for index, (name, run) in enumerate(zip(_names(runs), runs, strict=True)):
        colour = f"C{index % 10}"
        style = ("-", "--", ":", "-.")[index % 4]  # identical runs overlap exactly: dashes keep each visible
        kw = {"color": colour, "ls": style, "lw": 1.4, "label": name}
        t = [k["t_s"] for k in run.ticks]
        tel = [k["telemetry"] for k in run.ticks]
        ax_xy.plot([-s["y_cm"] for s in tel], [s["x_cm"] for s in tel], **kw)
        if run.kind == "car":
            ax_z.plot(t, [math.hypot(s["vx_cm_s"], s["vy_cm_s"]) for s in tel], **kw)
        else:
            ax_z.plot(t, [s["z_cm"] for s in tel], **kw)
        ax_yaw.plot(t, [s["yaw_deg"] for s in tel], **kw)
        ax_rate.plot(t, [k["sent"][3] if k["sent"] else math.nan for k in run.ticks], **kw)
        lane = lane_offsets(run)
        if lane is not None:
            ax_off.plot(t, lane, **kw)
        else:
            offsets = target_offsets(run)
            ax_off.plot([o[0] for o in offsets], [100.0 * o[1] for o in offsets], marker=".", ms=3, **kw)
        ax_bat.plot(t, [s["battery_pct"] for s in tel], **kw)
    kinds = {r.kind for r in runs}
    ax_xy.set(title="path seen from above", xlabel="right (cm)", ylabel="forward (cm)")
    ax_xy.set_aspect("equal", adjustable="datalim")
    ax_z.set(title="height" if kinds == {"drone"} else "speed" if kinds == {"car"} else "height (drone) / speed (car)",
             xlabel="time (s)", ylabel={"drone": "cm", "car": "cm/s"}.get(next(iter(kinds)) if len(kinds) == 1 else "",
                                                                            "cm or cm/s"))
    ax_yaw.set(title="heading", xlabel="time (s)", ylabel="yaw (deg, counter-clockwise +)")
    ax_rate.set(title="yaw-rate set-point sent", xlabel="time (s)", ylabel="deg/s")
    if kinds == {"drone"}:
        ax_off.set(title="followed target's offset from the image centre", ylabel="% of the image width")
    elif kinds == {"car"}:
        ax_off.set(title="distance from the lane centre (simulator's track)", ylabel="cm")
    else:
        ax_off.set(title="lane offset (car) / target offset (follow)", ylabel="cm (car) or % of width (follow)")
    ax_off.set_xlabel("time (s)")
    ax_bat.set(title="battery", xlabel="time (s)", ylabel="%")
    ax_xy.legend(fontsize=8)
    fig.suptitle("edgepilot runs compare: " + "  vs  ".join(_names(runs)))
    _save(fig, plt, png)
