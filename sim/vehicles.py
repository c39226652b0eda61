"""Simulated drone and car. Both implement :class:`edgepilot.pilot.core.hal.Vehicle` and advance their physics lazily to the clock's
time on every call, so the same code runs in real time or, with a fake clock, faster than real time."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.errors import CommandRejected, VehicleError
from edgepilot.pilot.core.geometry import wrap_deg
from edgepilot.pilot.core.messages import HOVER, MOVE_VERBS, Command, Event, Telemetry, Velocity

log = logging.getLogger(__name__)

SUBSTEP_S = 0.01
#: Unit body-frame direction of each move verb (forward, left, up).
_MOVE_AXES = {
    "forward": (1, 0, 0), "back": (-1, 0, 0), "left": (0, 1, 0), "right": (0, -1, 0), "up": (0, 0, 1), "down": (0, 0, -1),
}


@dataclass(frozen=True)
class Pose:
    """A world pose: position in cm, yaw in degrees (CCW positive)."""

    x_cm: float = 0.0
    y_cm: float = 0.0
    z_cm: float = 0.0
    yaw_deg: float = 0.0


class _SimBody:
    """Shared kinematics: a pose relative to the start, a discrete action in progress, a velocity set-point."""

    kind = "body"
    max_speed_cm_s = 100.0
    turn_rate_deg_s = 90.0
    accel_cm_s2 = 150.0

    def __init__(self, clock: Clock | None = None, origin: Pose = Pose(), battery_pct: float = 100.0) -> None:
        self.clock = clock or MonotonicClock()
        self.origin = origin
        self._t = self.clock.now()
        self.x = self.y = self.z = self.yaw = 0.0
        self.vx = self.vy = self.vz = 0.0  # world-frame velocity relative to the start frame, cm/s
        self.battery = float(battery_pct)
        self.speed_cm_s = 50.0
        self._action: dict | None = None
        self._setpoint = HOVER
        self._events: list[Event] = []
        self.closed = False

    # -- Vehicle protocol -------------------------------------------------------------------------------------------
    def busy(self) -> bool:
        self._advance()
        return self._action is not None

    def send_velocity(self, velocity: Velocity) -> None:
        self._advance()
        self._check_open()
        self._setpoint = velocity

    def telemetry(self) -> Telemetry:
        self._advance()
        return Telemetry(
            t_s=self._t, x_cm=self.x, y_cm=self.y, z_cm=self.z, yaw_deg=wrap_deg(self.yaw), flying=self.flying,
            battery_pct=self.battery, vx_cm_s=self.vx, vy_cm_s=self.vy, vz_cm_s=self.vz, last_state_s=self._t,
        )

    def poll_events(self) -> list[Event]:
        self._advance()
        events, self._events = self._events, []
        return events

    def world_pose(self) -> Pose:
        """Where the vehicle is in the world (for the renderer): the start pose composed with the odometry."""
        self._advance()
        o = self.origin
        c, s = math.cos(math.radians(o.yaw_deg)), math.sin(math.radians(o.yaw_deg))
        return Pose(o.x_cm + c * self.x - s * self.y, o.y_cm + s * self.x + c * self.y, o.z_cm + self.z,
                    wrap_deg(o.yaw_deg + self.yaw))

    @property
    def flying(self) -> bool:
        return False

    # -- internals --------------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise VehicleError("the vehicle is closed")

    def _event(self, type_: str, detail: str) -> None:
        log.info("%s: %s", type_, detail)
        self._events.append(Event(self._t, type_, detail))

    def _start_move(self, verb: str, distance_cm: float) -> None:
        self._action = {"kind": "move", "axis": _MOVE_AXES[verb], "left": float(distance_cm), "v": 0.0,
                        "yaw0": self.yaw}

    def _start_turn(self, degrees: float) -> None:
        self._action = {"kind": "turn", "left": abs(degrees), "sign": math.copysign(1.0, degrees)}

    def _advance(self) -> None:
        now = self.clock.now()
        while self._t < now - 1e-9:
            dt = min(SUBSTEP_S, now - self._t)
            self._step(dt)
            self._t += dt

    def _step(self, dt: float) -> None:
        action = self._action
        if action is None:
            self._follow_setpoint(dt)
        elif action["kind"] == "move":
            # Accelerate to the set speed, decelerate to stop exactly at the target: smooth, like the real thing.
            v = min(self.speed_cm_s, action["v"] + self.accel_cm_s2 * dt, math.sqrt(2 * self.accel_cm_s2 *
                                                                                        action["left"]))
            v = max(v, 2.0)
            step = min(action["left"], v * dt)
            action["v"], action["left"] = v, action["left"] - step
            fx, fy, fz = action["axis"]
            c, s = math.cos(math.radians(action["yaw0"])), math.sin(math.radians(action["yaw0"]))
            self.vx, self.vy, self.vz = (c * fx - s * fy) * v, (s * fx + c * fy) * v, fz * v
            self._translate(self.vx * step / v, self.vy * step / v, self.vz * step / v)
            if action["left"] <= 1e-6:
                self._finish_action()
        elif action["kind"] == "turn":
            step = min(action["left"], self.turn_rate_deg_s * dt)
            self.yaw += action["sign"] * step
            action["left"] -= step
            self.vx = self.vy = self.vz = 0.0
            if action["left"] <= 1e-6:
                self._finish_action()
        else:
            self._step_special(action, dt)

    def _follow_setpoint(self, dt: float) -> None:
        sp = self._setpoint
        c, s = math.cos(math.radians(self.yaw)), math.sin(math.radians(self.yaw))
        self.vx = c * sp.vx_cm_s - s * sp.vy_cm_s
        self.vy = s * sp.vx_cm_s + c * sp.vy_cm_s
        self.vz = sp.vz_cm_s
        self.yaw += sp.yaw_rate_deg_s * dt
        self._translate(self.vx * dt, self.vy * dt, self.vz * dt)

    def _translate(self, dx: float, dy: float, dz: float) -> None:
        self.x += dx
        self.y += dy
        self.z = max(0.0, self.z + dz)

    def _finish_action(self) -> None:
        self._action = None
        self.vx = self.vy = self.vz = 0.0

    def _step_special(self, action: dict, dt: float) -> None:
        raise NotImplementedError(action["kind"])

    def close(self) -> None:
        self.closed = True


class SimDrone(_SimBody):
    """A Tello-like drone: takeoff to 80 cm, SDK moves as smooth motion at the set speed, ``rc`` velocity control,
    battery drain, and auto-land after 15 s without a command like the real one."""

    kind = "drone"
    takeoff_height_cm = 80.0
    climb_cm_s = 60.0
    auto_land_s = 15.0
    drain_flying_pct_s = 100.0 / 600.0  # a Tello flies about 10 minutes on a charge
    drain_idle_pct_s = 0.005

    def __init__(self, clock: Clock | None = None, origin: Pose = Pose(), battery_pct: float = 100.0) -> None:
        super().__init__(clock, origin, battery_pct)
        self._flying = False
        self._last_command_s = self._t

    @property
    def flying(self) -> bool:
        return self._flying

    def execute(self, command: Command) -> None:
        self._advance()
        self._check_open()
        self._last_command_s = self._t
        verb = command.verb
        if verb == "emergency":
            self._action = None
            self._setpoint = HOVER
            self._flying = False
            self.z = 0.0
            self.vx = self.vy = self.vz = 0.0
            self._event("emergency", "motors stopped")
            return
        if verb == "stop":
            self._action = None
            self._setpoint = HOVER
            self.vx = self.vy = self.vz = 0.0
            return
        if verb == "speed":
            self.speed_cm_s = float(command.arg)
            return
        if verb == "takeoff":
            if self._flying:
                raise VehicleError("already flying")
            self._flying = True
            self._action = {"kind": "climb", "target": self.takeoff_height_cm}
            return
        if not self._flying:
            raise VehicleError(f"{command.text!r} needs the drone in the air: take off first")
        if self._action is not None and verb != "land":
            raise VehicleError(f"busy with {self._action['kind']}; wait or say 'stop'")
        self._setpoint = HOVER
        if verb == "land":
            self._action = {"kind": "land"}
        elif verb in MOVE_VERBS:
            self._start_move(verb, float(command.arg))
        elif verb in ("cw", "ccw"):
            self._start_turn(-float(command.arg) if verb == "cw" else float(command.arg))
        elif verb == "flip":
            self._action = {"kind": "flip", "left": 1.0}
        else:
            raise CommandRejected(f"the drone does not understand {command.text!r}")

    def send_velocity(self, velocity: Velocity) -> None:
        super().send_velocity(velocity)
        self._last_command_s = self._t

    def _step(self, dt: float) -> None:
        if self._flying:
            self.battery = max(0.0, self.battery - self.drain_flying_pct_s * dt)
            if self._t - self._last_command_s > self.auto_land_s and (self._action or {}).get("kind") != "land":
                self._event("auto_land", f"no command for {self.auto_land_s:g} s: landing like a real Tello")
                self._action = {"kind": "land"}
            if self.battery <= 0.0 and (self._action or {}).get("kind") != "land":
                self._event("battery_empty", "battery empty: landing")
                self._action = {"kind": "land"}
            super()._step(dt)
        else:
            self.battery = max(0.0, self.battery - self.drain_idle_pct_s * dt)
            if self._action is not None:
                super()._step(dt)

    def _step_special(self, action: dict, dt: float) -> None:
        self.vx = self.vy = 0.0
        if action["kind"] == "climb":
            self.vz = self.climb_cm_s
            self.z = min(action["target"], self.z + self.climb_cm_s * dt)
            if self.z >= action["target"]:
                self._finish_action()
        elif action["kind"] == "land":
            self.vz = -self.climb_cm_s
            self.z = max(0.0, self.z - self.climb_cm_s * dt)
            if self.z <= 0.0:
                self._flying = False
                self._finish_action()
        elif action["kind"] == "flip":
            action["left"] -= dt
            if action["left"] <= 0:
                self._finish_action()

    def close(self) -> None:
        """Land (and wait for it on the clock), then refuse further commands. Idempotent."""
        if self.closed:
            return
        self._advance()
        if self._flying:
            if (self._action or {}).get("kind") != "land":
                self._action = {"kind": "land"}
            self._event("landing", "closing: landing")
            while self._flying:
                self.clock.sleep(0.05)
                self._advance()
        self.closed = True


class SimCar(_SimBody):
    """A differential-drive car: drives straight for ``forward``/``back``, turns in place for ``cw``/``ccw``,
    follows ``rc``-style velocity (forward speed and yaw rate) otherwise."""

    kind = "car"
    CAR_VERBS = ("forward", "back", "cw", "ccw", "stop", "speed", "emergency", "wait", "photo")

    def execute(self, command: Command) -> None:
        self._advance()
        self._check_open()
        verb = command.verb
        if verb not in self.CAR_VERBS:
            raise CommandRejected(f"{command.text!r} is not a car command; a car understands: "
                                  f"{', '.join(self.CAR_VERBS)}")
        if verb in ("stop", "emergency"):
            self._action = None
            self._setpoint = HOVER
            self.vx = self.vy = 0.0
            return
        if verb == "speed":
            self.speed_cm_s = float(command.arg)
            return
        if self._action is not None:
            raise VehicleError(f"busy with {self._action['kind']}; wait or say 'stop'")
        self._setpoint = HOVER
        if verb in ("forward", "back"):
            self._start_move(verb, float(command.arg))
        elif verb in ("cw", "ccw"):
            self._start_turn(-float(command.arg) if verb == "cw" else float(command.arg))

    def send_velocity(self, velocity: Velocity) -> None:
        # A differential car cannot move sideways or up: keep only forward speed and yaw rate.
        super().send_velocity(Velocity(vx_cm_s=velocity.vx_cm_s, yaw_rate_deg_s=velocity.yaw_rate_deg_s))

    def close(self) -> None:
        """Stop the motors. Idempotent."""
        if not self.closed:
            self._advance()
            self._action = None
            self._setpoint = HOVER
            self.vx = self.vy = 0.0
            self.closed = True


def make_sim_drone(clock: Clock | None = None, origin: Pose = Pose(), battery_pct: float = 100.0,
                   **_: object) -> SimDrone:
    return SimDrone(clock=clock, origin=origin, battery_pct=battery_pct)


def make_sim_car(clock: Clock | None = None, origin: Pose = Pose(), battery_pct: float = 100.0,
                 **_: object) -> SimCar:
    return SimCar(clock=clock, origin=origin, battery_pct=battery_pct)
