"""A small multi-object tracker: stable ids from frame to frame, so a name found once stays with its face.

Each track keeps a box and a constant-velocity motion model (pixels per second for each box edge). A new frame's
detections are matched to the tracks' *predicted* boxes by IoU, falling back to centre distance for small or fast
objects whose boxes no longer overlap; the matching is greedy, best pair first, which is optimal enough for the handful
of objects a camera sees. Unmatched detections start tracks; tracks unseen for ``max_missed_s`` expire.

A track id says "probably the same object", not "certainly": after a gap a different person may step into the place
the last one left, and two crossing faces may swap boxes. The tracker notes on the track when such a doubt arises
(:attr:`Track.recheck`), so that whoever put a name on it checks the name again (see vision/naming.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from edgepilot.vision.nms import iou_matrix

#: Why a track's identity should be checked again (values of :attr:`Track.recheck`).
REACQUIRED = "reacquired"  # found again after its detector ran and missed it
JUMPED = "jumped"  # its new detection is far from where the motion model put it, or of another size
CROWDED = "crowded"  # another track's predicted box overlapped its detection: the two may have swapped


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
    #: Frames in a row on which its detector ran and did not find it (0 when seen in the last detector run).
    misses: int = 0
    #: Set by the tracker when this track may now be a different object than before (REACQUIRED, JUMPED or
    #: CROWDED; the first two win over CROWDED), cleared by whoever checks its identity.
    recheck: str | None = None
    # Identity, filled by the pipeline (faces only).
    name: str | None = None
    distance: float = float("inf")
    identified_t_s: float | None = None  # when an embedding was last computed for this track
    identity_attempts: int = 0
    unknown_streak: int = 0  # checks in a row that found no enrolled face (the first retries come sooner)

    def predict(self, t_s: float) -> np.ndarray:
        return self.box + self.velocity * (t_s - self.t_s)

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def flag(self, reason: str) -> None:
        """Ask for an identity re-check; a re-acquisition or a jump is not downgraded to a mere crowding."""
        if self.recheck is None or self.recheck == CROWDED:
            self.recheck = reason


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
    #: A detection whose centre is more than this many track sizes from the predicted centre, or whose size differs
    #: from the predicted one by more than ``jump_scale`` times, is a jump: the track may now be someone else.
    jump_sizes: float = 1.0
    jump_scale: float = 1.5
    #: A detection that another track's predicted box overlaps by at least this IoU could belong to either: both
    #: tracks are flagged CROWDED.
    crowded_iou: float = 0.1


class Tracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, t_s: float, labels: list[str], boxes: np.ndarray, scores: np.ndarray,
               keypoints: list[np.ndarray] | None = None, ran: Collection[str] | None = None) -> list[Track]:
        """Feed one frame's detections; return the tracks seen in this frame, in the order of the detections.

        ``ran``: the labels whose detector ran on this frame (None: all of them). Live tracks of those labels that
        no detection matched count a miss; tracks of other labels are coasting and count nothing."""
        cfg = self.config
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        keypoints = keypoints if keypoints is not None else [np.zeros((0, 2))] * len(boxes)
        self.tracks = [t for t in self.tracks if t_s - t.t_s <= cfg.max_missed_s]
        assigned, crowded = self._match(t_s, labels, boxes)
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
                if i in crowded:
                    track.flag(CROWDED)
            out.append(track)
        seen = {id(t) for t in out}
        for track in self.tracks:
            if id(track) not in seen and (ran is None or track.label in ran):
                track.misses += 1
        return out

    def coasting(self, t_s: float, labels: tuple[str, ...]) -> list[Track]:
        """Live tracks of ``labels`` not updated at ``t_s`` (their detector skipped this frame)."""
        return [t for t in self.tracks if t.label in labels and t.t_s < t_s
                and t_s - t.t_s <= self.config.max_missed_s]

    def _match(self, t_s: float, labels: list[str], boxes: np.ndarray) -> tuple[dict[int, Track], set[int]]:
        """Detection index -> its track, and the detections whose track could as well have been another one."""
        cfg = self.config
        if not self.tracks or not len(boxes):
            return {}, set()
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
        # A detection overlapped by the predicted box of a track other than its own: the two tracks could have
        # swapped here. Both are flagged (the other one through the detection it got, if any).
        index = {id(t): k for k, t in enumerate(self.tracks)}
        crowded: set[int] = set()
        contested = np.where(same_label, iou, 0) >= cfg.crowded_iou
        for di, track in assigned.items():
            rivals = [int(k) for k in np.flatnonzero(contested[:, di]) if k != index[id(track)]]
            if rivals:
                crowded.add(di)
                crowded.update(dj for dj, other in assigned.items() if index[id(other)] in rivals)
        return assigned, crowded

    def _correct(self, track: Track, t_s: float, box: np.ndarray, score: float, keypoints: np.ndarray) -> None:
        cfg = self.config
        dt = t_s - track.t_s
        predicted = track.predict(t_s)
        doubt = REACQUIRED if track.misses else JUMPED if self._jumped(predicted, box) else None
        track.misses = 0
        if doubt is None:
            new_box = cfg.box_gain * box + (1 - cfg.box_gain) * predicted
        else:
            # The prediction no longer describes what this track now follows: take the detection as it is (its box
            # is also what the identity re-check looks at).
            track.flag(doubt)
            new_box = box.copy()
        if dt > 1e-6:
            measured_velocity = (new_box - track.box) / dt
            track.velocity = cfg.velocity_gain * measured_velocity + (1 - cfg.velocity_gain) * track.velocity
        track.box, track.score, track.t_s, track.keypoints = new_box, score, t_s, keypoints
        track.hits += 1

    def _jumped(self, predicted: np.ndarray, box: np.ndarray) -> bool:
        size_p = max(predicted[2] - predicted[0], predicted[3] - predicted[1], 1e-6)
        size_d = max(box[2] - box[0], box[3] - box[1], 1e-6)
        shift = float(np.linalg.norm((predicted[:2] + predicted[2:]) / 2 - (box[:2] + box[2:]) / 2))
        scale = max(size_p / size_d, size_d / size_p)
        return shift > self.config.jump_sizes * size_p or scale > self.config.jump_scale
