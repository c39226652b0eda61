"""``edgepilot replay ... --report OUT.png``: one picture of a run (where it went, height and battery, what it saw and
whom it recognised, the commands and safety events on the timeline) and a few lines summing it up. Drawn with
matplotlib's Agg backend (no display needed); matplotlib comes with ``pip install 'edgepilot[all]'``."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.files import COMMANDS, DETECTIONS, EVENTS, TICKS, read_jsonl, read_manifest

SOURCE_COLOURS = {"script": "tab:blue", "voice": "tab:green", "keys": "tab:purple", "keyboard": "tab:purple",
                  "safety": "tab:red"}
LABEL_COLOURS = {"face": "tab:orange", "person": "tab:blue"}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError("--report needs matplotlib: pip install 'edgepilot[all]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _detections_panel(ax: Any, timeline: list[tuple[float, list[dict]]]) -> list[str]:
    """People and faces in view (mean per frame over short bins: detectors that skip frames make raw counts
    flicker), and a dotted line for each recognised person while they are in view."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(timeline))
    seen_names: dict[str, list[float]] = defaultdict(list)
    times = [t for t, _ in timeline]
    for i, (t, detections) in enumerate(timeline):
        for d in detections:
            counts[d["label"]][i] += 1
            if d.get("name"):
                seen_names[d["name"]].append(t)
    bin_s = max(0.2, (times[-1] - times[0]) / 150) if times else 1.0
    for label, values in sorted(counts.items()):
        bins: dict[int, list[int]] = defaultdict(list)
        for t, v in zip(times, values, strict=True):
            bins[int((t - times[0]) // bin_s)].append(v)
        xs = [times[0] + b * bin_s for b in sorted(bins)]
        ax.step(xs, [sum(bins[b]) / len(bins[b]) for b in sorted(bins)], where="post",
                label=f"{label}s in view", color=LABEL_COLOURS.get(label))
    top = max((max(v) for v in counts.values()), default=0) + 0.2
    for row, (name, ts) in enumerate(sorted(seen_names.items())):
        y = top + 0.3 * (row + 1)
        ax.scatter(ts, [y] * len(ts), s=4, color="tab:green")
        ax.text(ts[0], y + 0.08, name, fontsize=8, color="tab:green")
    ax.set_ylabel(f"in view (mean per {bin_s:.1f} s)")
    ax.set_ylim(bottom=0)
    if counts:
        ax.legend(loc="upper right", fontsize=8)
    lines = [f"{label}: in view in {sum(1 for v in values if v)} of {len(timeline)} frames"
             for label, values in sorted(counts.items())]
    lines += [f"recognised {name}: {min(ts):.1f}-{max(ts):.1f} s ({len(ts)} frames)"
              for name, ts in sorted(seen_names.items())]
    return lines


def _timeline_panel(ax: Any, commands: list[dict], events: list[dict], ticks: list[dict]) -> None:
    """Modes as coloured spans, commands as labelled lines (coloured by who gave them), events as red marks."""
    modes: list[tuple[float, float, str]] = []  # (from, to, mode): each span lasts until the next mode starts
    period = ticks[1]["t_s"] - ticks[0]["t_s"] if len(ticks) > 1 else 0.0
    for tick in ticks:
        if modes and modes[-1][2] == tick["mode"]:
            modes[-1] = (modes[-1][0], tick["t_s"] + period, tick["mode"])
        else:
            modes.append((tick["t_s"], tick["t_s"] + period, tick["mode"]))
    palette = {}
    for start, end, mode in modes:
        colour = palette.setdefault(mode, f"C{len(palette) % 10}")
        ax.axvspan(start, end, ymin=0.0, ymax=0.25, color=colour, alpha=0.35, lw=0,
                   label=mode if mode not in ax.get_legend_handles_labels()[1] else None)
    for c in commands:
        colour = SOURCE_COLOURS.get(c["source"], "tab:gray")
        style = "-" if c["result"] == "ok" else ":"
        ax.axvline(c["t_s"], ymin=0.3, color=colour, ls=style)
        ax.text(c["t_s"], 0.95, f" {c['command']} ({c['source']})", rotation=90, va="top", fontsize=8, color=colour)
    for h in handovers(events):
        ax.axvspan(h["t_s"], h["t_s"] + (h["waited_s"] or 0.0), ymin=0.25, ymax=1.0, color="tab:pink", alpha=0.3,
                   lw=0, label="waiting for a person" if "waiting for a person" not in
                   ax.get_legend_handles_labels()[1] else None)
    for e in events:
        if e["type"] == "said":
            continue  # what the pilot said is in the summary; as marks it would hide the events
        ax.plot(e["t_s"], 0.3, marker="v", color="tab:red")
        ax.text(e["t_s"], 0.32, f" {e['type']}", rotation=90, fontsize=7, color="tab:red", va="bottom")
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("commands")
    if modes:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8, ncol=len(palette), frameon=False)


def run_report(folder: Path, png: Path) -> list[str]:
    """Draw the report of the recording in ``folder`` to ``png``; return the summary lines."""
    plt = _pyplot()
    manifest = read_manifest(folder)
    ticks, _ = read_jsonl(folder / TICKS)
    commands, _ = read_jsonl(folder / COMMANDS)
    events, _ = read_jsonl(folder / EVENTS)
    detections, _ = read_jsonl(folder / DETECTIONS)
    kind = (manifest.get("vehicle") or {}).get("kind", "drone")
    t = [k["t_s"] for k in ticks]
    tel = [k["telemetry"] for k in ticks]
    fig = plt.figure(figsize=(12, 9), dpi=100)
    grid = fig.add_gridspec(3, 2, height_ratios=(1.3, 1, 1))
    ax_xy, ax_z = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax_det = fig.add_subplot(grid[1, :])
    ax_cmd = fig.add_subplot(grid[2, :], sharex=ax_det)
    # Top view, REP-103: x forward (up the page), y left (left on the page).
    ys, xs = [-s["y_cm"] for s in tel], [s["x_cm"] for s in tel]
    ax_xy.plot(ys, xs, color="lightgray", lw=1)
    points = ax_xy.scatter(ys, xs, c=t, s=4, cmap="viridis")
    if tel:
        ax_xy.plot(ys[0], xs[0], "go", label="start")
        ax_xy.plot(ys[-1], xs[-1], "rs", label="end")
        ax_xy.legend(fontsize=8)
    fig.colorbar(points, ax=ax_xy, label="time (s)")
    ax_xy.set_xlabel("right (cm)")
    ax_xy.set_ylabel("forward (cm)")
    ax_xy.set_aspect("equal", adjustable="datalim")
    ax_xy.set_title("trajectory (from the start, seen from above)", fontsize=10)
    if kind == "drone":
        ax_z.plot(t, [s["z_cm"] for s in tel], color="tab:blue")
        ax_z.set_ylabel("height (cm)", color="tab:blue")
    else:
        ax_z.plot(t, [math.hypot(s["vx_cm_s"], s["vy_cm_s"]) for s in tel], color="tab:blue")
        ax_z.set_ylabel("speed (cm/s)", color="tab:blue")
    ax_battery = ax_z.twinx()
    ax_battery.plot(t, [s["battery_pct"] for s in tel], color="tab:red")
    ax_battery.set_ylabel("battery (%)", color="tab:red")
    ax_z.set_xlabel("time (s)")
    ax_z.set_title("height and battery" if kind == "drone" else "speed and battery", fontsize=10)
    seen_lines = _detections_panel(ax_det, [(d["t_s"] - _start(ticks), d["detections"]) for d in detections])
    ax_det.set_title("what the camera saw", fontsize=10)
    _timeline_panel(ax_cmd, commands, events, ticks)
    name = (manifest.get("vehicle") or {}).get("name", kind)
    fig.suptitle(f"{name} run {manifest.get('created', '')}: {folder.name}")
    _save(fig, plt, png)
    return _summary(kind, t, tel, commands, events) + seen_lines + [f"report: {png}"]


def _start(ticks: list[dict]) -> float:
    """Frame times are on the clock; tick times are from the run's start."""
    return ticks[0].get("start_s", 0.0) if ticks else 0.0


def _save(fig: Any, plt: Any, png: Path) -> None:
    fig.tight_layout()
    try:
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, bbox_inches="tight")
    except OSError as exc:
        raise InputError(f"cannot write the report {png}: {exc.strerror}") from None
    finally:
        plt.close(fig)


