"""What `pip install edgepilot` puts in a user's environment: one top-level package, `edgepilot`, with its models,
language files, demo audio and plug-in registrations; nothing importable under the repository's bare folder names."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from edgepilot.pilot.core import registry

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, capture_output=True)
    (built,) = out.glob("edgepilot-*.whl")
    return built


@pytest.mark.slow
def test_wheel_holds_only_the_edgepilot_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"edgepilot", wheel.name.split("-py3")[0] + ".dist-info"}
    for data in ("edgepilot/models/face_detection_full_range_sparse.tflite", "edgepilot/models/MODELS.md",
                 "edgepilot/voice/lang/en.toml", "edgepilot/voice/demo/take_off_kal16.wav", "edgepilot/pilot/app/web/static/index.html",
                 "edgepilot/pilot/app/web/static/cockpit.js"):
        assert data in names
    assert not any(n.startswith("edgepilot/__init__") for n in names), "edgepilot is a namespace package"


@pytest.mark.slow
def test_installed_wheel_works_from_anywhere_and_bare_names_do_not(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # -I -S: no current directory, no PYTHONPATH, no .pth files (so not the editable install of this checkout);
    # the dependencies come from this venv's site-packages, edgepilot only from the installed wheel.
    probe = f"""
import sys
sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()["purelib"]!r}]
import edgepilot.vision, edgepilot.drone
assert edgepilot.vision.__file__.startswith({str(target)!r}), edgepilot.vision.__file__
from edgepilot.models import model_path
print(model_path("pedestrian_ssdlite.tflite"))
from edgepilot.voice.vocabulary import Vocabulary
print(Vocabulary.load("en").read(["take", "off"])[1] == "takeoff")
from edgepilot.pilot.core import registry
print(registry.names(registry.VEHICLES))
for bare in ("pilot", "sim", "drone", "vision", "voice", "robot_car", "models"):
    try:
        __import__(bare)
    except ModuleNotFoundError:
        continue
    raise SystemExit("bare " + bare + " is importable")
"""
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    model, vocab, vehicles = result.stdout.splitlines()
    assert model.startswith(str(target))
    assert vocab == "True"
    assert vehicles == str(["picar", "sim", "sim-car", "sim-drone", "tello"])


def test_every_registered_plugin_loads():
    """Each built-in vehicle, camera source and part registers through an entry point and imports (Pi-only
    libraries are imported only when a device is opened, so this works on any machine)."""
    for group in (registry.VEHICLES, registry.CAMERAS, registry.PARTS):
        for name in registry.names(group):
            assert callable(registry.load(group, name, "plug-in")), (group, name)


def test_unknown_plugin_is_one_clear_line():
    with pytest.raises(Exception, match=r"unknown vehicle 'hovercraft'; choose one of: picar, sim, "):
        registry.load(registry.VEHICLES, "hovercraft", "vehicle")
