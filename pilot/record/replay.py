"""``edgepilot replay RUN_DIR``: run a recording through the same perception and pilot code and check that it
decides what the live run decided: the regression test for the autopilot.

    result = replay_recording("runs/today")
    result.decisions_match, result.first_mismatch

The recorded frames (lossless) go through a perception pipeline built from the recorded configuration; the pilot is
rebuilt from the manifest (rate, safety limits, follow gains, the car's lane behaviour, the script) and runs against
the stand-ins of :mod:`edgepilot.pilot.record.replay_parts` (recorded clock, vehicle answers, perception reads, inbox commands). A
checking tap compares, tick by tick, the set-point sent and the mode, and, in order, every command with its source
and result. A recording cut short (a killed process) replays up to its last complete tick and says so.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepilot.pilot.core import registry
from edgepilot.pilot.core.behaviours import FollowConfig
from edgepilot.pilot.core.config import from_dict
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.handover import HandOver
from edgepilot.pilot.core.messages import Command, Seen, Telemetry, Velocity
from edgepilot.pilot.core.runner import CommandRecord, Mode, Pilot
from edgepilot.pilot.core.safety import SafetyConfig, Supervisor
from edgepilot.pilot.record.files import (
    COMMANDS,
    DETECTIONS,
    LOSSLESS_VIDEO,
    MANIFEST,
    TICKS,
    VIEWING_VIDEO,
    read_jsonl,
    read_manifest,
    write_json_atomic,
)
from edgepilot.pilot.record.recorder import velocity_list
from edgepilot.pilot.record.replay_parts import (
    Cursor,
    EndOfRecording,
    FrameFeed,
    OnFrame,
    ReplayClock,
    ReplaySlot,
    ReplayVehicle,
)
from edgepilot.pilot.record.spec import faces_fingerprint, fingerprint, software
from edgepilot.pilot.record.video import read_frames

log = logging.getLogger(__name__)

#: Set-points closer than this (cm/s, deg/s) are the same decision: far below anything physical, far above rounding.
TOLERANCE = 1e-6


@dataclass
class ReplayResult:
    frames: int = 0
    decisions: int = 0
    decisions_match: bool = True
    first_mismatch: dict | None = None
    ticks: int = 0
    recorded_ticks: int = 0
    truncated: bool = False
    detection_mismatches: int = 0
    video: str | None = None  # "lossless", "lossy" or None (the run had no camera)
    notes: list[str] = field(default_factory=list)

    def mismatch(self, what: dict) -> None:
        self.decisions_match = False
        if self.first_mismatch is None:
            self.first_mismatch = what

    def as_dict(self) -> dict:
        return {"frames": self.frames, "decisions": self.decisions, "decisions_match": self.decisions_match,
                "first_mismatch": self.first_mismatch, "ticks": self.ticks, "recorded_ticks": self.recorded_ticks,
                "truncated": self.truncated, "detections_match": self.detection_mismatches == 0,
                "detection_mismatches": self.detection_mismatches, "video": self.video, "notes": self.notes}


def _same_velocity(a: list[float] | None, b: list[float] | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(abs(x - y) <= TOLERANCE or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


class _Checker:
    """A RunTap comparing the replayed pilot's decisions with the recorded ones."""

    def __init__(self, ticks: list[dict], commands: list[dict], result: ReplayResult, cursor: Cursor) -> None:
        self.ticks, self.commands, self.result, self.cursor = ticks, commands, result, cursor
        self.ticks_done = 0
        self.commands_done = 0

    def on_tick(self, t_s: float, telemetry: Telemetry, seen: Seen | None, velocity: Velocity | None,
                mode: Mode) -> None:
        i, result = self.ticks_done, self.result
        self.ticks_done += 1
        self.cursor.segment += 1
        if i >= len(self.ticks):
            result.mismatch({"tick": i, "t_s": t_s, "what": "end", "recorded": "run ended", "replayed": "ran on"})
            return
        record = self.ticks[i]
        sent = velocity_list(velocity)
        if sent is not None or record["sent"] is not None:
            result.decisions += 1
        where = {"tick": i, "t_s": record["t_s"]}
        if t_s != record["t_s"]:
            result.mismatch({**where, "what": "clock", "recorded": record["t_s"], "replayed": t_s})
        if not _same_velocity(sent, record["sent"]):
            result.mismatch({**where, "what": "velocity", "recorded": record["sent"], "replayed": sent})
        if mode.value != record["mode"]:
            result.mismatch({**where, "what": "mode", "recorded": record["mode"], "replayed": mode.value})

    def on_command(self, record: CommandRecord) -> None:
        j = self.commands_done
        self.commands_done += 1
        got = {"t_s": record.t_s, "command": record.command, "source": record.source, "result": record.result}
        expected = self.commands[j] if j < len(self.commands) else None
        if got != expected:
            self.result.mismatch({"command": j, "t_s": record.t_s, "what": "command", "recorded": expected,
                                  "replayed": got})

    def on_event(self, event: Any) -> None:
        pass  # events follow from decisions; the decisions are what is compared


