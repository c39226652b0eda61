"""The Tello emulator against a plain UDP client on the loopback: the SDK as the drone speaks it, range checks,
battery refusals, auto-land, faults and garbage input. (djitellopy end to end is in test_tello_e2e.py.)"""

from __future__ import annotations

import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgepilot.drone.tello_protocol import STATE_FIELDS, parse_state
from edgepilot.sim.tello_emulator import EmulatorConfig, TelloEmulator

#: Every Tello test uses its fixed UDP ports or network namespace: one xdist worker runs them one after another.
pytestmark = pytest.mark.xdist_group("tello")


class Client:
    """A raw SDK client: a control socket and a state socket on the loopback."""

    def __init__(self, emulator_address: tuple[str, int], state_sock: socket.socket) -> None:
        self.target = emulator_address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.state = state_sock

    def send(self, text: str | bytes) -> None:
        self.sock.sendto(text.encode() if isinstance(text, str) else text, self.target)

    def ask(self, text: str, timeout_s: float = 5.0) -> str:
        self.send(text)
        self.sock.settimeout(timeout_s)
        return self.sock.recvfrom(2048)[0].decode()

    def silent(self, wait_s: float = 0.3) -> bool:
        """True if nothing arrives on the control socket within ``wait_s``."""
        self.sock.settimeout(wait_s)
        try:
            self.sock.recvfrom(2048)
        except TimeoutError:
            return True
        return False

    def state_line(self) -> bytes:
        return self.state.recvfrom(2048)[0]

    def latest_state(self) -> dict[str, float]:
        """The newest state line (older ones queued in the socket are skipped)."""
        self.state.settimeout(2.0)
        line = self.state_line()
        self.state.settimeout(0.0)
        try:
            while True:
                line = self.state_line()
        except BlockingIOError:
            pass
        self.state.settimeout(2.0)
        return parse_state(line)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def emulator_and_client():
    state_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    state_sock.bind(("127.0.0.1", 0))
    state_sock.settimeout(2.0)
    config = EmulatorConfig(state_port=state_sock.getsockname()[1], auto_land_s=2.0, video_fps=10)
    emulator = TelloEmulator.bind("127.0.0.1", 0, config=config).start()
    client = Client(emulator.address, state_sock)
    yield emulator, client
    client.close()
    emulator.stop()
    state_sock.close()


def test_sdk_conversation_like_the_drone(emulator_and_client):
    emulator, client = emulator_and_client
    assert client.silent(0.2), "before 'command' the drone says nothing"
    assert client.ask("command") == "ok"
    line = client.state_line()
    assert line.endswith(b";\r\n")
    keys = [field.split(":")[0] for field in line.decode().strip().rstrip(";").split(";")]
    assert keys == list(STATE_FIELDS)
    assert parse_state(line)["bat"] == 100
    assert client.ask("battery?") == "100"
    assert client.ask("forward 50") == "error Motor stop"  # on the ground
    started = time.monotonic()
    assert client.ask("takeoff") == "ok"
    assert time.monotonic() - started > 1.0, "takeoff is answered when the drone hovers, not at once"
    assert emulator.drone_state()["z_cm"] == pytest.approx(80, abs=2)
    client.send("rc 0 0 0 0")
    assert client.silent(0.2), "rc gets no reply"
    assert client.ask("cw 90") == "ok"
    assert emulator.drone_state()["yaw_deg"] == pytest.approx(-90, abs=2)
    time.sleep(0.25)
    state = client.latest_state()
    assert state["yaw"] == pytest.approx(90, abs=2), "Tello yaw is clockwise positive"
    assert state["h"] == pytest.approx(80, abs=2)
    assert client.ask("land") == "ok"
    assert not emulator.drone_state()["flying"]


def test_range_checks_unknown_commands_and_stop(emulator_and_client):
    emulator, client = emulator_and_client
    client.ask("command")
    client.ask("takeoff")
    for bad in ("forward 19", "forward 501", "up abc", "cw 0", "cw 361", "speed 5", "speed 101", "flip x"):
        assert client.ask(bad).startswith("error"), bad
    assert client.ask("look around").startswith("unknown command")
    client.send("rc 0 500 0 0")  # out of range rc: ignored, no motion
    time.sleep(0.3)
    assert abs(emulator.drone_state()["x_cm"]) < 1
    # stop interrupts a move: the move is answered "forced stop", then the stop "ok"
    client.send("forward 300")
    time.sleep(0.5)
    client.send("stop")
    client.sock.settimeout(2.0)
    assert client.sock.recvfrom(100)[0] == b"forced stop"
    assert client.sock.recvfrom(100)[0] == b"ok"
    assert not emulator.drone_state()["busy"]
    assert 5 < emulator.drone_state()["x_cm"] < 100


def test_battery_refusals(emulator_and_client):
    emulator, client = emulator_and_client
    client.ask("command")
    emulator.set_battery(8)
    assert client.ask("takeoff").startswith("error Battery low")
    emulator.set_battery(40)
    assert client.ask("takeoff") == "ok"
    assert client.ask("flip l").startswith("error Battery low")


def test_rc_keeps_it_flying_and_moves_it_then_auto_land(emulator_and_client):
    emulator, client = emulator_and_client  # auto_land_s=2 in this fixture
    client.ask("command")
    client.ask("takeoff")
    end = time.monotonic() + 2.5  # longer than the auto-land time: rc is proof of life
    while time.monotonic() < end:
        client.send("rc -50 0 0 0")  # left/right stick -50 = 50 cm/s to the left
        time.sleep(0.1)
    state = emulator.drone_state()
    assert state["flying"]
    assert state["y_cm"] > 80, "rc a<0 flies left (+y in REP-103)"
    deadline = time.monotonic() + 6
    while emulator.drone_state()["flying"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not emulator.drone_state()["flying"], "without commands the Tello lands by itself"


def test_faults_drop_and_delay(emulator_and_client):
    emulator, client = emulator_and_client
    client.ask("command")
    emulator.faults.reply_delay_s = 0.4
    started = time.monotonic()
    assert client.ask("battery?") == "100"
    assert time.monotonic() - started >= 0.35
    emulator.faults.reply_delay_s = 0.0
    emulator.faults.drop_replies = True
    client.send("speed 50")
    assert client.silent(0.3)
    emulator.faults.drop_replies = False
    emulator.faults.drop_state = True
    time.sleep(0.2)
    client.state.settimeout(0.1)
    while True:  # drain what was sent before the fault
        try:
            client.state_line()
        except TimeoutError:
            break
    client.state.settimeout(0.5)
    with pytest.raises(TimeoutError):
        client.state_line()
    emulator.faults.drop_state = False
    assert client.state_line()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=0, max_size=300))
def test_arbitrary_bytes_never_break_the_emulator(emulator_and_client, garbage):
    emulator, client = emulator_and_client
    client.send(b"command")
    client.sock.settimeout(2.0)
    client.sock.recvfrom(100)
    client.send(garbage)
    # Whatever the garbage was, the drone still answers the next query.
    client.sock.settimeout(2.0)
    while (reply := client.ask("sdk?")) != "20":  # skip the garbage's own reply, if any
        assert reply
