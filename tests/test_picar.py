"""The Pi car backend on gpiozero's real MockFactory: every assertion reads the pin states gpiozero recorded."""

from __future__ import annotations

import importlib.util
import math
import sys
import time
import types

import cv2
import numpy as np
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import given
from hypothesis import strategies as st

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.errors import CommandRejected, InputError, VehicleError
from edgepilot.pilot.core.hal import Camera, Vehicle, open_camera, open_vehicle
from edgepilot.pilot.core.messages import Command, Velocity
from edgepilot.robot_car.camera import PiCamera, WebcamCamera
from edgepilot.robot_car.kinematics import DriveCalibration, body_velocity, duty_for_speed, wheel_speeds
from edgepilot.robot_car.picar import PiCar, make_picar

LEFT_FWD, LEFT_BACK, RIGHT_FWD, RIGHT_BACK = 17, 18, 22, 23
ALL_PINS = (LEFT_FWD, LEFT_BACK, RIGHT_FWD, RIGHT_BACK)


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory(pin_class=MockPWMPin)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def car(factory, clock):
    vehicle = make_picar(clock=clock, pin_factory=factory)
    yield vehicle
    vehicle.close()


def level(factory: MockFactory, pin: int) -> float:
    return float(factory.pin(pin).state)


def history(factory: MockFactory, pin: int) -> list[float]:
    """The sequence of states gpiozero recorded on a pin (its timestamps are real time, not the fake clock's)."""
    return [round(float(s.state), 4) for s in factory.pin(pin).states]


# -- discrete moves ---------------------------------------------------------------------------------------------------
def test_forward_100_at_speed_50_drives_both_motors_forward_for_2_s_then_stops(car, factory, clock):
    car.execute(Command("speed", 50))
    car.execute(Command("forward", 100))
    duty = 50 / 60  # default calibration: 60 cm/s at full duty
    assert car.busy()
    assert (level(factory, LEFT_FWD), level(factory, RIGHT_FWD)) == pytest.approx((duty, duty))
    clock.advance(1.95)
    assert car.busy() and level(factory, LEFT_FWD) == pytest.approx(duty)
    clock.advance(0.1)
    assert not car.busy()
    for pin in (LEFT_FWD, RIGHT_FWD):
        assert history(factory, pin) == [0.0, round(duty, 4), 0.0]
    for pin in (LEFT_BACK, RIGHT_BACK):
        assert max(history(factory, pin)) == 0.0
    t = car.telemetry()
    assert (t.x_cm, t.y_cm, t.yaw_deg) == pytest.approx((100.0, 0.0, 0.0), abs=1e-6)
    assert t.t_s == pytest.approx(2.05) and t.vx_cm_s == 0.0


def test_back_drives_the_backward_pins_and_odometry_goes_negative(car, factory, clock):
    car.execute(Command("back", 30))
    assert level(factory, LEFT_BACK) > 0 and level(factory, RIGHT_BACK) > 0
    assert level(factory, LEFT_FWD) == 0 and level(factory, RIGHT_FWD) == 0
    clock.advance(5)
    assert not car.busy()
    assert car.telemetry().x_cm == pytest.approx(-30.0)
    assert all(level(factory, pin) == 0 for pin in ALL_PINS)


@pytest.mark.parametrize(("verb", "spinning", "yaw_deg"), [("cw", (LEFT_FWD, RIGHT_BACK), -90.0),
                                                            ("ccw", (LEFT_BACK, RIGHT_FWD), 90.0)])
def test_turns_spin_the_wheels_in_opposite_directions(car, factory, clock, verb, spinning, yaw_deg):
    car.execute(Command(verb, 90))
    for pin in ALL_PINS:
        assert (level(factory, pin) > 0) == (pin in spinning), pin
    clock.advance(0.99)  # default turn rate 90 deg/s
    assert car.busy()
    clock.advance(0.02)
    assert not car.busy()
    t = car.telemetry()
    assert t.yaw_deg == pytest.approx(yaw_deg) and math.hypot(t.x_cm, t.y_cm) < 1e-6
    assert all(level(factory, pin) == 0 for pin in ALL_PINS)


