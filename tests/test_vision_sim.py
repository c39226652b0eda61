"""The whole vision path on simulator frames: billboards textured with the real photos, a drone hovering at face
height and closing in on one person; the name must come and stay, the other people must not get it."""

from __future__ import annotations

import cv2
import pytest
from vision_synth import photos

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.sim import render, vehicles
from edgepilot.sim import world as world_module
from edgepilot.vision.detectors import FaceDetector
from edgepilot.vision.identity import FaceDatabase, FaceEncoder
from edgepilot.vision.pipeline import Perception


class Approach:
    """A pose source flying from 200 cm to 90 cm in front of a person, at face height (the face grows from ~30 px,
    too small to identify, to ~70 px)."""

    def __init__(self, clock: FakeClock, target_xy: tuple[float, float], face_z_cm: float) -> None:
        self.clock, self.target, self.z = clock, target_xy, face_z_cm

    def world_pose(self):
        distance = max(90.0, 200.0 - 100.0 * self.clock.now())
        return vehicles.Pose(self.target[0] - distance, self.target[1], self.z, 0.0)


def test_drone_camera_names_the_enrolled_person(tmp_path):
    folder = photos()["obama.jpg"].parent
    world = world_module.World.build(seed=0, kind="drone")
    people = world.people_at(0.0)
    if not any(p.name == "obama" for p in people) or not (folder / "obama2.jpg").exists():
        pytest.skip("the simulator did not use the real photos")
    obama = next(p for p in people if p.name == "obama")
    database, detector, encoder = FaceDatabase(tmp_path), FaceDetector(), FaceEncoder()
    for name in ("obama", "biden"):
        image = cv2.imread(str(photos()[f"{name}.jpg"]))
        database.add(name, [encoder.encode(image, detector.detect(image)[0].box)])
    clock = FakeClock()
    camera = render.SimCamera(world, Approach(clock, (obama.x_cm, obama.y_cm), obama.face_center_cm[2] - 3.0),
                              clock, noise_std=4.0, start_s=0.0)
    perception = Perception(detect=("face",), faces_dir=tmp_path)
    names = []
    for _ in range(60):
        faces = [d for d in perception.process(camera.read()) if d.label == "face"]
        names.append([d.name for d in faces])
        clock.advance(1 / 30)
    first = next(i for i, n in enumerate(names) if "obama" in n)
    assert first < 30, names
    assert sum("obama" in n for n in names[first:]) >= 0.95 * len(names[first:])
    assert all("biden" not in n for n in names)
