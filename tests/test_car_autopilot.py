"""``autopilot lane|model|off``: the command from scripts, voice words and keys; the simulator's car driven round its
track from ``edgepilot drive``; the real car's stack (gpiozero MockFactory pins, a video file as its camera)
following a lane."""

from __future__ import annotations

import json

import cv2
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.app.keys import key_action
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.grammar import parse_command, parse_script
from edgepilot.pilot.core.messages import Command, Velocity
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import Pose, SimCar, SimDrone
from edgepilot.sim.world import World

LEFT_FWD, LEFT_BACK, RIGHT_FWD, RIGHT_BACK = 17, 18, 22, 23


def test_autopilot_is_one_command_from_scripts_voice_words_and_keys():
    assert parse_command("autopilot lane") == Command("autopilot", "lane")
    assert parse_command("autopilot off").arg == "off"
    assert parse_command("drive", "voice") == Command("autopilot", "lane", "voice")
    assert parse_command("drive forward 50").text == "forward 50"  # "drive" before a move is still a filler
    assert [c.text for c in parse_script("autopilot lane; wait 60; stop")] == ["autopilot lane", "wait 60", "stop"]
    with pytest.raises(CommandRejected, match="autopilot lane | model | off"):
        parse_command("autopilot fast")
    assert key_action("p") == Command("autopilot", "lane", "keys")
    assert key_action(" ") == Command("stop", None, "keys")


class _Steady:
    """A stand-in driver: always 20 cm/s ahead."""

    state, mode = "driving", "driving"

    def update(self, seen, now_s):
        return Velocity(vx_cm_s=20.0)


def test_the_pilot_starts_refuses_and_ends_autopilots_with_reasons():
    clock = FakeClock()
    drone = Pilot(SimDrone(clock), clock=clock, max_ticks=3)
    assert "drives a car" in drone.run([Command("autopilot", "lane")]).commands[0].result
    car = SimCar(FakeClock())
    result = Pilot(car, clock=car.clock, max_ticks=3).run([Command("autopilot", "lane")])
    assert "needs a camera" in result.commands[0].result and result.failure
    car = SimCar(FakeClock())
    result = Pilot(car, clock=car.clock, max_ticks=3, autopilots={"lane": _Steady}).run([Command("autopilot", "model")])
    assert "--autopilot model FILE" in result.commands[0].result
    car = SimCar(FakeClock())
    pilot = Pilot(car, clock=car.clock, max_ticks=40, autopilots={"lane": _Steady})
    result = pilot.run(parse_script("autopilot lane; wait 1; autopilot off"))
    assert [c.result for c in result.commands] == ["ok", "ok", "ok"]
    assert pilot.behaviour is None and car.telemetry().x_cm == pytest.approx(20.0, abs=2.0)
    assert car.vx == 0.0


