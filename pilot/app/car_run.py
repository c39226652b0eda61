"""The car's part of ``edgepilot drive``: its camera (``--camera``), its pins (``--pins``), the ``[car]`` table, and
the autopilots ``autopilot lane|model`` starts (the lane follower, the learned driver), each under the stop for
people in the lane."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgepilot.pilot.core.clock import Clock
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.geometry import CameraModel
from edgepilot.pilot.core.hal import Camera, Vehicle, open_camera, open_vehicle
from edgepilot.pilot.core.messages import Command
from edgepilot.robot_car.mount import CarSetup, camera_model, car_setup, intrinsics_for

log = logging.getLogger(__name__)

PIN_FACTORIES = ("mock", "lgpio", "rpigpio", "pigpio", "native")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", metavar="SRC", help="drive only: the car's camera: pi, auto (default: the Pi "
                        "camera, else webcam 0), a webcam index, or a video file (the whole car stack on a laptop)")
    parser.add_argument("--pins", choices=PIN_FACTORIES, help="picar only: GPIO library (default "
                        "$GPIOZERO_PIN_FACTORY, else lgpio, rpigpio, pigpio); mock: simulated pins, no motors move")
    parser.add_argument("--autopilot", nargs="+", metavar=("MODE", "FILE"), help="drive only: after the script, "
                        "'lane' (computer vision) or 'model FILE.tflite' (a learned driver from 'edgepilot train'); "
                        "the file also serves 'autopilot model' said or scripted")


def check_args(args: argparse.Namespace) -> None:
    autopilot = args.autopilot or []
    if args.verb != "drive" and (autopilot or args.camera is not None or args.pins is not None):
        raise InputError("--camera, --pins and --autopilot are for 'edgepilot drive' (the car)")
    if autopilot:
        mode = autopilot[0]
        if mode not in ("lane", "model") or (mode == "lane" and len(autopilot) != 1) or \
                (mode == "model" and len(autopilot) != 2):
            raise InputError(f"--autopilot takes 'lane' or 'model FILE.tflite', not {' '.join(autopilot)!r}")
        if mode == "model" and not Path(autopilot[1]).is_file():
            raise InputError(f"--autopilot model: no such file {autopilot[1]}; train one with 'edgepilot train RUN_DIR "
                             "--out driver.tflite'")
    if args.vehicle == "sim" and (args.camera is not None or args.pins is not None):
        raise InputError("--camera and --pins are for --vehicle picar; the simulator renders its own camera")


def model_file(args: argparse.Namespace) -> Path | None:
    autopilot = args.autopilot or []
    return Path(autopilot[1]) if autopilot[:1] == ["model"] else None


def plan_autopilot(args: argparse.Namespace, script: list[Command]) -> None:
    """``--autopilot MODE``: start it after the script, unless the script already says when."""
    if args.autopilot and not any(c.verb == "autopilot" for c in script):
        script.append(Command("autopilot", args.autopilot[0]))


def wants_autopilot(args: argparse.Namespace, script: list[Command]) -> bool:
    return args.verb == "drive" and bool(args.autopilot or any(c.verb == "autopilot" for c in script))


def open_picar(args: argparse.Namespace, settings: dict, clock: Clock, needs_camera: bool) -> tuple[Vehicle, CarSetup]:
    """The Pi car with its camera: ``--camera`` (which must open), else ``auto`` when there is one (a run that needs
    to see fails without it; one that does not goes on blind, with a warning)."""
    setup = car_setup(settings)
    camera: Camera | None = None
    source = args.camera or "auto"
    try:
        camera = open_camera(source, clock=clock, width=setup.width, height=setup.height)
    except InputError as exc:
        if args.camera is not None or needs_camera:
            raise
        log.warning("no camera on this car run (%s); pass --camera to choose one", exc)
    try:
        vehicle = open_vehicle("picar", clock=clock, pin_factory=args.pins, camera=camera,
                               max_speed_cm_s=setup.max_speed_cm_s, track_width_cm=setup.track_width_cm,
                               min_duty=setup.min_duty)
    except BaseException:
        if camera is not None:
            camera.close()
        raise
    return vehicle, setup


def autopilots(vehicle: Any, camera: Camera | None, setup: CarSetup, model: Path | None, seed: int = 0
               ) -> dict[str, Callable[[], Any]]:
    """What ``autopilot lane`` and ``autopilot model`` start on this car (nothing without a camera)."""
    from edgepilot.robot_car.lane import LaneBehaviour, LaneConfig

    if camera is None or getattr(vehicle, "kind", "") != "car":
        return {}
    intrinsics = getattr(camera, "intrinsics", None)
    if intrinsics is not None:  # the simulator's camera knows its own model; its track's lane is 35 cm wide
        geometry: tuple[CameraModel, tuple[float, ...]] = (intrinsics, ())
        half_width = 17.5
    else:
        geometry = camera_model(setup, intrinsics_for(setup))
        half_width = setup.lane_half_width_cm
    model_camera, distortion = geometry
    found: dict[str, Callable[[], Any]] = {
        "lane": lambda: LaneBehaviour(model_camera, LaneConfig(half_width_cm=half_width), speed_cm_s=setup.cruise_cm_s,
                                      distortion=distortion, teach_noise_deg_s=setup.teach_noise_deg_s, seed=seed)}
    if model is not None:
        from edgepilot.pilot.app.driver_model import load_driver
        from edgepilot.robot_car.learned import LearnedDriver

        driver = load_driver(model)  # once: a broken file fails the run before anything moves
        found["model"] = lambda: LearnedDriver(driver, model_camera, half_width_cm=half_width, distortion=distortion)
    return found


def car_detector(simulated: bool):
    """Perception for the stop for people: the bundled pedestrian detector on real frames; BlazePose's detector on
    the simulator's small figures, as the car demo does."""
    from edgepilot.vision.pipeline import Perception

    if simulated:
        return Perception(detect=("person",), person_detector="pose", person_every=3).process
    return Perception(detect=("person",)).process


def note_model(recorder: Any, model: Path | None) -> None:
    """The run's manifest says which learned driver drove: its sha256 and its model card."""
    if recorder is None or model is None:
        return
    from edgepilot.pilot.app.driver_model import model_identity

    recorder.manifest["driver_model"] = model_identity(model)
