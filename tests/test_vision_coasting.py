from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.messages import Command, Frame
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import SimDrone
from edgepilot.sim.world import World
from edgepilot.vision.pipeline import Perception


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