def test_stop_mid_move_zeroes_every_pin_and_keeps_the_distance_covered(car, factory, clock):
    car.execute(Command("forward", 200))
    clock.advance(0.5)
    car.execute(Command("stop"))
    assert not car.busy()
    assert all(level(factory, pin) == 0 for pin in ALL_PINS)
    clock.advance(3)
    assert car.telemetry().x_cm == pytest.approx(25.0)  # 0.5 s at the default 50 cm/s


def test_a_move_while_busy_is_refused_and_non_car_verbs_are_rejected(car, factory):
    car.execute(Command("cw", 180))
    with pytest.raises(VehicleError, match="busy"):
        car.execute(Command("forward", 50))
    with pytest.raises(CommandRejected, match="not a car command"):
        car.execute(Command("takeoff"))
    with pytest.raises(CommandRejected):
        car.execute(Command("forward", -5))
    car.execute(Command("wait", 1))  # the pilot's business: the turn carries on
    assert car.busy() and level(factory, LEFT_FWD) > 0


def test_speed_above_the_calibrated_maximum_is_capped_with_an_event(car, factory, clock):
    car.execute(Command("speed", 100))
    assert [e.type for e in car.poll_events()] == ["speed_limited"]
    car.execute(Command("forward", 60))
    assert level(factory, LEFT_FWD) == 1.0
    clock.advance(1.01)  # 60 cm at 60 cm/s, not at the 100 asked for
    assert not car.busy() and car.telemetry().x_cm == pytest.approx(60.0)


# -- velocity control -------------------------------------------------------------------------------------------------
def test_velocity_maps_to_differential_duty_and_clamps_keeping_the_arc(car, factory):
    car.send_velocity(Velocity(vx_cm_s=30.0, vy_cm_s=50.0, vz_cm_s=20.0))  # a car cannot strafe or climb
    assert (level(factory, LEFT_FWD), level(factory, RIGHT_FWD)) == pytest.approx((0.5, 0.5))
    car.send_velocity(Velocity(yaw_rate_deg_s=90.0))  # CCW: right wheel forward, left backward
    wheel = math.pi / 2 * 14.0 / 2  # rad/s * half the default track width
    assert level(factory, RIGHT_FWD) == pytest.approx(wheel / 60)
    assert level(factory, LEFT_BACK) == pytest.approx(wheel / 60) and level(factory, LEFT_FWD) == 0
    car.send_velocity(Velocity(vx_cm_s=500.0))
    assert (level(factory, LEFT_FWD), level(factory, RIGHT_FWD)) == (1.0, 1.0)
    car.send_velocity(Velocity(vx_cm_s=55.0, yaw_rate_deg_s=-60.0))  # left wheel would need 62 cm/s
    left, right = level(factory, LEFT_FWD), level(factory, RIGHT_FWD)
    assert left == pytest.approx(1.0)
    assert right / left == pytest.approx((55.0 - wheel * 2 / 3) / (55.0 + wheel * 2 / 3))
    car.send_velocity(Velocity())
    assert all(level(factory, pin) == 0 for pin in ALL_PINS)


def test_velocity_odometry_integrates_arcs_exactly(car, clock):
    for _ in range(10):  # 2 s at 30 cm/s and 45 deg/s, set-points every 0.2 s like the pilot sends them
        car.send_velocity(Velocity(vx_cm_s=30.0, yaw_rate_deg_s=45.0))
        clock.advance(0.2)
    t = car.telemetry()
    radius = 30.0 / math.radians(45.0)
    assert (t.x_cm, t.y_cm, t.yaw_deg) == pytest.approx((radius, radius, 90.0))
    assert (t.vx_cm_s, t.vy_cm_s) == pytest.approx((0.0, 30.0), abs=1e-9)  # heading +y after a quarter turn


def test_a_stale_velocity_set_point_stops_the_motors(car, factory, clock):
    car.send_velocity(Velocity(vx_cm_s=30.0))
    clock.advance(1.5)
    assert [e.type for e in car.poll_events()] == ["watchdog"]  # any call brings a fake-clock car up to date
    assert all(level(factory, pin) == 0 for pin in ALL_PINS)
    assert car.telemetry().x_cm == pytest.approx(30.0)  # stopped at the 1 s timeout, not at the next call


