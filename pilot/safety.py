"""The safety supervisor: sits between every decision and the vehicle.

Every command passes :meth:`Supervisor.admit` (ranges re-checked, battery rules); every velocity passes
:meth:`Supervisor.limit_velocity` (clamps); :meth:`Supervisor.tick` runs once per loop tick and returns the commands
safety forces (hover, land). Defaults are anchored on PX4 / ArduPilot failsafes and listed in the README.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pilot.errors import CommandRejected
from pilot.grammar import parse_command
from pilot.messages import Command, Event, Telemetry, Velocity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SafetyConfig:
    takeoff_min_battery_pct: float = 20.0
    warn_battery_pct: float = 15.0
    land_battery_pct: float = 10.0
    flip_min_battery_pct: float = 50.0
    max_speed_cm_s: float = 100.0
    max_yaw_rate_deg_s: float = 100.0


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


class Supervisor:
    def __init__(self, kind: str, config: SafetyConfig | None = None) -> None:
        self.kind = kind
        self.config = config or SafetyConfig()
        self.events: list[Event] = []
        self._warned_battery = False
        self._landing_for_battery = False

    def _event(self, t_s: float, type_: str, detail: str) -> None:
        log.warning("%s: %s", type_, detail)
        self.events.append(Event(t_s, type_, detail))

    def drain_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def admit(self, command: Command, telemetry: Telemetry) -> Command:
        """Return the command if it may go to the vehicle; raise :class:`CommandRejected` with the reason if not."""
        # Re-parse the canonical text: a command built in code gets the same range checks as a typed one.
        checked = parse_command(command.text, command.source)
        cfg = self.config
        if self.kind == "drone":
            if checked.verb == "takeoff" and telemetry.battery_pct < cfg.takeoff_min_battery_pct:
                raise CommandRejected(f"battery {telemetry.battery_pct:.0f}% is below "
                                      f"{cfg.takeoff_min_battery_pct:.0f}%: takeoff refused; charge the battery")
            if checked.verb == "flip" and telemetry.battery_pct < cfg.flip_min_battery_pct:
                raise CommandRejected(f"battery {telemetry.battery_pct:.0f}% is below "
                                      f"{cfg.flip_min_battery_pct:.0f}%: flip refused")
        return checked

    def limit_velocity(self, velocity: Velocity, telemetry: Telemetry, now_s: float) -> Velocity:
        limit = self.config.max_speed_cm_s
        return Velocity(_clamp(velocity.vx_cm_s, limit), _clamp(velocity.vy_cm_s, limit),
                        _clamp(velocity.vz_cm_s, limit),
                        _clamp(velocity.yaw_rate_deg_s, self.config.max_yaw_rate_deg_s))

    def tick(self, now_s: float, telemetry: Telemetry) -> list[Command]:
        """Checks that run every tick; returns commands safety forces on the vehicle (source ``safety``)."""
        forced: list[Command] = []
        cfg = self.config
        if self.kind == "drone" and telemetry.flying:
            if telemetry.battery_pct <= cfg.land_battery_pct and not self._landing_for_battery:
                self._landing_for_battery = True
                self._event(now_s, "battery_land", f"battery {telemetry.battery_pct:.0f}%: landing")
                forced.append(Command("land", None, "safety"))
            elif telemetry.battery_pct <= cfg.warn_battery_pct and not self._warned_battery:
                self._warned_battery = True
                self._event(now_s, "battery_low", f"battery {telemetry.battery_pct:.0f}%: land soon")
        return forced
