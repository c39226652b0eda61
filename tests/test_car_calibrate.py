"""``edgepilot calibrate camera``: checkerboard photos rendered with a known camera give that camera back, and the
lane geometry of a car run uses what was stored."""

import json
import math

import cv2
import numpy as np
import pytest

from edgepilot.pilot.app.cli import main
from edgepilot.robot_car.mount import CarSetup, camera_model, car_setup, load_intrinsics

K_TRUE = np.array([[520.0, 0.0, 318.0], [0.0, 515.0, 242.0], [0.0, 0.0, 1.0]])
SQUARE_MM = 25.0
BOARD = (9, 6)  # inner corners: 10 x 7 squares


def board_texture(px_per_square: int = 40, margin_squares: int = 1) -> tuple[np.ndarray, float]:
    """A printed board: 10 x 7 black/white squares on white paper; returns the image and its mm per pixel."""
    cols, rows = BOARD[0] + 1, BOARD[1] + 1
    m = margin_squares * px_per_square
    image = np.full((rows * px_per_square + 2 * m, cols * px_per_square + 2 * m), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                y, x = m + r * px_per_square, m + c * px_per_square
                image[y:y + px_per_square, x:x + px_per_square] = 0
    return image, SQUARE_MM / px_per_square


def photograph(rvec, tvec_mm, size=(640, 480)) -> np.ndarray:
    """The board seen by the camera K_TRUE from pose (rvec, tvec): a homography of the plane, plus sensor noise."""
    texture, mm_per_px = board_texture()
    margin_mm = SQUARE_MM  # the first inner corner is one margin + one square from the texture's corner
    r, _ = cv2.Rodrigues(np.asarray(rvec, np.float64))
    # texture pixel (u, v) -> board plane (mm), origin at the first inner corner
    texture_to_board = np.array([[mm_per_px, 0, -2 * margin_mm], [0, mm_per_px, -2 * margin_mm], [0, 0, 1]])
    board_to_image = K_TRUE @ np.column_stack([r[:, 0], r[:, 1], np.asarray(tvec_mm, np.float64)])
    h = board_to_image @ texture_to_board
    image = cv2.warpPerspective(texture, h, size, flags=cv2.INTER_AREA, borderValue=170)
    noise = np.random.default_rng(int(abs(tvec_mm[0]) + 7)).normal(0, 2.0, image.shape)
    return cv2.cvtColor(np.clip(image + noise, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


POSES = [((0.0, 0.0, 0.0), (-100, -60, 500)), ((0.35, 0.0, 0.05), (-110, -70, 520)),
         ((-0.3, 0.2, 0.0), (-90, -50, 480)), ((0.1, -0.4, 0.1), (-120, -60, 560)),
         ((0.25, 0.3, -0.1), (-100, -80, 600)), ((-0.2, -0.25, 0.2), (-80, -40, 450))]


def test_calibrate_camera_recovers_a_known_camera_and_the_car_uses_it(tmp_path, capsys):
    photos = []
    for i, (rvec, tvec) in enumerate(POSES):
        path = tmp_path / f"board{i}.png"
        cv2.imwrite(str(path), photograph(rvec, tvec))
        photos.append(str(path))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, np.uint8))
    out = tmp_path / "camera.json"
    assert main(["calibrate", "camera", *photos, str(blank), "--board", "9x6", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["photos_used"] == len(POSES) and result["photos_skipped"] == [str(blank)]
    k = load_intrinsics(out)
    assert k.fx_px == pytest.approx(520.0, rel=0.02) and k.fy_px == pytest.approx(515.0, rel=0.02)
    assert k.cx_px == pytest.approx(318.0, abs=6) and k.cy_px == pytest.approx(242.0, abs=6)
    assert k.rms_px < 0.5
    # The [car] table points at it; the lane geometry's camera model takes its focal length, scaled to the frame.
    setup = car_setup({"car": {"intrinsics": str(out), "camera_height_cm": 12.0, "width": 320, "height": 240}})
    model, distortion = camera_model(setup, load_intrinsics(out))
    assert model.fx == pytest.approx(k.fx_px / 2) and model.height_cm == 12.0 and len(distortion) == 5
    assert model.hfov_deg == pytest.approx(math.degrees(2 * math.atan(320 / (2 * model.fx))))


def test_calibrate_refuses_photos_without_the_board_in_one_line(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, np.uint8))
    assert main(["calibrate", "camera", str(blank), "--out", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "found in 0 of 1 photos" in err and "\n" not in err
    assert main(["calibrate", "camera", str(tmp_path / "nope.png")]) == 2


def test_car_table_checks_its_keys():
    assert car_setup({}) == CarSetup()
    with pytest.raises(Exception, match=r"\[car\]: unknown setting 'camera_tilt'"):
        car_setup({"car": {"camera_tilt": 3}})
    with pytest.raises(Exception, match="camera_pitch_deg"):
        car_setup({"car": {"camera_pitch_deg": 95}})
