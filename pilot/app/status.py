"""The live state of a run as one JSON-able dict: what the web cockpit's telemetry panel shows, what
``GET /api/state`` returns and what the fleet bus publishes.

:class:`RunStatus` is a :class:`~edgepilot.pilot.core.runner.RunTap`: the pilot calls it on its loop thread, where it
only stores references (cheap); :meth:`RunStatus.snapshot` builds the dict on the reader's thread. Every method is
thread-safe. It knows nothing of the web server.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from edgepilot.pilot.core.messages import Event, Seen, Telemetry, Velocity
from edgepilot.pilot.core.runner import CommandRecord, Mode

if TYPE_CHECKING:
    from edgepilot.pilot.core.runner import Pilot

#: The Tello lands by itself when it hears nothing for this long.
TELLO_AUTO_LAND_S = 15.0
#: Safety events after which safety is in charge (the snapshot's ``safety.state``), and the ones that only warn.
SAFETY_TAKEOVERS = ("battery_land", "fence_breach", "link_lost", "link_land", "aborted")
SAFETY_WARNINGS = ("battery_low", "fence_edge", "input_stale")
#: How often the trajectory / battery / height history keeps a point (s on the run's clock), and how many.
HISTORY_PERIOD_S = 0.25
HISTORY_POINTS = 4800
#: How many recent commands and events the snapshot lists.
RECENT = 8


class RunStatus:
    """Keeps the latest state of one run. Attach it with :meth:`attach` (or ``pilot.add_tap``) before the run."""

    def __init__(self, vehicle: str = "", kind: str = "") -> None:
        self._lock = threading.Lock()
        self._new_frame = threading.Condition(self._lock)
        self._frame_ready_s = 0.0
        self._wakes = 0
        self._pilot: Pilot | None = None
        self.vehicle = vehicle
        self.kind = kind
        self._t_s = 0.0
        self._telemetry: Telemetry | None = None
        self._seen: Seen | None = None
        self._velocity: Velocity | None = None
        self._mode = Mode.LANDED
        self._following: str | None = None
        self._following_state: str | None = None
        self._last_sent_s: float | None = None
        self._tick_times: deque[float] = deque(maxlen=31)
        self._ticks = 0
        self._history: deque[tuple[float, float, float, float, float, float]] = deque(maxlen=HISTORY_POINTS)
        self._commands: deque[CommandRecord] = deque(maxlen=RECENT)
        self._events: deque[Event] = deque(maxlen=RECENT)
        self._safety: dict[str, Any] = {"state": "ok", "last": None, "overrides": 0}
        self._heard: dict[str, Any] | None = None
        self._frame_count = 0
        self._extra: dict[str, Any] = {"recording": None, "clip": None, "controller": None, "viewers": 0}
        self.ended: str | None = None

    def attach(self, pilot: Pilot) -> RunStatus:
        """Watch ``pilot``'s run (also reads its safety limits, behaviour and loop statistics)."""
        self._pilot = pilot
        self.vehicle = self.vehicle or pilot.name
        self.kind = self.kind or pilot.vehicle.kind
        pilot.add_tap(self)
        return self

    # -- RunTap: called on the loop's thread ----------------------------------------------------------------------
    def on_tick(self, t_s: float, telemetry: Telemetry, seen: Seen | None, velocity: Velocity | None,
                mode: Mode) -> None:
        behaviour = self._pilot.behaviour if self._pilot is not None else None
        with self._lock:
            self._t_s = t_s
            self._telemetry = telemetry
            if seen is not None and seen is not self._seen and seen.frame is not None:
                self._frame_count += 1
                self._frame_ready_s = time.perf_counter()
                self._new_frame.notify_all()
            self._seen = seen
            self._velocity = velocity
            self._mode = mode
            self._following = getattr(behaviour, "who", None)
            state = getattr(behaviour, "state", None)
            self._following_state = None if state is None else str(getattr(state, "value", state))
            if velocity is not None:
                self._last_sent_s = t_s
            self._tick_times.append(t_s)
            self._ticks += 1
            if not self._history or t_s - self._history[-1][0] >= HISTORY_PERIOD_S:
                self._history.append((t_s, telemetry.x_cm, telemetry.y_cm, telemetry.z_cm, telemetry.yaw_deg,
                                      telemetry.battery_pct))

    def on_command(self, record: CommandRecord) -> None:
        with self._lock:
            self._commands.append(record)
            if record.result == "ok":
                self._last_sent_s = record.t_s
            if record.source == "safety":
                self._safety["overrides"] += 1
                self._safety["last_command"] = f"{record.command} ({record.result})"

    def on_event(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            if event.type in SAFETY_TAKEOVERS or event.type in SAFETY_WARNINGS:
                self._safety["last"] = f"{event.type}: {event.detail}"
                self._safety["last_t_s"] = round(event.t_s, 2)
            if event.type in SAFETY_TAKEOVERS:
                self._safety["state"] = event.type

    # -- from other parts -----------------------------------------------------------------------------------------
    def note_heard(self, text: str, command: str | None, reason: str = "") -> None:
        """What the voice recogniser heard: the command it made, or None with why it was not acted on."""
        with self._lock:
            self._heard = {"t_s": round(self._t_s, 2), "text": text, "command": command,
                           "understood": command is not None, "reason": reason}

    def set(self, **fields: Any) -> None:
        """Fields the run sets from outside the loop: ``recording`` (the flight recorder's folder or None), ``clip``
        (the annotated video the cockpit writes, or None), ``controller``, ``viewers``."""
        with self._lock:
            self._extra.update(fields)

    def end(self, why: str, final: Telemetry | None = None) -> None:
        """The run is over (``why``); ``final`` is the vehicle's state after it was brought down."""
        with self._lock:
            self.ended = why
            if final is not None:
                self._telemetry = final
                if not final.flying and self._mode is not Mode.EMERGENCY:
                    self._mode = Mode.LANDED

    # -- readers --------------------------------------------------------------------------------------------------
    def latest_seen(self) -> tuple[int, Seen | None]:
        """The newest perception result with a frame, and a counter that changes whenever a new one arrives."""
        with self._lock:
            return self._frame_count, self._seen

    def wait_frame(self, after: int, timeout_s: float) -> tuple[int, Seen | None, float]:
        """Wait until the frame counter passes ``after`` (or the timeout): (counter, newest seen, when it arrived
        in ``time.perf_counter()`` seconds)."""
        with self._new_frame:
            wakes = self._wakes
            self._new_frame.wait_for(lambda: self._frame_count != after or self._wakes != wakes, timeout=timeout_s)
            return self._frame_count, self._seen, self._frame_ready_s

    def wake_frame_waiters(self) -> None:
        """End every :meth:`wait_frame` now (a reader is stopping)."""
        with self._new_frame:
            self._wakes += 1
            self._new_frame.notify_all()

    def history(self) -> list[list[float]]:
        """[t_s, x_cm, y_cm, z_cm, yaw_deg, battery_pct] every :data:`HISTORY_PERIOD_S`, oldest first."""
        with self._lock:
            return [[round(v, 2) for v in point] for point in self._history]

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON types (a new dict each call)."""
        with self._lock:
            telemetry = self._telemetry or Telemetry(t_s=0.0)
            seen = self._seen
            t_s = self._t_s
            rate = _rate_hz(self._tick_times)
            snapshot: dict[str, Any] = {
                "vehicle": self.vehicle,
                "kind": self.kind,
                "t_s": round(t_s, 3),
                "ticks": self._ticks,
                "mode": str(self._mode.value),
                "flying": bool(telemetry.flying),
                "battery_pct": round(telemetry.battery_pct, 1),
                "height_cm": round(telemetry.z_cm, 1),
                "pose": {"x_cm": round(telemetry.x_cm, 1), "y_cm": round(telemetry.y_cm, 1),
                         "z_cm": round(telemetry.z_cm, 1), "yaw_deg": round(telemetry.yaw_deg, 1)},
                "speed_cm_s": round(math.hypot(telemetry.vx_cm_s, telemetry.vy_cm_s, telemetry.vz_cm_s), 1),
                "setpoint": None if self._velocity is None else {
                    "vx_cm_s": self._velocity.vx_cm_s, "vy_cm_s": self._velocity.vy_cm_s,
                    "vz_cm_s": self._velocity.vz_cm_s, "yaw_rate_deg_s": self._velocity.yaw_rate_deg_s},
                "link": self._link(telemetry, t_s),
                "safety": dict(self._safety),
                "heard": None if self._heard is None else dict(self._heard),
                "people": _people(seen),
                "following": None if self._following is None else {"who": self._following,
                                                                   "state": self._following_state},
                "commands": [c.as_dict() for c in self._commands],
                "events": [{"t_s": round(e.t_s, 2), "type": e.type, "detail": e.detail} for e in self._events],
                "loop_hz": round(rate, 1),
                "frames": self._frame_count,
                "ended": self.ended,
                **self._extra,
            }
        pilot = self._pilot
        if pilot is not None:
            snapshot["loop"] = {"hz": pilot.loop.hz, "overruns": pilot.loop.stats.overruns}
            snapshot["enrolled"] = list(pilot.names or ())  # who ``follow NAME`` accepts
            limits = pilot.supervisor.config
            snapshot["safety"]["limits"] = {
                "land_battery_pct": limits.land_battery_pct, "warn_battery_pct": limits.warn_battery_pct,
                "fence_ceiling_cm": limits.fence_ceiling_cm, "fence_radius_cm": limits.fence_radius_cm,
                "max_speed_cm_s": limits.max_speed_cm_s}
        return snapshot

    def _link(self, telemetry: Telemetry, t_s: float) -> dict[str, Any]:
        age = max(0.0, telemetry.t_s - telemetry.last_state_s) if self._telemetry is not None else None
        link: dict[str, Any] = {"state_age_s": None if age is None else round(age, 2),
                                "lost": self._safety["state"] in ("link_lost", "link_land")}
        if self.kind == "drone" and telemetry.flying and self._last_sent_s is not None:
            link["auto_land_in_s"] = round(max(0.0, TELLO_AUTO_LAND_S - (t_s - self._last_sent_s)), 1)
        return link


def _rate_hz(times: deque[float]) -> float:
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


def _people(seen: Seen | None) -> list[dict[str, Any]]:
    if seen is None:
        return []
    return [{"label": d.label, "name": d.name, "track": d.track, "score": round(float(d.score), 2),
             "box": [round(float(v), 1) for v in d.box]}
            for d in seen.detections if d.label in ("person", "face")]
