"""Track ids across frames: motion, crossing, gaps and expiry."""

from __future__ import annotations

import numpy as np

from edgepilot.vision.tracker import Tracker, TrackerConfig


def box(cx: float, cy: float, size: float = 40) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def test_ids_stay_with_objects_that_cross():
    tracker = Tracker()
    ids = []
    for i in range(30):
        t = i / 30
        a, b = box(100 + 12 * i, 200), box(460 - 12 * i, 215)  # they pass each other around frame 15
        tracks = tracker.update(t, ["face", "face"], np.array([a, b]), np.array([0.9, 0.9]))
        ids.append((tracks[0].id, tracks[1].id))
    assert set(ids) == {(1, 2)}


def test_fast_object_matched_by_motion_model_even_without_overlap():
    tracker = Tracker()
    for i in range(5):  # 50 px per frame with a 40 px box: consecutive boxes never overlap
        (track,) = tracker.update(i / 30, ["person"], np.array([box(50 + 50 * i, 100)]), np.ones(1))
    assert track.id == 1 and track.velocity[0] > 1000  # ~1500 px/s


def test_short_gap_keeps_the_id_and_long_gap_expires():
    tracker = Tracker(TrackerConfig(max_missed_s=0.5))
    for i in range(5):
        tracker.update(i / 30, ["face"], np.array([box(100 + 3 * i, 100)]), np.ones(1))
    tracker.update(0.3, [], np.zeros((0, 4)), np.zeros(0))
    (track,) = tracker.update(0.4, ["face"], np.array([box(137, 100)]), np.ones(1))
    assert track.id == 1
    (track,) = tracker.update(1.5, ["face"], np.array([box(140, 100)]), np.ones(1))
    assert track.id == 2 and len(tracker.tracks) == 1


def test_labels_never_mix():
    tracker = Tracker()
    tracker.update(0.0, ["face"], np.array([box(100, 100)]), np.ones(1))
    (track,) = tracker.update(0.033, ["person"], np.array([box(100, 100)]), np.ones(1))
    assert track.id == 2