def test_min_duty_lifts_slow_commands_above_the_stall_duty(factory, clock):
    with make_picar(clock=clock, pin_factory=factory, min_duty=0.3) as car:
        car.send_velocity(Velocity(vx_cm_s=30.0))
        assert level(factory, LEFT_FWD) == pytest.approx(0.3 + 0.7 * 0.5)


# -- wiring, lifecycle -----------------------------------------------------------------------------------------------
def test_phase_enable_driver_sets_direction_and_pwm_pins(factory, clock):
    phase_left, enable_left, phase_right, enable_right = ALL_PINS
    with make_picar(clock=clock, pin_factory=factory, driver="phase_enable") as car:
        car.execute(Command("forward", 50))
        assert (level(factory, phase_left), level(factory, phase_right)) == (0, 0)
        assert level(factory, enable_left) == pytest.approx(50 / 60) == level(factory, enable_right)
        clock.advance(1.1)
        assert not car.busy() and level(factory, enable_left) == 0 == level(factory, enable_right)
        car.execute(Command("cw", 45))
        assert (level(factory, phase_left), level(factory, phase_right)) == (0, 1)
        assert level(factory, enable_left) > 0 and level(factory, enable_right) > 0


def test_close_twice_stops_motors_releases_pins_and_leaves_gpiozero_global_alone(factory, clock):
    car = make_picar(clock=clock, pin_factory=factory)
    car.execute(Command("forward", 100))
    clock.advance(5)  # the move ended at 2 s; nobody looked until close()
    car.close()
    car.close()
    assert car.telemetry().x_cm == pytest.approx(100.0)
    assert all(level(factory, pin) == 0 for pin in ALL_PINS)
    assert history(factory, LEFT_FWD)[-1] == 0.0
    with pytest.raises(VehicleError, match="closed"):
        car.execute(Command("forward", 20))
    assert Device.pin_factory is None
    # The pins are free again: a new car can take them.
    make_picar(clock=clock, pin_factory=factory).close()


def test_bad_wiring_gives_clear_input_errors(factory, clock):
    with pytest.raises(InputError, match="unknown motor driver"):
        make_picar(clock=clock, pin_factory=factory, driver="tank")
    with pytest.raises(InputError, match="must differ"):
        make_picar(clock=clock, pin_factory=factory, left=(17, 18), right=(18, 23))
    with pytest.raises(InputError, match="calibration"):
        make_picar(clock=clock, pin_factory=factory, max_speed_cm_s=0)
    with make_picar(clock=clock, pin_factory=factory), pytest.raises(InputError, match="no other program"):
        make_picar(clock=clock, pin_factory=factory)
    with pytest.raises(InputError, match="pins"):
        make_picar(clock=clock, pin_factory=factory, left=(17, 99))


def test_registry_builds_the_picar_from_a_pin_factory_named_in_the_environment(monkeypatch, clock):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    car = open_vehicle("picar", clock=clock, host="ignored")
    assert isinstance(car, PiCar) and isinstance(car, Vehicle) and car.kind == "car"
    car.execute(Command("forward", 20))
    assert car.busy()
    car.close()
    assert Device.pin_factory is None


@pytest.mark.skipif(any(importlib.util.find_spec(m) for m in ("lgpio", "RPi", "pigpio")),
                    reason="this machine has a GPIO library, so a pin factory would load")
def test_without_a_gpio_library_the_error_says_how_to_get_one(monkeypatch, clock):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(InputError, match="sudo apt install python3-lgpio"):
        make_picar(clock=clock)


# -- real time: the deadline thread ------------------------------------------------------------------------------------
def test_on_the_real_clock_a_move_ends_on_time_without_anyone_polling(factory):
    car = make_picar(pin_factory=factory)  # MonotonicClock
    try:
        car.execute(Command("forward", 5))  # 0.1 s at 50 cm/s
        time.sleep(0.6)
        assert level(factory, LEFT_FWD) == 0 and level(factory, RIGHT_FWD) == 0
        on, off = factory.pin(LEFT_FWD).states[1:]
        assert on.state > 0 and off.state == 0
        assert 0.08 < off.timestamp < 0.35  # gpiozero stamps each state with the time since the previous one
    finally:
        car.close()


