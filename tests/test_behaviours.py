import math

import pytest

from edgepilot.pilot.core.behaviours import PID, FollowConfig, FollowState, FollowTarget, PIDGains
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.grammar import parse_command, parse_script
from edgepilot.pilot.core.messages import Detection, Seen
from edgepilot.pilot.core.runner import Mode, Pilot
from edgepilot.sim.render import SimCamera, face_box_px
from edgepilot.sim.vehicles import Pose, SimDrone
from edgepilot.sim.world import Person, World

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


# ---- closed loop: a simulated drone follows a walking person; the renderer's camera model gives the ground truth -----
WALK = [(200, 0), (200, 200), (500, 200), (500, -200), (200, -200)]


def follow_world(extra_people=()):
    alice = Person.create("alice", WALK, speed_cm_s=50.0, start_s=4.0, mode="loop", seed=1)
    others = [Person.create(name, [xy], seed=i + 2) for i, (xy, name) in enumerate(extra_people)]
    return World.build(0, "drone", people=0).with_people(alice, *others)


def run_follow(script, extra_people=(), stop_at_s=None, seconds=40.0):
    clock = FakeClock()
    drone = SimDrone(clock, origin=Pose())
    world = follow_world(extra_people)
    camera = SimCamera(world, drone, clock, width=W, height=H)  # only its pose and intrinsics: nothing rendered
    stats = {"frames": 0, "centred": 0, "distance_cm": []}
    pilot_box = {}

    def perceive(now_s):
        pose, people = camera.camera_pose(), world.people_at(camera.world_time_s())
        found = []
        for track, person in enumerate(people, start=1):
            box = face_box_px(pose, camera.intrinsics, person)
            if box and 0 <= (box[0] + box[2]) / 2 < W and 0 <= (box[1] + box[3]) / 2 < H:
                found.append(Detection("face", 0.9, box, track, person.name))
        pilot = pilot_box["pilot"]
        target = next(d for d in found if d.name == "alice") if any(d.name == "alice" for d in found) else None
        if pilot.mode == Mode.FOLLOWING:
            stats["frames"] += 1
            if target and abs(target.center[0] - W / 2) <= 0.15 * W:
                stats["centred"] += 1
            here, alice = drone.world_pose(), people[0]
            stats["distance_cm"].append(math.hypot(alice.x_cm - here.x_cm, alice.y_cm - here.y_cm))
        if stop_at_s is not None and abs(now_s - stop_at_s) < 1e-6:
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
