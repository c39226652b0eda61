"""The flight recorder: ``--record DIR`` on ``fly``, ``drive`` and ``demo``.

    recorder = Recorder("runs/today", argv=sys.argv, config=vars(args), seeds={"world": 0})
    pilot = Pilot(vehicle, ...)
    recorder.attach(pilot, script=script, perception=detect)   # before anything holds pilot.seen.set
    ... pilot.run(script) ...
    recorder.close()

The recorder is a :class:`edgepilot.pilot.core.runner.RunTap` (it sees every tick's outcome, every command and event) and, to make
a run replayable exactly, it also watches the pilot's inputs where the pilot takes them: :meth:`attach` puts
recording stand-ins in front of the vehicle (what it answered: ``busy()``, refusals, events), the perception slot
(every frame published, and which one each read returned), the command inbox (which tick took each voice / keyboard
command) and the keyboard's velocity pulses. Everything goes through queues to writer threads; the loop's cost per
tick is building a few small dicts. See :mod:`edgepilot.pilot.record.files` for the folder's files.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgepilot.pilot.core import registry
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.config import jsonable, to_dict
from edgepilot.pilot.core.errors import EdgepilotError, InputError
from edgepilot.pilot.core.messages import Command, Event, Seen, Telemetry, Velocity
from edgepilot.pilot.core.runner import CommandRecord, LatestValue, Mode, Pilot
from edgepilot.pilot.record.files import (
    COMMANDS,
    DETECTIONS,
    EVENTS,
    FORMAT,
    LOSSLESS_VIDEO,
    MANIFEST,
    TICKS,
    VIEWING_VIDEO,
    JsonlWriter,
    write_json_atomic,
)
from edgepilot.pilot.record.spec import faces_fingerprint, fingerprint, software
from edgepilot.pilot.record.video import VideoRecorder

log = logging.getLogger(__name__)

TELEMETRY_FIELDS = tuple(f.name for f in dataclasses.fields(Telemetry))


def velocity_list(velocity: Velocity | None) -> list[float] | None:
    if velocity is None:
        return None
    return [velocity.vx_cm_s, velocity.vy_cm_s, velocity.vz_cm_s, velocity.yaw_rate_deg_s]


def command_dict(command: Command) -> dict:
    return {"verb": command.verb, "arg": command.arg, "source": command.source}


class Recorder:
    """Writes a run folder. Create it before the run, :meth:`attach` it to the pilot, :meth:`close` it after."""

    def __init__(self, folder: str | Path, *, argv: Iterable[str] = (), config: dict | None = None,
                 seeds: dict | None = None, video: bool = True, complete: bool | None = None) -> None:
        """``complete``: never drop a frame or a record, waiting for the disk instead (default: when the run's clock
        is simulated, as on ``--fast`` or in a replay, where nothing is real time)."""
        folder = Path(folder).expanduser()
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise InputError(f"{folder} already exists and is not empty: give a new folder for the recording")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the recording folder {folder}: {exc.strerror}") from None
        self.folder = folder
        self.manifest: dict[str, Any] = {
            "format": FORMAT, **software(), "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": list(argv), "config": jsonable(config or {}), "seeds": jsonable(seeds or {}),
            "status": "recording",
            "files": {"ticks": TICKS, "commands": COMMANDS, "detections": DETECTIONS, "events": EVENTS,
                      "lossless_video": LOSSLESS_VIDEO if video else None,
                      "viewing_video": VIEWING_VIDEO if video else None},
        }
        try:
            write_json_atomic(folder / MANIFEST, self.manifest)
            self._jsonl = JsonlWriter(folder)
        except OSError as exc:
            raise InputError(f"cannot write the recording in {folder}: {exc.strerror}") from None
        self._video = VideoRecorder(folder) if video else None
        self._lock = threading.Lock()  # frames arrive from the perception thread, key pulses from the keyboard's
        self._pilot: Pilot | None = None
        self._ticks = 0
        self._frames = 0
        self._recent: deque[tuple[Seen, int]] = deque(maxlen=8)  # (seen, frame number) of the latest frames
        self._tick_seen: list[int | None] = []
        self._tick_inputs: list[dict] = []
        self._tick_keys: list[list] = []
        self._tick_vehicle: dict[str, list] = {}
        self._started_wall = time.monotonic()
        self._closed = False
        self._complete = complete

    # -- wiring ---------------------------------------------------------------------------------------------------
    def attach(self, pilot: Pilot, *, script: Iterable[Command] = (), perception: Any = None) -> None:
        """Record ``pilot``'s run. Call it before the run starts and before anything takes a reference to
        ``edgepilot.pilot.seen.set``, ``edgepilot.pilot.submit``'s inbox or ``edgepilot.pilot.manual_velocity`` (the perception worker, the
        keyboard). ``perception`` is the Perception (or its ``process`` method) the run uses, if any."""
        if self._pilot is not None:
            raise RuntimeError("this recorder is already attached to a pilot")
        self._pilot = pilot
        pilot.add_tap(self)
        simulated = isinstance(pilot.clock, FakeClock) if self._complete is None else self._complete
        self._jsonl.block = simulated
        if self._video is not None:
            self._video.block = simulated
        pilot.vehicle = _WatchedVehicle(pilot.vehicle, self._tick_vehicle)
        pilot.seen = _RecordedSlot(self, pilot.seen)
        inbox = _RecordedInbox(self, pilot.inbox.maxsize)
        while not pilot.inbox.empty():
            inbox.put_nowait(pilot.inbox.get_nowait())
        pilot.inbox = inbox
        pilot.manual_velocity = self._keys_wrapper(pilot)  # type: ignore[method-assign]
        perception = getattr(perception, "__self__", perception)  # its bound ``process`` method -> the part
        self.manifest.update({
            "vehicle": {"name": pilot.name, "kind": pilot.vehicle.kind},
            "pilot": {
                "name": pilot.name, "kind": pilot.vehicle.kind, "hz": pilot.loop.hz, "max_ticks": pilot.loop.max_ticks,
                "max_duration_s": pilot.max_duration_s, "perceive": pilot.perceive is not None,
                "can_see": getattr(pilot, "can_see", None), "names": pilot.names,
                # A scenario that builds its pilot inside can only be joined during the first tick, after the pilot
                # took its own reference to the vehicle for that tick: the first answers are not all seen.
                "attached": "before the run" if getattr(pilot, "start_s", None) is None else "during the first tick",
                "clock": type(pilot.clock).__name__, "script": [command_dict(c) for c in script],
                "follow_config": to_dict(pilot.follow_config), "behaviour": registry.describe(pilot.behaviour),
                # what `autopilot MODE` would start, as parts: replay rebuilds the one the run started
                "autopilots": {mode: registry.describe(make()) for mode, make in getattr(pilot, "autopilots", {}).items()},
                "safety": to_dict(pilot.supervisor.config),
                "handover_timeout_s": pilot.handover.timeout_s if getattr(pilot, "handover", None) else None,
            },
            "perception": registry.describe(perception),
            "models": fingerprint(perception.model_files()) if hasattr(perception, "model_files") else [],
            "faces": faces_fingerprint(getattr(perception, "faces_dir", None)),
        })
        write_json_atomic(self.folder / MANIFEST, self.manifest)

    def attach_on_first_frame(self, on_frame: Callable[..., None] | None, perception: Any = None
                              ) -> Callable[..., None]:
        """For scenarios that build their pilot inside (``edgepilot.pilot.app.scenarios.run_car``): an ``on_frame(frame, seen,
        pilot)`` callback that attaches on its first call, at the start of the first tick, then calls ``on_frame``."""

        def hook(frame: Any, seen: Seen, pilot: Pilot, *rest: Any) -> None:
            if self._pilot is None:
                self.attach(pilot, perception=perception)
            if on_frame is not None:
                on_frame(frame, seen, pilot, *rest)

        return hook

    def _keys_wrapper(self, pilot: Pilot) -> Callable[..., None]:
        original = pilot.manual_velocity

        def manual_velocity(velocity: Velocity, pulse_s: float = 0.4) -> None:
            with self._lock:
                self._tick_keys.append([pilot.clock.now(), velocity_list(velocity), pulse_s])
            original(velocity, pulse_s)

        return manual_velocity

    # -- what the instruments report --------------------------------------------------------------------------------
    def _frame(self, seen: Seen) -> int:
        """A perception result was published: number it, queue its frame for the video and its detections."""
        with self._lock:
            for known, number in reversed(self._recent):
                if known is seen:
                    return number
            number = self._frames
            self._frames += 1
            self._recent.append((seen, number))
            frame = seen.frame
            video_index = None
            if frame is not None and self._video is not None:
                video_index = self._video.put(frame.image, seen.frame_t_s)
            self._jsonl.put(DETECTIONS, {
                "frame": number, "t_s": seen.frame_t_s, "width": seen.width, "height": seen.height,
                "camera_index": frame.index if frame is not None else None,
                "source": frame.source if frame is not None else None, "video": video_index,
                "detections": [d.to_json() for d in seen.detections]})
            return number

    def _saw(self, seen: Seen | None) -> None:
        """The pilot read the perception slot (loop thread)."""
        self._tick_seen.append(None if seen is None else self._frame(seen))

    def _took(self, command: Command) -> None:
        """The pilot took a command from its inbox (loop thread)."""
        self._tick_inputs.append(command_dict(command))

    # -- RunTap -----------------------------------------------------------------------------------------------------
    def on_tick(self, t_s: float, telemetry: Telemetry, seen: Seen | None, velocity: Velocity | None,
                mode: Mode) -> None:
        record: dict[str, Any] = {
            "tick": self._ticks, "t_s": t_s, "telemetry": {f: getattr(telemetry, f) for f in TELEMETRY_FIELDS},
            "sent": velocity_list(velocity), "mode": mode.value, "seen": self._tick_seen,
        }
        if self._ticks == 0:
            record.update(self._start_time(t_s))
        if self._tick_inputs:
            record["inputs"] = self._tick_inputs
        with self._lock:
            if self._tick_keys:
                record["keys"], self._tick_keys = self._tick_keys, []
        if self._tick_vehicle:
            record["vehicle"] = dict(self._tick_vehicle)
            self._tick_vehicle.clear()
        self._jsonl.put(TICKS, record)
        self._tick_seen, self._tick_inputs = [], []
        self._ticks += 1

    def _start_time(self, t_s: float) -> dict:
        """The clock time the run started: ticks are relative to it, frames and telemetry stamps are absolute."""
        pilot = self._pilot
        assert pilot is not None
        start = getattr(pilot, "start_s", None)
        if start is not None:
            return {"start_s": start, "start_exact": True}
        # A fake clock does not move within a tick, so this is exact for simulations; a real clock has moved on.
        return {"start_s": pilot.clock.now() - t_s, "start_exact": isinstance(pilot.clock, FakeClock)}

    def on_command(self, record: CommandRecord) -> None:
        self._jsonl.put(COMMANDS, {"t_s": record.t_s, "command": record.command, "source": record.source,
                                   "result": record.result})

    def on_event(self, event: Event) -> None:
        self._jsonl.put(EVENTS, {"t_s": event.t_s, "type": event.type, "detail": event.detail})

    # -- the end ----------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish the files and mark the manifest complete. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._video is not None:
            self._video.close()
        self._jsonl.close()
        video = self._video
        problems = [f"{what}: {error}" for what, error in (("video", video.error if video else None),
                                                           ("files", self._jsonl.error)) if error is not None]
        self.manifest.update({"status": "complete", "summary": {
            "ticks": self._ticks, "frames": self._frames,
            "video_frames": video.written if video else 0, "video_frames_dropped": video.dropped if video else 0,
            "records_dropped": self._jsonl.dropped, "wall_s": round(time.monotonic() - self._started_wall, 3),
            "problems": problems}})
        write_json_atomic(self.folder / MANIFEST, self.manifest)
        if video is not None and video.dropped:
            log.warning("recording: %d camera frame(s) could not be encoded in time and are missing from %s",
                        video.dropped, self.folder)


class _RecordedSlot(LatestValue):
    """In front of the pilot's perception slot: reports every published frame and every read to the recorder."""

    def __init__(self, recorder: Recorder, slot: LatestValue) -> None:
        super().__init__()
        self._recorder = recorder
        self._slot = slot
        # A plain slot may already hold a frame; a replay's slot answers reads in order, so it is not read here.
        initial = slot.get() if type(slot) is LatestValue else None
        if initial is not None:
            recorder._frame(initial)

    def set(self, value: Seen | None) -> None:
        if value is not None:
            self._recorder._frame(value)
        self._slot.set(value)

    def get(self) -> Seen | None:
        value = self._slot.get()
        self._recorder._saw(value)
        return value


