"""The detectors the pipeline can use, all returning :class:`edgepilot.pilot.core.messages.Detection` (without a track yet).

- :class:`FaceDetector`: BlazeFace full range (default: faces up to ~5 m, what a drone sees) or short range (~2 m,
  3-4x cheaper, for a face filling the frame).
- :class:`PoseDetector`: people from the BlazePose detector, near; optional overlapping tiles add smaller people at
  a cost of one more inference per tile. See the README's vision section for why and how well it works.
- :class:`edgepilot.vision.ssd.SsdDetector`: any TF Object Detection API SSD model given with ``--model``.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from edgepilot.pilot.core.messages import Detection
from edgepilot.vision.blaze import FACE_FULL, FACE_SHORT, POSE_DETECTOR, BlazeDetector, RawDetections
from edgepilot.vision.nms import hard_nms


class Detector(Protocol):
    labels: tuple[str, ...]

    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...


def _to_detections(label: str, raw: RawDetections, boxes: np.ndarray | None = None) -> list[Detection]:
    boxes = raw.boxes if boxes is None else boxes
    return [
        Detection(label, round(float(s), 4), tuple(round(float(v), 1) for v in b),
                  keypoints=tuple((round(float(x), 1), round(float(y), 1)) for x, y in k))
        for b, s, k in zip(boxes, raw.scores, raw.keypoints, strict=True)
    ]


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    boxes = boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return boxes


class FaceDetector:
    """BlazeFace. Keypoints: right eye, left eye, nose tip, mouth, right ear, left ear (the subject's sides)."""

    labels = ("face",)

    def __init__(self, model_range: str = "full", threads: int = 1, score_threshold: float | None = None) -> None:
        config = {"full": FACE_FULL, "short": FACE_SHORT}.get(model_range)
        if config is None:
            raise ValueError(f"face model range must be 'full' or 'short', not {model_range!r}")
        self._blaze = BlazeDetector(config, threads, score_threshold)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        raw = self._blaze.detect(image_bgr)
        h, w = image_bgr.shape[:2]
        return _to_detections("face", raw, clip_boxes(raw.boxes, w, h))


def person_boxes(raw: RawDetections) -> np.ndarray:
    """Whole-body boxes from BlazePose detections. Its box is the face; keypoint 0 is the hip centre and keypoint 1
    the top of a circle around the whole body centred on the hips. The body is the circle's height and, measured on
    upright people, about 0.45 of it wide (arms down); a leaning body gets the circle's full width."""
    hips, top = raw.keypoints[:, 0], raw.keypoints[:, 1]
    axis = top - hips
    radius = np.linalg.norm(axis, axis=1)
    lean = np.abs(axis[:, 0]) / np.maximum(radius, 1e-6)  # 0 upright, 1 lying
    half_w = radius * (0.45 + 0.55 * lean)
    half_h = radius * (1.0 - 0.55 * lean)
    boxes = np.stack([hips[:, 0] - half_w, hips[:, 1] - half_h, hips[:, 0] + half_w, hips[:, 1] + half_h], axis=1)
    # The face must be inside: widen to it (a person seen from close may have hips out of frame).
    boxes[:, 0] = np.minimum(boxes[:, 0], raw.boxes[:, 0])
    boxes[:, 1] = np.minimum(boxes[:, 1], raw.boxes[:, 1])
    boxes[:, 2] = np.maximum(boxes[:, 2], raw.boxes[:, 2])
    return boxes


def tile_grid(width: int, height: int, tiles: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Overlapping square-ish tiles covering the frame, ``tiles`` per row (rows follow the aspect ratio)."""
    tile_w = math.ceil(width / (tiles - (tiles - 1) * overlap))
    rows = max(1, round(height / tile_w))
    tile_h = math.ceil(height / (rows - (rows - 1) * overlap)) if rows > 1 else height
    xs = np.linspace(0, width - tile_w, tiles).round().astype(int)
    ys = np.linspace(0, height - tile_h, rows).round().astype(int) if rows > 1 else [0]
    return [(int(x), int(y), tile_w, tile_h) for y in ys for x in xs]


class PoseDetector:
    """People from the BlazePose detector on the whole frame, plus ``tiles`` x rows overlapping tiles if > 1."""

    labels = ("person",)

    def __init__(self, threads: int = 1, tiles: int = 0, score_threshold: float | None = None) -> None:
        self._blaze = BlazeDetector(POSE_DETECTOR, threads, score_threshold)
        self.tiles = tiles

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        h, w = image_bgr.shape[:2]
        rois: list[tuple[int, int, int, int] | None] = [None]
        if self.tiles > 1:
            rois += tile_grid(w, h, self.tiles)
        found = [self._blaze.detect(image_bgr, roi) for roi in rois]
        raw = RawDetections(np.concatenate([f.boxes for f in found]), np.concatenate([f.scores for f in found]),
                            np.concatenate([f.keypoints for f in found]))
        if not len(raw):
            return []
        boxes = person_boxes(raw)
        keep = hard_nms(boxes, raw.scores, 0.4) if len(rois) > 1 else np.arange(len(raw))
        raw = RawDetections(raw.boxes[keep], raw.scores[keep], raw.keypoints[keep])
        return _to_detections("person", raw, clip_boxes(boxes[keep], w, h))
