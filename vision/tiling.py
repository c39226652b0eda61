"""Run a detector on the whole frame and on overlapping tiles, then merge: small, far objects get more pixels.

SSD models squeeze the frame into 300x300; a pedestrian 40 px tall in a 640x360 frame is then ~33 px, near the
smallest the model finds. A tile shows it at up to twice that. The cost is one more inference per tile.
"""

from __future__ import annotations

import numpy as np

from edgepilot.pilot.core.messages import Detection
from edgepilot.vision.detectors import Detector, tile_grid
from edgepilot.vision.nms import hard_nms


class TiledDetector:
    def __init__(self, detector: Detector, tiles: int, overlap: float = 0.25, iou_threshold: float = 0.45) -> None:
        self.detector = detector
        self.labels = detector.labels
        self.tiles, self.overlap, self.iou_threshold = tiles, overlap, iou_threshold

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        h, w = image_bgr.shape[:2]
        found = list(self.detector.detect(image_bgr))
        for x, y, tw, th in tile_grid(w, h, self.tiles, self.overlap):
            for d in self.detector.detect(image_bgr[y:y + th, x:x + tw]):
                x1, y1, x2, y2 = d.box
                found.append(Detection(d.label, d.score, (x1 + x, y1 + y, x2 + x, y2 + y), keypoints=tuple(
                    (px + x, py + y) for px, py in d.keypoints)))
        merged: list[Detection] = []
        for label in sorted({d.label for d in found}):
            group = [d for d in found if d.label == label]
            keep = hard_nms(np.array([d.box for d in group]), np.array([d.score for d in group]), self.iou_threshold)
            merged.extend(group[i] for i in keep)
        return merged
