"""Run folders as data: what ran (vehicle, verb, models, code) and how well it went (metrics), read from the files
alone, for ``edgepilot runs list``, ``runs compare`` and the exporters.

    run = load_run("runs/today")
    run.metrics["tracking_centred_fraction"], run.digest

Every metric is computed from the recording, so it means the same for a live run, a replay and a run recorded by an
older edgepilot of the same format:

- ``tracking_centred_fraction``: of the ticks spent following with a camera frame in which the target is seen
  (the named person, else the largest face, else the largest person, as the follow behaviour picks it), the fraction
  whose target's centre is within 15% of the image width of the centre (the demo's measure).
- ``stops``: times a car stopped for something in its path (its mode became ``blocked``).
- ``handovers``: times control changed hands: the keyboard took over from the autopilot (``manual_override``), or an
  event called ``handover`` / ``hand_over...``.
- ``command_latency_s``: per command the vehicle executed, from the pilot sending it to the vehicle no longer being
  busy with it (a Tello's ``ok``); ``median`` and ``max``.
- ``loop_period_p99_ms``, ``loop_jitter_ms``: the 99th percentile of the tick period and the standard deviation of
  its difference from ``1 / hz`` (zero on a simulated clock).
- ``battery_used_pct``: first minus last battery reading.

``digest`` is a sha256 of the run's decisions (tick times, set-points rounded to 1e-6, modes, and every command with
its source and result): two runs with the same digest decided the same thing at the same time.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.files import COMMANDS, DETECTIONS, EVENTS, FORMAT, MANIFEST, TICKS, read_jsonl

#: A target this close to the image centre (fraction of the width) counts as centred, as in the demo.
CENTRED_FRACTION = 0.15
#: Set-points are compared to this many decimals (cm/s, deg/s): far below anything physical.
DIGEST_DECIMALS = 6


@dataclass
class Run:
    """One run folder, read. ``problem`` says why it could not be read (then only ``folder`` is meaningful)."""

    folder: Path
    manifest: dict = field(default_factory=dict)
    ticks: list[dict] = field(default_factory=list)
    commands: list[dict] = field(default_factory=list)
    detections: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    cut: bool = False
    problem: str | None = None

    @property
    def format(self) -> str:
        """The recording format, as ``runs list`` shows it: ``1``, ``2 (newer)``, or ``?``."""
        value = self.manifest.get("format")
        if not isinstance(value, int):
            return "?"
        return f"{value} (newer)" if value > FORMAT else str(value)

    @property
    def status(self) -> str:
        if self.problem is not None:
            return "unreadable"
        if self.manifest.get("status") == "complete" and not self.cut:
            return "complete"
        return "cut short"

    @property
    def vehicle(self) -> str:
        return (self.manifest.get("vehicle") or {}).get("name", "?")

    @property
    def kind(self) -> str:
        return (self.manifest.get("vehicle") or {}).get("kind", "?")

    @property
    def verb(self) -> str:
        """The verb that made the run: ``fly``, ``drive``, ``demo`` or ``replay`` (of another run)."""
        if self.manifest.get("replay_of"):
            return "replay"
        return (self.manifest.get("config") or {}).get("verb") or _verb_from_argv(self.manifest.get("argv") or [])

    @property
    def duration_s(self) -> float:
        return float(self.ticks[-1]["t_s"]) if self.ticks else 0.0

    @property
    def models(self) -> dict[str, str | None]:
        """Model file name -> sha256."""
        return {m["name"]: m.get("sha256") for m in self.manifest.get("models") or []}

    @property
    def code(self) -> str:
        """edgepilot's version and the git revision (``+dirty`` for local changes) the run was made with."""
        git = self.manifest.get("git") or {}
        revision = (git.get("revision") or "")[:10]
        return f"{self.manifest.get('edgepilot', '?')}" + (f" {revision}" if revision else "") + \
            ("+dirty" if git.get("dirty") else "")

    @property
    def metrics(self) -> dict[str, Any]:
        return run_metrics(self)

    @property
    def digest(self) -> str:
        return decisions_digest(self.ticks, self.commands)


