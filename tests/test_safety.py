"""The safety supervisor: battery, link loss, input watchdog, geofence, clamps, lock-out, explicit emergency; and the
same rules closed-loop on the simulated drone and car through the runner."""

from __future__ import annotations

import math

import pytest

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.grammar import parse_command, parse_script
from edgepilot.pilot.core.messages import HOVER, Command, Telemetry, Velocity
from edgepilot.pilot.core.runner import Pilot
from edgepilot.pilot.core.safety import SafetyConfig, Supervisor
from edgepilot.sim.vehicles import SimCar, SimDrone


def flying(t_s: float = 10.0, **kwargs) -> Telemetry:
    values = {"z_cm": 80.0, "flying": True, "battery_pct": 90.0, "last_state_s": t_s} | kwargs
    return Telemetry(t_s=t_s, **values)


def on_ground(t_s: float = 10.0, **kwargs) -> Telemetry:
    values = {"battery_pct": 90.0, "last_state_s": t_s} | kwargs
    return Telemetry(t_s=t_s, **values)


def test_takeoff_refused_on_low_battery_with_a_clear_message():
    supervisor = Supervisor("drone")
    with pytest.raises(CommandRejected, match=r"battery 8% is below 20%: takeoff refused; charge the battery"):
        supervisor.admit(parse_command("takeoff"), on_ground(battery_pct=8.0))
    assert supervisor.admit(parse_command("takeoff"), on_ground(battery_pct=25.0)).verb == "takeoff"
    with pytest.raises(CommandRejected, match="flip refused"):
        supervisor.admit(parse_command("flip l"), flying(battery_pct=45.0))
    assert supervisor.admit(parse_command("flip l"), flying(battery_pct=55.0)).arg == "l"


def test_battery_warns_then_lands_then_locks_out():
    supervisor = Supervisor("drone")
    assert supervisor.tick(10.0, flying(battery_pct=16.0)) == []
    assert supervisor.tick(10.1, flying(10.1, battery_pct=15.0)) == []
    assert [e.type for e in supervisor.drain_events()] == ["battery_low"]
    forced = supervisor.tick(10.2, flying(10.2, battery_pct=10.0))
    assert forced == [Command("land", None, "safety")]
    assert supervisor.tick(10.3, flying(10.3, battery_pct=9.0)) == [], "land is forced once"
    with pytest.raises(CommandRejected, match="safety has taken over"):
        supervisor.admit(parse_command("forward 50"), flying(10.4, battery_pct=9.0))
    assert supervisor.admit(parse_command("land"), flying(10.4, battery_pct=9.0)).verb == "land"
    assert supervisor.limit_velocity(Velocity(50, 0, 0, 0), flying(10.4), 10.4) == HOVER


def test_link_loss_hovers_then_lands_and_fails_the_run():
    supervisor = Supervisor("drone")
    stale = flying(10.0)  # last state packet at 10.0 s
    assert supervisor.tick(10.9, stale) == []
    assert supervisor.tick(11.05, stale) == [Command("stop", None, "safety")]
    events = supervisor.drain_events()
    assert events[0].type == "link_lost" and "hovering" in events[0].detail
    assert supervisor.failure is None
    assert supervisor.tick(11.3, stale) == []
    assert supervisor.tick(11.55, stale) == [Command("land", None, "safety")]
    assert supervisor.failure.startswith("link lost")
    assert [e.type for e in supervisor.drain_events()] == ["link_land"]
    assert supervisor.tick(12.0, stale) == []
    assert supervisor.tick(13.6, stale) == [Command("land", None, "safety")], "land is repeated while the link is down"
    with pytest.raises(CommandRejected):
        supervisor.admit(parse_command("up 50"), stale)
    assert supervisor.admit(Command("land", None, "safety"), stale).verb == "land", "safety's own land gets through"


def test_link_loss_on_the_ground_fails_without_moving():
    supervisor = Supervisor("drone")
    assert supervisor.tick(12.0, on_ground(10.0)) == []
    assert supervisor.failure and "link lost" in supervisor.failure
    with pytest.raises(CommandRejected, match="no state from the drone"):
        Supervisor("drone").admit(parse_command("takeoff"), on_ground(12.0, last_state_s=10.0))


def test_input_watchdog_drone_1s_car_1_5s():
    for kind, limit in (("drone", 1.0), ("car", 1.5)):
        supervisor = Supervisor(kind)
        go = Velocity(50, 0, 0, 20)
        assert supervisor.limit_velocity(go, flying(0.0), 0.0) == go, "not armed before the first input"
        supervisor.note_input(0.0)
        assert supervisor.limit_velocity(go, flying(limit - 0.1), limit - 0.1) == go
        assert supervisor.limit_velocity(go, flying(limit + 0.1), limit + 0.1) == HOVER
        assert [e.type for e in supervisor.drain_events()] == ["input_stale"]
        supervisor.note_input(limit + 0.2)
        assert supervisor.limit_velocity(go, flying(limit + 0.3), limit + 0.3) == go


