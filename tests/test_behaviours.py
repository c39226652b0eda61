import bisect
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import pytest

from edgepilot.pilot.core.behaviours import PID, FollowConfig, FollowState, FollowTarget, PIDGains, slew
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.geometry import wrap_deg
from edgepilot.pilot.core.grammar import parse_command, parse_script
from edgepilot.pilot.core.messages import Detection, Seen, Telemetry
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


def test_pid_integral_fades_inside_the_dead_band():
    holding, fading = PID(PIDGains(kp=0.0, ki=1.0, dead_band=0.1)), PID(PIDGains(kp=0.0, ki=1.0, dead_band=0.1,
                                                                           integral_fade_s=1.0))
    for pid in (holding, fading):
        for _ in range(10):
            pid.update(0.0, -1.0, 0.1)  # error 1 for 1 s
    assert holding.update(0.0, 0.0, 0.1) == pytest.approx(1.0)
    assert fading.update(0.0, 0.0, 0.1) == pytest.approx(math.exp(-0.1))
    for _ in range(30):
        held, faded = holding.update(0.0, 0.0, 0.1), fading.update(0.0, 0.0, 0.1)
    assert held == pytest.approx(1.0) and faded < 0.05  # three time constants later


def test_follow_turns_towards_the_target_and_approaches_a_small_face():
    follow = FollowTarget("me")
    follow.update(seen(0.0, face(600, 190, 30)), 0.0)
    velocity = follow.update(seen(0.1, face(600, 190, 30)), 0.1)
    assert velocity.yaw_rate_deg_s < 0  # right of centre -> clockwise
    assert velocity.vx_cm_s > 0         # small face -> move closer
    follow = FollowTarget("me")
    follow.update(seen(0.0, face(40, 190, 200)), 0.0)
    velocity = follow.update(seen(0.1, face(40, 190, 200)), 0.1)
    assert velocity.yaw_rate_deg_s > 0 and velocity.vx_cm_s < 0


def test_slew_limits_the_step_and_reverses_through_zero():
    assert slew(0.0, 60.0, 4.0) == 4.0 and slew(10.0, 0.0, 4.0) == 6.0 and slew(5.0, 6.0, 4.0) == 6.0
    assert slew(2.0, -60.0, 4.0) == 0.0  # would cross zero: one tick at zero first
    assert slew(0.0, -60.0, 4.0) == -4.0


def test_set_points_are_slew_limited_tick_by_tick():
    follow = FollowTarget("me")
    # Far right: the PID wants the limit (-60 deg/s) at once; the set-point ramps there at 120 deg/s^2.
    yaws = [follow.update(seen(tick / 30, face(620, 190, 30)), tick / 30).yaw_rate_deg_s for tick in range(30)]
    assert yaws[:16] == pytest.approx([-4.0 * tick for tick in range(16)])
    assert yaws[16:] == pytest.approx([-60.0] * 14)


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


def turning_follow():
    """A follow that has been turning clockwise at 60 deg/s for a second (its set-points: the predicted turn)."""
    follow = FollowTarget("me", config=FollowConfig(yaw=PIDGains(kp=90.0, out_limit=60.0), yaw_accel_deg_s2=1e6,
                                                    max_compensation_deg=30.0))
    for tick in range(31):
        follow.update(seen(tick / 30, face(600, 190, 70)), tick / 30)
    return follow


def test_frame_age_compensation_uses_the_turn_made_since_the_frame():
    fresh, late = turning_follow(), turning_follow()
    v_fresh = fresh.update(seen(1.1, face(480, 190, 70)), 1.1)
    v_late = late.update(seen(0.8, face(480, 190, 70)), 1.1)  # same picture, but 0.3 s old
    assert late.last_compensation_deg == pytest.approx(-60.0 * 0.3)  # the turn sent over those 0.3 s
    # The old frame showed the target further right than it is now (we turned clockwise since): turn less hard.
    assert v_fresh.yaw_rate_deg_s < v_late.yaw_rate_deg_s < 0


