"""Pinhole camera geometry in the body frame (REP-103: x forward, y left, z up), shared by every part that needs to
know where something on the ground or in the air lands in the image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def wrap_deg(angle: float) -> float:
    """An angle in degrees wrapped to (-180, 180]."""
    wrapped = math.fmod(angle + 180.0, 360.0)
    if wrapped <= 0:
        wrapped += 360.0
    return wrapped - 180.0


@dataclass(frozen=True)
class CameraModel:
    """A pinhole camera (no distortion) ``height_cm`` above the ground, looking forward, pitched down by
    ``pitch_deg``: the one camera model of the lane geometry, the simulator's renderer and the HUD.

    Pixel coordinates are OpenCV's: integer coordinates are pixel centres, so an ideal camera's principal point is
    ((width - 1) / 2, (height - 1) / 2). ``fx``/``fy``/``cx``/``cy`` left at None come from ``hfov_deg`` (square pixels,
    centred); a calibrated camera sets them.
    """

    width: int = 640
    height: int = 480
    hfov_deg: float = 82.6
    height_cm: float = 0.0
    pitch_deg: float = 0.0
    fx_px: float | None = None
    fy_px: float | None = None
    cx_px: float | None = None
    cy_px: float | None = None

    @property
    def fx(self) -> float:
        if self.fx_px is not None:
            return self.fx_px
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def fy(self) -> float:
        return self.fx if self.fy_px is None else self.fy_px

    @property
    def cx(self) -> float:
        return (self.width - 1) / 2.0 if self.cx_px is None else self.cx_px

    @property
    def cy(self) -> float:
        return (self.height - 1) / 2.0 if self.cy_px is None else self.cy_px

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 intrinsic matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        t = math.radians(self.pitch_deg)
        forward = np.array([math.cos(t), 0.0, -math.sin(t)])
        up = np.array([math.sin(t), 0.0, math.cos(t)])
        return forward, up

    def project(self, points_cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame points (N x 3, relative to the point under the camera on the ground) -> pixel coordinates
        (N x 2) and a mask of the points in front of the camera."""
        p = np.atleast_2d(np.asarray(points_cm, dtype=np.float64)) - np.array([0.0, 0.0, self.height_cm])
        forward, up = self._axes()
        depth = p @ forward
        in_front = depth > 1e-3
        safe = np.where(in_front, depth, 1.0)
        u = self.cx - self.fx * p[:, 1] / safe
        v = self.cy - self.fy * (p @ up) / safe
        return np.stack([u, v], axis=1), in_front

    def ground_to_image(self) -> np.ndarray:
        """3x3 homography from ground-plane points (x_cm, y_cm, 1) to pixels (u, v, 1)."""
        t = math.radians(self.pitch_deg)
        c, s, h = math.cos(t), math.sin(t), self.height_cm
        fx, fy, cx, cy = self.fx, self.fy, self.cx, self.cy
        return np.array([
            [cx * c, -fx, cx * h * s],
            [cy * c - fy * s, 0.0, cy * h * s + fy * h * c],
            [c, 0.0, h * s],
        ])

    def image_to_ground(self, u: float, v: float) -> tuple[float, float] | None:
        """Where pixel (u, v) meets the ground (x ahead, y left, cm), or None above the horizon."""
        ground = np.linalg.solve(self.ground_to_image(), np.array([u, v, 1.0]))
        if ground[2] <= 1e-9:
            return None
        x, y = ground[0] / ground[2], ground[1] / ground[2]
        return (float(x), float(y)) if x > 0 else None
