"""The fault matrix: for each fault the Tello emulator can inject, a script flight and a follow flight through the client
exactly as a user runs it (``edgepilot fly --vehicle tello``, a child process), against the emulator at 192.168.10.1 in
its network namespace. From the emulator's own state and logs: the drone ends on the ground, no move was sent twice,
the client reported the fault, no traceback, and the exit status says whether the run completed. The time from each
fault to the client's reaction is measured on the emulator's clock (``python tests/test_tello_faults.py`` prints the
table the README shows; ``--client DIR`` measures another checkout's client, e.g. the code before this change).

Then every other way a flight can end (Ctrl-C, SIGTERM, a second signal while landing, an exception in the loop, the
remote controller gone) and the emulator's own plumbing: a late reply never answers the next command,
``emulate-tello --bind 127.0.0.1`` prints a fly command that works, and a killed emulator's namespace is cleaned up.
Needs root and iproute2 for the namespace (as CI has); the loopback tests need neither.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from waiting import wait_until

from edgepilot.drone.tello import MOTIONS, TelloConfig, TelloVehicle
from edgepilot.pilot.core.errors import InputError, VehicleError
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.messages import Command
from edgepilot.pilot.core.runner import Pilot
from edgepilot.pilot.core.safety import Supervisor
from edgepilot.sim import tello_netns
from edgepilot.sim.tello_emulator import EmulatorConfig, Faults, TelloEmulator

#: Every Tello test uses its fixed UDP ports or network namespace: one xdist worker runs them one after another.
pytestmark = pytest.mark.xdist_group("tello")

NET = tello_netns.TelloNetwork()
SCRIPT = "takeoff; forward 20; cw 30; land"
FOLLOW = "takeoff; follow me; wait 2; land"
#: The issue's flight, word for word.
ISSUE_FOLLOW = "takeoff; follow me; wait 10; land"
#: Shorter reply deadlines than the defaults (10 s of margin), so a lost reply is noticed within the test's patience.
FAST_CONFIG = "[tello]\nreply_margin_s = 1.5\n"
CLI = [sys.executable, "-m", "edgepilot.pilot.app.cli"]


# -- the emulator in its namespace, and the client as a user runs it ---------------------------------------------------
def namespace_or_skip() -> tello_netns.TelloNetwork:
    if reason := tello_netns.unavailable_reason():
        pytest.skip(f"the Tello fault tests need a network namespace: {reason}")
    skip_if_an_emulator_runs()
    try:
        tello_netns.create(NET)
    except VehicleError as exc:
        if "not permitted" not in str(exc) and "Permission denied" not in str(exc):
            raise
        pytest.skip(f"this machine does not allow network namespaces: {exc}")
    return NET


@pytest.fixture
def netns():
    net = namespace_or_skip()
    yield net
    tello_netns.delete(net)


def skip_if_an_emulator_runs() -> None:
    """Never tear down the namespace of an emulator someone is running on this machine."""
    if tello_netns.in_use(NET):
        pytest.skip(f"an 'edgepilot emulate-tello' is running in namespace {NET.name} on this machine")


def start_emulator(net: tello_netns.TelloNetwork, faults: Faults | None = None, **config) -> TelloEmulator:
    config = {"video_fps": 10, "auto_land_s": 15.0, **config}
    emulator = tello_netns.in_namespace(
        net, lambda: TelloEmulator.bind(net.drone_ip, 8889, config=EmulatorConfig(**config)))
    emulator.faults = faults or Faults()
    return emulator.start()


@dataclass
class Flight:
    status: int
    stdout: str
    stderr: str
    report: dict = field(default_factory=dict)

    @property
    def events(self) -> list[str]:
        return [e["type"] for e in self.report.get("events", [])]

    def result_of(self, command: str) -> str | None:
        return next((c["result"] for c in self.report.get("commands", []) if c["command"] == command), None)


def fly_cli(script: str, config: Path | None = None, *, client: Path | None = None, timeout_s: float = 90,
            extra: tuple[str, ...] = ()) -> Flight:
    """``edgepilot fly --vehicle tello --script SCRIPT --json`` in a child process, as a user runs it."""
    argv = [*CLI, "fly", "--vehicle", "tello", "--script", script, "--json", *extra]
    if config is not None:
        argv += ["--config", str(config)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=client_env(client))
    lines = done.stdout.strip().splitlines()
    report = {}
    if lines:
        try:
            report = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    return Flight(done.returncode, done.stdout, done.stderr, report)


def client_env(client: Path | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("EDGEPILOT_CONFIG", None)
    if client is not None:  # another checkout's client (a folder holding its edgepilot/ package) comes first
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(client), env.get("PYTHONPATH", "")]))
    return env


def moves_sent_twice(emulator: TelloEmulator) -> list[str]:
    sent = [c for c in emulator.commands() if c.split()[0] in MOTIONS]
    return sorted({c for c in sent if sent.count(c) > 1})


def wait_landed(emulator: TelloEmulator, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while emulator.drone_state()["flying"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return not emulator.drone_state()["flying"]


# -- the matrix --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leg:
    """One flight under one fault: what to inject, and what the client must then do."""

    faults: dict
    status: int  # the exit status: 0 the run completed, 1 it did not
    reports: str  # the event the client must report
    what: str  # what edgepilot does (for the README's table)


@dataclass(frozen=True)
class FaultCase:
    name: str
    log_kind: str  # the emulator's fault_log kind that marks the moment of the fault
    script: Leg
    follow: Leg
    follow_script: str = FOLLOW


CASES = [
    FaultCase("state lags takeoff", "state_lag",
              Leg({"takeoff_state_lag_s": 0.7}, 0, "state_disagrees",
                  "believes takeoff's ok over the state for up to 1 s (reported); the flight goes on"),
              Leg({"takeoff_state_lag_s": 0.7}, 0, "state_disagrees", "'follow me' is accepted and followed; lands"),
              follow_script=ISSUE_FOLLOW),
    FaultCase("replies lost (20%, seeded)", "reply_lost",
              Leg({"lose_replies": 0.2, "seed": 121}, 1, "command_timeout",
                  "the move's reply is lost: waits its deadline, reports it with the telemetry, hovers ('stop'), "
                  "never resends it, cancels the script, lands"),
              Leg({"lose_replies": 0.2, "seed": 121}, 0, "landed_by_state",
                  "land's reply is lost: the state shows it down for 1 s, landing confirmed")),
    FaultCase("every reply duplicated", "reply_duplicated",
              Leg({"duplicate_replies": 1.0}, 0, "stray_reply", "each copy is ignored (reported); the flight goes on"),
              Leg({"duplicate_replies": 1.0}, 0, "stray_reply", "each copy is ignored (reported); the flight goes on")),
    FaultCase("a reply 4 s late", "reply_late",
              Leg({"late_reply": "forward", "late_reply_s": 4.0}, 1, "command_timeout",
                  "as a lost reply; the late 'ok' answers nothing sent since"),
              Leg({"late_reply": "land", "late_reply_s": 4.0}, 0, "landed_by_state",
                  "land's ok is late: the state confirms the landing; the late ok is ignored")),
    FaultCase("error reply", "error_reply",
              Leg({"error_reply": "cw", "error_text": "error No valid imu"}, 1, "command_failed",
                  "reported with its command; script stops, hovers, lands"),
              Leg({"error_reply": "land", "error_text": "error Not joystick"}, 1, "command_failed",
                  "land refused: reported; land said again until acknowledged")),
    FaultCase("garbage state packets (30%)", "state_garbage",
              Leg({"garbage_state": 0.3}, 0, "state_garbage", "dropped whole (counted, reported); the flight goes on"),
              Leg({"garbage_state": 0.3}, 0, "state_garbage", "dropped whole (counted, reported); the flight goes on")),
    FaultCase("corrupt H.264 datagrams (20%)", "video_corrupt",
              Leg({"corrupt_video": 0.2}, 0, "video_corrupt", "damaged frames dropped (reported); the flight goes on"),
              Leg({"corrupt_video": 0.2}, 0, "video_corrupt",
                  "damaged frames never reach perception; following goes on")),
    FaultCase("battery sags to 9% mid-flight", "battery_sag",
              Leg({"battery_sag_after_s": 1.8}, 1, "battery_land", "safety lands at once; the run fails"),
              Leg({"battery_sag_after_s": 1.8}, 1, "battery_land", "safety lands at once; the run fails")),
]


def reaction(emulator: TelloEmulator, kind: str) -> dict[str, float]:
    """Seconds from the first fault of ``kind`` (emulator clock) to what the client did about it: the next thing it
    sent that was not a hover stick (``next``), ``stop`` (``hover``), ``land``, the drone on the ground (``down``),
    and the client's last word, ``streamoff`` (``done``)."""
    faults = emulator.faults_of(kind)
    if not faults:
        return {}
    t0 = faults[0][0]
    received = [d for d in list(emulator.received) if d.t_s > t0 and not d.dropped]
    out: dict[str, float] = {}
    nxt = next((d.t_s for d in received if d.text != "rc 0 0 0 0"), None)
    for name, t in (("next", nxt), ("hover", emulator.first_after(t0, "stop")),
                    ("land", emulator.first_after(t0, "land")),
                    ("down", next((t for t in emulator.touchdowns if t >= t0), None)),
                    ("done", emulator.first_after(t0, "streamoff"))):
        if t is not None:
            out[name] = round(t - t0, 2)
    return out


