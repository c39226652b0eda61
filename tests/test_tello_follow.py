"""The follow behaviour, unchanged, through the real Tello backend (its UDP link) on the emulator's H.264 video of the
simulated world. Its own module, so the e2e module's long-lived fuzz rig has released the emulator's port."""

from __future__ import annotations

from test_tello_e2e import connect, netns, run_log, start_emulator  # noqa: F401 - pytest fixtures

from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.runner import Pilot
from edgepilot.pilot.core.safety import Supervisor


def test_follow_me_through_the_real_backend_on_the_emulators_video(netns, run_log):  # noqa: F811
    """The follow behaviour, unchanged, on H.264 video decoded from UDP: the simulated world's person, 3 m ahead."""
    from edgepilot.pilot.core.perception import PerceptionWorker
    from edgepilot.sim.render import SimCamera
    from edgepilot.sim.world import World
    from edgepilot.vision.pipeline import Perception

    world = World.build(0, "drone", people=1)  # one person standing 3 m straight ahead
    emulator = start_emulator(netns, auto_land_s=15.0,
                              camera_factory=lambda drone, clock: SimCamera(world, drone, clock, 960, 720))
    try:
        vehicle = connect(video=True)
        pilot = Pilot(vehicle, name="tello", hz=30, supervisor=Supervisor("drone"), max_duration_s=14.0,
                      can_see=True)
        perception = Perception(detect=("face", "person"), person_every=2)
        modes = []
        worker = PerceptionWorker(vehicle.camera, perception.process, pilot.seen.set, max_fps=15).start()
        original = pilot._tick
        pilot._tick = lambda t_s, now_s: (original(t_s, now_s), modes.append(pilot.mode.value))[0]
        try:
            result = pilot.run(parse_script("takeoff; up 60; follow me"))
        finally:
            worker.stop()
        assert worker.error is None
        assert modes.count("following") > 30 * 5, "the person was seen and followed for seconds"
        truth = emulator.drone_state()
        # It flew towards the person (3 m ahead) and stopped at a following distance, then landed on close.
        assert 80 < truth["x_cm"] < 260 and abs(truth["y_cm"]) < 60, truth
        assert not truth["flying"] and result.failure is None
    finally:
        emulator.stop()
