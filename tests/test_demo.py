"""The README's first command: ``edgepilot demo``, both vehicles, end to end (real recogniser, real detectors)."""

import json

import pytest

from edgepilot.pilot.app.cli import main

pytestmark = pytest.mark.slow


def run_demo(capsys, *argv):
    code = main(["demo", "--no-video", "--json", *argv])
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out.strip().splitlines()[-1])


def test_drone_demo_hears_the_commands_follows_and_lands(capsys):
    report = run_demo(capsys)
    spoken = [(c["command"], c["source"]) for c in report["commands"]]
    assert spoken == [("takeoff", "voice"), ("follow me", "voice"), ("land", "voice")]
    tracking = report["tracking"]
    assert tracking["following_frames"] > 300
    assert tracking["centered_fraction"] >= 0.8
    assert report["final"]["flying"] is False
    assert report["final"]["x_cm"] > 100  # it really went after the person


def test_car_demo_laps_and_stops_for_people(capsys):
    report = run_demo(capsys, "--vehicle", "car")
    assert report["laps"] >= 1.0
    assert report["lane"]["max_offset_cm"] < report["lane"]["half_width_cm"]
    assert report["stops_for_person"] == 2
    assert report["collisions"] == 0
