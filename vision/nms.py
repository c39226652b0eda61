"""Box overlap and non-maximum suppression, vectorised with numpy. Boxes are (x1, y1, x2, y2) rows."""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of two sets of boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, extras: np.ndarray | None = None,
                 iou_threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """MediaPipe's "weighted" suppression: each cluster of overlapping boxes (IoU above the threshold with the best
    remaining one) becomes one box, the score-weighted mean of the cluster's boxes (and ``extras`` rows, e.g.
    keypoints), keeping the best score. Averaging steadies boxes from frame to frame, which helps the tracker."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    extras = extras[order] if extras is not None else None
    remaining = np.ones(len(boxes), dtype=bool)
    out_boxes, out_scores, out_extras = [], [], []
    ious = iou_matrix(boxes, boxes)
    for i in range(len(boxes)):
        if not remaining[i]:
            continue
        cluster = remaining & (ious[i] > iou_threshold)
        cluster[i] = True
        weights = scores[cluster][:, None]
        out_boxes.append((boxes[cluster] * weights).sum(0) / weights.sum())
        out_scores.append(scores[i])
        if extras is not None:
            out_extras.append((extras[cluster] * weights).sum(0) / weights.sum())
        remaining &= ~cluster
    n_extra = extras.shape[1] if extras is not None else 0
    return (np.array(out_boxes).reshape(-1, 4), np.array(out_scores),
            np.array(out_extras).reshape(-1, n_extra) if extras is not None else None)


def hard_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Indices kept by classic greedy suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    ious = iou_matrix(boxes[order], boxes[order])
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        suppressed |= ious[i] > iou_threshold
    return np.array(keep, dtype=int)
