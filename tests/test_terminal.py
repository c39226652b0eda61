import io
import os
import pty
import subprocess
import sys
import time

import pytest

from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.app.terminal import CLEAR, StatusLine, describe_velocity, format_status
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.messages import Velocity
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.vehicles import SimDrone


def test_key_moves_in_words():
    assert describe_velocity(Velocity(vx_cm_s=40)) == "forward"
    assert describe_velocity(Velocity(vz_cm_s=40, yaw_rate_deg_s=-45)) == "up + turn right"
    assert describe_velocity(Velocity()) == "stop"


def test_status_line_says_mode_height_battery_link_heard_and_target():
    clock = FakeClock()
    pilot = Pilot(SimDrone(clock), clock=clock)
    status = RunStatus().attach(pilot)
    status.note_heard("take of", None, "low confidence")
    pilot.run(parse_script("takeoff; up 50; land"))
    line = format_status(status.snapshot(), key="forward", total_s=30)
    assert line.startswith("t ") and "/30 s" in line and "landed" in line
    assert "h 0 cm" in line and "bat " in line and "link ok" in line
    assert 'heard "take of" (not understood)' in line and "keys: forward" in line


def test_safety_events_are_printed_when_they_happen(capsys):
    clock = FakeClock()
    drone = SimDrone(clock, battery_pct=21)
    drone.drain_flying_pct_s = 1.0
    pilot = Pilot(drone, clock=clock, max_duration_s=60)
    status = RunStatus().attach(pilot)
    stream = io.StringIO()
    line = StatusLine(status, stream)
    pilot.add_tap(line)
    printed_during_run = []
    original = pilot.vehicle.close

    def close() -> None:  # the run is ending: what was printed by now was printed live
        printed_during_run.append(capsys.readouterr().out)
        original()

    pilot.vehicle.close = close
    pilot.run(parse_script("takeoff; wait 50"))
    assert "battery_low: battery 15%" in printed_during_run[0]
    assert "battery_land: battery 10%: landing" in printed_during_run[0]


@pytest.mark.slow
def test_fly_in_a_terminal_shows_a_status_line_updating_in_place(tmp_path):
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "edgepilot.pilot.app.cli", "fly", "--script", "takeoff; land"],
                               cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the run ended and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=30)
    os.close(controller)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert text.count(CLEAR) >= 3  # redrawn in place
    assert "taking off" in text and "link ok" in text and "bat 100%" in text
    assert "takeoff" in text and "final:" in text
