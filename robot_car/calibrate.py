"""Camera intrinsics from photos of a printed checkerboard (OpenCV's Zhang calibration).

Take 10-20 photos of a flat checkerboard with the car's own camera, at the resolution the car drives with, from
different angles and distances, the board filling a good part of the frame. ``board`` counts the *inner* corners
(a board of 10 x 7 squares has 9 x 6); the square size only sets the scale of the board poses, not the intrinsics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.robot_car.mount import Intrinsics

log = logging.getLogger(__name__)

MIN_VIEWS = 3


def board_points(board: tuple[int, int], square_mm: float) -> np.ndarray:
    """The inner corners of the board in its own plane (mm), in OpenCV's row-major corner order."""
    cols, rows = board
    grid = np.zeros((rows * cols, 3), np.float32)
    grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square_mm
    return grid


def find_corners(image: np.ndarray, board: tuple[int, int]) -> np.ndarray | None:
    """Sub-pixel inner corners of the board in a BGR or grey image, or None when the whole board is not seen."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    found, corners = cv2.findChessboardCorners(grey, board, flags=cv2.CALIB_CB_ADAPTIVE_THRESH
                                               | cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    return cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)


def calibrate(photos: Sequence[Path], board: tuple[int, int] = (9, 6), square_mm: float = 25.0
              ) -> tuple[Intrinsics, dict]:
    """Intrinsics from the photos in which the whole board is found, and a report (which photos were used)."""
    object_points, image_points, used, skipped = [], [], [], []
    size: tuple[int, int] | None = None
    for path in photos:
        image = cv2.imread(str(path))
        if image is None:
            raise InputError(f"{path} is not an image OpenCV can read")
        if size is None:
            size = (image.shape[1], image.shape[0])
        elif (image.shape[1], image.shape[0]) != size:
            raise InputError(f"{path} is {image.shape[1]}x{image.shape[0]}, the first photo {size[0]}x{size[1]}: "
                             "take every photo at the same resolution (the car's)")
        corners = find_corners(image, board)
        if corners is None:
            skipped.append(str(path))
            continue
        object_points.append(board_points(board, square_mm))
        image_points.append(corners)
        used.append(str(path))
    if len(used) < MIN_VIEWS:
        raise InputError(f"the {board[0]}x{board[1]} inner corners of the board were found in {len(used)} of "
                         f"{len(photos)} photos; at least {MIN_VIEWS} are needed (check --board: inner corners, "
                         "not squares; the whole board in the picture, sharp and well lit)")
    assert size is not None
    rms, k, dist, _, _ = cv2.calibrateCamera(object_points, image_points, size, None, None)
    intrinsics = Intrinsics(size[0], size[1], float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]),
                            tuple(float(d) for d in dist.ravel()), float(rms))
    return intrinsics, {"photos_used": used, "photos_skipped": skipped, "board": list(board), "square_mm": square_mm}