def test_on_the_real_clock_the_velocity_watchdog_fires_by_itself(factory):
    with make_picar(pin_factory=factory, velocity_timeout_s=0.15) as car:
        car.send_velocity(Velocity(vx_cm_s=20.0))
        time.sleep(0.6)
        assert all(level(factory, pin) == 0 for pin in ALL_PINS)
        assert [e.type for e in car.poll_events()] == ["watchdog"]


# -- kinematics -------------------------------------------------------------------------------------------------------
@given(st.floats(-200, 200), st.floats(-400, 400))
def test_wheel_speeds_stay_in_reach_and_keep_the_curvature(vx, yaw_rate):
    cal = DriveCalibration()
    left, right = wheel_speeds(vx, yaw_rate, cal)
    assert max(abs(left), abs(right)) <= cal.max_speed_cm_s + 1e-9
    assert -1.0 <= duty_for_speed(left, cal) <= 1.0 and -1.0 <= duty_for_speed(right, cal) <= 1.0
    got_vx, got_yaw = body_velocity(left, right, cal)
    # Same arc: forward speed and yaw rate scaled by one common factor in (0, 1].
    assert got_vx * yaw_rate == pytest.approx(got_yaw * vx, abs=1e-6)
    if max(abs(left), abs(right)) < cal.max_speed_cm_s - 1e-6:
        assert (got_vx, got_yaw) == pytest.approx((vx, yaw_rate), abs=1e-9)


# -- cameras ----------------------------------------------------------------------------------------------------------
def test_webcam_without_a_camera_is_a_clear_input_error():
    with pytest.raises(InputError, match="cannot open camera 99: no camera there"):
        WebcamCamera(99)


@pytest.fixture
def video(tmp_path):
    """A real 20 fps video: frame i is a flat colour, blue-dominant in BGR, red rising with i."""
    path = tmp_path / "road.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48))
    for i in range(8):
        writer.write(np.full((48, 64, 3), (200, 60, 20 + 25 * i), np.uint8))
    writer.release()
    return path


def test_video_file_plays_at_its_rate_as_latest_bgr_frames_then_reports_the_end(video):
    camera = open_camera(str(video))
    assert isinstance(camera, Camera)
    try:
        deadline = time.monotonic() + 2.0
        while (frame := camera.read()) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert frame is not None and frame.image.shape == (48, 64, 3)
        b, g, r = frame.image[24, 32].astype(int)
        assert abs(b - 200) < 8 and abs(g - 60) < 8 and abs(r - (20 + 25 * frame.index)) < 8
        time.sleep(0.15)
        later = camera.read()
        assert later.index > frame.index and later.t_s > frame.t_s  # paced at 20 fps, newest frame only
        with pytest.raises(InputError, match="stopped delivering frames"):
            while time.monotonic() < deadline + 1.0:
                camera.read()
                time.sleep(0.02)
    finally:
        camera.close()
        camera.close()


def test_the_car_owns_and_closes_its_camera(factory, clock, video):
    car = make_picar(clock=clock, pin_factory=factory, camera=str(video))
    assert isinstance(car.camera, WebcamCamera)
    car.close()
    assert not car.camera._grabber.alive


def test_pi_camera_without_picamera2_names_the_apt_package_and_the_venv_flag(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails here even on a Pi
    with pytest.raises(InputError) as error:
        PiCamera()
    assert "sudo apt install python3-picamera2" in str(error.value)
    assert "--system-site-packages" in str(error.value)


def test_pi_camera_with_numpy_2_against_apt_simplejpeg_says_how_to_fix_it(monkeypatch, tmp_path):
    package = tmp_path / "picamera2"
    package.mkdir()
    # What apt's picamera2 raises in a venv with numpy 2 (its simplejpeg was built against numpy 1).
    (package / "__init__.py").write_text("raise ValueError('numpy.dtype size changed, may indicate binary "
                                         "incompatibility. Expected 96 from C header, got 88 from PyObject')\n")
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match="pip install --no-deps --force-reinstall simplejpeg"):
        open_camera("auto")  # found, so auto picks the Pi camera and reports why it cannot load


