"""Lighting and camera faults applied to rendered frames, to test perception against what a real camera sees: a
shadow across the road, glare, motion blur, under- and over-exposure, sensor noise. Seeded and deterministic."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def shadow(image: np.ndarray, rng: np.random.Generator, darkness: float = 0.45) -> np.ndarray:
    """A hard-edged shadow (a building, a tree) over a random slanted band of the lower image."""
    h, w = image.shape[:2]
    x0, x1 = rng.uniform(-0.2, 0.6) * w, rng.uniform(0.4, 1.2) * w
    polygon = np.array([[x0, h * 0.45], [x0 + 0.35 * w, h * 0.45], [x1 + 0.3 * w, h], [x1 - 0.1 * w, h]], np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [polygon], 1)
    out = image.astype(np.float32)
    out[mask > 0] *= darkness
    return np.clip(out, 0, 255).astype(np.uint8)


def glare(image: np.ndarray, rng: np.random.Generator, strength: float = 170.0) -> np.ndarray:
    """A bright reflection on the floor: a wide soft blob added to every channel."""
    h, w = image.shape[:2]
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.55, 0.9) * h
    yy, xx = np.mgrid[0:h, 0:w]
    blob = strength * np.exp(-(((xx - cx) / (0.18 * w)) ** 2 + ((yy - cy) / (0.12 * h)) ** 2))
    return np.clip(image.astype(np.float32) + blob[..., None], 0, 255).astype(np.uint8)


def motion_blur(image: np.ndarray, rng: np.random.Generator, length_px: int = 11) -> np.ndarray:
    """Blur along a random direction, as a turning or shaking car smears a long exposure."""
    kernel = np.zeros((length_px, length_px), np.float32)
    kernel[length_px // 2, :] = 1.0 / length_px
    angle = float(rng.uniform(0, 180))
    rotation = cv2.getRotationMatrix2D((length_px / 2 - 0.5, length_px / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length_px, length_px))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def exposure(gain: float) -> Augment:
    """Under- (gain < 1) or over-exposed (gain > 1, clipping) frames."""
    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return apply


def noise(image: np.ndarray, rng: np.random.Generator, std: float = 12.0) -> np.ndarray:
    return np.clip(image.astype(np.float32) + rng.normal(0, std, image.shape), 0, 255).astype(np.uint8)


AUGMENTS: dict[str, Augment] = {
    "clean": lambda image, rng: image,
    "shadow": shadow,
    "glare": glare,
    "motion blur": motion_blur,
    "dark (x0.35)": exposure(0.35),
    "bright (x1.8)": exposure(1.8),
    "noise": noise,
    "shadow+blur+dark": lambda image, rng: exposure(0.5)(motion_blur(shadow(image, rng), rng), rng),
    # harsher: where it should become unsure
    "deep shadow x0.2": lambda image, rng: shadow(image, rng, darkness=0.2),
    "glare 255": lambda image, rng: glare(image, rng, strength=255.0),
    "blur 31 px": lambda image, rng: motion_blur(image, rng, length_px=31),
    "dark (x0.12)": exposure(0.12),
    "bright (x3)": exposure(3.0),
    "noise std 40": lambda image, rng: noise(image, rng, std=40.0),
}
