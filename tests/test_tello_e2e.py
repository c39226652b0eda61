"""End to end: the real backend (drone/tello.py over its UDP link, the runner and the safety supervisor) against the
Tello emulator over real UDP, with faults injected in the spirit of ArduPilot's autotest failsafe tests: for each
fault the expected event, the drone ends hovering or landed (the emulator's ground truth), nothing escapes, and the
run is logged. The unmodified djitellopy flies the emulator too, as the reference client.

The emulator owns 192.168.10.1 inside a network namespace (the client binds 8889 on every address of this one), so
these tests need root and iproute2, as CI has. Without them they are skipped with the reason.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgepilot.drone.tello import TelloConfig, TelloVehicle
from edgepilot.pilot.core.errors import CommandRejected, LinkLost, VehicleError
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.messages import Command
from edgepilot.pilot.core.runner import Pilot
from edgepilot.pilot.core.safety import Supervisor
from edgepilot.sim import tello_netns
from edgepilot.sim.tello_emulator import EmulatorConfig, TelloEmulator

#: Every Tello test uses its fixed UDP ports or network namespace: one xdist worker runs them one after another.
pytestmark = pytest.mark.xdist_group("tello")
NET = tello_netns.TelloNetwork()


@pytest.fixture(scope="module")
def netns():
    if reason := tello_netns.unavailable_reason():
        pytest.skip(f"Tello end-to-end tests need a network namespace: {reason}")
    try:
        created = tello_netns.create(NET)
    except VehicleError as exc:
        if "not permitted" not in str(exc) and "Permission denied" not in str(exc):
            raise
        pytest.skip(f"this machine does not allow network namespaces: {exc}")
    yield NET
    if created:
        tello_netns.delete(NET)


def start_emulator(net: tello_netns.TelloNetwork, camera_factory=None, **config) -> TelloEmulator:
    config = {"video_fps": 15, **config}
    return tello_netns.in_namespace(
        net, lambda: TelloEmulator.bind(net.drone_ip, 8889, config=EmulatorConfig(**config),
                                        camera_factory=camera_factory)).start()


@pytest.fixture
def emulator(netns, request):
    # Auto-land after 3 s (15 s on a real Tello) keeps the proof-of-life test short; a test can ask for another.
    emulator = start_emulator(netns, auto_land_s=getattr(request, "param", 3.0))
    yield emulator
    while OPEN:  # a test that failed half-way must not leave UDP 8889/8890 taken for the next ones
        OPEN.pop().close()
    emulator.stop()


@pytest.fixture
def run_log(tmp_path, caplog):
    """Everything logged during the test, also written to run.log (attached to the failure report)."""
    caplog.set_level(logging.INFO)
    handler = logging.FileHandler(tmp_path / "run.log")
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    yield caplog
    logging.getLogger().removeHandler(handler)
    handler.close()


#: Vehicles connected by the current test (closed after it, whatever happened).
OPEN: list[TelloVehicle] = []


def connect(video: bool = False, **config) -> TelloVehicle:
    vehicle = TelloVehicle(TelloConfig(host=NET.drone_ip, video=video, **config)).connect()
    OPEN.append(vehicle)
    return vehicle


class RecordingSupervisor(Supervisor):
    """The real supervisor, also keeping its events with their monotonic times (the runner's are run-relative)."""

    def __init__(self) -> None:
        super().__init__("drone")
        self.timeline: dict[str, float] = {}

    def _event(self, t_s: float, type_: str, detail: str) -> None:
        self.timeline.setdefault(type_, t_s)
        super()._event(t_s, type_, detail)


def fly(vehicle: TelloVehicle, script: str, *, perceive=None, max_duration_s: float = 40.0):
    supervisor = RecordingSupervisor()
    pilot = Pilot(vehicle, name="tello", hz=30, supervisor=supervisor, max_duration_s=max_duration_s,
                  perceive=perceive)
    result = pilot.run(parse_script(script))
    result.safety_times = supervisor.timeline
    return result


def when_hovering(emulator: TelloEmulator, action, after_s: float = 0.3) -> dict:
    """Run ``action()`` from a thread once the emulated drone hovers after takeoff; returns when it happened."""
    happened: dict = {}

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = emulator.drone_state()
            if state["flying"] and not state["busy"] and state["z_cm"] > 70:
                time.sleep(after_s)
                happened["t"] = time.monotonic()
                action()
                return
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()
    return happened


def wait_landed(emulator: TelloEmulator, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while emulator.drone_state()["flying"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return not emulator.drone_state()["flying"]


def test_script_flight_with_video_lands_normally_and_keeps_the_link_busy(emulator, run_log):
    vehicle = connect(video=True)
    frame = vehicle.camera.read()
    assert frame is not None and frame.image.shape == (720, 960, 3)
    # The test pattern: blue left, red right (BGR); row 200 is above the moving white square.
    blue, red = frame.image[200, 100], frame.image[200, 900]
    assert blue[0] > 100 and blue[2] < 40 and red[2] > 100 and red[0] < 40, "BGR channels must not be swapped"
    # The emulator auto-lands after 3 s here (15 s on a real Tello): "wait 4" proves proof of life keeps it up.
    result = fly(vehicle, "takeoff; up 50; cw 90; forward 100; wait 4; land")
    assert [c.result for c in result.commands] == ["ok"] * 6, result.commands
    assert result.failure is None
    assert "auto_land" not in run_log.text
    truth = emulator.drone_state()
    assert not truth["flying"] and truth["z_cm"] == 0
    assert truth["x_cm"] == pytest.approx(0, abs=3) and truth["y_cm"] == pytest.approx(-100, abs=3)
    # Dead reckoning from vgx/vgy (dm/s) and yaw follows the truth.
    assert result.final.x_cm == pytest.approx(truth["x_cm"], abs=20)
    assert result.final.y_cm == pytest.approx(truth["y_cm"], abs=20)
    assert result.final.yaw_deg == pytest.approx(-90, abs=3)
    # Proof of life: while flying (outside the SDK commands themselves), never more than 1 s between datagrams.
    assert 0 < emulator.longest_silence_s() < 1.0, f"longest silence {emulator.longest_silence_s():.2f} s"
    assert vehicle.camera is not None and vehicle.camera.frames_decoded > 30
    assert emulator.video_frames_sent > 30


@pytest.mark.parametrize("emulator", [15.0], indirect=True)  # our land, not the auto-land, must bring it down
def test_link_loss_mid_flight_detected_hover_then_land(emulator, run_log):
    vehicle = connect()
    fault = when_hovering(emulator, emulator.faults.link_down)

    def restore_link_later() -> None:
        while "t" not in fault:
            time.sleep(0.05)
        time.sleep(4.0)
        emulator.faults.link_up()

    restore = threading.Thread(target=restore_link_later, daemon=True)
    restore.start()
    result = fly(vehicle, "takeoff; wait 6; up 50")
    events = {e.type: e for e in result.events}
    assert "link_lost" in events and "link_land" in events
    # Detected 1 s after the last state packet, which left 0-0.1 s before the fault (state is 10 Hz).
    assert result.safety_times["link_lost"] - fault["t"] < 1.1
    land_sent = [d.t_s for d in emulator.received if d.text == "land" and d.t_s > fault["t"]]
    assert land_sent and land_sent[0] - fault["t"] < 2.0, "a land must be attempted within 2 s"
    assert result.failure and "link lost" in result.failure
    assert "up 50" not in emulator.commands(), "after a link loss the script does not go on"
    assert wait_landed(emulator), "once the link is back the drone has landed"
    assert "auto_land" not in run_log.text
    assert "link_lost" in run_log.text


def test_state_lost_one_way_land_still_reaches_the_drone(emulator, run_log):
    vehicle = connect()
    fault = when_hovering(emulator, lambda: setattr(emulator.faults, "drop_state", True))
    result = fly(vehicle, "takeoff; wait 4; up 50")
    assert "link_lost" in [e.type for e in result.events]
    assert "t" in fault
    assert wait_landed(emulator, 5.0), "the land command got through although no state came back"
    assert result.failure and "link lost" in result.failure


def test_lost_replies_time_out_and_the_drone_still_lands(emulator, run_log):
    vehicle = connect(reply_margin_s=2.0)
    fault = when_hovering(emulator, lambda: setattr(emulator.faults, "drop_replies", True), after_s=0.1)

    def replies_back() -> None:
        while "t" not in fault:
            time.sleep(0.05)
        time.sleep(4.0)
        emulator.faults.drop_replies = False

    threading.Thread(target=replies_back, daemon=True).start()
    result = fly(vehicle, "takeoff; speed 50; up 50; land")
    assert "command_timeout" in [e.type for e in result.events]
    assert wait_landed(emulator, 10.0)
    assert emulator.drone_state()["z_cm"] == 0


def test_delayed_replies_still_match_their_commands(emulator, run_log):
    emulator.faults.reply_delay_s = 0.4
    vehicle = connect()
    result = fly(vehicle, "takeoff; speed 60; cw 45; stop; land")
    assert [c.result for c in result.commands] == ["ok"] * 5
    assert not [e for e in result.events if e.type in ("command_failed", "command_timeout")]
    assert wait_landed(emulator, 5.0)


def test_frozen_video_shows_in_the_frame_age_and_recovers(emulator, run_log):
    vehicle = connect(video=True)
    try:
        assert vehicle.camera.frame_age_s() < 0.5
        emulator.faults.freeze_video = True
        time.sleep(1.6)
        assert vehicle.camera.frame_age_s() > 1.2, "a frozen stream must show as old frames"
        emulator.faults.freeze_video = False
        deadline = time.monotonic() + 5
        while vehicle.camera.frame_age_s() > 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert vehicle.camera.frame_age_s() < 0.3, "video resumes at the next key frame"
        assert vehicle.camera.stalls >= 1
    finally:
        vehicle.close()


def test_low_battery_refuses_takeoff_and_nothing_out_of_range_reaches_the_drone(emulator, run_log):
    emulator.set_battery(8)
    vehicle = connect()
    result = fly(vehicle, "takeoff; up 50")
    assert "battery 8% is below 20%: takeoff refused" in result.commands[0].result
    assert "takeoff" not in emulator.commands()
    vehicle = connect()
    try:
        for bad in (Command("forward", 5000), Command("cw", 1000), Command("speed", 0), Command("flip", "x")):
            with pytest.raises(CommandRejected):
                vehicle.execute(bad)  # even bypassing the supervisor, the backend re-checks
    finally:
        vehicle.close()
    assert not [c for c in emulator.commands() if c.split()[0] in ("forward", "cw", "speed", "flip")]


def test_battery_running_low_in_flight_lands(emulator, run_log):
    vehicle = connect()
    when_hovering(emulator, lambda: emulator.set_battery(9.5))
    result = fly(vehicle, "takeoff; wait 3; up 50")
    assert "battery_land" in [e.type for e in result.events]
    assert "up 50" not in emulator.commands()
    assert wait_landed(emulator, 5.0)


def test_ctrl_c_lands(emulator, run_log):
    vehicle = connect()
    started: dict = {}

    def perceive(now_s: float):
        state = emulator.drone_state()
        if state["flying"] and not state["busy"]:
            started.setdefault("t", now_s)
            if now_s - started["t"] > 0.5:
                raise KeyboardInterrupt
        return None

    result = fly(vehicle, "takeoff; wait 10", perceive=perceive)
    assert result.failure == "interrupted by Ctrl-C"
    assert not emulator.drone_state()["flying"], "close() waited for the landing"


def test_connect_errors_name_the_cause(netns, run_log):
    started = time.monotonic()
    with pytest.raises(LinkLost, match="Wi-Fi.*firewall"):
        connect(connect_timeout_s=1.5)  # nothing is listening at 192.168.10.1
    assert time.monotonic() - started < 4
    emulator = start_emulator(netns)
    emulator.faults.drop_state = True
    try:
        with pytest.raises(LinkLost, match="no state packet.*firewall.*8890"):
            connect()
    finally:
        emulator.stop()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("", 8890))
    try:
        with pytest.raises(VehicleError, match="8890 is already in use"):
            connect()
    finally:
        squatter.close()


def test_close_frees_every_port_and_a_second_run_connects(emulator, run_log):
    for video in (True, False):
        vehicle = connect(video=video)  # a connect has had a reply, a state packet (and a video frame)
        assert vehicle.telemetry().battery_pct == 100
        vehicle.close()
        vehicle.close()  # idempotent
        assert not [t for t in threading.enumerate() if t.name in ("tello-link", "tello-monitor", "tello-video")]
        for port in (8889, 8890, 11111):
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind(("", port))  # "Address already in use" here would fail the test
            probe.close()


#: The unmodified djitellopy, as a user of it would write it. It runs in a child process because a ``Tello`` keeps
#: UDP 8889/8890 until its process exits (which is why the backend has its own link).
DJITELLOPY_FLIGHT = """
import json, logging, sys
from djitellopy import Tello

Tello.LOGGER.setLevel(logging.WARNING)
tello = Tello(host=sys.argv[1])
tello.connect()
out = {"battery": tello.get_battery(), "battery_query": tello.query_battery(), "sdk": tello.query_sdk_version()}
tello.takeoff()
tello.move_up(30)
tello.rotate_clockwise(90)
out["height_cm"] = tello.get_height()
out["yaw_deg"] = tello.get_yaw()
tello.land()
print(json.dumps(out))
"""


def test_unmodified_djitellopy_flies_the_emulator(emulator, run_log):
    """djitellopy is the reference client: our emulator must speak the SDK the way it expects (replies, state)."""
    done = subprocess.run([sys.executable, "-c", DJITELLOPY_FLIGHT, NET.drone_ip], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["battery"] == out["battery_query"] == 100 and out["sdk"] == "20"
    assert out["height_cm"] == pytest.approx(110, abs=5) and out["yaw_deg"] == pytest.approx(90, abs=2)
    assert emulator.commands()[:6] == ["command", "battery?", "sdk?", "takeoff", "up 30", "cw 90"]
    assert wait_landed(emulator, 5.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.binary(max_size=200), min_size=1, max_size=3))
def test_arbitrary_bytes_on_the_state_and_reply_ports_never_break_the_backend(fuzz_rig, garbage):
    vehicle, from_drone = fuzz_rig
    for payload in garbage:
        from_drone.sendto(payload, (NET.client_ip, 8890))
        from_drone.sendto(payload, (NET.client_ip, 8889))
    before = vehicle.state_packets
    deadline = time.monotonic() + 3
    while vehicle.state_packets <= before + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert vehicle.state_packets > before + 2, "state keeps flowing after garbage"
    telemetry = vehicle.telemetry()
    assert all(np.isfinite([telemetry.x_cm, telemetry.y_cm, telemetry.z_cm, telemetry.yaw_deg,
                            telemetry.battery_pct]))
    assert not vehicle.busy()


@pytest.fixture(scope="module")
def fuzz_rig(netns):
    emulator = start_emulator(netns)
    vehicle = connect()
    # Garbage must come from the drone's address, or the link ignores it: a second socket in the namespace.
    from_drone = tello_netns.in_namespace(netns, lambda: _bound(netns.drone_ip))
    yield vehicle, from_drone
    events = [e.type for e in vehicle.poll_events()]
    vehicle.close()
    emulator.stop()
    from_drone.close()
    logging.getLogger(__name__).info("fuzz events: %s", sorted(set(events)))


def _bound(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    return sock