def _video(folder: Path, result: ReplayResult):
    for name, kind in ((LOSSLESS_VIDEO, "lossless"), (VIEWING_VIDEO, "lossy")):
        if (folder / name).is_file():
            result.video = kind
            if kind == "lossy":
                result.notes.append(f"no {LOSSLESS_VIDEO}: perception re-runs on H.264 frames, which differ from "
                                    "what the live run saw; decisions may differ")
            return read_frames(folder / name)
    return None


def _notes(manifest: dict, perception: Any, result: ReplayResult) -> None:
    """Differences between the recording's software and models and today's, which can explain mismatches."""
    now = software()
    then_rev = (manifest.get("git") or {}).get("revision")
    now_rev = (now.get("git") or {}).get("revision")
    if manifest.get("edgepilot") != now["edgepilot"] or (then_rev and now_rev and then_rev != now_rev):
        result.notes.append(f"recorded with edgepilot {manifest.get('edgepilot')} ({(then_rev or '?')[:10]}), "
                            f"replayed with {now['edgepilot']} ({(now_rev or '?')[:10]})")
    if perception is not None:
        recorded = {m["name"]: m["sha256"] for m in manifest.get("models", [])}
        for model in fingerprint(perception.model_files()):
            if recorded.get(model["name"]) != model["sha256"]:
                result.notes.append(f"model {model['name']} differs from the one recorded")
        if faces_fingerprint(perception.faces_dir) != manifest.get("faces"):
            result.notes.append("the face database changed since the recording: names may differ")


