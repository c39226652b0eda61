"""The Tello wire format and the backend's parsing, fuzzed: arbitrary bytes never crash anything, numbers come out
finite, sticks stay in -100..100, and nothing out of range is ever formatted into a datagram. Then the UDP link and
the backend on the loopback (no root needed: the emulator listens on 127.0.0.1 at a port of its own, the client binds
UDP 8889 and 8890 as it does for a real drone): replies, state with its arrival time, garbage, ports freed on close."""

from __future__ import annotations

import math
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from waiting import wait_until

from edgepilot.drone.tello import TelloConfig, TelloVehicle, sdk_text
from edgepilot.drone.tello_link import TelloLink
from edgepilot.drone.tello_protocol import (
    CONTROL_PORT,
    STATE_FIELDS,
    STATE_PORT,
    parse_reply,
    parse_state,
    velocity_to_rc,
)
from edgepilot.pilot.app import emulate_cmd
from edgepilot.pilot.app.cli import main as cli_main
from edgepilot.pilot.core.errors import CommandRejected, VehicleError
from edgepilot.pilot.core.messages import Command, Velocity
from edgepilot.sim.tello_emulator import EmulatorConfig, TelloEmulator, state_datagram, stick_velocity

#: Every Tello test uses its fixed UDP ports or network namespace: one xdist worker runs them one after another.
pytestmark = pytest.mark.xdist_group("tello")

finite = st.floats(min_value=-1000, max_value=1000, allow_nan=False)


@given(st.binary(max_size=400))
def test_state_parser_never_raises_and_returns_finite_numbers(data):
    state = parse_state(data)
    assert all(isinstance(v, float) and math.isfinite(v) for v in state.values())


@given(st.binary(max_size=400))
def test_reply_parser_never_raises(data):
    reply = parse_reply(data)
    assert reply.kind in ("ok", "error", "forced_stop", "value")
    assert reply.ok == (reply.kind in ("ok", "value"))


def test_reply_classification_is_exact():
    assert parse_reply(b"ok\r\n").kind == "ok"
    assert parse_reply(b"forced stop").kind == "forced_stop"
    assert parse_reply(b"unknown command: look").kind == "error", "djitellopy would call this a success"
    assert parse_reply(b"error Motor stop").kind == "error"
    assert parse_reply(b"87").kind == "value"
    assert parse_reply(b"\xff\xfe").kind == "error"


@given(st.dictionaries(st.sampled_from(STATE_FIELDS), finite))
def test_state_round_trip(values):
    """The emulator's drone-side state string, read by the client's parser (two readings of the SDK document)."""
    parsed = parse_state(state_datagram(values))
    assert list(parsed) == list(STATE_FIELDS)
    for key, value in values.items():
        assert parsed[key] == pytest.approx(value, abs=0.51)


@given(st.binary(max_size=300))
def test_backend_state_handling_survives_any_datagram(data):
    """Arbitrary bytes through the link's parser and the backend's telemetry, and as a reply: never a crash, never a
    non-finite number. The backend also checks types itself (a state dict with strings, NaN or inf)."""
    vehicle = TelloVehicle()
    for t_s, state in enumerate((parse_state(data), {"h": data.decode("ascii", "replace"), "bat": math.nan,
                                                     "yaw": math.inf, "vgx": "5", "vgy": True}), start=1):
        vehicle._on_state(state, float(t_s))
        vehicle._on_reply(data)
        telemetry = vehicle.telemetry()
        assert all(math.isfinite(v) for v in (telemetry.x_cm, telemetry.y_cm, telemetry.z_cm, telemetry.yaw_deg,
                                              telemetry.battery_pct))


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True),
       st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_sticks_always_in_range(vx, vy, vz, yaw):
    rc = velocity_to_rc(Velocity(vx, vy, vz, yaw))
    assert all(isinstance(v, int) and -100 <= v <= 100 for v in rc)


def test_rc_mapping_follows_rep103():
    # forward 50, left 30, up 20, turning counter-clockwise 40 deg/s
    assert velocity_to_rc(Velocity(50, 30, 20, 40)) == (-30, 50, 20, -40)
    assert stick_velocity(-30, 50, 20, -40) == Velocity(50, 30, 20, 40)


@given(st.sampled_from(["forward", "up", "cw", "ccw", "speed"]),
       st.one_of(st.integers(-10_000, 10_000), st.floats(allow_nan=True, allow_infinity=True)))
def test_sdk_text_never_formats_out_of_range(verb, arg):
    bounds = {"forward": (20, 500), "up": (20, 500), "cw": (1, 360), "ccw": (1, 360), "speed": (10, 100)}[verb]
    try:
        text = sdk_text(Command(verb, arg))
    except CommandRejected:
        return
    value = int(text.split()[1])
    assert bounds[0] <= value <= bounds[1] and value == arg


def test_emulate_cmd_rejects_bad_options(capsys):
    assert cli_main(["emulate-tello", "--battery", "150"]) == 2
    assert "--battery must be 0-100" in capsys.readouterr().err
    parser = __import__("argparse").ArgumentParser()
    emulate_cmd.add_arguments(parser)
    assert parser.parse_args([]).auto_land == 15.0