def _verb_from_argv(argv: list[str]) -> str:
    return next((a for a in argv[1:] if a in ("fly", "drive", "demo", "replay")), "?")


def load_run(folder: str | Path, strict: bool = True) -> Run:
    """Read a run folder. ``strict``: a folder that is not a readable recording is an :class:`InputError`;
    otherwise it comes back with ``problem`` set (for listing a folder of runs, some of them broken)."""
    folder = Path(folder).expanduser()
    run = Run(folder)
    try:
        run.manifest = _manifest(folder)
        if not isinstance(run.manifest["format"], int) or run.manifest["format"] > FORMAT:
            raise InputError(f"{folder} was recorded by a newer edgepilot (format {run.manifest['format']}, this "
                             f"one reads up to {FORMAT}); upgrade edgepilot to read it")
        run.ticks, run.cut = read_jsonl(folder / TICKS)
        run.commands, _ = read_jsonl(folder / COMMANDS)
        run.detections, _ = read_jsonl(folder / DETECTIONS)
        run.events, _ = read_jsonl(folder / EVENTS)
    except InputError as exc:
        if strict:
            raise
        run.problem = str(exc)
    return run


def _manifest(folder: Path) -> dict:
    """The manifest, of any format."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder: give a run folder made by --record")
    if not path.is_file():
        raise InputError(f"{folder} is not a recording: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is corrupt ({exc})") from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise InputError(f"{path} is not an edgepilot recording manifest")
    return manifest


def find_runs(root: str | Path) -> list[Path]:
    """``root`` itself if it is a run folder, else the run folders in it and one level below, sorted by name."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    if (root / MANIFEST).is_file():
        return [root]
    found = [p.parent for p in root.glob(f"*/{MANIFEST}")] + [p.parent for p in root.glob(f"*/*/{MANIFEST}")]
    return sorted(set(found))


# -- metrics --------------------------------------------------------------------------------------------------------
def run_metrics(run: Run) -> dict[str, Any]:
    ticks = run.ticks
    battery = [t["telemetry"]["battery_pct"] for t in ticks]
    return {
        "ticks": len(ticks),
        "duration_s": round(run.duration_s, 3),
        "commands": len(run.commands),
        "commands_refused": sum(1 for c in run.commands if c["result"] != "ok"),
        "frames": len(run.detections),
        "tracking_centred_fraction": _centred_fraction(run),
        "stops": _mode_entries(ticks, "blocked"),
        "handovers": sum(1 for e in run.events if e["type"] == "manual_override"
                         or e["type"].replace("-", "_").startswith(("handover", "hand_over"))),
        "events": len(run.events),
        "command_latency_s": _command_latencies(run),
        **_loop(run),
        "battery_used_pct": round(battery[0] - battery[-1], 2) if battery else None,
        "distance_m": round(_distance_cm(ticks) / 100.0, 2),
    }


def _centred_fraction(run: Run) -> float | None:
    offsets = target_offsets(run)
    if not offsets:
        return None
    return round(sum(1 for _, off in offsets if abs(off) <= CENTRED_FRACTION) / len(offsets), 3)


def target_offsets(run: Run) -> list[tuple[float, float]]:
    """(tick time, horizontal offset of the followed target from the image centre as a fraction of the width) for
    each tick spent following with the target in the frame the behaviour decided on."""
    by_frame = {d["frame"]: d for d in run.detections}
    name = _followed_name(run)
    offsets = []
    for tick in run.ticks:
        if tick["mode"] != "following" or not tick.get("seen"):
            continue
        number = tick["seen"][-1]  # the frame the behaviour decided on (the last read of the tick)
        record = by_frame.get(number) if number is not None else None
        target = _target(record["detections"], name) if record else None
        if target is not None:
            x1, _, x2, _ = target["box"]
            offsets.append((tick["t_s"], ((x1 + x2) / 2.0 - record["width"] / 2.0) / record["width"]))
    return offsets


