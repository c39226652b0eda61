import math
import os
import time

from edgepilot.pilot.app.keys import KeyboardTeleop, key_action, split_keys
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.messages import Command, Velocity
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.vehicles import SimDrone


def test_keys_map_to_commands_and_velocity_pulses():
    assert key_action("t") == Command("takeoff", None, "keys")
    assert key_action("L") == Command("land", None, "keys")
    assert key_action(" ") == Command("stop", None, "keys")
    assert key_action("w").vx_cm_s > 0 and key_action("s").vx_cm_s < 0
    assert key_action("a").vy_cm_s > 0 and key_action("d").vy_cm_s < 0
    assert key_action("\x1b[A").vz_cm_s > 0 and key_action("\x1b[C").yaw_rate_deg_s < 0
    assert key_action("z") is None


def test_split_keys_keeps_arrow_sequences_whole():
    assert split_keys("tw\x1b[Al") == ["t", "w", "\x1b[A", "l"]


def test_teleop_thread_reads_keys_from_a_pipe():
    read_fd, write_fd = os.pipe()
    commands, velocities, quit_called = [], [], []
    teleop = KeyboardTeleop(read_fd, commands.append, velocities.append, lambda: quit_called.append(True)).start()
    os.write(write_fd, b"tw\x1b[Dq")
    deadline = time.monotonic() + 2
    while not quit_called and time.monotonic() < deadline:
        time.sleep(0.01)
    teleop.stop()
    os.close(write_fd)
    os.close(read_fd)
    assert [c.verb for c in commands] == ["takeoff"]
    assert velocities == [key_action("w"), key_action("\x1b[D")]
    assert quit_called


def test_keyboard_overrides_follow_and_stops_when_released():
    clock = FakeClock()
    drone = SimDrone(clock)
    pilot = Pilot(drone, clock=clock, perceive=lambda now: None, max_duration_s=8)
    calls = {"n": 0}
    original = pilot._tick

    def tick(t_s, now_s):
        calls["n"] += 1
        if calls["n"] == 120:  # 4 s: following (nothing seen: holding)
            pilot.manual_velocity(Velocity(vx_cm_s=40))
        return original(t_s, now_s)

    pilot._tick = tick
    result = pilot.run(parse_script("takeoff; follow me"))
    assert "manual_override" in [e.type for e in result.events]
    assert pilot.behaviour is None
    # 0.4 s at 40 cm/s, then stopped: about 16 cm forward (the way it faced after searching), not more.
    assert 12 <= math.hypot(result.final.x_cm, result.final.y_cm) <= 20
