"""The Tello wire format and the backend's parsing, fuzzed: arbitrary bytes never crash anything, numbers come out
finite, sticks stay in -100..100, and nothing out of range is ever formatted into a datagram."""

from __future__ import annotations

import math

import pytest
from djitellopy import Tello
from hypothesis import given
from hypothesis import strategies as st

from edgepilot.drone.tello import TelloVehicle, sdk_text
from edgepilot.drone.tello_protocol import (
    STATE_FIELDS,
    parse_reply,
    parse_state,
    velocity_to_rc,
)
from edgepilot.pilot.app import emulate_cmd
from edgepilot.pilot.app.cli import main as cli_main
from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.messages import Command, Velocity
from edgepilot.sim.tello_emulator import state_datagram, stick_velocity

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
def test_backend_state_handling_survives_whatever_djitellopy_parses(data):
    """Arbitrary bytes through djitellopy's own parser, then through the backend's telemetry: never a crash, never a
    non-finite number (djitellopy keeps unknown keys as strings, so the backend must check types)."""
    vehicle = TelloVehicle()
    text = data.decode("ascii", "replace")
    for state in (Tello.parse_state(text), {"h": text, "bat": math.nan, "yaw": math.inf, "vgx": "5"}):
        vehicle._udp = {"state": state, "responses": [data]}
        vehicle._poll_state(1.0)
        vehicle._poll_replies(1.0)
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
    assert "listening on 127.0.0.1:8889" in out and "datagrams received" in out