@pytest.mark.slow
def test_drive_sim_car_autopilot_lane_goes_round_the_track_in_its_lane(capsys):
    """The README's words: `drive --vehicle sim-car --script "autopilot lane; wait N; stop"` (on the fast clock)."""
    code = main(["drive", "--vehicle", "sim-car", "--fast", "--script", "autopilot lane; wait 25; stop", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["completed"] and [c["result"] for c in result["commands"]] == ["ok", "ok", "ok"]
    assert not [e for e in result["events"] if e["type"] == "lane_lost"]
    track = World.build(0, "car", people=0).track
    final = result["final"]
    point = track.project(final["x_cm"], final["y_cm"])
    # 25 s at up to 30 cm/s: past both curves (the straight through the start is y = 0), still in the lane.
    assert abs(point.lateral_cm) < 10.0 and point.s_cm > 0.5 * track.length_cm


class _AlongTheTrack:
    """A camera carrier moving along the track's centre line (what the renderer needs: ``kind``, ``world_pose``)."""

    kind = "car"

    def __init__(self, world: World) -> None:
        self.world, self.s_cm = world, 0.0

    def world_pose(self) -> Pose:
        return self.world.track.pose_at(self.s_cm)


def _lane_video(path, seconds: float = 7.0, fps: float = 30.0) -> None:
    """What the car's camera sees driving the simulator's track into its first (left) curve, as a video file."""
    world = World.build(0, "car", people=0)
    carrier = _AlongTheTrack(world)
    camera = SimCamera(world, carrier, FakeClock())
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for i in range(int(seconds * fps)):
        carrier.s_cm = 40.0 + 30.0 * i / fps
        writer.write(camera.read().image)
    writer.release()


@pytest.mark.slow
def test_picar_on_mock_pins_follows_the_lane_in_a_video_file(tmp_path, monkeypatch, capsys):
    import edgepilot.robot_car.picar as picar

    video = tmp_path / "lane.avi"
    _lane_video(video)
    factory = MockFactory(pin_class=MockPWMPin)
    monkeypatch.setattr(picar, "_load_pin_factory", lambda name: factory)
    monkeypatch.setattr(factory, "close", lambda: None)  # keep the pins' recorded history for the checks
    code = main(["drive", "--vehicle", "picar", "--pins", "mock", "--camera", str(video), "--script",
                 "autopilot lane; wait 4; stop", "--json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["completed"], result
    left = [float(s.state) for s in factory.pin(LEFT_FWD).states]
    right = [float(s.state) for s in factory.pin(RIGHT_FWD).states]
    assert max(left) > 0.2 and max(right) > 0.2  # it drove
    # In the left curve the right wheel runs faster than the left one at least part of the time.
    assert any(r > lft + 0.05 for lft, r in zip(left[-len(right):], right[-len(left):], strict=False))
    assert float(factory.pin(LEFT_FWD).state) == 0.0 and float(factory.pin(RIGHT_FWD).state) == 0.0


@pytest.mark.parametrize(("argv", "says"), [
    (["--autopilot", "fast"], "--autopilot takes 'lane' or 'model FILE.tflite'"),
    (["--autopilot", "model", "nope.tflite"], "no such file nope.tflite"),
    (["--camera", "0"], "--camera and --pins are for --vehicle picar"),
])
def test_bad_car_options_are_one_clear_line(argv, says, capsys):
    assert main(["drive", "--vehicle", "sim", "--script", "stop", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err


def test_picar_without_a_camera_refuses_the_autopilot_with_the_reason(tmp_path, capsys):
    code = main(["drive", "--vehicle", "picar", "--pins", "mock", "--camera", str(tmp_path / "missing.mp4"),
                 "--script", "autopilot lane"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot open camera" in err and "\n" not in err


def test_saying_start_driving_means_the_lane_autopilot():
    from edgepilot.voice.vocabulary import Vocabulary

    vocab = Vocabulary.load("en")
    assert vocab.command_text(["drive", "yourself"]) == "autopilot lane"
    assert vocab.command_text(["drive"]) is None  # a lone "drive" took "stop"'s place in propeller noise
    assert parse_command(vocab.command_text(["start", "driving"]), "voice") == Command("autopilot", "lane", "voice")


@pytest.mark.slow
def test_a_recorded_autopilot_drive_replays_to_the_same_decisions(tmp_path, capsys):
    """The recording names what `autopilot lane` starts (as a part, teach noise and its seed included): replay
    rebuilds it and every decision matches."""
    run = tmp_path / "run"
    config = tmp_path / "teach.toml"
    config.write_text("[car]\nteach_noise_deg_s = 12.0\n")
    assert main(["drive", "--vehicle", "sim", "--fast", "--seed", "3", "--config", str(config), "--script",
                 "autopilot lane; wait 3; stop", "--record", str(run), "--json"]) == 0
    capsys.readouterr()
    assert main(["replay", str(run), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert replayed["decisions_match"], replayed["first_mismatch"]
