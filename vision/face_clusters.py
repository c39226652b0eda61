"""Faces learned from runs: the unknown faces a run saw, grouped by person, for a person to name.

    samples = unknown_faces(open_source("run/frames.mkv").frames, "run", database)
    clusters = cluster(samples)              # lists of sample indices, biggest first
    sheet = contact_sheet(samples, clusters) # one row of thumbnails per cluster, to look at

Faces are found and tracked by the same detector and tracker the pilot uses; a track is embedded (dlib, about 100 ms
each) at most every ``sample_every_s`` and ``per_track`` times, so a long run costs a bounded number of embeddings per
person. A face the database already names is not a sample. Samples are grouped by dlib's Chinese-whispers graph
clustering: an edge joins two faces closer than ``threshold``; it needs no number of clusters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgepilot.pilot.core.errors import InputError, ModelError
from edgepilot.pilot.core.messages import Frame
from edgepilot.vision.identity import FaceDatabase, FaceEncoder

log = logging.getLogger(__name__)

THUMB_PX = 96


@dataclass(frozen=True)
class ClusterConfig:
    #: A face track is embedded at most this often ...
    sample_every_s: float = 0.5
    #: ... and at most this many times.
    per_track: int = 6
    #: dlib's aligned chip is 150 px; smaller faces give unreliable embeddings (as in vision/naming.py).
    min_face_px: float = 40.0
    #: Chinese-whispers edge threshold (euclidean). Measured on the test photos: the same person 0.29-0.45 apart,
    #: different people 0.77-0.93 (face_recognition's match tolerance is 0.6; dlib's own clustering example uses 0.5).
    threshold: float = 0.5


@dataclass(frozen=True)
class FaceSample:
    source: str  # the run or video it came from
    frame: int
    t_s: float
    track: int
    box: tuple[float, float, float, float]
    embedding: np.ndarray
    thumbnail: np.ndarray  # THUMB_PX square BGR crop of the face

    def describe(self) -> str:
        """Where this face was seen, as the face database keeps it."""
        return f"run:{self.source}#frame={self.frame},t={self.t_s:.2f}s,track={self.track}"


def unknown_faces(frames: Iterable[Frame], source: str, database: FaceDatabase | None = None,
                  config: ClusterConfig | None = None, encoder: FaceEncoder | None = None) -> list[FaceSample]:
    """Samples of the faces in ``frames`` that ``database`` does not name."""
    from edgepilot.vision.pipeline import Perception

    cfg = config or ClusterConfig()
    encoder = encoder or FaceEncoder()
    perception = Perception(detect="face")
    last: dict[int, float] = {}
    taken: dict[int, int] = {}
    samples: list[FaceSample] = []
    for frame in frames:
        for det in perception.process(frame):
            x1, y1, x2, y2 = det.box
            if det.track is None or min(x2 - x1, y2 - y1) < cfg.min_face_px:
                continue
            if taken.get(det.track, 0) >= cfg.per_track or frame.t_s - last.get(det.track, -np.inf) < cfg.sample_every_s:
                continue
            try:
                embedding = encoder.encode(frame.image, det.box)
            except InputError:
                continue
            last[det.track] = frame.t_s
            if database is not None and database.match(embedding).name is not None:
                taken[det.track] = cfg.per_track  # someone enrolled: stop looking at this track
                continue
            taken[det.track] = taken.get(det.track, 0) + 1
            samples.append(FaceSample(source, frame.index, frame.t_s, det.track, det.box, embedding,
                                      _thumbnail(frame.image, det.box)))
    log.info("%s: %d unknown face samples from %d tracks", source, len(samples), len(taken))
    return samples


def _thumbnail(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    side = 1.3 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    c, d = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    return cv2.resize(image[b:d, a:c], (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA)


def cluster(embeddings: Sequence[np.ndarray], threshold: float = ClusterConfig.threshold) -> list[list[int]]:
    """Indices of ``embeddings`` grouped by person (dlib's Chinese whispers), biggest group first."""
    if not len(embeddings):
        return []
    try:
        import dlib
    except ImportError:
        raise ModelError("face clustering needs dlib: pip install dlib-bin") from None
    labels = dlib.chinese_whispers_clustering([dlib.vector(list(map(float, e))) for e in embeddings], threshold)
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def purity(clusters: Sequence[Sequence[int]], truth: Sequence[object]) -> float:
    """The share of samples that belong to their cluster's majority person (1.0: no cluster mixes people).
    ``truth[i]`` is who sample i really is."""
    total = sum(len(c) for c in clusters)
    if not total:
        return 1.0
    majority = 0
    for members in clusters:
        counts: dict[object, int] = {}
        for i in members:
            counts[truth[i]] = counts.get(truth[i], 0) + 1
        majority += max(counts.values())
    return majority / total


def contact_sheet(thumbnails: Sequence[np.ndarray], clusters: Sequence[Sequence[int]],
                  titles: Sequence[str], per_row: int = 8) -> np.ndarray:
    """One row per cluster: its title, then up to ``per_row`` of its faces spread over the cluster."""
    label_w, pad = 220, 4
    width = label_w + per_row * (THUMB_PX + pad) + pad
    rows = max(1, len(clusters))
    sheet = np.full((rows * (THUMB_PX + pad) + pad, width, 3), 32, np.uint8)
    if not clusters:
        cv2.putText(sheet, "no unknown faces", (8, THUMB_PX // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        return sheet
    for r, (members, title) in enumerate(zip(clusters, titles, strict=True)):
        y = pad + r * (THUMB_PX + pad)
        for k, line in enumerate(title.split("\n")):
            cv2.putText(sheet, line, (8, y + 28 + 24 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                        cv2.LINE_AA)
        picks = np.linspace(0, len(members) - 1, min(per_row, len(members))).round().astype(int)
        for c, i in enumerate(picks):
            x = label_w + pad + c * (THUMB_PX + pad)
            sheet[y:y + THUMB_PX, x:x + THUMB_PX] = thumbnails[members[i]]
    return sheet
