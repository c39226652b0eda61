"""The Tello SDK 2.0 wire format as the client reads and writes it (the emulator, edgepilot.sim.tello_emulator,
has its own drone-side reading of the SDK document, so the two check each other).

Pure functions, no sockets, so the fuzz tests can hammer them directly. The SDK's ports and addresses are djitellopy's
public class constants (importing djitellopy opens nothing; only constructing a ``Tello`` binds its sockets).

Frames: edgepilot uses ROS REP-103 (x forward, y left, z up, yaw counter-clockwise positive). The Tello reports in
its own aircraft frame: ``vgx`` forward, ``vgy`` right, ``vgz`` down (decimetres per second), ``yaw`` clockwise
positive in degrees. ``rc a b c d`` takes left/right, forward/back, up/down, yaw, each -100..100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from djitellopy import Tello

from edgepilot.pilot.core.messages import Velocity

#: The drone listens for commands here, and the client receives replies on the same port number.
CONTROL_PORT: int = Tello.CONTROL_UDP_PORT
#: The drone sends state to this port of the client.
STATE_PORT: int = Tello.STATE_UDP_PORT
#: The drone sends its H.264 stream to this port of the client.
VIDEO_PORT: int = Tello.VS_UDP_PORT
#: The drone's address on its own Wi-Fi.
DEFAULT_HOST: str = Tello.TELLO_IP
#: Where PyAV reads the stream (the address ``Tello.get_udp_video_address`` builds from the same constants).
VIDEO_URL = f"udp://@{Tello.VS_UDP_IP}:{VIDEO_PORT}"
#: rc stick value 100 means this speed. The Tello documents no unit for rc; we define one so that the backend and the
#: emulator (edgepilot.sim.tello_emulator.FULL_STICK_CM_S) agree, and the supervisor's clamps (100 cm/s, 100 deg/s) map onto the full stick range.
RC_FULL_SCALE_CM_S = 100.0
RC_FULL_SCALE_DEG_S = 100.0
#: State fields in the order the drone sends them.
STATE_FIELDS = ("pitch", "roll", "yaw", "vgx", "vgy", "vgz", "templ", "temph", "tof", "h", "bat", "baro", "time",
                "agx", "agy", "agz")


def _stick(value: float, full_scale: float) -> int:
    if not math.isfinite(value):
        return 0  # a NaN must never become full stick
    return max(-100, min(100, round(value / full_scale * 100.0)))


def velocity_to_rc(velocity: Velocity) -> tuple[int, int, int, int]:
    """REP-103 velocity -> rc (left/right, forward/back, up/down, yaw), right and clockwise positive."""
    return (_stick(-velocity.vy_cm_s, RC_FULL_SCALE_CM_S), _stick(velocity.vx_cm_s, RC_FULL_SCALE_CM_S),
            _stick(velocity.vz_cm_s, RC_FULL_SCALE_CM_S), _stick(-velocity.yaw_rate_deg_s, RC_FULL_SCALE_DEG_S))


def parse_state(data: bytes | str) -> dict[str, float]:
    """Parse a state datagram into numbers; anything malformed is skipped, never raised."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes | bytearray) else str(data)
    state: dict[str, float] = {}
    for field in text.strip().split(";"):
        key, sep, raw = field.partition(":")
        if not sep:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isfinite(value):
            state[key.strip()] = value
    return state


#: A state line without these is not one the drone sent (a garbled or foreign datagram): it is dropped whole.
REQUIRED_STATE_FIELDS = ("h", "bat", "tof")


def is_state_line(state: dict[str, float]) -> bool:
    """True when parsed state looks like a whole line from the drone: the height, battery and ToF fields are there and
    plausible (battery 0-100 %, height within +-100 m). Anything else would turn noise into a height or a battery level,
    so it is dropped whole rather than mixed into the telemetry."""
    if not all(key in state for key in REQUIRED_STATE_FIELDS):
        return False
    return 0.0 <= state["bat"] <= 100.0 and abs(state["h"]) <= 10_000.0 and 0.0 <= state["tof"] <= 100_000.0


def number(state: dict, key: str, default: float | None = None) -> float | None:
    """A finite number from a state dict, else ``default`` (bools, strings and non-finite values count as missing)."""
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


def body_velocity_cm_s(state: dict) -> tuple[float, float, float]:
    """(forward, left, up) body velocity in cm/s from a state dict's vgx/vgy/vgz (dm/s, forward/right/down)."""
    vgx = number(state, "vgx", 0.0) or 0.0
    vgy = number(state, "vgy", 0.0) or 0.0
    vgz = number(state, "vgz", 0.0) or 0.0
    return vgx * 10.0, -vgy * 10.0, -vgz * 10.0


def yaw_rep103_deg(state: dict) -> float | None:
    """The state's yaw (clockwise positive) as REP-103 yaw (counter-clockwise positive)."""
    yaw = number(state, "yaw")
    return None if yaw is None else -yaw


@dataclass(frozen=True)
class Reply:
    """One datagram the drone sent back on the control port."""

    kind: str  # "ok", "error", "forced_stop", "value"
    text: str

    @property
    def ok(self) -> bool:
        return self.kind in ("ok", "value")


def parse_reply(data: bytes) -> Reply:
    """Classify a reply. Matches exactly: djitellopy's ``'ok' in response`` would take "unknown command: look" for
    success."""
    text = data.decode("utf-8", "replace").strip().strip("\x00").strip()
    low = text.lower()
    if low == "ok":
        return Reply("ok", text)
    if low == "forced stop":
        return Reply("forced_stop", text)
    if not text or low.startswith(("error", "unknown command", "out of range", "false")) or "\ufffd" in text:
        return Reply("error", text or "empty reply")
    return Reply("value", text)
