import threading

import pytest

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.grammar import parse_command, parse_script
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.vehicles import SimCar, SimDrone


def test_scripted_flight_through_the_pilot_lands_at_the_expected_pose():
    clock = FakeClock()
    result = Pilot(SimDrone(clock), clock=clock).run(parse_script("takeoff; up 50; cw 90; forward 100; land"))
    final = result.final
    assert (final.x_cm, final.y_cm, final.yaw_deg) == pytest.approx((0, -100, -90), abs=15)
    assert not final.flying
    assert [c.result for c in result.commands] == ["ok"] * 5
    assert result.failure is None
    assert result.loop.overruns == 0


def test_wait_keeps_the_drone_alive_past_the_tello_auto_land_time():
    clock = FakeClock()
    result = Pilot(SimDrone(clock), clock=clock).run(parse_script("takeoff; wait 17; land"))
    assert "auto_land" not in [e.type for e in result.events]
    land = next(c for c in result.commands if c.command == "land")
    assert land.t_s >= 17


def test_script_without_land_lands_on_close():
    clock = FakeClock()
    result = Pilot(SimDrone(clock), clock=clock).run(parse_script("takeoff; up 30"))
    assert not result.final.flying
    assert "landing" in [e.type for e in result.events]


def test_urgent_command_from_another_source_preempts_the_script():
    clock = FakeClock()
    drone = SimDrone(clock)
    pilot = Pilot(drone, clock=clock)
    ticks = {"n": 0}
    original = pilot._tick

    def tick(t_s, now_s):
        ticks["n"] += 1
        if ticks["n"] == 90:  # 3 s in: in the middle of "forward 300"
            pilot.submit(parse_command("stop", source="voice"))
        return original(t_s, now_s)

    pilot._tick = tick
    result = pilot.run(parse_script("takeoff; forward 300; cw 90; land"))
    assert [c.command for c in result.commands] == ["takeoff", "forward 300", "stop"]
    assert "plan_cancelled" in [e.type for e in result.events]
    assert result.final.x_cm < 300 and result.final.yaw_deg == pytest.approx(0)


def test_refused_script_command_aborts_the_rest_and_reports_why():
    clock = FakeClock()
    result = Pilot(SimDrone(clock, battery_pct=8), clock=clock).run(parse_script("takeoff; up 50; land"))
    assert len(result.commands) == 1 and result.commands[0].result.startswith("rejected: battery 8%")
    assert "takeoff refused" in result.failure
    assert not result.final.flying


def test_car_drive_through_the_pilot():
    clock = FakeClock()
    result = Pilot(SimCar(clock), clock=clock).run(parse_script("forward 100; cw 90; forward 50; stop"))
    assert (result.final.x_cm, result.final.y_cm, result.final.yaw_deg) == pytest.approx((100, -50, -90), abs=15)


def test_submit_from_another_thread_in_real_time():
    drone = SimDrone()
    pilot = Pilot(drone, hz=50)
    alive = threading.Event()
    alive.set()

    def speaker():
        pilot.submit(parse_command("takeoff", source="voice"))
        threading.Event().wait(1.8)
        pilot.submit(parse_command("land", source="voice"))
        threading.Event().wait(1.6)
        alive.clear()

    thread = threading.Thread(target=speaker)
    thread.start()
    result = pilot.run(stay_alive=alive.is_set)
    thread.join()
    assert [(c.command, c.source, c.result) for c in result.commands] == [("takeoff", "voice", "ok"),
                                                                           ("land", "voice", "ok")]
    assert not result.final.flying