def _summary(kind: str, t: list[float], tel: list[dict], commands: list[dict], events: list[dict]) -> list[str]:
    if not tel:
        return ["run: no ticks recorded"]
    path_cm = sum(math.dist((a["x_cm"], a["y_cm"], a["z_cm"]), (b["x_cm"], b["y_cm"], b["z_cm"]))
                  for a, b in zip(tel, tel[1:], strict=False))
    moved = "flew" if kind == "drone" else "drove"
    lines = [f"run: {t[-1]:.1f} s, {len(t)} ticks; {moved} {path_cm / 100:.1f} m"
             + (f", highest {max(s['z_cm'] for s in tel):.0f} cm" if kind == "drone" else "")
             + f", battery {tel[0]['battery_pct']:.0f}% -> {tel[-1]['battery_pct']:.0f}%"]
    if commands:
        lines.append("commands: " + "; ".join(f"{c['t_s']:.1f} s {c['command']} ({c['source']}) {c['result']}"
                                              for c in commands))
    if events:
        lines.append("events: " + "; ".join(f"{e['t_s']:.1f} s {e['type']}" for e in events if e["type"] != "said"))
    said = [f"{e['t_s']:.1f} s \"{e['detail']}\"" for e in events if e["type"] == "said"]
    if said:
        lines.append("said: " + "; ".join(said))
    for h in handovers(events):
        outcome = (f"taken over by {h['by']} after {h['waited_s']:.1f} s" if h["by"] else
                   f"nobody took over in {h['waited_s']:.1f} s: {h['then']}" if h["waited_s"] is not None else
                   "still waiting when the run ended")
        lines.append(f"hand-over at {h['t_s']:.1f} s ({h['why']}): {outcome}")
    return lines


