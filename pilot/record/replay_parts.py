"""The stand-ins a replay runs the pilot with (see :mod:`edgepilot.pilot.record.replay`).

The recorded frames (lossless) go through a perception pipeline built from the recorded configuration; a clock
steps to the recorded tick times; a replay vehicle answers what the real one answered (telemetry, ``busy()``,
refusals, events) and the perception slot returns, read for read, the frame the live pilot got. Voice and
keyboard commands are put in the inbox before the tick that took them. A checking tap then compares, tick by
tick, the set-point the pilot sends and its mode, and, in order, every command and its result.

Exact for simulations on a fake clock. For real-time runs exact too, except keyboard velocity pulses (replayed on the
tick after the key press; a press during the millisecond a tick takes may land one tick off).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgepilot.pilot.core import errors
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.messages import Command, Event, Frame, Seen, Telemetry, Velocity
from edgepilot.pilot.core.runner import LatestValue, Pilot

log = logging.getLogger(__name__)

OnFrame = Callable[[Frame, list], None]


class EndOfRecording(Exception):
    """The recording has nothing more to feed (it was cut short): the replay stops after the last full tick."""


class FrameFeed:
    """Recorded frames in order through a fresh perception pipeline; the Seen of each frame number."""

    def __init__(self, records: list[dict], images: Iterator[np.ndarray] | None, perception: Any,
                 on_frame: OnFrame | None = None) -> None:
        self.records, self.images, self.perception, self.on_frame = records, images, perception, on_frame
        self.seen: dict[int, Seen] = {}
        self.processed = 0
        #: Frames whose replayed detections differ from the recorded ones (perception changed, or lossy video).
        self.detection_mismatches = 0
        self._next = 0

    def upto(self, number: int) -> None:
        while self._next <= number:
            n = self._next
            if n >= len(self.records):
                raise EndOfRecording(f"frame {n} is not in detections.jsonl")
            record = self.records[n]
            if record["video"] is None:
                raise EndOfRecording(f"frame {n} is missing from the video (the recorder could not keep up)")
            if self.images is None:
                raise EndOfRecording("the recording has no video file")
            try:
                image = next(self.images, None)
            except InputError as exc:
                raise EndOfRecording(str(exc)) from None
            if image is None:
                raise EndOfRecording(f"the video ends before frame {n}")
            frame = Frame(image, record["t_s"], record["camera_index"] or 0, record["source"] or "")
            detections = list(self.perception.process(frame)) if self.perception is not None else []
            if [d.to_json() for d in detections] != record["detections"]:
                self.detection_mismatches += 1
            self.seen[n] = Seen(record["t_s"], record["width"], record["height"], tuple(detections), frame)
            self.seen.pop(n - 16, None)  # reads only go forward: old frames are done with
            self.processed += 1
            self._next += 1
            if self.on_frame is not None:
                self.on_frame(frame, detections)


class Cursor:
    """Which recorded tick the replay is in. Moving to a tick prepares it: frames it reads, commands it takes."""

    def __init__(self, ticks: list[dict], frames: FrameFeed) -> None:
        self.ticks, self.frames = ticks, frames
        self.index = -1
        self.pilot: Pilot | None = None
        #: Ticks the pilot finished (tap called). The recording files what the vehicle and the perception slot
        #: answered between two taps under the later tick, so answers are looked up by this, not by ``index``.
        self.segment = 0
        self.diverged = 0  # reads / calls beyond what the live run made: the pilot already decided differently
        self._keys_later: list[list] = []
        self._counted = -1
        self._counts: dict[str, int] = {}

    def count(self, name: str) -> int:
        """How many times ``name`` was asked before in this segment."""
        if self._counted != self.segment:
            self._counted, self._counts = self.segment, {}
        i = self._counts.get(name, 0)
        self._counts[name] = i + 1
        return i

    def answer(self, name: str) -> tuple[bool, Any]:
        """The live run's answer to this call: ``seen`` (which frame a read returned) or a vehicle method's. Not
        known after the last recorded tick, or when the replayed pilot asks more than the live one did."""
        i = self.count(name)
        if self.segment >= len(self.ticks):
            return False, None
        tick = self.ticks[self.segment]
        answers = tick["seen"] if name == "seen" else tick.get("vehicle", {}).get(name, [])
        if i >= len(answers):
            self.diverged += 1
            log.debug("tick %d: the replay asks %s a %d-th time, the live run did not", self.segment, name, i + 1)
            return False, None
        return True, answers[i]

    @property
    def tick(self) -> dict:
        return self.ticks[min(max(self.index, 0), len(self.ticks) - 1)]

    def now_s(self, start_s: float) -> float:
        return start_s + self.tick["t_s"]

    def advance(self, start_s: float) -> None:
        self.index += 1
        if self.index >= len(self.ticks):
            return
        tick = self.tick
        numbers = [n for n in tick["seen"] if n is not None]
        if numbers:
            self.frames.upto(max(numbers))
        pilot = self.pilot
        assert pilot is not None
        for c in tick.get("inputs", ()):
            pilot.submit(Command(c["verb"], c["arg"], c["source"]))
        now = self.now_s(start_s)
        keys, self._keys_later = self._keys_later, []
        for key in tick.get("keys", ()):
            (keys if key[0] <= now else self._keys_later).append(key)  # pressed during the tick: the next one
        for pressed_s, velocity, pulse_s in keys:
            pilot.manual_velocity(Velocity(*velocity), pulse_s + pressed_s - now)


class ReplayClock:
    """Steps through the recorded tick times: the first reading is the run's start, each sleep the next tick."""

    def __init__(self, start_s: float, cursor: Cursor, period_s: float) -> None:
        self.start_s, self.cursor, self.period_s = start_s, cursor, period_s
        self._started = False

    def now(self) -> float:
        if not self._started:  # Pilot.run reads its start time first, then the loop starts ticking
            self._started = True
            self.cursor.advance(self.start_s)
            return self.start_s
        cursor = self.cursor
        beyond = max(0, cursor.index - len(cursor.ticks) + 1)
        return cursor.now_s(self.start_s) + beyond * self.period_s

    def sleep(self, seconds: float) -> None:
        self.cursor.advance(self.start_s)