def _followed_name(run: Run) -> str | None:
    for c in reversed(run.commands):
        if c["command"].startswith("follow ") and c["result"] == "ok":
            name = c["command"][len("follow "):].strip()
            return None if name.lower() == "me" else name.lower()
    return None


def _target(detections: list[dict], name: str | None) -> dict | None:
    """What the follow behaviour follows: the named person, else the largest face, else the largest person."""
    def area(d: dict) -> float:
        x1, y1, x2, y2 = d["box"]
        return (x2 - x1) * (y2 - y1)

    if name is not None:
        named = [d for d in detections if (d.get("name") or "").lower() == name]
        return max(named, key=area) if named else None
    for label in ("face", "person"):
        candidates = [d for d in detections if d["label"] == label]
        if candidates:
            return max(candidates, key=area)
    return None


def _mode_entries(ticks: list[dict], mode: str) -> int:
    return sum(1 for a, b in zip([None, *ticks], ticks, strict=False) if b["mode"] == mode
               and (a is None or a["mode"] != mode))


def _command_latencies(run: Run) -> dict[str, float | None]:
    """From each ``execute`` the vehicle accepted to the first ``busy()`` that answered False after it."""
    latencies: list[float] = []
    sent_at: float | None = None
    for tick in run.ticks:
        vehicle = tick.get("vehicle") or {}
        if sent_at is not None and False in vehicle.get("busy", ()):
            latencies.append(tick["t_s"] - sent_at)
            sent_at = None
        if any(result is None for result in vehicle.get("execute", ())):
            sent_at = tick["t_s"]
            if vehicle.get("busy", [True])[-1] is False:  # done within the tick it was sent
                latencies.append(0.0)
                sent_at = None
    return {"count": len(latencies),
            "median": round(statistics.median(latencies), 3) if latencies else None,
            "max": round(max(latencies), 3) if latencies else None}


def _loop(run: Run) -> dict[str, float | None]:
    hz = (run.manifest.get("pilot") or {}).get("hz")
    periods = [b["t_s"] - a["t_s"] for a, b in zip(run.ticks, run.ticks[1:], strict=False)]
    if not periods or not hz:
        return {"loop_period_p99_ms": None, "loop_jitter_ms": None}
    ordered = sorted(periods)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    jitter = math.sqrt(sum((p - 1.0 / hz) ** 2 for p in periods) / len(periods))
    return {"loop_period_p99_ms": round(p99 * 1000.0, 2), "loop_jitter_ms": round(jitter * 1000.0, 3)}


def _distance_cm(ticks: list[dict]) -> float:
    points = [(t["telemetry"]["x_cm"], t["telemetry"]["y_cm"], t["telemetry"]["z_cm"]) for t in ticks]
    return sum(math.dist(a, b) for a, b in zip(points, points[1:], strict=False))


def decisions_digest(ticks: list[dict], commands: list[dict]) -> str:
    digest = hashlib.sha256()
    for t in ticks:
        sent = None if t["sent"] is None else [round(v, DIGEST_DECIMALS) + 0.0 for v in t["sent"]]
        digest.update(json.dumps([round(t["t_s"], 9), sent, t["mode"]]).encode())
    for c in commands:
        digest.update(json.dumps([round(c["t_s"], 9), c["command"], c["source"], c["result"]]).encode())
    return digest.hexdigest()


def model_card(path: str | None, sha256: str | None) -> str | None:
    """What a model's card says about it: ``NAME.md`` beside the model (its first line of text), else the row of the
    ``MODELS.md`` beside it that names this sha256 (edgepilot's bundled models are described there)."""
    if not path:
        return None
    model = Path(path)
    own = model.with_suffix(".md")
    for candidate, match in ((own, None), (model.parent / "MODELS.md", sha256)):
        if not candidate.is_file():
            continue
        try:
            lines = candidate.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            text = line.strip().lstrip("#").strip()
            if text and (match is None or match in line):
                cells = [c.replace("`", "").strip() for c in text.strip("|").split("|")]
                return " | ".join(c for c in cells if c and c != match)[:300]
    return None