def test_frame_age_compensation_does_not_use_the_set_point_just_sent_times_the_age():
    """The old compensation shifted the target by (the rate just sent) x (frame age): the output fed back on itself.
    Now the set-point just sent counts only for the time it has been in force."""
    follow = FollowTarget("me", config=FollowConfig(yaw=PIDGains(kp=1000.0, out_limit=60.0), yaw_accel_deg_s2=1e6))
    follow.update(seen(-0.1, face(600, 190, 70)), -0.1)  # the first tick sends nothing (slew from hover)
    assert follow.update(seen(0.0, face(600, 190, 70)), 0.0).yaw_rate_deg_s == -60.0
    follow.update(seen(-0.2, face(600, 190, 70)), 1 / 30)  # a frame 0.23 s old
    assert follow.last_compensation_deg == pytest.approx(-60.0 / 30)  # not -60 x 0.23 = -14


def test_frame_age_compensation_measures_the_turn_with_telemetry_and_is_bounded():
    follow = FollowTarget("me", config=FollowConfig(max_compensation_deg=15.0))
    for i in range(6):  # 10 Hz packets: turning left at 40 deg/s through +-180, integer degrees like a Tello's
        follow.observe(Telemetry(t_s=i / 10, yaw_deg=wrap_deg(170 + 4 * i), last_state_s=i / 10))
    # Measured from 0.35 s (interpolated: 184 deg) to the last packet at 0.5 s (-170 = 190 deg): 6 deg; no
    # set-point was sent since.
    assert follow.turned_since_deg(0.35, 0.55) == pytest.approx(6.0)
    follow._sent_yaw.append((0.5, 200.0))  # from the last packet on, the turn is predicted from the set-points
    assert follow.turned_since_deg(0.35, 0.55) == pytest.approx(15.0)  # 6 + 200 x 0.05 = 16: bounded at 15


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


# ---- closed loop on the Tello's terms, fast: a yaw-only drone whose yaw rate is `gain` x the set-point (rounded to
# the rc stick's 1 deg/s), 10 Hz telemetry in whole degrees, 15 fps frames that reach the behaviour `latency_s` after
# they were captured; no rendering. The bench (scripts/bench_follow.py) runs the same flights.
@dataclass
class YawFlight:
    t_s: list[float]
    yaw_rate_deg_s: list[float]  # the set-points, one per 30 Hz tick
    error_frac: list[float]      # where the face's centre truly is at each tick: offset from the centre / image width


def fly_yaw(make_follow: Callable[[], FollowTarget], *, latency_s: float, gain: float, seed: int = 0,
            seconds: float = 8.0, telemetry: bool = True, hidden_s: float = 0.0, walk_deg_s: float = 0.0,
            hz: float = 30.0, fps: float = 15.0, telemetry_hz: float = 10.0) -> YawFlight:
    """A person starts 20-30 deg to one side (``seed`` picks it) and stays put or walks around the drone at
    ``walk_deg_s``. Each frame is stamped with its capture time plus ``hidden_s`` (the part of the latency the
    stamp does not show); ``telemetry`` gives the behaviour each tick's telemetry through ``observe``."""
    rng = random.Random(seed)
    hfov = FollowConfig().hfov_deg
    bearing0 = rng.choice((-1, 1)) * rng.uniform(20.0, 30.0)  # where the person is, CCW + (left)
    frame_phase, state_phase = rng.uniform(0, 1 / fps), rng.uniform(0, 1 / telemetry_hz)
    times, headings = [0.0], [0.0]  # the drone's heading at each tick: piecewise linear between them
    follow, flight = make_follow(), YawFlight([], [], [])

    def heading_at(t: float) -> float:
        i = bisect.bisect_right(times, t) - 1
        if i >= len(times) - 1:
            return headings[-1] + (t - times[-1]) * rate_now
        return headings[i] + (headings[i + 1] - headings[i]) * (t - times[i]) / (times[i + 1] - times[i])

    def offset_px(t: float) -> float:  # the person's offset from the image centre at time t, + right
        return -(bearing0 + walk_deg_s * t - heading_at(t)) * W / hfov

    rate_now = 0.0
    for tick in range(int(seconds * hz) + 1):
        t = tick / hz
        if tick:
            headings.append(headings[-1] + rate_now * (t - times[-1]))
            times.append(t)
        captured = math.floor((t - latency_s - frame_phase) * fps) / fps + frame_phase  # newest frame here by now
        frame = None
        if captured >= 0:
            x = W / 2 + offset_px(captured) + rng.gauss(0.0, 1.5)
            if 0 <= x < W:
                frame = seen(captured + hidden_s, face(x, 0.4 * H, 0.08 * W))
        if telemetry:
            state_t = math.floor((t - state_phase) * telemetry_hz) / telemetry_hz + state_phase
            if state_t >= 0:
                follow.observe(Telemetry(t_s=t, yaw_deg=wrap_deg(round(heading_at(state_t))),
                                         last_state_s=state_t + 0.003))
        rate = follow.update(frame, t).yaw_rate_deg_s
        rate_now = gain * max(-100, min(100, round(rate)))  # the rc stick: whole deg/s
        flight.t_s.append(t)
        flight.yaw_rate_deg_s.append(rate)
        flight.error_frac.append(offset_px(t) / W)
    return flight


