"""Differential-drive kinematics for the Pi car: body velocity -> wheel speeds -> motor duty, and dead reckoning.

Pure functions and a small odometry class, no GPIO: everything here is exact arithmetic that the tests can check.
Coordinates follow REP-103 (x forward, y left, yaw counter-clockwise positive), like the rest of edgepilot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgepilot.pilot.core.geometry import wrap_deg


@dataclass(frozen=True)
class DriveCalibration:
    """How the motors turn duty into motion. Two numbers to measure on the floor (see the README):

    ``max_speed_cm_s``: wheel speed at full duty; ``track_width_cm``: the *effective* distance between the wheels
    (a skid-steering car turns slower than its geometric track suggests, so calibrate it with ``cw 360``).
    ``min_duty``: duty at which the wheels just start to turn (0 = ideal motor); commanded speeds are mapped onto
    ``[min_duty, 1]`` so slow commands still move a car whose motors stall at low duty.
    """

    max_speed_cm_s: float = 60.0
    track_width_cm: float = 14.0
    min_duty: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_speed_cm_s) and self.max_speed_cm_s > 0):
            raise ValueError(f"max_speed_cm_s must be positive, got {self.max_speed_cm_s!r}")
        if not (math.isfinite(self.track_width_cm) and self.track_width_cm > 0):
            raise ValueError(f"track_width_cm must be positive, got {self.track_width_cm!r}")
        if not (math.isfinite(self.min_duty) and 0.0 <= self.min_duty < 1.0):
            raise ValueError(f"min_duty must be in [0, 1), got {self.min_duty!r}")


def wheel_speeds(vx_cm_s: float, yaw_rate_deg_s: float, cal: DriveCalibration) -> tuple[float, float]:
    """Left and right wheel speeds (cm/s) for a forward speed and a yaw rate (CCW positive), within the motors' reach.

    When a wheel would need more than ``max_speed_cm_s``, both wheels are scaled down by the same factor: the car
    then follows the same arc, only slower, instead of turning tighter or wider than asked.
    """
    half_track_rad = math.radians(yaw_rate_deg_s) * cal.track_width_cm / 2.0
    left, right = vx_cm_s - half_track_rad, vx_cm_s + half_track_rad
    fastest = max(abs(left), abs(right))
    if fastest > cal.max_speed_cm_s:
        scale = cal.max_speed_cm_s / fastest
        left, right = left * scale, right * scale
    return left, right


def body_velocity(left_cm_s: float, right_cm_s: float, cal: DriveCalibration) -> tuple[float, float]:
    """Forward speed (cm/s) and yaw rate (deg/s, CCW positive) of the car for the given wheel speeds."""
    return (left_cm_s + right_cm_s) / 2.0, math.degrees((right_cm_s - left_cm_s) / cal.track_width_cm)


def duty_for_speed(speed_cm_s: float, cal: DriveCalibration) -> float:
    """Motor value in [-1, 1] (gpiozero's ``Motor.value``) that makes a wheel turn at ``speed_cm_s``."""
    fraction = min(1.0, abs(speed_cm_s) / cal.max_speed_cm_s)
    if fraction < 1e-9:
        return 0.0
    return math.copysign(cal.min_duty + (1.0 - cal.min_duty) * fraction, speed_cm_s)


class Odometry:
    """Dead reckoning from commanded wheel speeds: exact integration of constant-velocity arcs.

    Open loop, so it is only as good as the calibration: it knows what the motors were told, not what the wheels did.
    """

    def __init__(self) -> None:
        self.x_cm = 0.0
        self.y_cm = 0.0
        self.yaw_rad = 0.0

    @property
    def yaw_deg(self) -> float:
        """Yaw wrapped to (-180, 180]."""
        return wrap_deg(math.degrees(self.yaw_rad))

    def integrate(self, vx_cm_s: float, yaw_rate_deg_s: float, dt_s: float) -> None:
        if dt_s <= 0:
            return
        omega = math.radians(yaw_rate_deg_s)
        yaw0 = self.yaw_rad
        if abs(omega) < 1e-9:
            self.x_cm += vx_cm_s * dt_s * math.cos(yaw0)
            self.y_cm += vx_cm_s * dt_s * math.sin(yaw0)
        else:
            # Constant forward speed and yaw rate trace a circular arc of radius v / omega.
            yaw1 = yaw0 + omega * dt_s
            radius = vx_cm_s / omega
            self.x_cm += radius * (math.sin(yaw1) - math.sin(yaw0))
            self.y_cm -= radius * (math.cos(yaw1) - math.cos(yaw0))
        self.yaw_rad += omega * dt_s

    def world_velocity(self, vx_cm_s: float) -> tuple[float, float]:
        """The forward speed expressed in the start frame (x, y), for telemetry."""
        return vx_cm_s * math.cos(self.yaw_rad), vx_cm_s * math.sin(self.yaw_rad)
