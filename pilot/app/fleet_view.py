"""What a ground station knows about the fleet, from the bus alone: every vehicle seen, its latest telemetry and
when it came, whether its process is alive (its liveliness token; a killed process loses it as soon as its
connection drops), its events and command outcomes. While open it holds a commander token, which keeps the
vehicles' bus failsafe quiet (see :mod:`edgepilot.pilot.app.bus`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgepilot.pilot.app.bus import ALL, COMMANDER_KEY, ROOT, key
from edgepilot.pilot.core.grammar import parse_script

log = logging.getLogger(__name__)


@dataclass
class VehicleSeen:
    name: str
    alive: bool = False
    telemetry: dict[str, Any] = field(default_factory=dict)
    received_s: float | None = None  # monotonic time of the last telemetry
    joined_s: float | None = None
    lost_s: float | None = None
    #: (monotonic receive time, delivery latency in s from the sender's wall clock) of recent telemetry
    arrivals: deque = field(default_factory=lambda: deque(maxlen=600))
    events: list[dict] = field(default_factory=list)
    commands: list[dict] = field(default_factory=list)
    video: bytes | None = None
    #: run ids (one per vehicle process) and when each was last heard: two at once under one name is a clash
    runs: dict = field(default_factory=dict)

    def clash(self, now_s: float | None = None, window_s: float = 2.0) -> bool:
        now = time.monotonic() if now_s is None else now_s
        return sum(1 for t in self.runs.values() if now - t <= window_s) > 1

    def age_s(self, now_s: float | None = None) -> float | None:
        if self.received_s is None:
            return None
        return (time.monotonic() if now_s is None else now_s) - self.received_s

    def rate_hz(self, window_s: float = 2.0) -> float:
        now = time.monotonic()
        recent = [t for t, _ in self.arrivals if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class FleetView:
    """Subscribes to the whole fleet on ``session``. ``on_change(kind, name, data)`` (from zenoh's threads) is told
    of joins (``joined``), losses (``lost``), events (``event``) and command outcomes (``command``)."""

    def __init__(self, session, tag: str = "ground",
                 on_change: Callable[[str, str, dict], None] | None = None) -> None:
        import zenoh

        self._zenoh = zenoh
        self.session = session
        self.tag = tag
        self.on_change = on_change
        self.vehicles: dict[str, VehicleSeen] = {}
        self._lock = threading.Condition()
        self._closed = False
        zid = str(session.zid())
        subscribe = session.declare_subscriber
        self._declared = [
            session.liveliness().declare_token(f"{COMMANDER_KEY}/{tag}-{zid}"),
            subscribe(f"{ROOT}/*/telemetry", self._on_telemetry),
            subscribe(f"{ROOT}/*/events", lambda s: self._on_log(s, "events", "event")),
            subscribe(f"{ROOT}/*/commands", lambda s: self._on_log(s, "commands", "command")),
            subscribe(f"{ROOT}/*/video", self._on_video),
            session.liveliness().declare_subscriber(f"{ROOT}/*/alive", self._on_alive, history=True),
        ]
        self._publishers: dict[str, Any] = {}

    # -- commands -----------------------------------------------------------------------------------------------------
    def send(self, name: str, text: str) -> None:
        """Send command text (checked against the grammar here first) to one vehicle, or to ``all``."""
        parse_script(text)  # InputError for a typo, before it reaches any vehicle
        publisher = self._publishers.get(name)
        if publisher is None:
            publisher = self._publishers[name] = self.session.declare_publisher(
                key(name, "command"), congestion_control=self._zenoh.CongestionControl.BLOCK)
        publisher.put(text, attachment=self.tag)

    def send_all(self, text: str) -> None:
        self.send(ALL, text)

    # -- waiting ------------------------------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[FleetView], bool], timeout_s: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked whenever something arrives); False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    def summary(self) -> list[dict[str, Any]]:
        """Every vehicle seen, by name: alive, its latest telemetry, its age (s) and rate (Hz)."""
        now = time.monotonic()
        with self._lock:
            return [{"name": v.name, "alive": v.alive, "telemetry": dict(v.telemetry), "age_s": v.age_s(now),
                     "rate_hz": v.rate_hz(), "video": v.video is not None, "clash": v.clash(now)} for v in sorted(self.vehicles.values(), key=lambda v: v.name)]

    def get(self, name: str) -> VehicleSeen:
        with self._lock:
            return self.vehicles.setdefault(name, VehicleSeen(name))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for item in [*self._declared, *self._publishers.values()]:
            try:
                item.undeclare()
            except Exception:  # noqa: BLE001 - leaving must not raise
                pass

    # -- from the bus -------------------------------------------------------------------------------------------------
    @staticmethod
    def _name(sample) -> str:
        return str(sample.key_expr).split("/")[1]

    def _notify(self, kind: str, name: str, data: dict) -> None:
        if self.on_change is not None:
            try:
                self.on_change(kind, name, data)
            except Exception:  # noqa: BLE001 - a display bug must not stop the view
                log.exception("fleet view: on_change failed")

    def _on_telemetry(self, sample) -> None:
        now = time.monotonic()
        try:
            data = json.loads(sample.payload.to_bytes())
        except ValueError:
            log.warning("fleet view: unreadable telemetry on %s", sample.key_expr)
            return
        sent = data.get("sent_unix_s")
        latency = time.time() - sent if isinstance(sent, int | float) else None
        with self._lock:
            vehicle = self.vehicles.setdefault(self._name(sample), VehicleSeen(self._name(sample)))
            vehicle.telemetry, vehicle.received_s = data, now
            vehicle.runs[data.get("run_id")] = now
            vehicle.arrivals.append((now, latency))
            self._lock.notify_all()

    def _on_log(self, sample, attribute: str, kind: str) -> None:
        try:
            data = json.loads(sample.payload.to_bytes())
        except ValueError:
            return
        name = self._name(sample)
        with self._lock:
            vehicle = self.vehicles.setdefault(name, VehicleSeen(name))
            getattr(vehicle, attribute).append({**data, "received_s": time.monotonic()})
            self._lock.notify_all()
        self._notify(kind, name, data)

    def _on_video(self, sample) -> None:
        name = self._name(sample)
        with self._lock:
            self.vehicles.setdefault(name, VehicleSeen(name)).video = sample.payload.to_bytes()

    def _on_alive(self, sample) -> None:
        name = self._name(sample)
        alive = sample.kind == self._zenoh.SampleKind.PUT
        now = time.monotonic()
        with self._lock:
            vehicle = self.vehicles.setdefault(name, VehicleSeen(name))
            vehicle.alive = alive
            if alive:
                vehicle.joined_s, vehicle.lost_s = now, None
            else:
                vehicle.lost_s = now
            self._lock.notify_all()
        self._notify("joined" if alive else "lost", name, {})
