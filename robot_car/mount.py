"""The car's set-up: the ``[car]`` table of the config file (camera mount, motors, lane) and the camera's intrinsics
from ``edgepilot calibrate camera``.

    [car]
    camera_height_cm = 15.0     # lens above the floor
    camera_pitch_deg = 15.0     # looking down
    camera_hfov_deg = 62.2      # used only while no calibration is stored
    intrinsics = "~/.local/share/edgepilot/camera.json"   # default: that file, when it exists
    max_speed_cm_s = 60.0
    track_width_cm = 14.0
    lane_half_width_cm = 17.5
    cruise_cm_s = 30.0

The lane geometry (bird's-eye view, where a person's feet stand) is the pinhole model these give:
:func:`camera_model`. A stored calibration replaces the field of view by the measured focal lengths and principal
point (scaled to the frame size in use) and adds the lens distortion, which the lane follower removes before it looks.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from edgepilot.pilot.core import config
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.geometry import CameraModel

#: Fields of the [car] table that are not numbers.
TEXT_FIELDS = ("intrinsics",)


@dataclass(frozen=True)
class CarSetup:
    camera_height_cm: float = 15.0
    camera_pitch_deg: float = 15.0
    camera_hfov_deg: float = 62.2  # Raspberry Pi Camera Module v2; Module 3 is 66
    width: int = 640
    height: int = 480
    max_speed_cm_s: float = 60.0
    track_width_cm: float = 14.0
    min_duty: float = 0.0
    lane_half_width_cm: float = 17.5
    cruise_cm_s: float = 30.0
    #: Collecting training drives with the lane autopilot: steering noise (deg/s) it must recover from (0: none).
    teach_noise_deg_s: float = 0.0
    intrinsics: str = ""

    def __post_init__(self) -> None:
        for name in ("camera_height_cm", "camera_hfov_deg", "lane_half_width_cm", "cruise_cm_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"[car].{name} must be positive, got {value!r}")
        if not -10.0 <= self.camera_pitch_deg <= 80.0:
            raise InputError(f"[car].camera_pitch_deg must be -10..80 (degrees down), got {self.camera_pitch_deg!r}")


@dataclass(frozen=True)
class Intrinsics:
    """What ``edgepilot calibrate camera`` measured, for images ``width`` x ``height``."""

    width: int
    height: int
    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float
    distortion: tuple[float, ...] = ()
    rms_px: float = 0.0

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same lens at another resolution of the same sensor mode (pixels scale with the image)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx_px * sx, self.fy_px * sy, (self.cx_px + 0.5) * sx - 0.5,
                          (self.cy_px + 0.5) * sy - 0.5, self.distortion, self.rms_px)

    def to_json(self) -> dict:
        return {"width": self.width, "height": self.height, "fx_px": self.fx_px, "fy_px": self.fy_px,
                "cx_px": self.cx_px, "cy_px": self.cy_px, "distortion": list(self.distortion), "rms_px": self.rms_px}


def default_intrinsics_path() -> Path:
    """``$EDGEPILOT_CAMERA``, else ``~/.local/share/edgepilot/camera.json`` (next to the face database)."""
    env = os.environ.get("EDGEPILOT_CAMERA")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "edgepilot" / "camera.json"


def save_intrinsics(intrinsics: Intrinsics, path: Path, extra: dict | None = None) -> None:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps({**intrinsics.to_json(), **(extra or {})}, indent=1) + "\n")
    os.replace(part, path)


def load_intrinsics(path: Path) -> Intrinsics:
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
        return Intrinsics(int(data["width"]), int(data["height"]), float(data["fx_px"]), float(data["fy_px"]),
                          float(data["cx_px"]), float(data["cy_px"]), tuple(float(d) for d in data["distortion"]),
                          float(data.get("rms_px", 0.0)))
    except FileNotFoundError:
        raise InputError(f"camera calibration {path} does not exist; make it with 'edgepilot calibrate camera "
                         "PHOTO...'") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"camera calibration {path} is not readable ({type(exc).__name__}: {exc}); make it again "
                         "with 'edgepilot calibrate camera PHOTO...'") from None


def car_setup(settings: dict) -> CarSetup:
    """The ``[car]`` table of a loaded config (see :func:`edgepilot.pilot.core.config.load`), checked."""
    values = dict(settings.get("car", {}))
    text = {}
    for name in TEXT_FIELDS:
        if name in values:
            if not isinstance(values[name], str):
                raise InputError(f"[car].{name} must be a string (a file path), got {values[name]!r}")
            text[name] = values.pop(name)
    numbers = config.build(CarSetup, values, "[car]")
    return CarSetup(**{**numbers.__dict__, **text})


def intrinsics_for(setup: CarSetup) -> Intrinsics | None:
    """The calibration the car uses: ``[car].intrinsics`` (must exist), else the default file if there is one."""
    if setup.intrinsics:
        return load_intrinsics(Path(setup.intrinsics))
    default = default_intrinsics_path()
    return load_intrinsics(default) if default.is_file() else None


def camera_model(setup: CarSetup, intrinsics: Intrinsics | None = None) -> tuple[CameraModel, tuple[float, ...]]:
    """The pinhole model of the car's camera at ``setup.width`` x ``setup.height`` and its lens distortion."""
    if intrinsics is None:
        return CameraModel(setup.width, setup.height, setup.camera_hfov_deg, setup.camera_height_cm,
                           setup.camera_pitch_deg), ()
    k = intrinsics.scaled(setup.width, setup.height)
    hfov = math.degrees(2.0 * math.atan(setup.width / (2.0 * k.fx_px)))
    return CameraModel(setup.width, setup.height, hfov, setup.camera_height_cm, setup.camera_pitch_deg,
                       fx_px=k.fx_px, fy_px=k.fy_px, cx_px=k.cx_px, cy_px=k.cy_px), k.distortion
