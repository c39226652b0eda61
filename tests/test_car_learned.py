"""The learned driver's loop through the CLI: record a drive, trim its end, train (a tiny run), drive with the model;
the model card and the drive's manifest say which runs taught it and which model drove."""

from __future__ import annotations

import json

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
                             "frames": len(kept)}]
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
