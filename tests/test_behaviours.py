import math

import pytest

from pilot.behaviours import PID, FollowConfig, FollowState, FollowTarget, PIDGains
from pilot.clock import FakeClock
from pilot.grammar import parse_command, parse_script
from pilot.messages import Detection, Seen
from pilot.runner import Mode, Pilot
from sim.vehicles import Pose, SimDrone

W, H = 640, 480


def face(cx, cy, width, name=None, track=1):
    h = width * 1.2
    return Detection("face", 0.9, (cx - width / 2, cy - h / 2, cx + width / 2, cy + h / 2), track, name)


def seen(t, *detections):
    return Seen(t, W, H, tuple(detections))


def test_pid_output_is_limited_and_integrator_does_not_wind_up():
    pid = PID(PIDGains(kp=1.0, ki=1.0, out_limit=2.0))
    for _ in range(100):
        out = pid.update(10.0, 0.0, 0.1)
    assert out == 2.0
    # After a long saturation, the output leaves the limit as soon as the error flips sign (no wound-up integral).
    assert pid.update(0.0, 1.0, 0.1) < 0


def test_pid_derivative_acts_on_measurement_not_on_setpoint_jumps():
    pid = PID(PIDGains(kp=0.0, kd=1.0, out_limit=1e9))
    pid.update(0.0, 5.0, 0.1)
    assert pid.update(100.0, 5.0, 0.1) == 0.0  # set-point jumped, measurement did not: no kick
    assert pid.update(100.0, 6.0, 0.1) == pytest.approx(-10.0)


def test_pid_dead_band():
    pid = PID(PIDGains(kp=10.0, dead_band=0.1))
    assert pid.update(0.0, 0.05, 0.1) == 0.0
    assert pid.update(0.0, 0.5, 0.1) == pytest.approx(-5.0)


def test_follow_turns_towards_the_target_and_approaches_a_small_face():
    follow = FollowTarget("me")
    velocity = follow.update(seen(0.0, face(600, 190, 30)), 0.0)
    assert velocity.yaw_rate_deg_s < 0  # right of centre -> clockwise
    assert velocity.vx_cm_s > 0         # small face -> move closer
    follow = FollowTarget("me")
    velocity = follow.update(seen(0.0, face(40, 190, 200)), 0.0)
    assert velocity.yaw_rate_deg_s > 0 and velocity.vx_cm_s < 0


def test_follow_me_takes_the_largest_face_and_sticks_to_its_track():
    follow = FollowTarget("me")
    follow.update(seen(0.0, face(100, 200, 40, track=1), face(500, 200, 80, track=2)), 0.0)
    assert follow.track == 2
    follow.update(seen(0.1, face(100, 200, 90, track=1), face(500, 200, 80, track=2)), 0.1)
    assert follow.track == 2


def test_follow_name_ignores_other_people():
    follow = FollowTarget("alice")
    velocity = follow.update(seen(0.0, face(600, 200, 100, name="bob", track=1)), 0.0)
    assert follow.state == FollowState.HOLDING and velocity.is_zero
    follow.update(seen(0.1, face(600, 200, 100, name="bob", track=1), face(100, 200, 40, name="alice", track=2)),
                  0.1)
    assert follow.state == FollowState.FOLLOWING and follow.track == 2


def test_lost_target_holds_then_searches_towards_last_side_then_hovers():
    follow = FollowTarget("me")
    follow.update(seen(0.0, face(80, 200, 60)), 0.0)  # last seen on the left
    assert follow.update(seen(0.0), 0.5).is_zero and follow.state == FollowState.HOLDING
    velocity = follow.update(seen(0.0), 2.0)
    assert follow.state == FollowState.SEARCHING and velocity.yaw_rate_deg_s > 0 and velocity.vx_cm_s == 0
    assert follow.update(seen(0.0), 20.0).is_zero and follow.state == FollowState.LOST


def test_stale_detection_is_never_chased():
    follow = FollowTarget("me")
    velocity = follow.update(seen(0.0, face(600, 200, 30)), 1.5)
    assert velocity.is_zero and follow.state != FollowState.FOLLOWING


def test_frame_age_compensation_uses_the_turn_made_since_the_frame():
    # Without the derivative term, so only the compensation differs between the two.
    config = FollowConfig(yaw=PIDGains(kp=90.0, ki=0.0, kd=0.0, out_limit=60.0))
    fresh, late = FollowTarget("me", config=config), FollowTarget("me", config=config)
    for follow in (fresh, late):
        follow.update(seen(0.0, face(500, 190, 70)), 0.0)  # both now turning clockwise
    v_fresh = fresh.update(seen(0.1, face(500, 190, 70)), 0.1)
    v_late = late.update(seen(-0.2, face(500, 190, 70)), 0.1)  # same picture, but 0.3 s old
    # The old frame showed the target further right than it is now: turn less hard.
    assert v_fresh.yaw_rate_deg_s < v_late.yaw_rate_deg_s < 0