def handovers(events: list[dict]) -> list[dict]:
    """Each hand-over of a run (pilot/core/handover.py) with why, who took over and how long the person took
    (``waited_s``; ``by`` None when nobody came and the pilot landed / stopped)."""
    out: list[dict] = []
    for e in events:
        if e["type"] == "handover":
            out.append({"t_s": e["t_s"], "why": e["detail"].split(":")[0], "by": None, "waited_s": None, "then": None})
        elif e["type"] in ("taken_over", "handover_timeout") and out and out[-1]["waited_s"] is None:
            out[-1]["waited_s"] = round(e["t_s"] - out[-1]["t_s"], 3)
            if e["type"] == "taken_over":
                out[-1]["by"] = e["detail"].split(" ")[0]
            else:
                out[-1]["then"] = e["detail"].rsplit(": ", 1)[-1]
    return out


def video_report(png: Path, timeline: Iterable[tuple[float, list]], title: str) -> list[str]:
    """The report of a plain video: what was seen, and whom, over time."""
    plt = _pyplot()
    rows = [(t, [d if isinstance(d, dict) else {"label": d.label, "name": d.name} for d in dets])
            for t, dets in timeline]
    fig, ax = plt.subplots(figsize=(12, 4), dpi=100)
    lines = _detections_panel(ax, rows)
    ax.set_xlabel("time (s)")
    ax.set_title(f"detections over time: {title}", fontsize=10)
    _save(fig, plt, png)
    return lines + [f"report: {png}"]
