"""Identity is earned, not inherited: a face track's name is checked again when the track is found again after a
miss, when its box jumps, while another track overlaps it, and about every second; a check that does not confirm the
name takes it away at once.

The scheduling is tested with a stand-in encoder that counts its calls; the user's cases (someone else stepping into
the place an enrolled person left, two enrolled people crossing) with the real detector and dlib encoder on clips made
from real photos (tests/vision_synth.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from vision_synth import crossing, photos, replacement, scene_clip, who

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.core.messages import Frame
from edgepilot.vision.detectors import FaceDetector
from edgepilot.vision.identity import FaceDatabase, FaceEncoder
from edgepilot.vision.naming import NamingConfig, TrackNamer
from edgepilot.vision.pipeline import Perception
from edgepilot.vision.tracker import CROWDED, Track, Tracker
from edgepilot.vision.video_io import VideoWriter

FPS = 30.0
IMAGE = np.zeros((480, 640, 3), np.uint8)


# --- scheduling, with a stand-in encoder ---------------------------------------------------------------------------

def vector(person: int) -> np.ndarray:
    """Person k's embedding: unit vectors, so two people are sqrt(2) apart and one person is 0 from itself."""
    v = np.zeros(128)
    v[person] = 1.0
    return v


class FakeEncoder:
    """Stands in for dlib: returns the embedding of whoever the test put nearest the box's centre; counts calls."""

    def __init__(self) -> None:
        self.scene: list[tuple[list[float], int]] = []
        self.calls = 0

    def encode(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        self.calls += 1
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        _, person = min(self.scene, key=lambda s: np.linalg.norm(np.reshape(s[0], (2, 2)).mean(axis=0) - centre))
        return vector(person)


def box(cx: float, cy: float, size: float = 80) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


class Scene:
    """A tracker and a namer fed frame by frame with the faces the test places (box, person index)."""

    def __init__(self, tmp_path: Path, enrolled: int = 2, **naming: float) -> None:
        database = FaceDatabase(tmp_path)
        for k in range(enrolled):
            database.add(f"p{k}", vector(k)[None])
        self.encoder = FakeEncoder()
        self.tracker = Tracker()
        self.namer = TrackNamer(database, self.encoder, NamingConfig(**naming))
        self.frame = 0
        self.per_frame: list[int] = []

    def step(self, *faces: tuple[list[float], int]) -> list[Track]:
        t = self.frame / FPS
        self.encoder.scene = list(faces)
        before = self.encoder.calls
        tracks = self.tracker.update(t, ["face"] * len(faces), np.array([f[0] for f in faces]).reshape(-1, 4),
                                     np.ones(len(faces)))
        self.namer.update(IMAGE, tracks, t)
        self.per_frame.append(self.encoder.calls - before)
        self.frame += 1
        return tracks


@pytest.mark.parametrize(("newcomer", "name"), [(5, None), (1, "p1")])  # a stranger; another enrolled person
def test_someone_found_where_a_named_face_was_lost_is_checked_at_once(tmp_path, newcomer, name):
    scene = Scene(tmp_path)
    for i in range(20):
        (track,) = scene.step((box(300 + i, 200), 0))
    assert track.name == "p0"
    for _ in range(10):  # the face detector runs and finds nobody
        scene.step()
    (found,) = scene.step((box(325, 205), newcomer))
    assert found is track  # the tracker takes it for the same face...
    assert found.name == name and scene.per_frame[-1] == 1  # ...but the name is checked on this very frame
    for i in range(60):
        (found,) = scene.step((box(325 + i, 205), newcomer))
        assert found.name == name  # and the old name does not come back


def test_the_same_face_found_again_keeps_its_name(tmp_path):
    scene = Scene(tmp_path)
    for _ in range(10):
        (track,) = scene.step((box(300, 200), 0))
    scene.step()
    (found,) = scene.step((box(302, 200), 0))
    assert found is track and found.name == "p0" and scene.per_frame[-1] == 1


def test_a_jump_is_checked_at_once(tmp_path):
    scene = Scene(tmp_path)
    for _ in range(10):
        (track,) = scene.step((box(300, 200), 0))
    (jumped,) = scene.step((box(390, 200), 1))  # 90 px with an 80 px face: still matched, but a jump
    assert jumped is track and jumped.name == "p1" and scene.per_frame[-1] == 1


def test_a_steady_named_face_is_checked_about_every_second_not_every_frame(tmp_path):
    scene = Scene(tmp_path)
    for i in range(int(3 * FPS) + 1):
        (track,) = scene.step((box(300 + np.sin(i / 5), 200), 0))
        assert track.name == "p0"
    checked = [i for i, n in enumerate(scene.per_frame) if n]
    assert checked == [0, 30, 60, 90]


def test_a_silent_swap_is_caught_by_the_periodic_check(tmp_path):
    """The same place, the same size, no missed frame (a cut in an edited video): only the periodic check sees it."""
    scene = Scene(tmp_path)
    for _ in range(40):
        scene.step((box(300, 200), 0))
    names = [scene.step((box(300, 200), 5))[0].name for _ in range(40)]
    assert names.index(None) <= FPS * NamingConfig().reconfirm_s and set(names[int(FPS):]) == {None}


def test_periodic_checks_of_many_tracks_are_staggered(tmp_path):
    scene = Scene(tmp_path, enrolled=12)
    faces = [(box(60 + 100 * (k % 6), 120 + 200 * (k // 6), 70), k) for k in range(12)]
    history: dict[int, list[int]] = {}
    for i in range(int(5 * FPS)):
        before = [t.identified_t_s for t in scene.tracker.tracks]
        tracks = scene.step(*faces)
        for k, track in enumerate(tracks):
            assert track.name in (None, f"p{k}")
        after = [t.identified_t_s for t in tracks]
        for track, was, now in zip(tracks, before or [None] * 12, after, strict=True):
            if now != was:
                history.setdefault(track.id, []).append(i)
    assert max(scene.per_frame) == 1  # never more than one embedding in a frame
    assert all(t.name == f"p{k}" for k, t in enumerate(tracks))
    for frames in history.values():
        gaps = np.diff(frames)
        # About every second: never sooner, and late by at most the other tracks' turns.
        assert len(frames) >= 5 and gaps.min() >= FPS and gaps.max() <= FPS + 12
    assert sum(scene.per_frame) == sum(len(f) for f in history.values())


def test_the_budget_is_a_setting(tmp_path):
    scene = Scene(tmp_path, enrolled=6, max_per_frame=2)
    faces = [(box(80 + 100 * k, 200, 70), k) for k in range(6)]
    for _ in range(60):
        tracks = scene.step(*faces)
    assert max(scene.per_frame) == 2 and scene.per_frame[:3] == [2, 2, 2]
    assert [t.name for t in tracks] == [f"p{k}" for k in range(6)]


def test_a_doubted_track_that_waits_for_its_check_reports_no_name(tmp_path):
    scene = Scene(tmp_path)
    for _ in range(10):
        a, b = scene.step((box(150, 200), 0), (box(450, 200), 1))
    scene.step()  # both missed: both are doubted when found again, and only one check fits in a frame
    a2, b2 = scene.step((box(152, 200), 0), (box(452, 200), 1))
    assert (a2, b2) == (a, b) and scene.per_frame[-1] == 1
    assert {a.name, b.name} in ({"p0", None}, {None, "p1"})  # the one not yet checked has no name
    a3, b3 = scene.step((box(154, 200), 0), (box(454, 200), 1))
    assert (a3.name, b3.name) == ("p0", "p1")


def test_a_name_taken_away_comes_back_only_from_a_fresh_match(tmp_path):
    scene = Scene(tmp_path)
    for _ in range(int(2 * FPS) + 1):  # p0, confirmed again and again
        (track,) = scene.step((box(300, 200), 0))
    assert track.name == "p0" and track.identity_attempts == 3
    scene.encoder.scene = []
    track.identified_t_s = -10.0  # due now; the next check says: a stranger
    (track,) = scene.step((box(300, 200), 5))
    assert track.name is None and scene.per_frame[-1] == 1  # dropped at once, whatever came before
    names = [scene.step((box(300, 200), 5))[0].name for _ in range(20)]
    assert set(names) == {None}
    # The quick second look, then retries at doubling intervals up to retry_s.
    checked = [i for i, n in enumerate(scene.per_frame[-21:]) if n]
    assert checked[:3] == [0, 3, 9]
    (track,) = scene.step((box(300, 200), 0))  # p0 again: a name only comes back from an embedding that matches
    waited = 0
    while track.name is None:
        (track,) = scene.step((box(300, 200), 0))
        waited += 1
    assert track.name == "p0" and scene.per_frame[-1] == 1 and waited <= FPS * NamingConfig().retry_s


def test_another_enrolled_name_replaces_the_old_one_at_once(tmp_path):
    scene = Scene(tmp_path)
    for _ in range(int(1.5 * FPS)):
        (track,) = scene.step((box(300, 200), 0))
    names = [scene.step((box(300, 200), 1))[0].name for _ in range(40)]
    first = names.index("p1")
    assert set(names[:first]) == {"p0"} and set(names[first:]) == {"p1"}  # never p0 again, never a blank between


def test_crowded_tracks_are_checked_soon_and_a_swap_is_corrected(tmp_path):
    scene = Scene(tmp_path)
    track = Track(1, "face", np.array(box(300, 200)), 1.0, 0.0, name="p0", identified_t_s=0.0)
    scene.encoder.scene = [(box(300, 200), 1)]  # the tracker has (wrongly) given p1's face to p0's track
    track.recheck = CROWDED
    assert scene.namer.update(IMAGE, [track], 0.1) == 0  # a crowded track is not checked on every frame...
    assert track.name == "p0"  # ...and keeps its name meanwhile (crossing people do not blink)
    assert scene.namer.update(IMAGE, [track], NamingConfig().crowded_s) == 1
    assert track.name == "p1" and track.recheck is None


def test_crossing_tracks_are_rechecked_while_they_overlap(tmp_path):
    scene = Scene(tmp_path)
    names = []
    for i in range(40):
        a, b = scene.step((box(100 + 11 * i, 200), 0), (box(529 - 11 * i, 215), 1))
        names.append((a.name, b.name))
    assert names[2:] == [("p0", "p1")] * 38
    crossing = scene.per_frame[15:25]  # the boxes overlap from about frame 15 to 25
    assert sum(crossing) >= 2 and sum(scene.per_frame[5:15]) == 0


def test_a_small_face_found_again_waits_for_a_check_it_can_have(tmp_path):
    scene = Scene(tmp_path)
    for _ in range(5):
        (track,) = scene.step((box(300, 200, 60), 0))
    scene.step()
    for _ in range(5):  # found again, but too small for a trustworthy embedding: no name, no check
        (track,) = scene.step((box(300, 200, 30), 0))
        assert track.name is None and scene.per_frame[-1] == 0
    (track,) = scene.step((box(300, 200, 44), 0))
    assert track.name == "p0" and scene.per_frame[-1] == 1


# --- the user's cases, with the real detector and dlib ---------------------------------------------------------------

@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> dict[str, Path]:
    """``obama`` enrolled from obama.jpg (the clips use obama2.jpg, another photo); ``both`` adds biden."""
    detector, encoder = FaceDetector(), FaceEncoder()
    embeddings = {}
    for name in ("obama", "biden"):
        image = cv2.imread(str(photos()[f"{name}.jpg"]))
        embeddings[name] = encoder.encode(image, detector.detect(image)[0].box)
    folders = {}
    for key, names in (("obama", ["obama"]), ("both", ["obama", "biden"])):
        folders[key] = tmp_path_factory.mktemp(key)
        for name in names:
            FaceDatabase(folders[key]).add(name, embeddings[name][None])
    return folders


def write_clip(path: Path, clip: list[np.ndarray]) -> None:
    with VideoWriter(path, clip[0].shape[1], clip[0].shape[0], FPS) as writer:
        for image in clip:
            writer.write(image)


@pytest.mark.slow
@pytest.mark.parametrize("database", ["obama", "both"])
def test_replay_someone_else_in_the_place_an_enrolled_person_left(tmp_path, databases, capsys, database):
    """The user's report: 49 of 60 frames of the newcomer carried the enrolled name. Through ``edgepilot replay``."""
    people = replacement()
    clip, truth = scene_clip(people, seed=3)
    write_clip(tmp_path / "in.mp4", clip)
    out = tmp_path / "out.jsonl"
    assert main(["replay", str(tmp_path / "in.mp4"), "--faces", str(databases[database]), "--jsonl", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(clip)
    names: dict[int, list[str | None]] = {0: [], 1: []}
    tracks: dict[int, set[int]] = {0: set(), 1: set()}
    for line, seen in zip(lines, truth, strict=True):
        for d in line["detections"]:
            person = who(d["box"], seen)
            assert person is not None, (line["frame"], d)  # no phantom faces
            names[person].append(d["name"])
            tracks[person].add(d["track"])
    assert tracks[0] & tracks[1]  # the tracker did take biden for obama's track: the case this test is about
    assert len(names[1]) >= 57
    wrong = names[1].count("obama")
    assert wrong <= 3, names[1]
    expected = "biden" if database == "both" else None
    assert names[1].count(expected) >= len(names[1]) - 3
    first = names[0].index("obama")
    assert names[0][first:].count("obama") >= 0.95 * len(names[0][first:])
    capsys.readouterr()


@pytest.mark.parametrize("front", ["biden", "obama"])
def test_two_enrolled_people_crossing_keep_their_names(databases, front):
    people = crossing(front)
    clip, truth = scene_clip(people, seed=5)
    order = ["obama", "biden"] if front == "biden" else ["biden", "obama"]
    perception = Perception(detect="face", faces_dir=databases["both"])
    named: dict[str, Counter] = {"obama": Counter(), "biden": Counter()}
    for i, image in enumerate(clip):
        for d in perception.process(Frame(image, i / FPS, i)):
            person = who(d.box, truth[i])
            assert person is not None
            named[order[person]][d.name] += 1
    for name, counts in named.items():
        assert set(counts) <= {name, None}, counts  # never the other's name
        assert counts[None] <= 2 and counts[name] >= 40, counts  # (both are new on frame 0: one check a frame)
    # Identity ran on new tracks and re-checks only, never on every frame.
    assert perception.namer.embeddings_computed <= 15


@pytest.mark.slow
def test_live_naming_in_the_background_at_camera_pace(databases):
    """Live runs embed in a process of their own: frames come at 30 fps and never wait for dlib, the enrolled name
    still never goes to the newcomer, and names arrive a few frames after a face is first seen."""
    import time

    people = replacement()
    clip, truth = scene_clip(people, seed=3)
    naming = NamingConfig(background=True)
    with Perception(detect="face", faces_dir=databases["both"], naming=naming) as perception:
        perception.process(Frame(clip[0], -1.0, -1))  # starts the embedding process
        names: dict[int, list[str | None]] = {0: [], 1: []}
        start = time.monotonic()
        for i, image in enumerate(clip):
            time.sleep(max(0.0, start + i / FPS - time.monotonic()))  # a live camera's pace
            for d in perception.process(Frame(image, i / FPS, i)):
                person = who(d.box, truth[i])
                assert person is not None
                names[person].append(d.name)
        namer = perception.namer
        assert namer.encoder is None and namer.embeddings_computed >= 2  # every embedding ran in the other process
    assert names[1].count("obama") <= 3, names[1]
    # How many frames a name takes depends on the machine's load (about 3 frames on an idle 2-core machine): the
    # test asks for it within a second, and for the names to stay once given.
    assert "biden" in names[1] and names[1].index("biden") <= 30, names[1]
    assert names[1][names[1].index("biden"):].count("biden") >= 0.9 * len(names[1][names[1].index("biden"):])
    assert "obama" in names[0] and names[0].index("obama") <= 30, names[0]
    assert namer.worker is None  # closed with the pipeline
