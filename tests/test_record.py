"""The flight recorder and the replay of recordings: a recorded simulated follow flight replays with identical
decisions; a changed pipeline is caught; a run killed mid-flight replays its first part; inputs from other threads
(voice commands, key pulses) replay on the tick that took them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.messages import Command, Velocity
from edgepilot.pilot.core.runner import Pilot
from edgepilot.pilot.record.files import read_jsonl, sha256_of
from edgepilot.pilot.record.recorder import Recorder
from edgepilot.pilot.record.replay import replay_recording
from edgepilot.pilot.record.video import VideoRecorder, read_frames
from edgepilot.sim.vehicles import SimDrone

pytestmark = pytest.mark.slow

FLIGHT_S = 5.0


@pytest.fixture(scope="module")
def flight(tmp_path_factory) -> Path:
    """A recorded simulated follow flight (takeoff, follow the nearest face or person) on the fast clock."""
    folder = tmp_path_factory.mktemp("rec") / "flight"
    args = ["fly", "--vehicle", "sim", "--fast", "--follow", "me", "--max-duration", str(FLIGHT_S), "--record",
            str(folder), "--json"]
    assert main(args) == 0
    return folder


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_recording_holds_every_tick_frame_command_and_model(flight):
    manifest = json.loads((flight / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["vehicle"] == {"name": "sim-drone", "kind": "drone"}
    assert manifest["config"]["follow"] == "me" and manifest["seeds"] == {"world": 0}
    assert manifest["pilot"]["script"] == [{"verb": "takeoff", "arg": None, "source": "script"},
                                           {"verb": "follow", "arg": "me", "source": "script"}]
    models = {m["name"]: m for m in manifest["models"]}
    assert set(models) == {"face_detection_full_range_sparse.tflite", "pedestrian_ssdlite.tflite"}
    assert all(m["sha256"] == sha256_of(m["path"]) for m in models.values())
    ticks, cut = read_jsonl(flight / "telemetry.jsonl")
    assert not cut and len(ticks) == int(FLIGHT_S * 30) + 1
    assert [t["tick"] for t in ticks] == list(range(len(ticks)))
    commands, _ = read_jsonl(flight / "commands.jsonl")
    assert [(c["command"], c["source"], c["result"]) for c in commands] == [
        ("takeoff", "script", "ok"), ("follow me", "script", "ok")]
    detections, _ = read_jsonl(flight / "detections.jsonl")
    assert len(detections) == len(ticks) == manifest["summary"]["video_frames"]
    assert sum(1 for d in detections if d["detections"]) > 20  # the drone saw someone to follow
    frames = list(read_frames(flight / "frames.mkv"))
    assert len(frames) == len(detections) and frames[0].shape == (480, 640, 3)
    assert (flight / "video.mp4").stat().st_size > 10_000


def test_recorded_follow_flight_replays_with_identical_decisions(flight, tmp_path, capsys):
    report, out = tmp_path / "report.png", tmp_path / "replayed.mp4"
    assert main(["replay", str(flight), "--json", "--report", str(report), "--out", str(out)]) == 0
    result = last_json(capsys.readouterr().out)
    ticks, _ = read_jsonl(flight / "telemetry.jsonl")
    moving = [t for t in ticks if t["sent"] and any(abs(v) > 0.5 for v in t["sent"])]
    assert len(moving) > 10  # the follow behaviour steered: there were real decisions to reproduce
    assert result["decisions_match"] is True and result["first_mismatch"] is None
    assert result["decisions"] >= len(moving) and result["ticks"] == len(ticks) and not result["truncated"]
    assert result["frames"] > 100 and result["detections_match"] and result["video"] == "lossless"
    assert report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and report.stat().st_size > 20_000
    assert out.stat().st_size > 10_000


def test_a_changed_pipeline_is_caught(flight, tmp_path, capsys):
    """The same recording with the person detector on every frame instead of every second one: perception and
    then the decisions differ, and replay says where first. Only the first 90 ticks are kept, to stay quick."""
    changed = tmp_path / "changed"
    shutil.copytree(flight, changed)
    manifest = json.loads((changed / "manifest.json").read_text())
    manifest["perception"]["person_every"] = 1
    (changed / "manifest.json").write_text(json.dumps(manifest))
    lines = (changed / "telemetry.jsonl").read_text().splitlines(keepends=True)
    (changed / "telemetry.jsonl").write_text("".join(lines[:90]))
    assert main(["replay", str(changed), "--json"]) == 1
    result = last_json(capsys.readouterr().out)
    assert result["decisions_match"] is False and result["detections_match"] is False
    assert result["first_mismatch"]["what"] in ("velocity", "mode") and result["ticks"] == 90


def test_killed_recording_replays_its_first_part(tmp_path, capsys):
    folder = tmp_path / "killed"
    command = [sys.executable, "-m", "edgepilot.pilot.app.cli", "fly", "--vehicle", "sim", "--fast", "--follow", "me",
               "--max-duration", "60", "--record", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            ticks, frames = folder / "telemetry.jsonl", folder / "frames.mkv"
            # Frames are encoded on their own thread and may trail the ticks on a busy machine: wait for both.
            if ticks.is_file() and ticks.read_bytes().count(b"\n") >= 75 and frames.is_file() and \
                    frames.stat().st_size > 4_000_000:
                break
            time.sleep(0.1)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert json.loads((folder / "manifest.json").read_text())["status"] == "recording"
    assert main(["replay", str(folder), "--json"]) == 0
    out = capsys.readouterr().out
    result = last_json(out)
    assert result["truncated"] is True and result["decisions_match"] is True
    assert 30 <= result["ticks"] <= result["recorded_ticks"] < 1800 and result["frames"] >= 30
    assert any("cut short" in note for note in result["notes"])


def test_voice_commands_and_key_pulses_replay_on_the_tick_that_took_them(tmp_path):
    """Commands submitted between ticks (as the voice thread does) and keyboard velocity pulses, no camera."""
    clock = FakeClock()
    drone = SimDrone(clock)
    said = [(0.5, Command("takeoff", None, "voice")), (2.4, Command("up", 30, "voice")),
            (5.0, Command("land", None, "voice"))]
    pulses = [(2.0, Velocity(vx_cm_s=40.0)), (3.9, Velocity(yaw_rate_deg_s=45.0))]
    pilot_ref: list[Pilot] = []

    def perceive(now_s: float) -> None:  # runs at the start of each tick: a stand-in for the other threads
        pilot = pilot_ref[0]
        while said and said[0][0] <= now_s:
            pilot.submit(said.pop(0)[1])
        while pulses and pulses[0][0] <= now_s:
            pilot.manual_velocity(pulses.pop(0)[1], 0.5)

    recorder = Recorder(tmp_path / "inputs", argv=["test"], video=False)
    pilot = Pilot(drone, clock=clock, perceive=perceive, max_duration_s=8.0)
    pilot_ref.append(pilot)
    recorder.attach(pilot)
    try:
        result = pilot.run(stay_alive=lambda: bool(said) or drone.telemetry().flying)
    finally:
        recorder.close()
    assert [(c.command, c.source) for c in result.commands] == [("takeoff", "voice"), ("up 30", "voice"),
                                                                 ("land", "voice")]
    replayed = replay_recording(tmp_path / "inputs")
    assert replayed.decisions_match, replayed.first_mismatch
    assert replayed.decisions > 20 and replayed.ticks == replayed.recorded_ticks and replayed.frames == 0


def test_lossless_video_is_bit_exact_and_time_stamped(tmp_path):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(12)]
    video = VideoRecorder(tmp_path)
    indices = [video.put(image, 10.0 + i / 7) for i, image in enumerate(images)]
    video.close()
    assert indices == list(range(12)) and video.written == 12 and video.dropped == 0
    decoded = list(read_frames(tmp_path / "frames.mkv"))
    assert len(decoded) == 12 and all(np.array_equal(a, b) for a, b in zip(images, decoded, strict=True))
    import av

    with av.open(str(tmp_path / "video.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        pts = [frame.time for frame in container.decode(stream)]
    assert pts == pytest.approx([i / 7 for i in range(12)], abs=0.002)


def test_recording_needs_a_new_folder(tmp_path, capfd):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        Recorder(tmp_path / "used")
    assert main(["fly", "--vehicle", "sim", "--fast", "--script", "takeoff; land", "--record",
                 str(tmp_path / "used")]) == 2
    err = capfd.readouterr().err.strip()
    assert "not empty" in err and len(err.splitlines()) == 1


def test_read_jsonl_accepts_a_cut_last_line_only(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b"')
    assert read_jsonl(path) == ([{"a": 1}, {"a": 2}], True)
    path.write_text('{"a": 1}\n{"a": 2}\n')
    assert read_jsonl(path) == ([{"a": 1}, {"a": 2}], False)
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(InputError, match="line 2 is corrupt"):
        read_jsonl(path)


@pytest.mark.parametrize(("setup", "message"), [
    ("empty", "not a recording: no manifest.json"),
    ("corrupt", "manifest.json is corrupt"),
    ("no_ticks", "cut before the run's first tick"),
])
def test_bad_recordings_are_one_clear_line(tmp_path, capfd, setup, message):
    folder = tmp_path / "run"
    folder.mkdir()
    if setup == "corrupt":
        (folder / "manifest.json").write_text('{"format": 1, "status": ')
    elif setup == "no_ticks":
        Recorder(folder).close()
    assert main(["replay", str(folder)]) == 2
    err = capfd.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_recording_with_perception_options_is_refused(flight, capfd):
    assert main(["replay", str(flight), "--detect", "face"]) == 2
    assert "recorded with" in capfd.readouterr().err