class ReplayVehicle:
    """Answers as the live vehicle did, tick by tick; what the pilot sends is checked by the tap, not here."""

    def __init__(self, kind: str, cursor: Cursor) -> None:
        self.kind = kind
        self.cursor = cursor
        self._busy = False

    def telemetry(self) -> Telemetry:
        return Telemetry(**self.cursor.tick["telemetry"])

    def busy(self) -> bool:
        known, answer = self.cursor.answer("busy")
        if known:  # else the live pilot did not ask (or its question was not seen): assume nothing changed
            self._busy = bool(answer)
        return self._busy

    def _refusal(self, name: str) -> None:
        known, error = self.cursor.answer(name)
        if known and error is not None:
            raise getattr(errors, error[0], errors.VehicleError)(error[1])

    def execute(self, command: Command) -> None:
        self._refusal("execute")

    def send_velocity(self, velocity: Velocity) -> None:
        self._refusal("send")

    def poll_events(self) -> list[Event]:
        cursor = self.cursor
        if cursor.count("poll") > 0 or cursor.segment >= len(cursor.ticks):
            return []
        return [Event(e["t_s"], e["type"], e["detail"]) for e in cursor.ticks[cursor.segment].get("vehicle", {}).get(
            "events", [])]

    def close(self) -> None:
        pass


class ReplaySlot(LatestValue):
    """The perception slot: each read returns the frame the live pilot's read returned."""

    def __init__(self, cursor: Cursor) -> None:
        super().__init__()
        self.cursor = cursor
        self._last: int | None = None

    def set(self, value: Seen | None) -> None:
        pass  # replay decides what each read returns

    def get(self) -> Seen | None:
        known, number = self.cursor.answer("seen")
        if known:
            self._last = number
        return None if self._last is None else self.cursor.frames.seen.get(self._last)
