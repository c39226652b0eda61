from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.messages import Command, Frame
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import SimDrone
from edgepilot.sim.world import World
from edgepilot.vision.pipeline import Perception
from edgepilot.vision.tracker import REACQUIRED


def test_a_person_the_detector_lost_is_not_reported_on_skipped_frames():
    """With the person detector on every other frame, tracks coast through the skipped frames only while the
    detector keeps finding them; once it runs and misses, the box is gone (no flicker for the pilot to chase)."""
    clock = FakeClock()
    drone = SimDrone(clock)
    drone.execute(Command("takeoff"))
    clock.advance(3.0)  # hovering at 80 cm, the person 3 m ahead
    person = SimCamera(World.build(0, "drone", people=1), drone, clock).read().image
    empty = SimCamera(World.build(0, "drone", people=0), drone, clock).read().image
    perception = Perception(detect=("person",), person_detector="pose", person_every=2)
    seen = [[d.label for d in perception.process(Frame(image, i / 30, i))]
            for i, image in enumerate([person, person, empty, empty])]
    assert seen[0] == ["person"] and seen[1] == ["person"]  # found, then coasting on the skipped frame
    assert seen[2] == [] and seen[3] == []


def test_frames_a_detector_skips_are_not_misses():
    """Only a frame on which its detector ran and did not find it counts as a miss (a miss makes the track's identity
    be checked again when it is found again): coasting through skipped frames is not one."""
    clock = FakeClock()
    drone = SimDrone(clock)
    drone.execute(Command("takeoff"))
    clock.advance(3.0)
    person = SimCamera(World.build(0, "drone", people=1), drone, clock).read().image
    empty = SimCamera(World.build(0, "drone", people=0), drone, clock).read().image
    perception = Perception(detect=("person",), person_detector="pose", person_every=2)
    for i in range(5):
        perception.process(Frame(person, i / 30, i))
    (track,) = perception.tracker.tracks
    assert track.misses == 0 and track.recheck is None
    perception.process(Frame(empty, 5 / 30, 5))  # skipped frame: coasting
    assert track.misses == 0
    perception.process(Frame(empty, 6 / 30, 6))  # the detector ran and did not find it
    assert track.misses == 1
    perception.process(Frame(person, 7 / 30, 7))  # skipped frame: nothing new
    perception.process(Frame(person, 8 / 30, 8))
    assert track.misses == 0 and track.recheck == REACQUIRED