#: Measured reaction times, by (fault, flight), printed at the end of the module (``pytest -s``).
REACTIONS: dict[tuple[str, str], dict[str, float]] = {}


def fly_leg(net, case: FaultCase, flight: str, config: Path | None, client: Path | None = None):
    leg = case.script if flight == "script" else case.follow
    emulator = start_emulator(net, Faults(**leg.faults))
    try:
        started = time.monotonic()
        result = fly_cli(SCRIPT if flight == "script" else case.follow_script, config, client=client)
        took = time.monotonic() - started
        landed = wait_landed(emulator, 1.0)
        times = reaction(emulator, case.log_kind)
        return leg, emulator, result, landed, took, times
    finally:
        emulator.stop()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.log_kind for c in CASES])
def test_fault_matrix(netns, tmp_path, case):
    config = tmp_path / "fast.toml"
    config.write_text(FAST_CONFIG)
    for flight in ("script", "follow"):
        leg, emulator, result, landed, took, times = fly_leg(netns, case, flight, config)
        REACTIONS[(case.name, flight)] = {**times, "status": result.status}
        where = f"{case.name}, {flight} flight: exit {result.status}\n{result.stderr[-3000:]}"
        assert landed, f"the drone is still in the air: {where}"
        assert "Traceback" not in result.stderr, where
        assert result.status == leg.status, where
        assert moves_sent_twice(emulator) == [], where
        assert leg.reports in result.events, f"{leg.reports} not reported: {result.events}\n{where}"
        assert emulator.faults_of(case.log_kind), f"the fault was never injected: {where}"
        assert result.report["final"]["flying"] is False and result.report["completed"] == (leg.status == 0), where
        if leg.status:
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith("edgepilot fly: ") and last.endswith("the drone is on the ground"), where
        if flight == "follow":
            assert result.result_of("follow me") == "ok", where
        if case.log_kind == "state_lag" and flight == "follow":
            # The issue's flight: 'follow me' right after takeoff's ok, while the state still says "on the ground",
            # is honoured (the behaviour steers: sticks other than hover), then 'land' is sent.
            ok_s = emulator.faults_of("state_lag")[0][0]
            sticks = [d.text for d in emulator.received if d.t_s > ok_s and d.text.startswith("rc ")]
            assert any(stick != "rc 0 0 0 0" for stick in sticks), f"the follow behaviour never steered: {where}"
            assert "script_aborted" not in result.events and "land" in emulator.commands(), where
        assert took < 60, where


