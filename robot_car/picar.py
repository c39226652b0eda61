"""The Raspberry Pi car: two DC motors on gpiozero, driven open loop with dead-reckoned odometry.

Implements :class:`edgepilot.pilot.core.hal.Vehicle` with the same contract as :class:`edgepilot.sim.vehicles.SimCar`: ``execute`` starts a
discrete command (``forward``/``back`` cm, ``cw``/``ccw`` degrees, ``stop``, ``speed``) and returns at once; a move is
timed from the clock (distance / speed) and the state advances lazily on every call, so a fake clock drives it in
tests. On the real clock a small deadline thread also stops the motors exactly when a move ends or the velocity
set-point goes stale, even if the loop is late or stuck.

The car has no battery sensor: telemetry reports ``battery_pct=100`` ("nothing known, nothing to act on"). The safety
supervisor reads battery only for drones, and NaN would make the CLI's JSON invalid.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.errors import CommandRejected, InputError, VehicleError
from edgepilot.pilot.core.hal import Camera
from edgepilot.pilot.core.messages import HOVER, Command, Event, Telemetry, Velocity
from edgepilot.robot_car.kinematics import DriveCalibration, Odometry, body_velocity, duty_for_speed, wheel_speeds

log = logging.getLogger(__name__)

CAR_VERBS = ("forward", "back", "cw", "ccw", "stop", "speed", "emergency", "wait", "photo")
#: "robot": an H-bridge with two inputs per motor (L298N, DRV8833, L9110S): pins are (forward, backward).
#: "phase_enable": a direction pin and a PWM speed pin per motor (DRV8835 in phase mode, Cytron MDD10A): (phase, enable).
DRIVERS = ("robot", "phase_enable")
#: Tried in this order when no pin factory is given. lgpio is the one that works on a Pi 5.
DEFAULT_PIN_FACTORIES = ("lgpio", "rpigpio", "pigpio")

Pin = int | str


@dataclass(frozen=True)
class PiCarConfig:
    left: tuple[Pin, Pin] = (17, 18)
    right: tuple[Pin, Pin] = (22, 23)
    driver: str = "robot"
    calibration: DriveCalibration = field(default_factory=DriveCalibration)
    #: Speed of discrete moves until a ``speed`` command changes it (capped at the calibrated maximum).
    speed_cm_s: float = 50.0
    #: Rate of ``cw``/``ccw`` turns in place.
    turn_rate_deg_s: float = 90.0
    #: Motors stop when no velocity set-point arrived for this long (the pilot sends one every 0.2 s). 0 = never.
    velocity_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.driver not in DRIVERS:
            raise InputError(f"unknown motor driver {self.driver!r}; choose one of: {', '.join(DRIVERS)}")
        pins = [*self.left, *self.right]
        if len(self.left) != 2 or len(self.right) != 2:
            raise InputError(f"left and right need two pins each, got left={self.left!r} right={self.right!r}")
        if len({str(p) for p in pins}) != 4:
            raise InputError(f"the four motor pins must differ, got left={self.left!r} right={self.right!r}")
        for name in ("speed_cm_s", "turn_rate_deg_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be positive, got {value!r}")
        if not (math.isfinite(self.velocity_timeout_s) and self.velocity_timeout_s >= 0):
            raise InputError(f"velocity_timeout_s must be >= 0, got {self.velocity_timeout_s!r}")


@dataclass
class _Action:
    verb: str
    end_s: float


def resolve_pin_factory(pin_factory: Any = None) -> tuple[Any, bool]:
    """The gpiozero pin factory to use and whether we created it (and so must close it).

    Accepts a factory instance, a name (``lgpio``, ``rpigpio``, ``pigpio``, ``native``, ``mock``) or None: then
    ``$GPIOZERO_PIN_FACTORY`` or the first of :data:`DEFAULT_PIN_FACTORIES` that loads. gpiozero's global
    ``Device.pin_factory`` is never touched, because every device gets the factory explicitly.
    """
    if pin_factory is not None and not isinstance(pin_factory, str):
        return pin_factory, False
    name = pin_factory or os.environ.get("GPIOZERO_PIN_FACTORY")
    failures = []
    for candidate in [name] if name else DEFAULT_PIN_FACTORIES:
        try:
            return _load_pin_factory(candidate), True
        except Exception as exc:  # any failure means "try the next one"; all are reported below
            failures.append(f"{candidate}: {exc}")
    raise InputError(
        f"no GPIO pin library works here ({'; '.join(failures)}). On Raspberry Pi OS: sudo apt install python3-lgpio "
        "and use a venv made with --system-site-packages; to try without a Pi: GPIOZERO_PIN_FACTORY=mock"
    )


def _load_pin_factory(name: str) -> Any:
    if name.lower() == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)  # motors need PWM pins
    from importlib.metadata import entry_points

    for entry in entry_points(group="gpiozero_pin_factories"):
        if entry.name == name.lower():
            return entry.load()()
    raise InputError(f"unknown pin factory {name!r}")


def _build_robot(config: PiCarConfig, factory: Any) -> Any:
    """A gpiozero ``Robot`` with two ``Motor`` or two ``PhaseEnableMotor`` (gpiozero 2's replacement for the
    deprecated ``PhaseEnableRobot``), every device on ``factory``."""
    try:
        from gpiozero import Motor, PhaseEnableMotor, Robot
        from gpiozero.exc import GPIOZeroError
    except ImportError:
        raise InputError("the Pi car needs gpiozero: pip install -e '.[all]'") from None
    motor_class = Motor if config.driver == "robot" else PhaseEnableMotor
    built: list[Any] = []
    try:
        built.append(motor_class(*config.left, pin_factory=factory))
        built.append(motor_class(*config.right, pin_factory=factory))
        return Robot(left=built[0], right=built[1], pin_factory=factory)
    except GPIOZeroError as exc:
        for device in built:
            device.close()
        raise InputError(f"cannot drive motors on pins left={config.left} right={config.right} "
                         f"({config.driver}): {exc}; check the pin numbers and that no other program uses them") from None


class PiCar:
    """Differential-drive car on a gpiozero ``Robot``. One thread (the loop's) drives it; all state is guarded by a
    lock because the deadline thread may stop the motors on its own."""

    kind = "car"

    def __init__(self, robot: Any, config: PiCarConfig | None = None, clock: Clock | None = None,
                 camera: Camera | None = None, realtime_stops: bool | None = None, owned_factory: Any = None) -> None:
        self.robot = robot
        self.config = config or PiCarConfig()
        self.cal = self.config.calibration
        self.clock = clock or MonotonicClock()
        self.camera = camera
        self.speed_cm_s = min(self.config.speed_cm_s, self.cal.max_speed_cm_s)
        self.odometry = Odometry()
        self.closed = False
        self._owned_factory = owned_factory
        self._cond = threading.Condition(threading.Lock())
        self._t = self.clock.now()
        self._wheels = (0.0, 0.0)  # commanded wheel speeds, cm/s
        self._action: _Action | None = None
        self._setpoint = HOVER
        self._last_setpoint_s = self._t
        self._events: list[Event] = []
        self.robot.value = (0.0, 0.0)
        if realtime_stops is None:
            realtime_stops = isinstance(self.clock, MonotonicClock)
        self._deadline_thread: threading.Thread | None = None
        if realtime_stops:
            self._deadline_thread = threading.Thread(target=self._run_deadlines, name="picar-deadlines", daemon=True)
            self._deadline_thread.start()

    # -- Vehicle protocol -------------------------------------------------------------------------------------------
    def execute(self, command: Command) -> None:
        with self._cond:
            self._advance()
            self._check_open()
            self._execute(command)
            self._cond.notify()

    def busy(self) -> bool:
        with self._cond:
            self._advance()
            return self._action is not None

    def send_velocity(self, velocity: Velocity) -> None:
        """Forward speed and yaw rate; a car cannot strafe or climb, so vy and vz are ignored. While a discrete move
        runs the set-point is kept for afterwards, like the simulated car does."""
        with self._cond:
            self._advance()
            self._check_open()
            self._setpoint = Velocity(vx_cm_s=velocity.vx_cm_s, yaw_rate_deg_s=velocity.yaw_rate_deg_s)
            self._last_setpoint_s = self._t
            if self._action is None:
                self._drive(*wheel_speeds(velocity.vx_cm_s, velocity.yaw_rate_deg_s, self.cal))
            self._cond.notify()

    def telemetry(self) -> Telemetry:
        with self._cond:
            self._advance()
            vx, yaw_rate = body_velocity(*self._wheels, self.cal)
            world_vx, world_vy = self.odometry.world_velocity(vx)
            return Telemetry(t_s=self._t, x_cm=self.odometry.x_cm, y_cm=self.odometry.y_cm,
                             yaw_deg=self.odometry.yaw_deg, flying=False, battery_pct=100.0,
                             vx_cm_s=world_vx, vy_cm_s=world_vy, last_state_s=self._t)

    def poll_events(self) -> list[Event]:
        with self._cond:
            self._advance()
            events, self._events = self._events, []
            return events

    def close(self) -> None:
        """Stop the motors and release the pins (and the camera if the car owns one). Idempotent."""
        with self._cond:
            if self.closed:
                return
            self.closed = True
            self._cond.notify_all()
            # Never raise half-way: closing the gpiozero devices below also drives the pins low.
            try:
                self._advance()  # first, so a move that ended before now is accounted as ended
            except Exception:
                log.exception("could not bring the car up to date while closing")
            self._action = None
            self._setpoint = HOVER
            self._force_stop()
        if self._deadline_thread is not None:
            self._deadline_thread.join(timeout=2.0)
        for part in (self.robot, self._owned_factory, self.camera):
            if part is None:
                continue
            try:
                part.close()
            except Exception:  # closing must go on to the next part whatever happens
                log.exception("closing %r failed", part)

    def __enter__(self) -> PiCar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ---------------------------------------------------------------------------------------------------
    def _execute(self, command: Command) -> None:
        verb = command.verb
        if verb not in CAR_VERBS:
            raise CommandRejected(f"{command.text!r} is not a car command; a car understands: {', '.join(CAR_VERBS)}")
        if verb in ("stop", "emergency"):
            self._action = None
            self._setpoint = HOVER
            self._drive(0.0, 0.0)
            return
        if verb in ("wait", "photo"):
            return  # the pilot handles these; the motors carry on as they are
        amount = _positive(command)
        if verb == "speed":
            if amount > self.cal.max_speed_cm_s:
                self._event("speed_limited", f"speed {amount:g} cm/s is above this car's calibrated "
                                             f"{self.cal.max_speed_cm_s:g} cm/s: using {self.cal.max_speed_cm_s:g}")
            self.speed_cm_s = min(amount, self.cal.max_speed_cm_s)
            return
        if self._action is not None:
            raise VehicleError(f"busy with {self._action.verb}; wait or say 'stop'")
        self._setpoint = HOVER
        if verb in ("forward", "back"):
            wheel = self.speed_cm_s if verb == "forward" else -self.speed_cm_s
            duration_s = amount / self.speed_cm_s
            self._drive(wheel, wheel)
        else:
            # Turn in place: wheels in opposite directions; cw (to the right) means the left wheel goes forward.
            fastest_deg_s = math.degrees(2.0 * self.cal.max_speed_cm_s / self.cal.track_width_cm)
            rate_deg_s = min(self.config.turn_rate_deg_s, fastest_deg_s)
            wheel = math.radians(rate_deg_s) * self.cal.track_width_cm / 2.0
            duration_s = amount / rate_deg_s
            if verb == "cw":
                self._drive(wheel, -wheel)
            else:
                self._drive(-wheel, wheel)
        self._action = _Action(verb, self._t + duration_s)

    # -- time -------------------------------------------------------------------------------------------------------
    def _next_deadline(self) -> float | None:
        """When the state must change on its own: the end of the running move, or a stale velocity set-point."""
        if self._action is not None:
            return self._action.end_s
        timeout = self.config.velocity_timeout_s
        if timeout > 0 and self._wheels != (0.0, 0.0):
            return self._last_setpoint_s + timeout
        return None

    def _advance(self) -> None:
        """Bring odometry and motors up to the clock's time, handling every deadline passed on the way in order."""
        now = self.clock.now()
        while (deadline := self._next_deadline()) is not None and deadline <= now:
            self._integrate_to(deadline)
            if self._action is not None:
                self._action = None
                # Resume the set-point sent during the move, unless it has gone stale meanwhile.
                timeout = self.config.velocity_timeout_s
                sp = self._setpoint if not timeout or self._t - self._last_setpoint_s < timeout else HOVER
                self._drive(*wheel_speeds(sp.vx_cm_s, sp.yaw_rate_deg_s, self.cal))
            else:
                self._event("watchdog", f"no velocity set-point for {self.config.velocity_timeout_s:g} s: motors stopped")
                self._setpoint = HOVER
                self._drive(0.0, 0.0)
        self._integrate_to(now)

    def _integrate_to(self, t_s: float) -> None:
        if t_s > self._t:
            self.odometry.integrate(*body_velocity(*self._wheels, self.cal), t_s - self._t)
            self._t = t_s

    def _run_deadlines(self) -> None:
        with self._cond:
            while not self.closed:
                deadline = self._next_deadline()
                self._cond.wait(None if deadline is None else max(0.0, deadline - self.clock.now()))
                if self.closed:
                    break
                try:
                    self._advance()
                except Exception:  # keep guarding the motors; the loop thread sees the same error
                    log.exception("the Pi car's deadline thread could not update the motors")

    # -- hardware ---------------------------------------------------------------------------------------------------
    def _drive(self, left_cm_s: float, right_cm_s: float) -> None:
        """Set the wheel speeds. State first, then the pins, so a GPIO failure cannot leave a deadline in the past."""
        if (left_cm_s, right_cm_s) == self._wheels:
            return
        self._wheels = (left_cm_s, right_cm_s)
        duties = (duty_for_speed(left_cm_s, self.cal), duty_for_speed(right_cm_s, self.cal))
        try:
            self.robot.value = duties
        except Exception as exc:
            raise VehicleError(f"could not set the motors to {duties}: {exc}") from exc

    def _force_stop(self) -> None:
        """Write zero to both motors whatever the car believes they are doing (an earlier write may have failed),
        each motor on its own if the pair cannot be written; never raises. Closing the devices afterwards drives
        the pins low as well."""
        self._wheels = (0.0, 0.0)
        try:
            self.robot.value = (0.0, 0.0)
            return
        except Exception:
            log.exception("could not stop the motors together; stopping each one")
        for side in ("left_motor", "right_motor"):
            try:
                getattr(self.robot, side).stop()
            except Exception:
                log.exception("could not stop the %s; releasing its pins anyway", side.replace("_", " "))

    def _check_open(self) -> None:
        if self.closed:
            raise VehicleError("the car is closed")

    def _event(self, type_: str, detail: str) -> None:
        log.info("%s: %s", type_, detail)
        self._events.append(Event(self._t, type_, detail))


def _positive(command: Command) -> float:
    try:
        value = float(command.arg)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CommandRejected(f"{command.text!r} needs a number") from None
    if not (math.isfinite(value) and value > 0):
        raise CommandRejected(f"{command.text!r} needs a positive number")
    return value


def make_picar(clock: Clock | None = None, left: tuple[Pin, Pin] = (17, 18), right: tuple[Pin, Pin] = (22, 23),
               driver: str = "robot", pin_factory: Any = None, max_speed_cm_s: float = 60.0,
               track_width_cm: float = 14.0, min_duty: float = 0.0, speed_cm_s: float = 50.0,
               turn_rate_deg_s: float = 90.0, velocity_timeout_s: float = 1.0, camera: Camera | str | int | None = None,
               realtime_stops: bool | None = None, **_: object) -> PiCar:
    """The ``picar`` backend. ``camera``: None (no camera), a :class:`edgepilot.pilot.core.hal.Camera`, or a source for
    :func:`edgepilot.pilot.core.hal.open_camera` (``"pi"``, ``"auto"``, a webcam index or a video file); the car closes it."""
    try:
        calibration = DriveCalibration(float(max_speed_cm_s), float(track_width_cm), float(min_duty))
    except ValueError as exc:
        raise InputError(f"Pi car calibration: {exc}") from None
    config = PiCarConfig(left=tuple(left), right=tuple(right), driver=driver, calibration=calibration,  # type: ignore[arg-type]
                         speed_cm_s=float(speed_cm_s), turn_rate_deg_s=float(turn_rate_deg_s),
                         velocity_timeout_s=float(velocity_timeout_s))
    factory, owned = resolve_pin_factory(pin_factory)
    try:
        robot = _build_robot(config, factory)
    except BaseException:
        if owned:
            factory.close()
        raise
    try:
        if camera is not None and not isinstance(camera, Camera):
            from edgepilot.pilot.core.hal import open_camera

            camera = open_camera(camera, clock=clock)
    except BaseException:
        robot.close()
        if owned:
            factory.close()
        raise
    return PiCar(robot, config, clock=clock, camera=camera, realtime_stops=realtime_stops,
                 owned_factory=factory if owned else None)
