"""Follow by name, the way a new user tries it: enroll a person with the default settings, then fly and follow them
by name (any case, spaces allowed), with no --faces. The simulator's first person wears the photo that was enrolled;
from the take-off point their face is too small to recognise, so the drone must close in to see who it is."""

from __future__ import annotations

import json

import pytest
from vision_synth import photos

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.core.grammar import parse_command

pytestmark = pytest.mark.slow


@pytest.fixture
def enrolled(tmp_path, monkeypatch):
    """'Ada Lovelace' in the default face database (here $EDGEPILOT_FACES, as enroll and fly both read it)."""
    monkeypatch.setenv("EDGEPILOT_FACES", str(tmp_path / "faces"))
    assert main(["enroll", "Ada Lovelace", str(photos()["obama.jpg"])]) == 0
    return tmp_path


def _tail(path, seconds: float) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    end = records[-1]["t_s"]
    return [r for r in records if r["t_s"] >= end - seconds]


def test_enroll_then_follow_by_name_without_faces_flag(enrolled, capsys):
    run = enrolled / "run"
    assert main(["fly", "--fast", "--follow", "ada lovelace", "--max-duration", "20", "--record", str(run),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(c["command"], c["result"]) for c in result["commands"]][:2] == [("takeoff", "ok"),
                                                                             ("follow ada lovelace", "ok")]
    assert not [e for e in result["events"] if e["type"] == "target_lost"]
    ticks = _tail(run / "telemetry.jsonl", 6.0)
    following = sum(t["mode"] == "following" for t in ticks) / len(ticks)
    assert following > 0.8, f"following in only {following:.0%} of the last 6 s"
    frames = _tail(run / "detections.jsonl", 6.0)
    centred = 0
    for frame in frames:
        ada = [d for d in frame["detections"] if d["name"] == "Ada Lovelace"]
        if ada:
            x1, _, x2, _ = ada[0]["box"]
            centred += abs((x1 + x2) / 2 - frame["width"] / 2) < 0.1 * frame["width"]
    assert centred > 0.7 * len(frames), f"Ada centred in {centred} of {len(frames)} frames"


def test_follow_by_name_from_a_script_any_case(enrolled, capsys):
    assert main(["fly", "--fast", "--script", "takeoff; follow Ada Lovelace; wait 12; land", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [c["result"] for c in result["commands"]] == ["ok"] * 4


def test_unknown_name_is_refused_before_takeoff_with_the_enrolled_names(enrolled, capsys):
    assert main(["fly", "--fast", "--follow", "bob", "--json"]) == 2
    err = capsys.readouterr().err
    assert "cannot follow 'bob': not enrolled (enrolled: Ada Lovelace)" in err
    assert main(["fly", "--fast", "--script", "takeoff; follow grace hopper"]) == 2
    assert "cannot follow 'grace hopper'" in capsys.readouterr().err


def test_empty_database_is_refused_before_takeoff(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEPILOT_FACES", str(tmp_path / "nobody"))
    assert main(["fly", "--fast", "--follow", "ada"]) == 2
    assert "nobody is enrolled" in capsys.readouterr().err


@pytest.mark.parametrize("text, who", [("follow joe biden", "joe biden"), ("Follow ADA", "ada"),
                                       ("follow o'brien", "o'brien"), ("follow me", "me")])
def test_names_with_spaces_and_any_case_parse(text, who):
    command = parse_command(text)
    assert (command.verb, command.arg) == ("follow", who)
    assert parse_command(command.text) == command