def replay_recording(folder: str | Path, on_frame: OnFrame | None = None, record: str | Path | None = None,
                     argv: list[str] | None = None, watch: Callable[[Pilot], None] | None = None) -> ReplayResult:
    """Replay the run folder ``folder``; :class:`InputError` when it is not a replayable recording. ``record``: also
    record the replayed run into this new folder (a run folder like any other, whose manifest says ``replay_of``),
    to compare it with the original or with another replay (``edgepilot runs compare``). ``watch(pilot)``, if given,
    is called before the replayed run starts (to add a tap that shows it: the web cockpit)."""
    folder = Path(folder).expanduser()
    manifest = read_manifest(folder)
    ticks, ticks_cut = read_jsonl(folder / TICKS)
    commands, _ = read_jsonl(folder / COMMANDS)
    detections, _ = read_jsonl(folder / DETECTIONS)
    spec = manifest.get("pilot")
    if spec is None or not ticks:
        raise InputError(f"{folder}: the recording was cut before the run's first tick; nothing to replay")
    complete = manifest.get("status") == "complete" and not ticks_cut
    result = ReplayResult(recorded_ticks=len(ticks), truncated=not complete)
    if not complete:
        result.notes.append(f"the recording was cut short (the process was killed?): {len(ticks)} ticks recorded")
    if ticks[0].get("start_exact") is False:
        result.notes.append("the run's start time was estimated: times within a tick may differ slightly")
    # Recordings of format 1 stored the perception's configuration untagged: it was always the vision pipeline.
    perception = registry.rebuild(manifest.get("perception"), default_type="perception")
    _notes(manifest, perception, result)
    feed = FrameFeed(detections, _video(folder, result), perception, on_frame)
    cursor = Cursor(ticks, feed)
    checker = _Checker(ticks, commands, result, cursor)
    kind, hz = spec["kind"], spec["hz"]
    clock = ReplayClock(ticks[0].get("start_s", 0.0), cursor, 1.0 / hz)
    follow = None if spec.get("follow_config") is None else from_dict(FollowConfig, spec["follow_config"])
    max_ticks = len(ticks) if spec.get("max_ticks") is None else min(len(ticks), spec["max_ticks"])
    recorder = None
    if record is not None:
        from edgepilot.pilot.record.recorder import Recorder

        recorder = Recorder(record, argv=argv or [], config=manifest.get("config"), seeds=manifest.get("seeds"),
                            video=result.video is not None, complete=True)
        recorder.manifest["replay_of"] = {"folder": str(folder), "created": manifest.get("created")}
    with tempfile.TemporaryDirectory(prefix="edgepilot-replay-") as photos:  # photos taken in replay go nowhere
        pilot = Pilot(ReplayVehicle(kind, cursor), name=spec["name"], clock=clock, hz=hz,
                      supervisor=Supervisor(kind, from_dict(SafetyConfig, spec["safety"])), max_ticks=max_ticks,
                      max_duration_s=spec["max_duration_s"], perceive=(lambda now: None) if spec["perceive"] else None,
                      follow_config=follow, behaviour=registry.rebuild(spec.get("behaviour")), out_dir=Path(photos),
                      tap=checker, can_see=spec.get("can_see"), names=spec.get("names"),
                      autopilots={mode: (lambda part=part: registry.rebuild(part))
                                  for mode, part in (spec.get("autopilots") or {}).items()})
        if spec.get("handover_timeout_s") is not None:
            pilot.handover = HandOver(spec["handover_timeout_s"])
        pilot.seen = ReplaySlot(cursor)
        cursor.pilot = pilot
        if watch is not None:
            watch(pilot)
        script = [Command(c["verb"], c["arg"], c["source"]) for c in spec.get("script", [])]
        if recorder is not None:
            recorder.attach(pilot, script=script, perception=perception)
        try:
            pilot.run(script, stay_alive=lambda: cursor.index < len(ticks) - 1)
        except EndOfRecording as exc:
            result.truncated = True
            result.notes.append(f"replay stopped after tick {checker.ticks_done}: {exc}")
        finally:
            if recorder is not None:
                recorder.close()
    result.ticks = checker.ticks_done
    result.frames = feed.processed
    result.detection_mismatches = feed.detection_mismatches
    last_t = ticks[result.ticks - 1]["t_s"] if result.ticks else -math.inf
    in_range = [c for c in commands if c["t_s"] <= last_t]
    result.decisions += max(len(in_range), checker.commands_done)
    if checker.commands_done < len(in_range):
        missing = in_range[checker.commands_done]
        result.mismatch({"command": checker.commands_done, "t_s": missing["t_s"], "what": "command",
                         "recorded": missing, "replayed": None})
    if not result.truncated and result.ticks < max_ticks:
        result.mismatch({"tick": result.ticks, "t_s": ticks[result.ticks]["t_s"], "what": "end",
                         "recorded": "ran on", "replayed": "run ended"})
    if spec.get("attached") == "during the first tick":
        result.notes.append("the recorder joined during the first tick (the scenario builds its own pilot): the "
                            "vehicle's answers before it joined are inferred")
    elif cursor.diverged and result.decisions_match:
        result.notes.append(f"the replayed pilot asked the vehicle or perception {cursor.diverged} more time(s) "
                            "than the live one")
    if recorder is not None:
        recorder.manifest["replay_of"].update(result.as_dict())
        write_json_atomic(recorder.folder / MANIFEST, recorder.manifest)
    return result
