"""A small multi-object tracker: stable ids from frame to frame, so a name found once stays with its face.

Each track keeps a box and a constant-velocity motion model (pixels per second for each box edge). A new frame's
detections are matched to the tracks' *predicted* boxes by IoU, falling back to centre distance for small or fast
objects whose boxes no longer overlap; the matching is greedy, best pair first, which is optimal enough for the handful
of objects a camera sees. Unmatched detections start tracks; tracks unseen for ``max_missed_s`` expire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgepilot.vision.nms import iou_matrix


@dataclass
class Track:
    id: int
    label: str
    box: np.ndarray  # x1, y1, x2, y2 pixels, smoothed
    score: float
    t_s: float  # when last seen
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box edges, pixels per second
    hits: int = 1
    first_t_s: float = 0.0
    # Identity, filled by the pipeline (faces only).
    name: str | None = None
    distance: float = float("inf")
    identified_t_s: float | None = None  # when an embedding was last computed for this track
    identity_attempts: int = 0
    disagreements: int = 0

    def predict(self, t_s: float) -> np.ndarray:
        return self.box + self.velocity * (t_s - self.t_s)

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass(frozen=True)
class TrackerConfig:
    iou_threshold: float = 0.2
    #: Match by centres closer than this many track sizes when boxes do not overlap enough (a fast object before
    #: its velocity is known; nearer pairs are matched first, so neighbours are not stolen).
    centre_gate: float = 1.5
    max_missed_s: float = 1.0
    #: Weight of the new measurement in the box (the rest is the prediction): lower is smoother, higher follows faster.
    box_gain: float = 0.7
    velocity_gain: float = 0.5


class Tracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, t_s: float, labels: list[str], boxes: np.ndarray, scores: np.ndarray,
               keypoints: list[np.ndarray] | None = None) -> list[Track]:
        """Feed one frame's detections; return the tracks seen in this frame, in the order of the detections."""
        cfg = self.config
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        keypoints = keypoints if keypoints is not None else [np.zeros((0, 2))] * len(boxes)
        self.tracks = [t for t in self.tracks if t_s - t.t_s <= cfg.max_missed_s]
        assigned = self._match(t_s, labels, boxes)
        out: list[Track] = []
        for i in range(len(boxes)):
            track = assigned.get(i)
            if track is None:
                track = Track(self._next_id, labels[i], boxes[i].copy(), float(scores[i]), t_s, keypoints[i],
                              first_t_s=t_s)
                self._next_id += 1
                self.tracks.append(track)
            else:
                self._correct(track, t_s, boxes[i], float(scores[i]), keypoints[i])
            out.append(track)
        return out

    def coasting(self, t_s: float, labels: tuple[str, ...]) -> list[Track]:
        """Live tracks of ``labels`` not updated at ``t_s`` (their detector skipped this frame)."""
        return [t for t in self.tracks if t.label in labels and t.t_s < t_s
                and t_s - t.t_s <= self.config.max_missed_s]

    def _match(self, t_s: float, labels: list[str], boxes: np.ndarray) -> dict[int, Track]:
        cfg = self.config
        if not self.tracks or not len(boxes):
            return {}
        predicted = np.array([t.predict(t_s) for t in self.tracks])
        iou = iou_matrix(predicted, boxes)
        centres_t = (predicted[:, :2] + predicted[:, 2:]) / 2
        centres_d = (boxes[:, :2] + boxes[:, 2:]) / 2
        dist = np.linalg.norm(centres_t[:, None] - centres_d[None], axis=2)
        sizes_t = np.maximum(predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1])
        sizes_d = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        ratio = np.maximum(sizes_t[:, None], 1e-6) / np.maximum(sizes_d[None], 1e-6)
        near = (dist < cfg.centre_gate * sizes_t[:, None]) & (ratio > 0.5) & (ratio < 2.0)
        same_label = np.array([[t.label == lab for lab in labels] for t in self.tracks])
        # Score: 1 + IoU when it passes; else, for a near centre, a value in (0, 1) that falls with distance;
        # 0 (impossible) otherwise. Overlapping pairs always win over merely near ones.
        closeness = 1.0 / (1.0 + dist / (sizes_t[:, None] + 1e-6))
        score = np.where(iou >= cfg.iou_threshold, 1.0 + iou, np.where(near, closeness, 0.0))
        score = np.where(same_label, score, 0)
        assigned: dict[int, Track] = {}
        used_tracks: set[int] = set()
        for flat in np.argsort(-score, axis=None, kind="stable"):
            ti, di = np.unravel_index(flat, score.shape)
            if score[ti, di] <= 0:
                break
            if ti in used_tracks or di in assigned:
                continue
            used_tracks.add(int(ti))
            assigned[int(di)] = self.tracks[ti]
        return assigned

    def _correct(self, track: Track, t_s: float, box: np.ndarray, score: float, keypoints: np.ndarray) -> None:
        cfg = self.config
        dt = t_s - track.t_s
        predicted = track.predict(t_s)
        new_box = cfg.box_gain * box + (1 - cfg.box_gain) * predicted
        if dt > 1e-6:
            measured_velocity = (new_box - track.box) / dt
            track.velocity = cfg.velocity_gain * measured_velocity + (1 - cfg.velocity_gain) * track.velocity
        track.box, track.score, track.t_s, track.keypoints = new_box, score, t_s, keypoints
        track.hits += 1
