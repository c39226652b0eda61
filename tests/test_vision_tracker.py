"""Track ids across frames: motion, crossing, gaps and expiry; the doubts the tracker notes for identity re-checks."""

from __future__ import annotations

import numpy as np

from edgepilot.vision.tracker import CROWDED, JUMPED, REACQUIRED, Track, Tracker, TrackerConfig


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


def feed(tracker: Tracker, t: float, *boxes: list[float], ran: tuple[str, ...] | None = None):
    return tracker.update(t, ["face"] * len(boxes), np.array(boxes).reshape(-1, 4), np.ones(len(boxes)), ran=ran)


def test_a_track_found_again_after_a_miss_is_flagged_for_a_recheck():
    tracker = Tracker()
    for i in range(5):
        (track,) = feed(tracker, i / 30, box(100, 100))
    assert track.recheck is None and track.misses == 0
    feed(tracker, 5 / 30)  # the face detector ran and found nothing
    feed(tracker, 6 / 30)
    assert track.misses == 2
    (again,) = feed(tracker, 7 / 30, box(104, 100))
    assert again is track and track.recheck == REACQUIRED and track.misses == 0
    # The box is the detection itself, not pulled towards where the old motion model would have put it.
    np.testing.assert_allclose(track.box, box(104, 100))


def test_frames_where_the_detector_did_not_run_are_no_miss():
    tracker = Tracker()
    for i in range(3):
        (track,) = feed(tracker, i / 30, box(100, 100))
    feed(tracker, 3 / 30, ran=("person",))  # only the person detector ran on this frame
    assert track.misses == 0
    (again,) = feed(tracker, 4 / 30, box(101, 100))
    assert again is track and track.recheck is None


def test_a_box_that_jumps_by_its_size_or_changes_size_is_flagged():
    tracker = Tracker()
    for i in range(5):
        (track,) = feed(tracker, i / 30, box(100, 100, 40))
    (moved,) = feed(tracker, 5 / 30, box(150, 100, 40))  # 50 px from the prediction: more than its 40 px size
    assert moved is track and track.recheck == JUMPED
    track.recheck = None
    (steady,) = feed(tracker, 6 / 30, box(150, 100, 40))
    assert steady.recheck is None
    (grown,) = feed(tracker, 7 / 30, box(150, 100, 64))  # 1.6x the size from one frame to the next
    assert grown is track and track.recheck == JUMPED


def test_a_fast_steady_object_is_flagged_once_then_predicted():
    tracker = Tracker()
    flags = []
    for i in range(8):  # 50 px per frame with a 40 px box
        (track,) = feed(tracker, i / 30, box(50 + 50 * i, 100))
        flags.append(track.recheck)
        track.recheck = None
    assert flags[0] is None and flags[1] == JUMPED  # before its velocity is known
    assert flags[3:] == [None] * 5


def test_overlapping_tracks_are_flagged_crowded_and_keep_their_ids():
    tracker = Tracker()
    crowded = set()
    for i in range(30):
        a, b = box(100 + 12 * i, 200), box(460 - 12 * i, 215)
        ta, tb = feed(tracker, i / 30, a, b)
        assert (ta.id, tb.id) == (1, 2)
        crowded |= {t.id for t in (ta, tb) if t.recheck == CROWDED}
        if i < 8:
            assert ta.recheck is None and tb.recheck is None  # far apart: nothing to doubt
    assert crowded == {1, 2}


def test_crowded_does_not_hide_a_reacquisition():
    track = Track(1, "face", np.array(box(100, 100)), 1.0, 0.0)
    track.flag(REACQUIRED)
    track.flag(CROWDED)
    assert track.recheck == REACQUIRED
