import json
import subprocess
import sys

import pytest

from edgepilot.pilot.app.cli import main

FLIGHT = "takeoff; up 50; cw 90; forward 100; land"


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fly_json_reports_final_pose_commands_events_and_loop(capsys):
    code, out, err = run_cli(capsys, "fly", "--vehicle", "sim", "--fast", "--script", FLIGHT, "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["vehicle"] == "sim-drone"
    final = report["final"]
    assert set(final) == {"x_cm", "y_cm", "z_cm", "yaw_deg", "flying", "battery_pct"}
    assert abs(final["x_cm"]) < 15 and abs(final["y_cm"] + 100) < 15 and abs(final["yaw_deg"] + 90) < 5
    assert final["flying"] is False
    assert [c["command"] for c in report["commands"]] == ["takeoff", "up 50", "cw 90", "forward 100", "land"]
    assert all(set(c) == {"t_s", "command", "source", "result"} for c in report["commands"])
    assert {"hz", "achieved_hz", "overruns", "p99_period_ms"} <= set(report["loop"])
    assert report["loop"]["hz"] == 30


def test_drive_json(capsys):
    code, out, _ = run_cli(capsys, "drive", "--fast", "--script", "forward 100; cw 90; forward 50; stop", "--json")
    assert code == 0
    final = json.loads(out.strip().splitlines()[-1])["final"]
    assert abs(final["x_cm"] - 100) < 15 and abs(final["y_cm"] + 50) < 15 and abs(final["yaw_deg"] + 90) < 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fly", "--vehicle", "hovercraft", "--script", "takeoff"], "takes --vehicle sim or tello"),
        (["fly", "--fast", "--script", "takeoff; up 600"], "20-500 cm"),
        (["fly", "--fast", "--script", "takeoff; dance"], "unknown command 'dance'"),
        (["fly", "--fast", "--script", ";"], "script is empty"),
        (["drive", "--fast", "--script", "forward 50", "--hz", "0"], "--hz must be 1-200"),
        (["drive", "--fast", "--script", "takeoff"], "not a car command"),
        (["fly", "--fast", "--battery", "8", "--script", "takeoff; land"], "takeoff refused"),
        (["fly", "--keys"], "--keys needs an interactive terminal"),
        (["fly", "--fast", "--follow", "Bob!"], "--follow takes 'me' or an enrolled person's name"),
        (["fly", "--fast"], "nothing to do"),
        (["fly", "--fast", "--voice", "mic"], "voice and keys need real time"),
    ],
)
def test_bad_input_gives_one_clear_line_and_non_zero_exit(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_console_script_runs_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "edgepilot.pilot.app.cli", "fly", "--script", "up 9999"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("edgepilot fly: script command 1: 'up 9999': distance must be 20-500 cm "
                                   "(Tello SDK range), got 9999")


def test_unknown_verb_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["teleport"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["fly", "--help"])
    assert exc.value.code == 0
    assert "--script" in capsys.readouterr().out


@pytest.mark.slow
def test_fly_by_voice_from_a_wav_file(capsys, tmp_path):
    """`fly --voice FILE.wav`: the bundled "take off" and "land" recordings, heard in real time, fly the sim drone."""
    import wave

    import numpy as np

    from edgepilot.pilot.app.demo import DEMO_AUDIO
    from edgepilot.voice.audio import WavSource

    pieces = []
    for name in ("take_off_kal16.wav", "land_kal16.wav"):
        source = WavSource(DEMO_AUDIO / name)
        pieces += [np.zeros(8000, np.int16), *source.chunks(), np.zeros(32000, np.int16)]
        source.close()
    path = tmp_path / "said.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.concatenate(pieces).tobytes())
    code, out, err = run_cli(capsys, "fly", "--voice", str(path), "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert [(c["command"], c["source"], c["result"]) for c in report["commands"]] == [
        ("takeoff", "voice", "ok"), ("land", "voice", "ok")]
    assert report["final"]["flying"] is False


@pytest.mark.slow
def test_fly_follow_me_in_the_simulator(capsys):
    code, out, err = run_cli(capsys, "fly", "--fast", "--follow", "me", "--max-duration", "12", "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert [c["command"] for c in report["commands"]] == ["takeoff", "follow me"]
    # The default world's first person stands 3 m ahead: the drone closed in to a following distance and landed.
    assert 80 < report["final"]["x_cm"] < 260 and report["final"]["flying"] is False


def test_keys_without_termios_is_one_clear_line(capsys, monkeypatch):
    """Windows has no termios: --keys says so instead of a traceback."""
    monkeypatch.setitem(sys.modules, "termios", None)  # what importing it does on Windows: ImportError
    code, _, err = run_cli(capsys, "fly", "--keys")
    assert code == 2 and err.strip().splitlines() == [
        "edgepilot fly: --keys needs a POSIX terminal (Linux, macOS, Raspberry Pi OS); on Windows run edgepilot in "
        "WSL, or drive with --script / --voice"]