def test_velocity_clamps_and_nan():
    supervisor = Supervisor("drone")
    limited = supervisor.limit_velocity(Velocity(500, -500, math.nan, math.inf), flying(), 10.0)
    assert limited == Velocity(100, -100, 0, 0)


def test_geofence_ceiling_and_radius_reject_moves_beyond():
    supervisor = Supervisor("drone", SafetyConfig(fence_ceiling_cm=300, fence_radius_cm=1000))
    supervisor.admit(parse_command("takeoff"), on_ground())
    with pytest.raises(CommandRejected, match="ceiling"):
        supervisor.admit(parse_command("up 250"), flying(z_cm=80.0))
    assert supervisor.admit(parse_command("up 200"), flying(z_cm=80.0)).arg == 200
    with pytest.raises(CommandRejected, match="geofence"):
        supervisor.admit(parse_command("forward 500"), flying(x_cm=600.0))
    # Facing back toward home (yaw 180), the same "forward 500" goes inward: allowed.
    assert supervisor.admit(parse_command("forward 500"), flying(x_cm=600.0, yaw_deg=180.0)).arg == 500


def test_geofence_stops_outward_velocity_at_the_edge_and_lands_beyond():
    supervisor = Supervisor("drone", SafetyConfig(fence_radius_cm=1000, fence_margin_cm=50))
    at_edge = flying(x_cm=980.0)
    stopped = supervisor.limit_velocity(Velocity(80, 30, 0, 0), at_edge, 10.0)
    assert stopped.vx_cm_s == pytest.approx(0.0, abs=1e-9) and stopped.vy_cm_s == pytest.approx(30.0)
    inward = supervisor.limit_velocity(Velocity(-80, 0, 0, 0), at_edge, 10.0)
    assert inward.vx_cm_s == pytest.approx(-80.0)
    high = supervisor.limit_velocity(Velocity(0, 0, 50, 0), flying(z_cm=260.0), 10.0)
    assert high.vz_cm_s == 0.0
    assert supervisor.tick(10.0, flying(x_cm=990.0)) == []
    assert supervisor.tick(10.1, flying(10.1, x_cm=1010.0)) == [Command("land", None, "safety")]
    assert "fence_breach" in [e.type for e in supervisor.drain_events()]


def test_emergency_only_when_a_person_says_it():
    supervisor = Supervisor("drone")
    assert supervisor.admit(parse_command("emergency", "voice"), flying()).verb == "emergency"
    with pytest.raises(CommandRejected, match="only accepted when a person says it"):
        supervisor.admit(Command("emergency", None, "follow"), flying())
    assert parse_command("stop").verb == "stop" and parse_command("hover").verb == "stop", "stop means hover"


def test_out_of_range_arguments_never_pass():
    supervisor = Supervisor("drone")
    for command in (Command("forward", 5000), Command("cw", 720), Command("speed", 300), Command("up", -20),
                    Command("forward", math.nan)):
        with pytest.raises(CommandRejected):
            supervisor.admit(command, flying())
    with pytest.raises(CommandRejected, match="configured limit"):
        Supervisor("drone", SafetyConfig(max_speed_cm_s=50)).admit(Command("speed", 80), flying())


def test_keepalive_due_only_while_flying():
    supervisor = Supervisor("drone")
    assert not supervisor.keepalive_due(10.0, on_ground())
    assert supervisor.keepalive_due(10.0, flying())
    supervisor.limit_velocity(HOVER, flying(), 10.0)
    assert not supervisor.keepalive_due(10.1, flying(10.1))
    assert supervisor.keepalive_due(10.3, flying(10.3))


def test_sim_drone_wait_longer_than_auto_land_stays_up_and_low_battery_refuses():
    clock = FakeClock()
    drone = SimDrone(clock)
    pilot = Pilot(drone, clock=clock, hz=30, supervisor=Supervisor("drone"), max_duration_s=60)
    result = pilot.run(parse_script("takeoff; wait 17; up 50"))
    assert "auto_land" not in [e.type for e in result.events], "proof of life keeps the drone up through wait 17"
    assert [c.result for c in result.commands] == ["ok", "ok", "ok"]

    clock = FakeClock()
    weak = SimDrone(clock, battery_pct=8.0)
    result = Pilot(weak, clock=clock, hz=30, supervisor=Supervisor("drone"), max_duration_s=10).run(
        parse_script("takeoff; up 50"))
    assert "battery 8% is below 20%" in result.commands[0].result
    assert not result.final.flying and weak.telemetry().z_cm == 0


def test_sim_car_fence_stops_it():
    clock = FakeClock()
    car = SimCar(clock)
    supervisor = Supervisor("car", SafetyConfig(fence_radius_cm=300))
    pilot = Pilot(car, clock=clock, hz=30, supervisor=supervisor, max_duration_s=30)
    result = pilot.run([Command("speed", 100)] + [Command("forward", 200)] * 3)
    assert any("geofence" in c.result for c in result.commands), "the move that would leave the fence is refused"
    assert car.telemetry().x_cm <= 300
