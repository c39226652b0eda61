"""The learned driver's loop through the CLI: record a drive, trim its end, train (a tiny run), drive with the model;
the model card and the drive's manifest say which runs taught it and which model drove."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.app.driving_data import frame_labels
from edgepilot.pilot.record.files import sha256_of
from edgepilot.robot_car.learned import LearnedDriver, labels_of, velocity_of


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_labels_and_velocities_are_inverse_and_bounded():
    assert velocity_of(*labels_of(30.0, -45.0)) == pytest.approx(velocity_of(-0.5, 0.5))
    v = velocity_of(float("nan"), 7.0)
    assert v.yaw_rate_deg_s == 0.0 and v.vx_cm_s == pytest.approx(60.0)  # NaN steers straight; throttle capped
    assert velocity_of(0.0, -1.0).vx_cm_s == 0.0  # never backwards


@pytest.mark.slow
def test_record_trim_train_and_drive_with_the_model(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="the [train] extra (tensorflow-cpu) is not installed")
    run = tmp_path / "run"
    assert main(["drive", "--vehicle", "sim", "--fast", "--script", "autopilot lane; wait 4; stop",
                 "--record", str(run), "--json"]) == 0
    capsys.readouterr()
    every = frame_labels(run)
    assert len(every) > 90 and all(throttle > 0 for _, throttle in every.values())
    assert main(["runs", "trim", str(run), "--last", "1.5s", "--json"]) == 0
    trim = _last_json(capsys)
    assert trim["until_s"] == pytest.approx(trim["until_s"]) and trim["ticks_kept"] < trim["ticks"]
    kept = frame_labels(run)
    assert len(kept) < len(every) - 30  # 1.5 s of frames at 30 fps left out

    model = tmp_path / "driver.tflite"
    assert main(["train", str(run), "--out", str(model), "--epochs", "1", "--batch", "32", "--json"]) == 0
    card = _last_json(capsys)
    assert card["sha256"] == sha256_of(model)
    assert card["runs"] == [{"folder": str(run), "manifest_sha256": sha256_of(run / "manifest.json"),
                             "frames": len(kept), "world_seed": 0}]
    assert card["seed"] == 0 and card["config"]["epochs"] == 1 and "edgepilot" in card["code"]
    assert card["metrics"]["parameters"] < 1_000_000 and card["metrics"]["inference_ms_median"] > 0
    assert card["quantisation"].startswith("int8")
    assert json.loads((tmp_path / "driver.card.json").read_text()) == card
    assert (tmp_path / "driver.loss.png").stat().st_size > 1000

    drive = tmp_path / "drive"
    assert main(["drive", "--vehicle", "sim", "--fast", "--autopilot", "model", str(model), "--script",
                 "autopilot model; wait 1; stop", "--record", str(drive), "--json"]) == 0
    result = _last_json(capsys)
    assert [c["result"] for c in result["commands"]] == ["ok", "ok", "ok"]
    manifest = json.loads((drive / "manifest.json").read_text())
    assert manifest["driver_model"]["sha256"] == card["sha256"] and manifest["driver_model"]["card"] == card


def test_learned_driver_stops_for_a_person_ahead_whatever_the_network_says():
    from edgepilot.pilot.core.geometry import CameraModel
    from edgepilot.pilot.core.messages import Detection, Frame, Seen

    camera = CameraModel(640, 480, 62.2, 15.0, 15.0)
    driver = LearnedDriver(lambda frame: (0.0, 1.0), camera)
    frame = Frame(np.zeros((240, 320, 3), np.uint8), 0.0)  # half the model's size: boxes scale with it
    (feet,), _ = camera.project(np.array([[50.0, 0.0, 0.0]]))
    person = Detection("person", 0.9, (feet[0] / 2 - 5, feet[1] / 2 - 30, feet[0] / 2 + 5, feet[1] / 2))
    assert driver.update(Seen(0.0, 320, 240, (), frame), 0.0).vx_cm_s == pytest.approx(60.0)
    assert driver.update(Seen(0.1, 320, 240, (person,), frame), 0.1).is_zero
    assert driver.poll_events()[0][0] == "person_stop" and driver.stops_for_person == 1
    assert driver.update(Seen(0.5, 320, 240, (), frame), 0.5).is_zero  # clear for less than clear_s
    assert driver.update(Seen(1.7, 320, 240, (), frame), 1.7).vx_cm_s > 0
    assert driver.update(Seen(1.7, 320, 240, (), frame), 3.0).is_zero  # a stale frame stops it


def test_learned_driver_stops_for_something_in_the_lane_the_detector_missed():
    """The bird's-eye obstacle check of the lane autopilot guards the learned driver too: a figure standing in the
    lane 35 cm ahead, with no detection at all, stops it; the same road without the figure does not."""
    from edgepilot.pilot.core.clock import FakeClock
    from edgepilot.pilot.core.messages import Frame, Seen
    from edgepilot.sim.render import SimCamera
    from edgepilot.sim.vehicles import Pose, SimCar
    from edgepilot.sim.world import Person, World

    empty = World.build(0, "car", people=0)
    x, y, heading = empty.track.point_at(-70.0)
    ahead = empty.track.point_at(-70.0 + 35.0)
    blocked = empty.with_people(Person.create("walker", [ahead[:2]], seed=1, scale=0.15))
    for world, stops in ((empty, False), (blocked, True)):
        clock = FakeClock()
        camera = SimCamera(world, SimCar(clock, origin=Pose(x, y, 0.0, heading)), clock)
        driver = LearnedDriver(lambda frame: (0.0, 0.5), camera.intrinsics)
        image = camera.read().image
        velocity = driver.update(Seen(0.0, image.shape[1], image.shape[0], (), Frame(image, 0.0)), 0.0)
        assert velocity.is_zero == stops, driver.state
        assert driver.state == ("stopped: obstacle" if stops else "driving")


def test_training_batches_mirror_the_steering_with_the_frame_and_relight_without_changing_labels():
    from edgepilot.pilot.app.driving_data import augment

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 120, 160, 3), dtype=np.uint8)
    labels = np.tile(np.array([[0.5, 0.4]], np.float32), (40, 1))
    mirrored, steering = augment(frames, labels, np.random.default_rng(1), flip=True, light=False)
    flipped = [bool(np.array_equal(m, f[:, ::-1])) for m, f in zip(mirrored, frames, strict=True)]
    assert 5 < sum(flipped) < 35  # about half
    for i, was_flipped in enumerate(flipped):
        assert steering[i, 0] == (-0.5 if was_flipped else 0.5) and steering[i, 1] == pytest.approx(0.4)
        assert was_flipped or np.array_equal(mirrored[i], frames[i])  # the rest as recorded
    relit, same = augment(frames, labels, np.random.default_rng(2), flip=False, light=True)
    np.testing.assert_array_equal(same, labels)
    ratios = relit.reshape(40, -1).mean(axis=1) / frames.reshape(40, -1).mean(axis=1)
    assert ratios.min() < 0.85 and ratios.max() > 1.15  # brightness varies from frame to frame
    assert frames.dtype == relit.dtype == np.uint8 and not np.shares_memory(frames, relit)


DRIVER = Path(__file__).parent / "data" / "car" / "driver.tflite"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 3])
def test_a_learned_driver_laps_in_its_lane_with_people_crossing_and_hits_no_one(seed):
    """The committed driver (tests/data/car/README.md: how it was recorded and trained; its model card beside it)
    drives a lap of a world it was not trained in while two people step onto the road, under the stop for people:
    a lap done, never further from the lane centre than the lane's half-width, and no one touched."""
    from edgepilot.pilot.app.driver_model import load_driver
    from edgepilot.pilot.app.scenarios import car_world, run_car
    from edgepilot.vision.pipeline import Perception

    card = json.loads(DRIVER.with_suffix(".card.json").read_text())
    assert card["sha256"] == sha256_of(DRIVER)  # the card describes this very file
    taught = {run["world_seed"] for run in card["runs"]}
    assert seed not in taught  # held out: a world the model never saw
    infer = load_driver(DRIVER)
    detect = Perception(detect=("person",), person_detector="pose", person_every=3).process
    report = run_car(car_world(seed, crossings=(0.35, 0.85)), seconds=40.0, detect=detect, crossings=2,
                     driver=lambda camera: LearnedDriver(infer, camera))
    assert report.laps >= 1.0, report.as_dict()
    assert report.max_offset_cm < report.half_width_cm, report.as_dict()
    assert report.collisions == 0 and report.stops_for_person >= 1, report.as_dict()

