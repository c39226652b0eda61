"""Scripted scenarios in the simulator, shared by ``edgepilot demo`` and the closed-loop tests: the world, the
vehicle, the camera, perception and the pilot wired together on a fake clock (faster than real time, deterministic),
plus the ground-truth measurements that say how well it went."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.geometry import CameraModel
from edgepilot.pilot.core.messages import Detection, Frame, Seen
from edgepilot.pilot.core.runner import Pilot, RunResult
from edgepilot.robot_car.lane import LaneBehaviour, LaneConfig
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import SimCar
from edgepilot.sim.world import Person, World

log = logging.getLogger(__name__)

Detect = Callable[[Frame], list[Detection]]
#: Called once per tick with the frame, what perception saw and the pilot (to draw the annotated video).
OnFrame = Callable[[Frame, Seen, Pilot], None]

#: The car counts as hitting a person when its centre comes this close to theirs (half a toy car plus a figure).
COLLISION_CM = 12.0


@dataclass
class CarReport:
    laps: float = 0.0
    max_offset_cm: float = 0.0
    mean_offset_cm: float = 0.0
    half_width_cm: float = 0.0
    stops_for_person: int = 0  # stops during which a person (ground truth) stood in the lane ahead
    false_stops: int = 0       # stops with nobody in the lane ahead the whole time
    crossings: int = 0
    collisions: int = 0
    result: RunResult | None = None
    offsets_cm: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "laps": round(self.laps, 2),
            "lane": {"max_offset_cm": round(self.max_offset_cm, 1), "mean_offset_cm": round(self.mean_offset_cm, 1),
                     "half_width_cm": self.half_width_cm},
            "stops_for_person": self.stops_for_person,
            "false_stops": self.false_stops,
            "collisions": self.collisions,
            "final": self.result.final.final() if self.result else {},
        }


@dataclass(frozen=True, eq=False)
class SteppingOut(Person):
    """A person waiting beside the road at arc length ``at_s_cm`` who steps out and crosses when the car comes within
    ``trigger_cm`` of the crossing, as a test driver would script it (so it happens whatever the car's speed)."""

    at_s_cm: float = 0.0
    trigger_cm: float = 130.0
    trigger: dict = field(default_factory=dict)  # {"t_s": world time it stepped out}, filled by the scenario

    def position(self, t_s: float) -> tuple[float, float]:
        start = self.trigger.get("t_s")
        if start is None:
            return self.waypoints_cm[0]
        return Person.position(dataclasses.replace(self, start_s=start), t_s)


def car_world(seed: int = 0, crossings: tuple[float, ...] = (0.6,), walk_cm_s: float = 12.0) -> World:
    """The car's track with people who cross the road: one per fraction of the lap in ``crossings``, walking from one
    side of the road to the other when the car approaches."""
    world = World.build(seed, "car")
    track = world.track
    assert track is not None
    for index, fraction in enumerate(crossings):
        s = fraction * track.length_cm
        side = -1.0 if index % 2 == 0 else 1.0
        start, end = track.point_at(s, side * 45.0), track.point_at(s, -side * 45.0)
        person = SteppingOut.create(f"pedestrian{index + 1}", [start[:2], end[:2]], speed_cm_s=walk_cm_s, scale=0.15,
                                    seed=seed * 10 + index, mode="stop")
        world = world.with_people(dataclasses.replace(person, at_s_cm=s))
    return world


def run_car(world: World, *, seconds: float = 35.0, hz: float = 30.0, speed_cm_s: float = 40.0,
            detect: Detect | None = None, on_frame: OnFrame | None = None, crossings: int = 0,
            driver: Callable[[CameraModel], Any] | None = None) -> CarReport:
    """Drive the lane for ``seconds`` of simulated time and measure it against the world's ground truth.
    ``driver(camera_model)`` makes the behaviour that drives (default: the lane follower at ``speed_cm_s``)."""
    track = world.track
    assert track is not None
    clock = FakeClock()
    car = SimCar(clock, origin=world.start_pose)
    camera = SimCamera(world, car, clock)
    behaviour = driver(camera.intrinsics) if driver is not None else \
        LaneBehaviour(camera.intrinsics, LaneConfig(half_width_cm=track.half_width_cm), speed_cm_s=speed_cm_s)
    report = CarReport(half_width_cm=track.half_width_cm, crossings=crossings)
    pilot_ref: list[Pilot] = []
    progress = {"s": None, "travelled": 0.0}
    touching: set[str] = set()
    stop: dict = {"on": False, "person": False}  # the stop in progress, and whether a person was in the lane

    def perceive(now_s: float) -> Seen:
        frame = camera.read()
        assert frame is not None
        detections = tuple(detect(frame)) if detect else ()
        seen = Seen(frame.t_s, frame.width, frame.height, detections, frame)
        _measure(now_s)
        if on_frame is not None:
            on_frame(frame, seen, pilot_ref[0])
        return seen

    def _measure(now_s: float) -> None:
        pose = car.world_pose()
        point = track.project(pose.x_cm, pose.y_cm)
        report.offsets_cm.append(abs(point.lateral_cm))
        if progress["s"] is not None:
            step = point.s_cm - progress["s"]
            if step < -track.length_cm / 2:
                step += track.length_cm
            elif step > track.length_cm / 2:
                step -= track.length_cm
            progress["travelled"] += step
        progress["s"] = point.s_cm
        for person in world.people:
            if isinstance(person, SteppingOut) and "t_s" not in person.trigger and \
                    (person.at_s_cm - point.s_cm) % track.length_cm < person.trigger_cm:
                person.trigger["t_s"] = camera.world_time_s()
        people = world.people_at(camera.world_time_s())
        blocked = behaviour.mode == "blocked" and behaviour.state.startswith("stopped")
        # A stop was for a person if someone stood in the lane ahead while the car waited (they may be stepping in
        # as it stops); one with nobody in the lane the whole time was a false stop.
        if blocked:
            stop["person"] = stop["person"] or any(_in_lane_ahead(track, point.s_cm, p.x_cm, p.y_cm, p.width_cm)
                                                   for p in people)
        elif stop["on"]:
            _count_stop(report, stop["person"])
            stop["person"] = False
        stop["on"] = blocked
        for person in people:
            near = math.hypot(person.x_cm - pose.x_cm, person.y_cm - pose.y_cm) < COLLISION_CM
            if near and person.name not in touching:
                report.collisions += 1
                touching.add(person.name)
            elif not near:
                touching.discard(person.name)

    pilot = Pilot(car, clock=clock, hz=hz, perceive=perceive, behaviour=behaviour, max_duration_s=seconds)
    pilot_ref.append(pilot)
    report.result = pilot.run()
    if stop["on"]:
        _count_stop(report, stop["person"])
    report.laps = progress["travelled"] / track.length_cm
    report.max_offset_cm = max(report.offsets_cm, default=0.0)
    report.mean_offset_cm = sum(report.offsets_cm) / max(1, len(report.offsets_cm))
    return report


def _count_stop(report: CarReport, for_person: bool) -> None:
    if for_person:
        report.stops_for_person += 1
    else:
        report.false_stops += 1


def _in_lane_ahead(track, car_s_cm: float, x_cm: float, y_cm: float, width_cm: float,
                   ahead_cm: float = 100.0) -> bool:
    """Ground truth: does any part of a person stand in the lane or on its kerb (5 cm) within ``ahead_cm`` in front
    of the car?"""
    point = track.project(x_cm, y_cm)
    gap = (point.s_cm - car_s_cm) % track.length_cm
    return abs(point.lateral_cm) - width_cm / 2.0 <= track.half_width_cm + 5.0 and gap <= ahead_cm
