import json
import shutil

import pytest

from edgepilot.models import models_dir
from edgepilot.pilot.app.cli import main
from edgepilot.pilot.app.doctor_cmd import check_models, check_tello

pytestmark = pytest.mark.xdist_group("tello")  # asks 127.0.0.1:8889, where Tello tests' emulators listen


def test_doctor_runs_every_check_and_reports_json(capsys):
    code = main(["doctor", "--json", "--host", "127.0.0.1"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = [c["name"] for c in report["checks"]]
    for expected in ("python", "LiteRT", "models", "face identity", "speech: pocketsphinx", "microphone", "camera",
                     "tello", "gpio"):
        assert expected in names
    assert all(c["status"] in ("ok", "warn", "fail") for c in report["checks"])
    assert all(c["fix"] for c in report["checks"] if c["status"] != "ok")
    assert code == (0 if report["ok"] else 1)


def test_models_check_catches_a_corrupt_model(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(models_dir(), models)
    assert check_models(models).status == "ok"
    victim = models / "face_detection_short_range.tflite"
    victim.write_bytes(victim.read_bytes()[:-10])
    check = check_models(models)
    assert check.status == "fail" and "face_detection_short_range.tflite has the wrong sha256" in check.detail
    assert "extract_models.py" in check.fix
    victim.unlink()
    assert "face_detection_short_range.tflite missing" in check_models(models).detail


def test_tello_check_says_how_to_connect_when_nothing_answers():
    check = check_tello("127.0.0.1", timeout_s=0.2)
    assert check.status == "warn" and "Wi-Fi" in check.fix