class _StandInPicamera2:
    """Only what PiCamera calls, recording it: stands in for picamera2, which exists only on Raspberry Pi OS."""

    instances: list[_StandInPicamera2] = []

    def __init__(self, camera_num: int = 0) -> None:
        self.calls: list[tuple] = []
        self.started = False
        _StandInPicamera2.instances.append(self)

    def create_video_configuration(self, **kwargs):
        return kwargs

    def configure(self, config) -> None:
        self.calls.append(("configure", config))

    def start(self) -> None:
        self.started = True

    def capture_array(self, name: str) -> np.ndarray:
        time.sleep(0.01)
        image = np.zeros((48, 64, 3), np.uint8)
        image[..., 0] = 255  # byte 0 of each pixel: blue in BGR memory order
        return image

    def stop(self) -> None:
        self.calls.append(("stop",))

    def close(self) -> None:
        self.calls.append(("close",))


@pytest.mark.parametrize("swap", [False, True])
def test_pi_camera_asks_for_rgb888_which_is_bgr_in_memory(monkeypatch, swap):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=_StandInPicamera2))
    camera = PiCamera(width=64, height=48, fps=15, swap_red_blue=swap)
    stand_in = _StandInPicamera2.instances[-1]
    try:
        config = stand_in.calls[0][1]
        assert config["main"] == {"format": "RGB888", "size": (64, 48)} and config["controls"] == {"FrameRate": 15.0}
        deadline = time.monotonic() + 2.0
        while (frame := camera.read()) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert frame is not None
        assert tuple(frame.image[0, 0]) == ((0, 0, 255) if swap else (255, 0, 0))
    finally:
        camera.close()
        camera.close()
    assert stand_in.calls[-2:] == [("stop",), ("close",)]


# -- every exit of a run leaves both motors at 0 --------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["script_aborted", "command_error", "ctrl_c", "sigterm", "exception",
                                 "controller_gone", "close_write_fails"])
def test_every_way_a_run_ends_leaves_both_motors_at_zero(factory, clock, monkeypatch, how):
    """The car is driving (keyboard velocity) when the run ends; whatever ends it, every motor pin ends at 0."""
    from edgepilot.pilot.core.grammar import parse_script
    from edgepilot.pilot.core.runner import Pilot, Terminated

    car = make_picar(clock=clock, pin_factory=factory)
    driving: list[bool] = []
    script = "wait 1; takeoff" if how == "script_aborted" else "wait 1; cw 90" if how == "command_error" else "wait 3"
    if how == "command_error":
        original = PiCar._execute

        def failing(self, command):
            if command.verb == "cw":
                raise VehicleError("motor driver fault")
            return original(self, command)

        monkeypatch.setattr(PiCar, "_execute", failing)
    if how == "close_write_fails":
        monkeypatch.setattr(type(car.robot), "value", property(lambda self: (0, 0), _fails_when_stopping(car.robot)))
    pilot = None

    def perceive(now_s: float):
        pilot.manual_velocity(Velocity(vx_cm_s=30.0), pulse_s=60.0)
        driving.append(level(factory, LEFT_FWD) > 0 and level(factory, RIGHT_FWD) > 0)
        if len(driving) == 20:  # two thirds of a second in, at full drive
            assert driving[-1], "the car must be driving when the run is ended"
            if how == "ctrl_c":
                raise KeyboardInterrupt
            if how == "sigterm":
                raise Terminated("SIGTERM")
            if how == "exception":
                raise RuntimeError("a bug in perception")
            if how == "controller_gone":
                pilot.abort("the web cockpit's controller disconnected")
        return None

    pilot = Pilot(car, clock=clock, hz=30, perceive=perceive, max_duration_s=10)
    result = pilot.run(parse_script(script))
    assert any(driving)
    assert all(level(factory, pin) == 0 for pin in ALL_PINS), how
    assert car.closed
    expected = {"script_aborted": "not a car command", "command_error": "motor driver fault",
                "ctrl_c": "interrupted by Ctrl-C", "sigterm": "terminated by SIGTERM",
                "exception": "internal error: RuntimeError: a bug in perception",
                "controller_gone": "controller disconnected", "close_write_fails": None}[how]
    if expected is None:
        assert result.failure is None
    else:
        assert result.failure and expected in result.failure, result.failure


def _fails_when_stopping(robot):
    """A Robot.value setter that drives the pins but raises when asked to stop (a flaky driver board at the end)."""
    setter = type(robot).value.fset

    def write(self, value):
        if tuple(value) == (0.0, 0.0):
            raise OSError("I2C write failed")
        setter(self, value)

    return write
