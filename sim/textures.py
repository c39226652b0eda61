"""Pixels for the simulated world: face photos, person billboards, ground textures and the sky.

Face photos are pluggable: a path, an ndarray, or nothing (a generated face), so the simulator never needs the
network. The real photos come from ``scripts/fetch_test_data.py``'s cache (``$EDGEPILOT_TEST_DATA`` or
``~/.cache/edgepilot/test-data``) when it has been filled.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from edgepilot.pilot.core.errors import InputError

log = logging.getLogger(__name__)

FaceSource = Union[str, os.PathLike, np.ndarray, "FaceImage"]

#: Face boxes (x, y, w, h in pixels) of the cached test photos, found once with dlib's HOG face detector, so the
#: simulator can place each face exactly where its billboard says without running a detector at start-up.
KNOWN_FACE_BOXES: dict[str, tuple[int, int, int, int]] = {
    "obama.jpg": (349, 142, 269, 268),
    "obama2.jpg": (171, 290, 268, 269),
    "obama3.jpg": (633, 277, 322, 322),
    "biden.jpg": (419, 241, 322, 322),
    "astronaut.png": (175, 76, 91, 91),
}
#: The photos a default world puts on its people, one identity each, in this order.
DEFAULT_PHOTOS = ("obama.jpg", "biden.jpg", "astronaut.png")

# Billboard layout of an adult, in cm from the billboard's top-left corner. The face box is horizontally centred, so
# the face centre lies on the billboard's vertical axis whichever way the billboard turns.
ADULT_WIDTH_CM = 45.0
ADULT_HEIGHT_CM = 170.0
HEAD_BOX_CM = (9.5, 0.0, 35.5, 28.0)  # left, top, right, bottom: the photo, cut to an ellipse
FACE_BOX_CM = (13.5, 5.0, 31.5, 23.0)  # where the photo's face box lands
TEXTURE_HEIGHT_PX = 720


@dataclass(frozen=True, eq=False)
class FaceImage:
    """A BGR photo and the box (x, y, w, h in pixels) of the face in it."""

    image: np.ndarray
    box: tuple[float, float, float, float]
    name: str = "person"


def cache_dir() -> Path:
    """Where ``scripts/fetch_test_data.py`` keeps its photos (same rule as that script)."""
    return Path(os.environ.get("EDGEPILOT_TEST_DATA") or Path.home() / ".cache" / "edgepilot" / "test-data")


def find_face_photos(folder: Path | None = None) -> list[Path]:
    """The default face photos that are present in the cache, in :data:`DEFAULT_PHOTOS` order (may be empty)."""
    folder = folder or cache_dir()
    return [folder / name for name in DEFAULT_PHOTOS if (folder / name).is_file()]


def _as_bgr(image: np.ndarray, what: str) -> np.ndarray:
    import cv2

    if image.dtype != np.uint8:
        raise InputError(f"{what}: expected an 8-bit image, got dtype {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise InputError(f"{what}: expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")


def guess_face_box(image: np.ndarray) -> tuple[float, float, float, float]:
    """Where the face probably is in a portrait we know nothing about: a centred square in the upper part."""
    h, w = image.shape[:2]
    side = 0.5 * min(w, h)
    return (w - side) / 2.0, min(0.15 * h, h - side), side, side


def load_face(source: FaceSource, name: str | None = None) -> FaceImage:
    """A :class:`FaceImage` from a path, an ndarray (BGR) or a FaceImage; the face box is known for the cached test
    photos and guessed otherwise. A missing or unreadable file is an :class:`InputError`."""
    import cv2

    if isinstance(source, FaceImage):
        return source
    if isinstance(source, np.ndarray):
        image = _as_bgr(source, "face image")
        return FaceImage(image, guess_face_box(image), name or "person")
    path = Path(source)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read face photo {path}: give a JPEG/PNG file (or run scripts/fetch_test_data.py)")
    box = KNOWN_FACE_BOXES.get(path.name)
    if box is None or box[0] + box[2] > image.shape[1] or box[1] + box[3] > image.shape[0]:
        box = guess_face_box(image)
    return FaceImage(image, tuple(float(v) for v in box), name or path.stem.rstrip("0123456789") or "person")


def generated_face(seed: int, size_px: int = 240) -> FaceImage:
    """A drawn face (skin, hair, eyes, brows, nose, mouth) for when no photo is available. Seeded."""
    import cv2

    rng = np.random.default_rng([seed, 7])
    skins = [(80, 110, 160), (110, 150, 205), (145, 180, 225), (60, 85, 125), (125, 165, 215)]
    hairs = [(30, 30, 35), (40, 60, 90), (20, 20, 20), (120, 140, 160), (35, 45, 70)]
    skin = skins[int(rng.integers(len(skins)))]
    hair = hairs[int(rng.integers(len(hairs)))]
    s = size_px
    img = np.full((s, s, 3), (200, 190, 180), np.uint8)
    cx, cy = s // 2, int(s * 0.55)
    cv2.ellipse(img, (cx, cy - int(s * 0.08)), (int(s * 0.33), int(s * 0.36)), 0, 180, 360, hair, -1, cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy), (int(s * 0.28), int(s * 0.36)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    eye_dy, eye_dx = int(s * 0.06), int(s * 0.11)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        cv2.ellipse(img, (ex, cy - eye_dy), (int(s * 0.05), int(s * 0.025)), 0, 0, 360, (245, 245, 245), -1,
                    cv2.LINE_AA)
        cv2.circle(img, (ex, cy - eye_dy), int(s * 0.018), (40, 30, 20), -1, cv2.LINE_AA)
        cv2.line(img, (ex - int(s * 0.05), cy - int(s * 0.12)), (ex + int(s * 0.05), cy - int(s * 0.125)),
                 tuple(int(c * 0.6) for c in hair), max(2, s // 60), cv2.LINE_AA)
    dark = tuple(int(c * 0.75) for c in skin)
    cv2.line(img, (cx, cy - int(s * 0.03)), (cx - int(s * 0.02), cy + int(s * 0.07)), dark, max(2, s // 80),
             cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy + int(s * 0.16)), (int(s * 0.08), int(s * 0.03)), 0, 0, 180, (60, 60, 150),
                max(2, s // 60), cv2.LINE_AA)
    side = 0.56 * s
    return FaceImage(img, (cx - side / 2, cy - side * 0.45, side, side), f"person{seed}")


@dataclass(frozen=True, eq=False)
class PersonTexture:
    """A BGRA billboard picture of a person and where the face is on it (cm from the top-left, adult scale)."""

    image: np.ndarray
    px_per_cm: float
    face_box_cm: tuple[float, float, float, float] = FACE_BOX_CM


def person_texture(face: FaceImage, shirt_bgr: tuple[int, int, int], trousers_bgr: tuple[int, int, int],
                   height_px: int = TEXTURE_HEIGHT_PX, skin_bgr: tuple[int, int, int] | None = None
                   ) -> PersonTexture:
    """Draw a standing person (photo head, neck, shirt with arms, trousers, shoes) on a transparent billboard.

    Drawn at adult proportions; the world scales the billboard for smaller figures. Neck and hands take the
    colour of the face's cheeks unless ``skin_bgr`` is given.
    """
    import cv2

    ppc = height_px / ADULT_HEIGHT_CM
    width_px = int(round(ADULT_WIDTH_CM * ppc))
    tex = np.zeros((height_px, width_px, 4), np.uint8)

    def rect(x0: float, y0: float, x1: float, y1: float, bgr: Sequence[int]) -> None:
        cv2.rectangle(tex, (int(round(x0 * ppc)), int(round(y0 * ppc))),
                      (int(round(x1 * ppc)) - 1, int(round(y1 * ppc)) - 1), (*bgr, 255), -1)

    skin = skin_bgr or _skin_colour(face)
    rect(18.0, 26.0, 27.0, 36.0, skin)  # neck
    rect(0.0, 36.0, 7.0, 90.0, [int(c * 0.85) for c in shirt_bgr])  # arms, a shade darker
    rect(38.0, 36.0, 45.0, 90.0, [int(c * 0.85) for c in shirt_bgr])
    rect(0.5, 90.0, 6.5, 98.0, skin)  # hands
    rect(38.5, 90.0, 44.5, 98.0, skin)
    rect(6.0, 33.0, 39.0, 98.0, shirt_bgr)  # torso
    rect(9.0, 98.0, 21.5, 165.0, trousers_bgr)
    rect(23.5, 98.0, 36.0, 165.0, trousers_bgr)
    rect(7.0, 165.0, 22.0, 170.0, (25, 25, 30))
    rect(23.0, 165.0, 38.0, 170.0, (25, 25, 30))

    # The photo, scaled so that its face box lands exactly on FACE_BOX_CM, cut to an ellipse around the head.
    hx0, hy0, hx1, hy1 = (v * ppc for v in HEAD_BOX_CM)
    fx0, fy0, fx1, fy1 = (v * ppc for v in FACE_BOX_CM)
    bx, by, bw, bh = face.box
    sx, sy = (fx1 - fx0) / bw, (fy1 - fy0) / bh
    head_w, head_h = int(round(hx1 - hx0)), int(round(hy1 - hy0))
    affine = np.array([[sx, 0.0, fx0 - hx0 - sx * bx], [0.0, sy, fy0 - hy0 - sy * by]])
    interp = cv2.INTER_AREA if sx < 1.0 else cv2.INTER_LINEAR
    head = cv2.warpAffine(face.image, affine, (head_w, head_h), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((head_h, head_w), np.uint8)
    cv2.ellipse(mask, (head_w // 2, head_h // 2), (head_w // 2, head_h // 2), 0, 0, 360, 255, -1)
    region = tex[int(round(hy0)):int(round(hy0)) + head_h, int(round(hx0)):int(round(hx0)) + head_w]
    region[mask > 0, :3] = head[mask > 0]
    region[mask > 0, 3] = 255
    return PersonTexture(tex, ppc)


def _skin_colour(face: FaceImage) -> tuple[int, int, int]:
    """The median colour of both cheeks (not the mouth: a smile would give white hands)."""
    x, y, w, h = face.box
    img_h, img_w = face.image.shape[:2]
    patches = []
    for fx in (0.22, 0.78):
        x0, y0 = int(x + (fx - 0.06) * w), int(y + 0.45 * h)
        x1, y1 = int(x + (fx + 0.06) * w), int(y + 0.6 * h)
        if 0 <= x0 < x1 <= img_w and 0 <= y0 < y1 <= img_h:
            patches.append(face.image[y0:y1, x0:x1].reshape(-1, 3))
    if not patches:
        return (110, 150, 205)
    return tuple(int(c) for c in np.median(np.concatenate(patches), axis=0))


# ---- ground ---------------------------------------------------------------------------------------------------------
def _noise(rng: np.random.Generator, shape: tuple[int, int], amplitude: float, blur_px: float) -> np.ndarray:
    """Smooth-ish signed noise (float32, std about ``amplitude``), cheap to make: wide blurs are done on a smaller
    grid and scaled up."""
    import cv2

    h, w = shape
    factor = max(1, int(blur_px // 2))
    small = rng.standard_normal((h // factor + 2, w // factor + 2), dtype=np.float32)
    if blur_px > 0:
        small = cv2.GaussianBlur(small, (0, 0), blur_px / factor)
        small /= max(float(small.std()), 1e-6)
    noise = small if factor == 1 else cv2.resize(small, (w // factor * factor + 2 * factor, h // factor * factor
                                                                                     + 2 * factor),
                                                  interpolation=cv2.INTER_LINEAR)
    return noise[:h, :w] * amplitude


def tiled_floor(seed: int, width_px: int, height_px: int, cm_per_px: float, tile_cm: float = 50.0) -> np.ndarray:
    """A hall floor: tiles of slightly different colour, grout lines and grain. Rows run top (+y) to bottom (-y)."""
    import cv2

    rng = np.random.default_rng([seed, 1])
    tile_px = tile_cm / cm_per_px
    n_tx, n_ty = int(math.ceil(width_px / tile_px)), int(math.ceil(height_px / tile_px))
    base = np.array([150, 160, 170], np.float32)
    tile_colours = base + rng.normal(0.0, 9.0, (n_ty, n_tx, 1)).astype(np.float32) + \
        rng.normal(0.0, 3.0, (n_ty, n_tx, 3)).astype(np.float32)
    img = cv2.resize(tile_colours, (int(round(n_tx * tile_px)), int(round(n_ty * tile_px))),
                     interpolation=cv2.INTER_NEAREST)[:height_px, :width_px]
    grain = _noise(rng, (height_px, width_px), 6.0, 1.0) + _noise(rng, (height_px, width_px), 5.0, 12.0)
    img += grain[:, :, None]
    grout = max(1, int(round(1.0 / cm_per_px)))
    img[:, (np.arange(width_px) % tile_px) < grout] *= 0.55
    img[(np.arange(height_px) % tile_px) < grout, :] *= 0.55
    return cv2.convertScaleAbs(img)


def track_mat(white_line_cm: np.ndarray, yellow_line_cm: np.ndarray, seed: int, x_min_cm: float, y_max_cm: float,
              width_px: int, height_px: int, cm_per_px: float, line_width_cm: float = 2.5) -> np.ndarray:
    """Dark asphalt with the lane drawn on it: a white line on the right edge (outside of the counter-clockwise
    loop) and a yellow line on the left edge, each a closed Nx2 polyline (cm)."""
    import cv2

    rng = np.random.default_rng([seed, 2])
    img = np.full((height_px, width_px, 3), 52.0, np.float32)
    img += _noise(rng, (height_px, width_px), 7.0, 0.7)[:, :, None]
    img += _noise(rng, (height_px, width_px), 4.0, 20.0)[:, :, None]
    img = cv2.convertScaleAbs(img)
    shift = 4  # sub-pixel precision for the line drawing

    def to_px(points_cm: np.ndarray) -> np.ndarray:
        col = (points_cm[:, 0] - x_min_cm) / cm_per_px - 0.5
        row = (y_max_cm - points_cm[:, 1]) / cm_per_px - 0.5
        return np.round(np.stack([col, row], axis=1) * (1 << shift)).astype(np.int32)

    thickness = max(1, int(round(line_width_cm / cm_per_px)))
    for line, bgr in ((white_line_cm, (235, 235, 235)), (yellow_line_cm, (40, 200, 230))):
        cv2.polylines(img, [to_px(line)], True, bgr, thickness, cv2.LINE_AA, shift)
    return img


def sky_gradient(width: int, height: int) -> np.ndarray:
    """Blue at the top fading to a pale haze at the bottom (the renderer copies the rows above the horizon)."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    top, bottom = np.array([200, 150, 90], np.float32), np.array([235, 225, 215], np.float32)
    column = (top * (1 - t) + bottom * t).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(column[:, None, :], (height, width, 3)))
