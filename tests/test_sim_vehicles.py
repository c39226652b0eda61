import pytest

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.errors import CommandRejected, VehicleError
from edgepilot.pilot.core.geometry import wrap_deg
from edgepilot.pilot.core.grammar import parse_command, parse_script
from edgepilot.pilot.core.hal import Vehicle
from edgepilot.pilot.core.messages import Velocity
from edgepilot.sim.vehicles import Pose, SimCar, SimDrone


def run_script(vehicle, clock, script):
    for command in parse_script(script):
        vehicle.execute(command)
        while vehicle.busy():
            clock.sleep(1 / 30)
    return vehicle.telemetry()


def test_sim_vehicles_implement_the_vehicle_protocol():
    assert isinstance(SimDrone(FakeClock()), Vehicle)
    assert isinstance(SimCar(FakeClock()), Vehicle)


def test_drone_script_ends_at_the_expected_pose():
    clock = FakeClock()
    drone = SimDrone(clock)
    tel = run_script(drone, clock, "takeoff")
    assert tel.flying and tel.z_cm == pytest.approx(80, abs=1)
    tel = run_script(drone, clock, "up 50; cw 90; forward 100")
    assert (tel.x_cm, tel.y_cm, tel.z_cm, tel.yaw_deg) == pytest.approx((0, -100, 130, -90), abs=1)
    tel = run_script(drone, clock, "land")
    assert not tel.flying and tel.z_cm == 0
    assert 95 < tel.battery_pct < 100


def test_moves_take_the_time_the_speed_says():
    clock = FakeClock()
    drone = SimDrone(clock)
    run_script(drone, clock, "takeoff; speed 20")
    start = clock.now()
    run_script(drone, clock, "forward 100")
    # 5 s at 20 cm/s plus a little for acceleration and deceleration.
    assert 5.0 <= clock.now() - start <= 5.6


def test_moves_are_smooth():
    clock = FakeClock()
    drone = SimDrone(clock)
    run_script(drone, clock, "takeoff")
    drone.execute(parse_command("forward 200"))
    speeds = []
    while drone.busy():
        clock.sleep(0.05)
        speeds.append(drone.telemetry().vx_cm_s)
    steps = [abs(b - a) for a, b in zip(speeds, speeds[1:], strict=False)]
    # Ramps at about the 150 cm/s^2 acceleration limit (the last discrete step into the target is a bit sharper):
    # never the jump from 0 to 50 cm/s an instant velocity change would give.
    assert max(steps) <= 200 * 0.05
    assert max(speeds) == pytest.approx(50, abs=0.5)


def test_rc_velocity_moves_in_the_body_frame():
    clock = FakeClock()
    drone = SimDrone(clock)
    run_script(drone, clock, "takeoff; ccw 90")  # now facing +y
    drone.send_velocity(Velocity(vx_cm_s=50))
    clock.sleep(2.0)
    tel = drone.telemetry()
    assert (tel.x_cm, tel.y_cm) == pytest.approx((0, 100), abs=1)


def test_drone_auto_lands_after_15_s_without_a_command():
    clock = FakeClock()
    drone = SimDrone(clock)
    run_script(drone, clock, "takeoff")
    clock.sleep(14.0)
    assert drone.telemetry().flying
    clock.sleep(4.0)
    assert not drone.telemetry().flying
    assert [e.type for e in drone.poll_events()] == ["auto_land"]


def test_drone_refuses_moves_on_the_ground_and_close_lands():
    clock = FakeClock()
    drone = SimDrone(clock)
    with pytest.raises(VehicleError, match="take off first"):
        drone.execute(parse_command("up 50"))
    run_script(drone, clock, "takeoff")
    drone.close()
    drone.close()
    assert not drone.telemetry().flying
    with pytest.raises(VehicleError, match="closed"):
        drone.execute(parse_command("takeoff"))


def test_stop_cancels_a_move_and_hovers():
    clock = FakeClock()
    drone = SimDrone(clock)
    run_script(drone, clock, "takeoff")
    drone.execute(parse_command("forward 300"))
    clock.sleep(1.0)
    drone.execute(parse_command("stop"))
    x = drone.telemetry().x_cm
    clock.sleep(1.0)
    assert not drone.busy() and drone.telemetry().x_cm == pytest.approx(x)


def test_car_script_ends_at_the_expected_pose():
    clock = FakeClock()
    car = SimCar(clock)
    tel = run_script(car, clock, "forward 100; cw 90; forward 50; stop")
    assert (tel.x_cm, tel.y_cm, tel.yaw_deg) == pytest.approx((100, -50, -90), abs=1)
    assert not tel.flying


def test_car_rejects_drone_commands():
    car = SimCar(FakeClock())
    with pytest.raises(CommandRejected, match="not a car command"):
        car.execute(parse_command("takeoff"))


def test_car_ignores_sideways_and_vertical_velocity():
    clock = FakeClock()
    car = SimCar(clock)
    car.send_velocity(Velocity(vx_cm_s=20, vy_cm_s=50, vz_cm_s=50, yaw_rate_deg_s=0))
    clock.sleep(1.0)
    tel = car.telemetry()
    assert (tel.x_cm, tel.y_cm, tel.z_cm) == pytest.approx((20, 0, 0), abs=0.5)


def test_world_pose_composes_origin_and_odometry():
    clock = FakeClock()
    car = SimCar(clock, origin=Pose(100, 200, 0, 90))
    run_script(car, clock, "forward 50")
    pose = car.world_pose()
    assert (pose.x_cm, pose.y_cm, pose.yaw_deg) == pytest.approx((100, 250, 90), abs=0.5)


@pytest.mark.parametrize("angle, wrapped", [(0, 0), (180, 180), (-180, 180), (270, -90), (-270, 90), (720, 0)])
def test_wrap_deg(angle, wrapped):
    assert wrap_deg(angle) == pytest.approx(wrapped)