#: Set-points smaller than this (deg/s) count as zero when looking for reversals: the rc stick's resolution.
FLIP_DEAD_BAND_DEG_S = 1.0
#: Settled: from then on within this fraction of the image width of the centre.
SETTLE_BAND_FRAC = 0.05


def sign_flips(rates: Sequence[float]) -> int:
    """Consecutive set-points of opposite signs, both outside the dead band."""
    return sum(1 for a, b in pairwise(rates) if a * b < 0 and min(abs(a), abs(b)) > FLIP_DEAD_BAND_DEG_S)


def largest_step(rates: Sequence[float]) -> float:
    return max(abs(b - a) for a, b in pairwise(rates))


def flight_metrics(flight: YawFlight, final_s: float = 1.0) -> dict[str, float]:
    """Sign flips per second, the largest tick-to-tick step (deg/s), the settling time (s; inf: still outside the
    band in the last ``final_s``) and the final error (mean |offset| over the last ``final_s``, fraction of the image
    width)."""
    rates, end_s = flight.yaw_rate_deg_s, flight.t_s[-1]
    outside = [t for t, e in zip(flight.t_s, flight.error_frac, strict=True) if abs(e) > SETTLE_BAND_FRAC]
    settled_s = math.inf if outside and outside[-1] >= end_s - final_s else (outside[-1] if outside else 0.0)
    final = [abs(e) for t, e in zip(flight.t_s, flight.error_frac, strict=True) if t >= end_s - final_s]
    return {"flips_per_s": sign_flips(rates) / (end_s - flight.t_s[0]), "max_step_deg_s": largest_step(rates),
            "settling_s": settled_s, "final_error_frac": statistics.fmean(final)}


@pytest.mark.parametrize("telemetry", [True, False], ids=["telemetry", "predicted"])
@pytest.mark.parametrize("gain", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("latency_s", [0.1, 0.2, 0.3])
def test_follow_is_smooth_and_stable_with_video_latency_and_a_wrong_plant_gain(latency_s, gain, telemetry):
    """Stable over 0.1-0.3 s of video latency and a yaw gain off by 2x either way, with the turn since each frame
    measured by 10 Hz telemetry (``observe``) or, without it, predicted from the set-points sent."""
    config = FollowConfig()
    bound = config.yaw_accel_deg_s2 / 30  # 4 deg/s: the slew limit at 30 Hz
    for seed in range(3):
        flight = fly_yaw(lambda: FollowTarget("me", config=config),
                         latency_s=latency_s, gain=gain, seed=seed, telemetry=telemetry)
        m = flight_metrics(flight)
        assert m["flips_per_s"] == 0, m
        assert m["max_step_deg_s"] <= bound + 1e-9, m
        assert m["settling_s"] <= 4.0, m
        assert m["final_error_frac"] <= 0.10, m