def test_emulate_cmd_runs_on_a_plain_address(capsys):
    assert cli_main(["emulate-tello", "--bind", "127.0.0.1", "--duration", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "listening on 127.0.0.1:9889" in out and "datagrams received" in out
    assert "edgepilot fly --vehicle tello --host 127.0.0.1 --port 9889 --script" in out, out


# -- the link and the backend on the loopback ---------------------------------------------------------------------------
def assert_ports_free(*ports: int) -> None:
    for port in ports:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("", port))  # "Address already in use" here fails the test
        probe.close()


def no_thread_named(*names: str) -> bool:
    return not [t for t in threading.enumerate() if t.name in names and t.is_alive()]


@pytest.fixture
def fake_drone():
    """A socket standing in for the drone at 127.0.0.1, and one at another address (127.0.0.2) that is not it."""
    drone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    drone.bind(("127.0.0.1", 0))
    drone.settimeout(2.0)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    yield drone, stranger
    drone.close()
    stranger.close()


def test_link_sends_queues_replies_and_survives_any_state_datagram(fake_drone):
    drone, stranger = fake_drone
    link = TelloLink("127.0.0.1", drone_port=drone.getsockname()[1]).open()
    try:
        link.send("command")
        data, client = drone.recvfrom(100)
        assert data == b"command" and client[1] == CONTROL_PORT, "commands leave from our port 8889"
        link.send_rc(-30, 50, 20, -40)
        assert drone.recvfrom(100)[0] == b"rc -30 50 20 -40"
        for bad in ((0, 0, 0, 101), (0, 0, 0, 1.5), (True, 0, 0, 0)):
            with pytest.raises(CommandRejected):
                link.send_rc(*bad)
        drone.sendto(b"ok", ("127.0.0.1", CONTROL_PORT))
        drone.sendto(b"87\r\n", ("127.0.0.1", CONTROL_PORT))
        stranger.sendto(b"ok", ("127.0.0.1", CONTROL_PORT))  # not from the drone: ignored
        replies = []
        assert wait_until(lambda: replies.extend(link.take_replies()) or len(replies) >= 2, 3.0)
        assert [r.data for r in replies] == [b"ok", b"87\r\n"]
        assert wait_until(lambda: link.foreign_datagrams >= 1, 3.0)
        assert link.take_replies() == []
        # Non-ASCII and unreadable state datagrams change nothing and stop nothing; a good line after them arrives.
        for garbage in (b"\xff\xfe\x00\x80", "h:\u00e9;".encode(), b"", b";;;:"):
            drone.sendto(garbage, ("127.0.0.1", STATE_PORT))
        assert wait_until(lambda: link.unreadable_states >= 3, 3.0)
        assert link.latest_state() is None
        before = time.monotonic()
        drone.sendto(state_datagram({"h": 55, "bat": 87}), ("127.0.0.1", STATE_PORT))
        assert wait_until(lambda: link.latest_state() is not None, 3.0)
        packet = link.latest_state()
        assert packet.state["h"] == 55 and packet.state["bat"] == 87 and packet.seq == 1
        assert before <= packet.t_s <= time.monotonic(), "stamped with its arrival time on the monotonic clock"
        stranger.sendto(state_datagram({"h": 1}), ("127.0.0.1", STATE_PORT))
        assert wait_until(lambda: link.foreign_datagrams >= 2, 3.0)
        assert link.latest_state() is packet
        assert link.receiving
    finally:
        link.close()
    link.close()  # idempotent
    assert not link.receiving and no_thread_named("tello-link")
    assert_ports_free(CONTROL_PORT, STATE_PORT)
    with pytest.raises(VehicleError, match="closed"):
        link.send("command")


def test_a_taken_port_is_one_clear_error_and_nothing_stays_bound():
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("", STATE_PORT))
    try:
        with pytest.raises(VehicleError, match=f"UDP port {STATE_PORT} is already in use by another program"):
            TelloLink("127.0.0.1").open()
    finally:
        squatter.close()
    assert_ports_free(CONTROL_PORT, STATE_PORT)
    assert no_thread_named("tello-link")


@pytest.fixture
def loopback_emulator():
    emulator = TelloEmulator.bind("127.0.0.1", 0, config=EmulatorConfig(auto_land_s=15.0, video_fps=10)).start()
    yield emulator
    emulator.stop()


def test_two_connect_close_cycles_in_one_process_and_the_ports_are_free_after_each(loopback_emulator):
    """djitellopy could not do this: its sockets and threads live until the process exits."""
    emulator = loopback_emulator
    config = TelloConfig(host="127.0.0.1", port=emulator.address[1], video=False)
    # First run: take off without waiting for it (a takeoff takes seconds), then close() lands.
    vehicle = TelloVehicle(config).connect()
    assert vehicle.telemetry().battery_pct == 100
    started = time.monotonic()
    vehicle.execute(Command("takeoff"))
    assert time.monotonic() - started < 0.1, "execute() never waits for the drone"
    assert vehicle.busy()
    assert wait_until(lambda: not vehicle.busy(), 10.0)
    assert vehicle.telemetry().flying and emulator.drone_state()["flying"]
    vehicle.close()
    assert not emulator.drone_state()["flying"], "close() lands a flying drone"
    assert no_thread_named("tello-link", "tello-monitor")
    assert_ports_free(CONTROL_PORT, STATE_PORT)
    # Second run in the same process: binds afresh, the state flows, a command is answered and matched.
    vehicle = TelloVehicle(config).connect()
    try:
        packets = vehicle.state_packets
        assert wait_until(lambda: vehicle.state_packets > packets + 2, 3.0)
        assert time.monotonic() - vehicle.telemetry().last_state_s < 0.5
        vehicle.execute(Command("speed", 50))
        assert wait_until(lambda: not vehicle.busy(), 3.0)
        assert not [e for e in vehicle.poll_events() if e.type in ("command_failed", "command_timeout")]
        assert emulator.commands().count("command") == 2 and "speed 50" in emulator.commands()
    finally:
        vehicle.close()
    vehicle.close()  # idempotent
    assert no_thread_named("tello-link", "tello-monitor")
    assert_ports_free(CONTROL_PORT, STATE_PORT)
