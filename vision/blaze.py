"""The BlazeFace / BlazePose single-shot detectors: letterboxed input, anchor decoding, weighted suppression.

Decoding follows MediaPipe's TensorsToDetections options for these graphs (``reverse_output_order``: the regressor
row is x, y, w, h, then keypoint x, y pairs, all in input pixels relative to the anchor; scores are logits clipped to
+-100). Everything is vectorised over the anchors; only the few candidates above the threshold go through suppression.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgepilot.models import model_path
from edgepilot.vision.anchors import FACE_FULL_RANGE, FACE_SHORT_RANGE, POSE, AnchorOptions, generate_anchors
from edgepilot.vision.litert import load_interpreter
from edgepilot.vision.nms import weighted_nms


@dataclass(frozen=True)
class BlazeConfig:
    model: str
    anchors: AnchorOptions
    num_keypoints: int
    score_threshold: float
    iou_threshold: float = 0.3


FACE_SHORT = BlazeConfig("face_detection_short_range.tflite", FACE_SHORT_RANGE, 6, 0.5)
FACE_FULL = BlazeConfig("face_detection_full_range_sparse.tflite", FACE_FULL_RANGE, 6, 0.6)
POSE_DETECTOR = BlazeConfig("pose_detection.tflite", POSE, 4, 0.5)


@dataclass(frozen=True)
class RawDetections:
    """Detections of one image in its pixel coordinates: boxes (N, 4) x1 y1 x2 y2, scores (N,), keypoints (N, K, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    @staticmethod
    def empty(num_keypoints: int) -> RawDetections:
        return RawDetections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, num_keypoints, 2)))

    def __len__(self) -> int:
        return len(self.scores)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Resize keeping the aspect ratio into a size x size black square; returns (square, scale, pad_x, pad_y)
    such that ``original = (square_xy - pad) / scale``."""
    h, w = image.shape[:2]
    scale = min(size / w, size / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), dtype=np.uint8)
    square[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return square, scale, float(pad_x), float(pad_y)


class BlazeDetector:
    """One BlazeFace / BlazePose model on LiteRT. :meth:`detect` takes a BGR image (or a region of it)."""

    def __init__(self, config: BlazeConfig, threads: int = 1, score_threshold: float | None = None) -> None:
        self.config = config
        self.score_threshold = config.score_threshold if score_threshold is None else score_threshold
        self._interpreter = load_interpreter(model_path(config.model), threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        # The regressor tensor is the one with more than one value per anchor; the other holds the scores.
        outputs = sorted(outputs, key=lambda d: -int(d["shape"][-1]))
        self._regressors, self._scores = outputs[0]["index"], outputs[1]["index"]
        self._anchors = generate_anchors(config.anchors)
        if len(self._anchors) != int(outputs[0]["shape"][1]):
            raise ValueError(f"{config.model}: {len(self._anchors)} anchors for {outputs[0]['shape'][1]} outputs")

    @property
    def input_size(self) -> int:
        return self.config.anchors.input_size

    def detect(self, image_bgr: np.ndarray, roi: tuple[int, int, int, int] | None = None) -> RawDetections:
        """Detect in ``image_bgr`` (or its ``roi`` = x, y, w, h); coordinates are those of the whole image."""
        off_x = off_y = 0
        if roi is not None:
            off_x, off_y, rw, rh = roi
            image_bgr = image_bgr[off_y:off_y + rh, off_x:off_x + rw]
        size = self.input_size
        square, scale, pad_x, pad_y = letterbox(image_bgr, size)
        tensor = cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32)
        tensor = (tensor * (2.0 / 255.0) - 1.0)[None]
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]
        # Threshold on the logit (monotonic) so only candidates pay for the sigmoid and decoding.
        threshold_logit = np.log(self.score_threshold / (1 - self.score_threshold))
        keep = np.nonzero(logits > threshold_logit)[0]
        k = self.config.num_keypoints
        if len(keep) == 0:
            return RawDetections.empty(k)
        raw = self._interpreter.get_tensor(self._regressors)[0, keep].astype(np.float64)
        anchors = self._anchors[keep].astype(np.float64) * size  # anchor centres in input pixels, w = h = size
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -100, 100)))
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 4:4 + 2 * k].reshape(-1, k, 2) + anchors[:, None, :]
        boxes, scores, flat = weighted_nms(boxes, scores, points.reshape(len(keep), -1), self.config.iou_threshold)
        # From letterboxed input pixels back to the image (and the roi's place in it).
        offset = np.array([pad_x, pad_y])
        boxes = (boxes.reshape(-1, 2, 2) - offset) / scale + (off_x, off_y)
        points = (flat.reshape(-1, k, 2) - offset) / scale + (off_x, off_y)
        return RawDetections(boxes.reshape(-1, 4), scores, points)