class _RecordedInbox(queue.Queue):
    """The pilot's command inbox, reporting which tick took each command (exact, unlike the time it was said)."""

    def __init__(self, recorder: Recorder, maxsize: int) -> None:
        super().__init__(maxsize)
        self._recorder = recorder

    def get(self, block: bool = True, timeout: float | None = None) -> Command:
        item = super().get(block, timeout)
        self._recorder._took(item)
        return item


class _WatchedVehicle:
    """Passes everything to the vehicle and notes, per tick, what it answered that the tap does not see: ``busy()``,
    refused commands and set-points, and the events it raised."""

    def __init__(self, vehicle: Any, calls: dict[str, list]) -> None:
        self._vehicle = vehicle
        self._calls = calls
        self.kind = vehicle.kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vehicle, name)

    def busy(self) -> bool:
        busy = self._vehicle.busy()
        self._calls.setdefault("busy", []).append(busy)
        return busy

    def telemetry(self) -> Telemetry:
        return self._vehicle.telemetry()

    def execute(self, command: Command) -> None:
        self._guard("execute", self._vehicle.execute, command)

    def send_velocity(self, velocity: Velocity) -> None:
        self._guard("send", self._vehicle.send_velocity, velocity)

    def _guard(self, name: str, call: Callable[[Any], None], arg: Any) -> None:
        results = self._calls.setdefault(name, [])
        try:
            call(arg)
        except EdgepilotError as exc:
            results.append([type(exc).__name__, str(exc)])
            raise
        results.append(None)

    def poll_events(self) -> list[Event]:
        events = self._vehicle.poll_events()
        if events:
            self._calls.setdefault("events", []).extend(
                {"t_s": e.t_s, "type": e.type, "detail": e.detail} for e in events)
        return events

    def close(self) -> None:
        self._vehicle.close()
