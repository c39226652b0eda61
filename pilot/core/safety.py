"""The safety supervisor: sits between every decision and the vehicle.

Every command passes :meth:`Supervisor.admit` (ranges re-checked, battery, fence, lock-out); every velocity passes
:meth:`Supervisor.limit_velocity` (clamps, stale-input watchdog, fence edge); :meth:`Supervisor.tick` runs once per loop
tick and returns the commands safety forces (hover, land, stop). Defaults are anchored on PX4 / ArduPilot failsafes
(the README's failsafe table says which parameter each one follows):

==========================  ==========  ====================================================================
check                       default     anchored on
==========================  ==========  ====================================================================
proof of life (set-points)  0.5 s       PX4 offboard: set-points at > 2 Hz (the runner sends every 0.2 s)
input watchdog, drone       1.0 s       PX4 COM_OF_LOSS_T (offboard signal lost)
input watchdog, car         1.5 s       ArduRover FS_TIMEOUT
link loss -> hover, land    1.0 s, +0.5 PX4 COM_RC_LOSS_T (0.5 s) .. COM_OF_LOSS_T (1 s); action Land (NAV_RCL_ACT)
battery                     20/15/10 %  ArduPilot BATT_ARM_* (refuse arming), PX4 BAT_LOW_THR 15 %, BAT_CRIT_THR
geofence                    3 m, 10 m   ArduPilot FENCE_ALT_MAX / FENCE_RADIUS / FENCE_MARGIN, PX4 GF_MAX_*_DIST,
                                        action Land (GF_ACTION 5)
==========================  ==========  ====================================================================
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.pilot.core.messages import HOVER, MOVE_VERBS, Command, Event, Telemetry, Velocity

log = logging.getLogger(__name__)

#: Who may say "emergency" (stop the motors in the air): a person, never a behaviour or safety itself.
EXPLICIT_SOURCES = ("script", "voice", "keyboard", "user", "cli", "web")
#: Commands allowed while safety is landing the drone or has stopped the car.
LOCKOUT_ALLOWED = ("land", "stop", "emergency", "wait", "photo")
_MOVE_AXES = {"forward": (1, 0, 0), "back": (-1, 0, 0), "left": (0, 1, 0), "right": (0, -1, 0), "up": (0, 0, 1),
              "down": (0, 0, -1)}


@dataclass(frozen=True)
class SafetyConfig:
    takeoff_min_battery_pct: float = 20.0
    warn_battery_pct: float = 15.0
    land_battery_pct: float = 10.0
    flip_min_battery_pct: float = 50.0
    max_speed_cm_s: float = 100.0
    max_yaw_rate_deg_s: float = 100.0
    #: While flying, something must reach the vehicle at least this often (the runner uses 0.2 s).
    proof_of_life_s: float = 0.5
    #: Velocities older than this (no fresh perception / keyboard input) become zero.
    input_stale_s: float | None = None  # None: 1.0 s for a drone, 1.5 s for a car
    link_loss_s: float = 1.0
    link_land_after_s: float = 0.5  # hover this long after a link loss, then land
    link_land_retry_s: float = 2.0
    fence_ceiling_cm: float = 300.0
    fence_radius_cm: float = 1000.0
    #: Velocities toward the fence stop this far inside it; beyond the fence itself, the drone lands.
    fence_margin_cm: float = 50.0

    def stale_after_s(self, kind: str) -> float:
        if self.input_stale_s is not None:
            return self.input_stale_s
        return 1.5 if kind == "car" else 1.0


def _clamp(value: float, limit: float) -> float:
    if not math.isfinite(value):
        return 0.0  # NaN compares false with everything: unchecked, it would pass any clamp as full speed
    return max(-limit, min(limit, value))


class Supervisor:
    """One per run. The runner calls, per tick: :meth:`tick` (dispatch what it returns), :meth:`drain_events`;
    before every command :meth:`admit`; before every velocity :meth:`limit_velocity`; :meth:`note_input` whenever a
    fresh perception result or keyboard input arrives; and stops the run when :attr:`failure` is set."""

    def __init__(self, kind: str, config: SafetyConfig | None = None) -> None:
        self.kind = kind
        self.config = config or SafetyConfig()
        self.events: list[Event] = []
        #: Set when the run must end as a failure (link lost); the text says why.
        self.failure: str | None = None
        self._warned_battery = False
        self._landing_for_battery = False
        self._lockout: str | None = None  # why safety took over (no more flying commands)
        self._last_input_s: float | None = None
        self._stale_reported = False
        self._link_lost_s: float | None = None
        self._link_land_s: float | None = None
        self._home: tuple[float, float] = (0.0, 0.0)
        self._fence_breached = False
        self._fence_warned = False
        self._last_sent_s: float | None = None

    # -- events -----------------------------------------------------------------------------------------------------
    def _event(self, t_s: float, type_: str, detail: str) -> None:
        log.warning("%s: %s", type_, detail)
        self.events.append(Event(t_s, type_, detail))

    def drain_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    # -- inputs -----------------------------------------------------------------------------------------------------
    def note_input(self, now_s: float) -> None:
        """A fresh input (perception result, keyboard) arrived. The watchdog arms on the first call: a run without
        perception (a script) only ever sends hover, which needs no watchdog."""
        self._last_input_s = now_s
        self._stale_reported = False

    def keepalive_due(self, now_s: float, telemetry: Telemetry) -> bool:
        """True when a flying vehicle has been sent nothing for half the proof-of-life period: send a set-point."""
        if self.kind == "drone" and not telemetry.flying:
            return False
        return self._last_sent_s is None or now_s - self._last_sent_s >= self.config.proof_of_life_s / 2

    # -- commands ---------------------------------------------------------------------------------------------------
    def admit(self, command: Command, telemetry: Telemetry) -> Command:
        """Return the command if it may go to the vehicle; raise :class:`CommandRejected` with the reason if not."""
        # Re-parse the canonical text: a command built in code gets the same range checks as a typed one.
        checked = parse_command(command.text, command.source)
        cfg = self.config
        verb = checked.verb
        if verb == "emergency" and checked.source not in EXPLICIT_SOURCES:
            raise CommandRejected(f"'emergency' stops the motors and is only accepted when a person says it, not "
                                  f"from {checked.source!r}; use 'stop' to hover or 'land'")
        if self._lockout and verb not in LOCKOUT_ALLOWED:
            raise CommandRejected(f"{checked.text!r} refused: safety has taken over ({self._lockout})")
        if verb == "speed" and checked.arg > cfg.max_speed_cm_s:
            raise CommandRejected(f"speed {checked.arg} is above the configured limit of {cfg.max_speed_cm_s:g} cm/s")
        if self.kind == "drone":
            self._admit_drone(checked, telemetry)
        if verb in MOVE_VERBS:
            self._admit_move(checked, telemetry)
        self._last_sent_s = telemetry.t_s
        return checked

    def _admit_drone(self, command: Command, telemetry: Telemetry) -> None:
        cfg = self.config
        verb = command.verb
        if verb == "takeoff":
            if telemetry.battery_pct < cfg.takeoff_min_battery_pct:
                raise CommandRejected(f"battery {telemetry.battery_pct:.0f}% is below "
                                      f"{cfg.takeoff_min_battery_pct:.0f}%: takeoff refused; charge the battery")
            if telemetry.t_s - telemetry.last_state_s > cfg.link_loss_s:
                raise CommandRejected(f"no state from the drone for {telemetry.t_s - telemetry.last_state_s:.1f} s: "
                                      f"takeoff refused; check the link")
            self._home = (telemetry.x_cm, telemetry.y_cm)
            self._fence_breached = self._fence_warned = False
        if verb == "flip" and telemetry.battery_pct < cfg.flip_min_battery_pct:
            raise CommandRejected(f"battery {telemetry.battery_pct:.0f}% is below "
                                  f"{cfg.flip_min_battery_pct:.0f}%: flip refused")

    def _admit_move(self, command: Command, telemetry: Telemetry) -> None:
        """Refuse a discrete move that would end outside the geofence (the move is predicted in the start frame)."""
        cfg = self.config
        fx, fy, fz = _MOVE_AXES[command.verb]
        yaw = math.radians(telemetry.yaw_deg)
        distance = float(command.arg)
        end_x = telemetry.x_cm + (math.cos(yaw) * fx - math.sin(yaw) * fy) * distance
        end_y = telemetry.y_cm + (math.sin(yaw) * fx + math.cos(yaw) * fy) * distance
        end_z = telemetry.z_cm + fz * distance
        if fz > 0 and end_z > cfg.fence_ceiling_cm:
            raise CommandRejected(f"{command.text!r} would climb to {end_z:.0f} cm, above the "
                                  f"{cfg.fence_ceiling_cm:.0f} cm ceiling of the geofence")
        reach = math.hypot(end_x - self._home[0], end_y - self._home[1])
        if fz == 0 and reach > cfg.fence_radius_cm:
            raise CommandRejected(f"{command.text!r} would end {reach:.0f} cm from takeoff, outside the "
                                  f"{cfg.fence_radius_cm:.0f} cm geofence")

    # -- velocities -------------------------------------------------------------------------------------------------
    def limit_velocity(self, velocity: Velocity, telemetry: Telemetry, now_s: float) -> Velocity:
        self._last_sent_s = now_s
        cfg = self.config
        limit = cfg.max_speed_cm_s
        safe = Velocity(_clamp(velocity.vx_cm_s, limit), _clamp(velocity.vy_cm_s, limit),
                        _clamp(velocity.vz_cm_s, limit), _clamp(velocity.yaw_rate_deg_s, cfg.max_yaw_rate_deg_s))
        if safe.is_zero:
            return safe
        if self._lockout:
            return HOVER
        stale_s = cfg.stale_after_s(self.kind)
        if self._last_input_s is not None and now_s - self._last_input_s > stale_s:
            if not self._stale_reported:
                self._stale_reported = True
                what = "standing still" if self.kind == "car" else "hovering"
                self._event(now_s, "input_stale", f"no fresh input for {now_s - self._last_input_s:.1f} s "
                                                  f"(limit {stale_s:g} s): {what}")
            return HOVER
        return self._fence_velocity(safe, telemetry, now_s)

    def _fence_velocity(self, velocity: Velocity, telemetry: Telemetry, now_s: float) -> Velocity:
        """Near the fence, drop the part of the velocity that points outward: the vehicle stops at the edge."""
        cfg = self.config
        vx, vy, vz = velocity.vx_cm_s, velocity.vy_cm_s, velocity.vz_cm_s
        stopped = False
        if self.kind == "drone" and vz > 0 and telemetry.z_cm >= cfg.fence_ceiling_cm - cfg.fence_margin_cm:
            vz, stopped = 0.0, True
        dx, dy = telemetry.x_cm - self._home[0], telemetry.y_cm - self._home[1]
        distance = math.hypot(dx, dy)
        if distance >= cfg.fence_radius_cm - cfg.fence_margin_cm and distance > 0:
            yaw = math.radians(telemetry.yaw_deg)
            wx = math.cos(yaw) * vx - math.sin(yaw) * vy  # body -> start frame
            wy = math.sin(yaw) * vx + math.cos(yaw) * vy
            outward = (wx * dx + wy * dy) / distance
            if outward > 0:
                wx -= outward * dx / distance
                wy -= outward * dy / distance
                vx = math.cos(yaw) * wx + math.sin(yaw) * wy  # back to the body frame
                vy = -math.sin(yaw) * wx + math.cos(yaw) * wy
                stopped = True
        if stopped and not self._fence_warned:
            self._fence_warned = True
            self._event(now_s, "fence_edge", "at the edge of the geofence: not going further out")
        return Velocity(vx, vy, vz, velocity.yaw_rate_deg_s)

    # -- every tick -------------------------------------------------------------------------------------------------
    def tick(self, now_s: float, telemetry: Telemetry) -> list[Command]:
        """Checks that run every tick; returns commands safety forces on the vehicle (source ``safety``)."""
        forced: list[Command] = []
        forced += self._check_link(now_s, telemetry)
        if self.kind == "drone" and telemetry.flying and self._link_lost_s is None:
            forced += self._check_battery(now_s, telemetry)
            forced += self._check_fence(now_s, telemetry)
        elif self.kind == "car":
            forced += self._check_car_fence(now_s, telemetry)
        return forced

    def _check_link(self, now_s: float, telemetry: Telemetry) -> list[Command]:
        """No state for ``link_loss_s``: report, hover (stop), and after ``link_land_after_s`` land, repeating the
        land every ``link_land_retry_s`` until the drone is down. Landing goes on even if the link comes back, as in PX4 / ArduPilot."""
        cfg = self.config
        age = now_s - telemetry.last_state_s
        if self._link_lost_s is None:
            if age <= cfg.link_loss_s:
                return []
            self._link_lost_s = now_s
            self._lockout = "link lost"
            if self.kind == "drone" and not telemetry.flying:
                self._event(now_s, "link_lost", f"no state from the drone for {age:.1f} s (on the ground)")
                self.failure = f"link lost: no state from the drone for {age:.1f} s"
                return []
            if self.kind != "drone":
                self._event(now_s, "link_lost", f"no state from the vehicle for {age:.1f} s: stopping")
                self.failure = f"link lost: no state from the vehicle for {age:.1f} s; stopped"
                return [Command("stop", None, "safety")]
            self._event(now_s, "link_lost", f"no state from the drone for {age:.1f} s: hovering, landing in "
                                            f"{cfg.link_land_after_s:g} s")
            return [Command("stop", None, "safety")]
        if self.kind != "drone" or self.failure and self._link_land_s is None:
            return []  # a car, or a drone that lost the link on the ground
        if now_s - self._link_lost_s < cfg.link_land_after_s:
            return []
        if self._link_land_s is None:
            self._link_land_s = now_s
            self._event(now_s, "link_land", "link still lost: landing")
            self.failure = (f"link lost: no state from the drone for more than {cfg.link_loss_s:g} s; "
                            f"hovered, then landing was attempted")
            return [Command("land", None, "safety")]
        if telemetry.flying and now_s - self._link_land_s >= cfg.link_land_retry_s:
            # Still up (or no news): say it again, the last land may have been lost with the link.
            self._link_land_s = now_s
            return [Command("land", None, "safety")]
        return []

    def _check_battery(self, now_s: float, telemetry: Telemetry) -> list[Command]:
        cfg = self.config
        if telemetry.battery_pct <= cfg.land_battery_pct and not self._landing_for_battery:
            self._landing_for_battery = True
            self._lockout = f"battery {telemetry.battery_pct:.0f}%"
            self._event(now_s, "battery_land", f"battery {telemetry.battery_pct:.0f}%: landing")
            return [Command("land", None, "safety")]
        if telemetry.battery_pct <= cfg.warn_battery_pct and not self._warned_battery:
            self._warned_battery = True
            self._event(now_s, "battery_low", f"battery {telemetry.battery_pct:.0f}%: land soon")
        return []

    def _check_fence(self, now_s: float, telemetry: Telemetry) -> list[Command]:
        cfg = self.config
        distance = math.hypot(telemetry.x_cm - self._home[0], telemetry.y_cm - self._home[1])
        if self._fence_breached or (telemetry.z_cm <= cfg.fence_ceiling_cm and distance <= cfg.fence_radius_cm):
            return []
        self._fence_breached = True
        self._lockout = "geofence breached"
        self._event(now_s, "fence_breach", f"outside the geofence (height {telemetry.z_cm:.0f} cm, "
                                           f"{distance:.0f} cm from takeoff): landing")
        return [Command("land", None, "safety")]

    def _check_car_fence(self, now_s: float, telemetry: Telemetry) -> list[Command]:
        distance = math.hypot(telemetry.x_cm - self._home[0], telemetry.y_cm - self._home[1])
        if self._fence_breached or distance <= self.config.fence_radius_cm:
            return []
        self._fence_breached = True
        self._lockout = "geofence breached"
        self._event(now_s, "fence_breach", f"{distance:.0f} cm from the start, outside the geofence: stopping")
        return [Command("stop", None, "safety")]