# ---- closed loop: a simulated drone follows a walking person seen through a pinhole camera -------------------
HFOV = 82.6
FOCAL_PX = (W / 2) / math.tan(math.radians(HFOV / 2))


def project_face(drone: SimDrone, person_xy, face_z_cm=165.0, name="alice", track=1):
    """Ground-truth face box of a person standing at ``person_xy`` as the drone's camera sees it."""
    pose = drone.world_pose()
    dx, dy, dz = person_xy[0] - pose.x_cm, person_xy[1] - pose.y_cm, face_z_cm - pose.z_cm
    c, s = math.cos(math.radians(pose.yaw_deg)), math.sin(math.radians(pose.yaw_deg))
    forward, left = c * dx + s * dy, -s * dx + c * dy
    if forward < 20:
        return None
    u, v = W / 2 - FOCAL_PX * left / forward, H / 2 - FOCAL_PX * dz / forward
    half_w, half_h = FOCAL_PX * 8 / forward, FOCAL_PX * 11 / forward
    if not (0 <= u < W and 0 <= v < H):
        return None
    return Detection("face", 0.9, (u - half_w, v - half_h, u + half_w, v + half_h), track, name)


def walking_person(t_s):
    """Walks 0.5 m/s along a 4 m x 3 m rectangle in front of the drone's start, starting at 2 m ahead."""
    perimeter = [(200, 0), (200, 200), (500, 200), (500, -200), (200, -200), (200, 0)]
    dist = max(0.0, t_s - 4.0) * 50.0
    for (x0, y0), (x1, y1) in zip(perimeter, perimeter[1:], strict=False):
        leg = math.hypot(x1 - x0, y1 - y0)
        if dist <= leg:
            return x0 + (x1 - x0) * dist / leg, y0 + (y1 - y0) * dist / leg
        dist -= leg
    return perimeter[-1]


def run_follow(script, extra_people=(), stop_at_s=None, seconds=40.0):
    clock = FakeClock()
    drone = SimDrone(clock, origin=Pose())
    stats = {"frames": 0, "centred": 0, "distance_cm": []}
    pilot_box = {}

    def perceive(now_s):
        t = now_s
        target = walking_person(t)
        found = []
        det = project_face(drone, target)
        if det:
            found.append(det)
        for index, (xy, name) in enumerate(extra_people, start=2):
            other = project_face(drone, xy, name=name, track=index)
            if other:
                found.append(other)
        pilot = pilot_box["pilot"]
        if pilot.mode == Mode.FOLLOWING:
            stats["frames"] += 1
            if det and abs(det.center[0] - W / 2) <= 0.15 * W:
                stats["centred"] += 1
            pose = drone.world_pose()
            stats["distance_cm"].append(math.hypot(target[0] - pose.x_cm, target[1] - pose.y_cm))
        if stop_at_s is not None and abs(t - stop_at_s) < 1e-6:
            pilot.submit(parse_command("stop", source="voice"))
        return Seen(now_s, W, H, tuple(found))

    pilot = Pilot(drone, clock=clock, perceive=perceive, max_duration_s=seconds)
    pilot_box["pilot"] = pilot
    result = pilot.run(parse_script(script))
    return pilot, result, stats


def test_drone_keeps_a_walking_person_centred_and_at_distance():
    pilot, result, stats = run_follow("takeoff; up 80; follow me")
    assert stats["frames"] > 30 * 25
    assert stats["centred"] / stats["frames"] >= 0.8
    distances = stats["distance_cm"][len(stats["distance_cm"]) // 4:]  # after settling
    assert 90 < sum(distances) / len(distances) < 200


def test_follow_alice_ignores_bob():
    bob_xy = (150, -60)  # bob stands closer, right of the start: "follow me" would take him
    _, _, stats = run_follow("takeoff; up 80; follow alice", extra_people=[(bob_xy, "bob")])
    assert stats["centred"] / stats["frames"] >= 0.8


def test_stop_during_follow_hovers_within_one_tick():
    clock_hz = 30.0
    stop_t = round(12.0 * clock_hz) / clock_hz
    pilot, result, _ = run_follow("takeoff; up 80; follow me", stop_at_s=stop_t, seconds=14.0)
    stop = next(c for c in result.commands if c.command == "stop")
    assert stop.source == "voice" and stop.t_s <= stop_t + 1 / clock_hz + 1e-6
    assert pilot.behaviour is None and pilot.mode == Mode.HOVERING