# -- every other way a flight ends --------------------------------------------------------------------------------------
def when_hovering(emulator: TelloEmulator, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = emulator.drone_state()
        if state["flying"] and not state["busy"] and state["z_cm"] > 70:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("signals, status", [(("SIGINT", "SIGINT"), 130), (("SIGTERM",), 143)],
                         ids=["ctrl-c-twice", "sigterm"])
def test_a_signal_lands_the_drone_and_the_exit_status_says_so(netns, signals, status):
    emulator = start_emulator(netns)
    try:
        proc = subprocess.Popen([*CLI, "fly", "--vehicle", "tello", "--script", "takeoff; wait 20; land"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=client_env(None))
        assert when_hovering(emulator), "the drone never took off"
        time.sleep(0.5)
        sent_s = emulator.clock.now()
        for name in signals:
            proc.send_signal(getattr(signal, name))
            time.sleep(0.3)  # the second one arrives while landing: it must not stop the landing
        _, stderr = proc.communicate(timeout=30)
        land_s = emulator.first_after(sent_s, "land")
    finally:
        emulator.stop()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    assert not emulator.drone_state()["flying"] and emulator.touchdowns
    assert land_s is not None and land_s - sent_s < 0.5, "land must follow the signal at once"
    assert f"{signals[0]}:" in stderr.strip().splitlines()[-1], stderr
    REACTIONS[(f"{'+'.join(signals)}", "script")] = {"land": round(land_s - sent_s, 2),
                                                     "down": round(emulator.touchdowns[-1] - sent_s, 2)}


@pytest.mark.slow
def test_an_exception_in_the_loop_lands_and_gives_one_line(netns, monkeypatch, capsys):
    from edgepilot.pilot.app.cli import main as cli_main

    emulator = start_emulator(netns)
    original = Pilot._keep_setpoint

    def broken(self, telemetry, now_s):
        if telemetry.flying and not self.vehicle.busy():
            raise ZeroDivisionError("a bug")
        return original(self, telemetry, now_s)

    monkeypatch.setattr(Pilot, "_keep_setpoint", broken)
    try:
        status = cli_main(["fly", "--vehicle", "tello", "--script", "takeoff; wait 10; land"])
    finally:
        emulator.stop()
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("edgepilot fly: internal error: ZeroDivisionError: a bug"), err
    assert "land" in emulator.commands() and not emulator.drone_state()["flying"]


@pytest.mark.slow
def test_the_remote_controller_gone_lands(netns):
    """A web cockpit whose controller disconnects calls Pilot.abort from its own thread: the drone lands at once."""
    emulator = start_emulator(netns)
    try:
        vehicle = TelloVehicle(TelloConfig(host=netns.drone_ip, video=False)).connect()
        pilot = Pilot(vehicle, name="tello", supervisor=Supervisor("drone"), max_duration_s=30)
        aborted: dict = {}

        def controller_gone() -> None:
            if when_hovering(emulator):
                aborted["t"] = emulator.clock.now()
                pilot.abort("the web cockpit's controller disconnected")

        threading.Thread(target=controller_gone, daemon=True).start()
        result = pilot.run(parse_script("takeoff; wait 20; land"))
    finally:
        emulator.stop()
    assert result.failure and "controller disconnected" in result.failure
    land_s = emulator.first_after(aborted["t"], "land")
    assert land_s is not None and land_s - aborted["t"] < 0.2
    assert not emulator.drone_state()["flying"] and not result.final.flying


# -- replies without sequence numbers (loopback, no root) -------------------------------------------------------------
@pytest.fixture
def loopback():
    emulator = TelloEmulator.bind("127.0.0.1", 0, config=EmulatorConfig(auto_land_s=15.0)).start()
    yield emulator
    emulator.stop()


def connect_loopback(emulator: TelloEmulator, **config) -> TelloVehicle:
    return TelloVehicle(TelloConfig(host="127.0.0.1", port=emulator.address[1], video=False, **config)).connect()


def test_a_late_reply_never_answers_the_next_command(loopback):
    """'forward 50' times out; its 'ok' comes while 'land' is in flight, with the drone still well above the floor. It
    must not be taken for land's answer: the backend believes it landed only once the drone has."""
    emulator = loopback
    # forward 50 at 50 cm/s is done after 1.33 s; its deadline is 1 s + 0.5 s; its 'ok' comes 0.8 s late, at 2.1 s,
    # while land (sent at 1.5 s) is bringing the drone down from 80 cm (on the floor at about 2.9 s).
    emulator.faults.late_reply, emulator.faults.late_reply_s = "forward", 0.8
    vehicle = connect_loopback(emulator, reply_margin_s=0.5)
    try:
        vehicle.execute(Command("takeoff"))
        assert wait_until(lambda: not vehicle.busy(), 10.0)
        vehicle.execute(Command("forward", 50))
        assert wait_until(lambda: "command_timeout" in [e.type for e in vehicle.poll_events()], 5.0)
        with pytest.raises(VehicleError, match="out of step|checking the link"):
            vehicle.execute(Command("cw", 90))  # no move while replies may still be owed
        vehicle.execute(Command("land"))
        believed_down: dict = {}

        def watch() -> bool:
            if not vehicle.telemetry().flying:
                believed_down["z"] = emulator.drone_state()["z_cm"]
                return True
            return False

        assert wait_until(watch, 10.0)
        assert believed_down["z"] == 0, "the late 'ok' of the move was taken as land's"
        assert "late_reply" in [e.type for e in vehicle.poll_events()], "the late 'ok' came during the landing"
        assert emulator.faults_of("reply_late")
        assert emulator.commands().count("forward 50") == 1 and "stop" in emulator.commands()
    finally:
        vehicle.close()


def test_a_duplicate_ok_does_not_finish_the_next_move_early(loopback):
    emulator = loopback
    emulator.faults.duplicate_replies, emulator.faults.duplicate_after_s = 1.0, 0.12
    vehicle = connect_loopback(emulator)
    try:
        vehicle.execute(Command("takeoff"))
        assert wait_until(lambda: not vehicle.busy(), 10.0)
        started = time.monotonic()
        vehicle.execute(Command("up", 40))  # the takeoff's second 'ok' arrives while this is in flight
        assert wait_until(lambda: not vehicle.busy(), 10.0)
        assert time.monotonic() - started > 0.5, "up 40 at 50 cm/s takes most of a second"
        assert emulator.drone_state()["z_cm"] == pytest.approx(120, abs=3)
        assert "stray_reply" in [e.type for e in vehicle.poll_events()]
    finally:
        vehicle.close()


def test_unknown_counts_as_airborne_until_state_has_disagreed_for_a_second(loopback):
    emulator = loopback
    vehicle = connect_loopback(emulator)
    try:
        assert not vehicle.telemetry().flying
        emulator.faults.drop_replies = True
        vehicle.execute(Command("takeoff"))  # its answer will never come
        assert vehicle.telemetry().flying, "a takeoff sent and not answered counts as airborne"
        assert wait_until(lambda: emulator.drone_state()["flying"] and not emulator.drone_state()["busy"], 10.0)
        emulator.faults.drop_replies = False
        vehicle.close()  # lands although no takeoff was ever acknowledged
        assert not emulator.drone_state()["flying"]
        assert "land" in emulator.commands()
    finally:
        vehicle.close()


# -- the emulator's plumbing -------------------------------------------------------------------------------------------
def test_emulate_tello_fault_flags_build_the_faults():
    import argparse

    from edgepilot.pilot.app import emulate_cmd

    parser = argparse.ArgumentParser()
    emulate_cmd.add_arguments(parser)
    args = parser.parse_args(["--state-lag", "0.7", "--lose-replies", "0.2", "--duplicate-replies", "0.5",
                              "--late-reply", "forward:4", "--error-reply", "cw=error No valid imu",
                              "--garbage-state", "0.3", "--corrupt-video", "0.1", "--battery-sag", "9@4",
                              "--fault-seed", "7"])
    faults = emulate_cmd.faults_from_args(args)
    assert (faults.takeoff_state_lag_s, faults.lose_replies, faults.duplicate_replies) == (0.7, 0.2, 0.5)
    assert (faults.late_reply, faults.late_reply_s, faults.error_reply, faults.error_text) == (
        "forward", 4.0, "cw", "error No valid imu")
    assert (faults.garbage_state, faults.corrupt_video, faults.battery_sag_to_pct, faults.battery_sag_after_s,
            faults.seed) == (0.3, 0.1, 9.0, 4.0, 7)
    for bad in (["--late-reply", "forward"], ["--error-reply", "cw"], ["--battery-sag", "9"],
                ["--battery-sag", "x@4"]):
        with pytest.raises(InputError):
            emulate_cmd.faults_from_args(parser.parse_args(bad))


@pytest.mark.slow
def test_emulate_tello_on_the_loopback_prints_a_fly_command_that_works():
    emulator = subprocess.Popen([*CLI, "emulate-tello", "--bind", "127.0.0.1", "--test-pattern", "--fps", "10",
                                 "--duration", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=client_env(None))
    try:
        lines = [emulator.stdout.readline() for _ in range(2)]
        command = lines[1].strip()
        assert command.startswith("edgepilot fly --vehicle tello --host 127.0.0.1 --port "), lines
        argv = [*CLI, *__import__("shlex").split(command)[1:]]
        flight = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=client_env(None))
        assert flight.returncode == 0, flight.stderr
        assert "on the ground" in flight.stdout
    finally:
        emulator.send_signal(signal.SIGTERM)
        out, err = emulator.communicate(timeout=10)
    assert emulator.returncode == 0 and "Traceback" not in err, err
    assert "datagrams received" in out


def _emulate_tello_in_namespace() -> subprocess.Popen:
    proc = subprocess.Popen([*CLI, "emulate-tello", "--test-pattern", "--duration", "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=client_env(None))
    first = proc.stdout.readline()
    assert "listening on 192.168.10.1:8889" in first, (first, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def _leftovers() -> tuple[bool, bool]:
    link = subprocess.run(["ip", "link", "show", NET.host_if], capture_output=True).returncode == 0
    return tello_netns.exists(NET), link


def test_a_killed_emulators_namespace_is_cleaned_up_by_the_next_start():
    if reason := tello_netns.unavailable_reason():
        pytest.skip(f"needs a network namespace: {reason}")
    skip_if_an_emulator_runs()
    tello_netns.delete(NET)
    first = _emulate_tello_in_namespace()
    try:
        with pytest.raises(InputError, match="another Tello emulator is running"):
            tello_netns.create(NET)  # in use: refused, not torn down under the running emulator
        first.kill()  # no chance to clean up
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert _leftovers() == (True, True), "kill -9 leaves the namespace and the veth pair"
    second = _emulate_tello_in_namespace()  # cleans up what the first left, and starts
    second.send_signal(signal.SIGTERM)
    out, err = second.communicate(timeout=15)
    assert second.returncode == 0 and "Traceback" not in err, err
    assert _leftovers() == (False, False), "SIGTERM removes the namespace, the veth pair and the route"
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert NET.host_if not in routes


def test_a_stale_namespace_file_is_replaced():
    if reason := tello_netns.unavailable_reason():
        pytest.skip(f"needs a network namespace: {reason}")
    skip_if_an_emulator_runs()
    tello_netns.delete(NET)
    subprocess.run(["ip", "netns", "add", NET.name], check=True)  # a half-made one: no veth, no address
    try:
        assert tello_netns.create(NET) is True
        probe = tello_netns.in_namespace(NET, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        probe.bind((NET.drone_ip, 0))  # the address is there: it was built afresh
        probe.close()
    finally:
        tello_netns.delete(NET)


def teardown_module() -> None:
    if REACTIONS:
        print("\nreaction times (s, emulator clock):")
        for (name, flight), times in REACTIONS.items():
            print(f"  {name:32} {flight:7} {times}")


# -- measuring the README's table: python tests/test_tello_faults.py [--client DIR] [--config F.toml] -------------------
def measure(client: Path | None, config: Path | None) -> None:
    net = namespace_or_skip()
    try:
        for case in CASES:
            for flight in ("script", "follow"):
                leg, emulator, result, landed, took, times = fly_leg(net, case, flight, config, client)
                print(json.dumps({"fault": case.name, "flight": flight, "status": result.status,
                                  "landed": landed, "took_s": round(took, 1), "times": times,
                                  "events": sorted(set(result.events)),
                                  "sent_twice": moves_sent_twice(emulator),
                                  "traceback": "Traceback" in result.stderr,
                                  "follow": result.result_of("follow me"),
                                  "last_err": (result.stderr.strip().splitlines() or [""])[-1][:160]}), flush=True)
    finally:
        tello_netns.delete(net)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="measure the fault matrix's reaction times")
    parser.add_argument("--client", type=Path, help="a folder holding another checkout's edgepilot/ package")
    parser.add_argument("--config", type=Path, help="a config file for the client (e.g. [tello] reply_margin_s)")
    options = parser.parse_args()
    measure(options.client, options.config)


def test_tello_settings_in_the_config_file_are_checked_before_anything_flies(tmp_path, capsys):
    from edgepilot.pilot.app.cli import main as cli_main

    for table, message in (("reply_margin_s = -1", "reply_margin_s must be a positive number"),
                           ("reply_margins = 2", "unknown setting 'reply_margins'"),
                           ("host = '1.2.3.4'", "use the --host flag")):
        config = tmp_path / "bad.toml"
        config.write_text(f"[tello]\n{table}\n")
        status = cli_main(["fly", "--vehicle", "tello", "--host", "127.0.0.1", "--script", "takeoff; land",
                           "--config", str(config)])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and message in err[0], err
