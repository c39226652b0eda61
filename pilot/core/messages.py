"""Frozen dataclasses that flow between the parts.

Units are in the names. Coordinates follow ROS REP-103: x forward, y left, z up, yaw counter-clockwise positive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MOVE_VERBS = ("up", "down", "left", "right", "forward", "back")
TURN_VERBS = ("cw", "ccw")
FLIP_DIRECTIONS = ("l", "r", "f", "b")
#: Verbs that take no argument.
BARE_VERBS = ("takeoff", "land", "stop", "emergency", "photo", "yes", "no", "pardon")


@dataclass(frozen=True)
class Command:
    """One instruction, whatever it came from (voice, script, keyboard, a behaviour, the safety supervisor).

    ``arg`` is centimetres for moves, degrees for turns, cm/s for ``speed``, seconds for ``wait``, a flip direction
    letter for ``flip`` and ``"me"`` or a person's name for ``follow``. Build commands with
    :func:`edgepilot.pilot.core.grammar.parse_command`, which validates ranges; this class only holds them.
    """

    verb: str
    arg: int | float | str | None = None
    source: str = "script"

    @property
    def text(self) -> str:
        """Canonical text, the Tello SDK form where there is one: ``takeoff``, ``up 50``, ``cw 90``, ``flip l``."""
        if self.arg is None:
            return self.verb
        arg = self.arg
        if isinstance(arg, float) and arg.is_integer():
            arg = int(arg)
        return f"{self.verb} {arg}"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Velocity:
    """A body-frame velocity set-point: forward, left, up (cm/s) and yaw rate (deg/s, CCW positive)."""

    vx_cm_s: float = 0.0
    vy_cm_s: float = 0.0
    vz_cm_s: float = 0.0
    yaw_rate_deg_s: float = 0.0

    @property
    def is_zero(self) -> bool:
        return not (self.vx_cm_s or self.vy_cm_s or self.vz_cm_s or self.yaw_rate_deg_s)


HOVER = Velocity()


@dataclass(frozen=True)
class Detection:
    """Something seen in a frame. ``box`` is (x1, y1, x2, y2) in pixels of that frame."""

    label: str
    score: float
    box: tuple[float, float, float, float]
    track: int | None = None
    name: str | None = None
    keypoints: tuple[tuple[float, float], ...] = ()

    def to_json(self) -> dict:
        """The one JSON form of a detection (recordings, ``replay --jsonl``): exact numbers, so a recording's
        detections compare equal when replayed."""
        return {"label": self.label, "score": float(self.score), "box": [float(v) for v in self.box],
                "track": self.track, "name": self.name}

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


@dataclass(frozen=True, eq=False)
class Frame:
    """A camera image (BGR, uint8, HxWx3) and when it was captured (``t_s`` on the loop's clock)."""

    image: np.ndarray
    t_s: float
    index: int = 0
    source: str = ""

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, eq=False)
class Seen:
    """What perception published: the detections in one frame (captured at ``frame_t_s`` on the loop's clock)."""

    frame_t_s: float
    width: int
    height: int
    detections: tuple[Detection, ...] = ()
    frame: Frame | None = None


@dataclass(frozen=True)
class Telemetry:
    """The vehicle's state. Position is relative to where it started (odometry for real vehicles)."""

    t_s: float
    x_cm: float = 0.0
    y_cm: float = 0.0
    z_cm: float = 0.0
    yaw_deg: float = 0.0
    flying: bool = False
    battery_pct: float = 100.0
    vx_cm_s: float = 0.0
    vy_cm_s: float = 0.0
    vz_cm_s: float = 0.0
    #: When the last packet of state arrived from the vehicle (same clock as ``t_s``); sims keep it at ``t_s``.
    last_state_s: float = 0.0

    def final(self) -> dict[str, float | bool]:
        """The ``final`` object of the CLI's JSON output."""
        return {
            "x_cm": round(self.x_cm, 1),
            "y_cm": round(self.y_cm, 1),
            "z_cm": round(self.z_cm, 1),
            "yaw_deg": round(self.yaw_deg, 1),
            "flying": self.flying,
            "battery_pct": round(self.battery_pct, 1),
        }


@dataclass(frozen=True)
class Event:
    """Something worth telling the user: a safety action, a rejected command, a link loss."""

    t_s: float
    type: str
    detail: str = ""
    data: dict = field(default_factory=dict)
