"""Faces learned from runs: the unknown people of a video are grouped by person (dlib embeddings, Chinese whispers),
shown on a contact sheet, and one group named with ``edgepilot faces label`` is recognised by the next replay.
Clips are made from the real face_recognition test photos (tests/vision_synth.py: MIT, from its sdist)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from vision_synth import photos, scene_clip, who

from edgepilot.pilot.app.cli import main
from edgepilot.vision.face_clusters import cluster, purity
from edgepilot.vision.identity import UNKNOWN_SOURCE, FaceDatabase
from edgepilot.vision.video_io import VideoWriter

FPS = 30.0


def two_strangers(frames: int = 60):
    """obama walks in from the left, biden from the right; they stop a face apart."""
    a = [(60 + 3.5 * i, 220 + 3 * np.sin(i / 6), 100, 3 * np.sin(i / 9)) for i in range(frames)]
    b = [(580 - 3.5 * i, 235 + 3 * np.sin(i / 5), 105, -3 * np.sin(i / 8)) for i in range(frames)]
    return [(photos()["obama2.jpg"], a), (photos()["biden.jpg"], b)]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    clip, truth = scene_clip(two_strangers(), seed=5)
    path = tmp_path_factory.mktemp("run") / "strangers.mp4"
    with VideoWriter(path, clip[0].shape[1], clip[0].shape[0], FPS) as writer:
        for image in clip:
            writer.write(image)
    return path, truth


def run_json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_strangers_two_clusters_then_labelled_one_is_named(video, tmp_path, capsys):
    path, truth = video
    faces = tmp_path / "faces"
    before = run_json(capsys, ["replay", str(path), "--faces", str(tmp_path), "--json"])
    assert before["names"] == {}

    result = run_json(capsys, ["faces", "review", str(path), "--faces", str(faces), "--json"])
    assert len(result["clusters"]) == 2, result
    sheet = cv2.imread(result["sheet"])
    assert sheet is not None and sheet.shape[0] >= 2 * 96
    review = json.loads((path.with_name(path.name + ".faces_review.json")).read_text())
    people = [[who(m["box"], truth[m["frame"]]) for m in c["members"]] for c in review["clusters"]]
    # Each cluster is one person, and they are different people: purity 1.
    assert all(len(set(p)) == 1 and p[0] is not None for p in people), people
    assert {p[0] for p in people} == {0, 1}
    biden_cluster = next(k for k, p in enumerate(people) if p[0] == 1)

    labelled = run_json(capsys, ["faces", "label", str(path), str(biden_cluster), "Joe", "--faces", str(faces),
                                 "--json"])
    assert labelled["name"] == "Joe" and labelled["faces"] == len(people[biden_cluster])
    assert main(["faces", "label", str(path), str(biden_cluster), "Joe", "--faces", str(faces)]) == 2
    assert "already enrolled as Joe" in capsys.readouterr().err
    after = run_json(capsys, ["replay", str(path), "--faces", str(faces), "--json"])
    assert set(after["names"]) == {"Joe"} and after["names"]["Joe"] >= 30, after

    listed = run_json(capsys, ["faces", "list", "--faces", str(faces), "--json"])
    (joe,) = listed["people"]
    assert joe["from"]["run"] == joe["embeddings"] and all(str(path) in s for s in joe["sources"])

    # The next review of the same video finds only the stranger left.
    again = run_json(capsys, ["faces", "review", str(path), "--faces", str(faces), "--json"])
    assert len(again["clusters"]) == 1


def test_database_keeps_sources_and_reads_old_databases(tmp_path):
    np.save(tmp_path / "Old Timer.npy", np.ones((2, 128)))  # written before sources existed: no JSON
    database = FaceDatabase(tmp_path)
    assert database.sources("Old Timer") == [UNKNOWN_SOURCE] * 2
    database.add("Old Timer", np.zeros((1, 128)), ["photo:/x.jpg"])
    database.add("ada", np.zeros((1, 128)), ["run:r#frame=1"])
    again = FaceDatabase(tmp_path)
    assert again.sources("Old Timer") == [UNKNOWN_SOURCE, UNKNOWN_SOURCE, "photo:/x.jpg"]
    assert again.embeddings("Old Timer").shape == (3, 128)
    assert again.remove("ADA") == "ada" and again.names == ["Old Timer"]
    assert FaceDatabase(tmp_path).names == ["Old Timer"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    clip = tmp_path / "nothing.mp4"
    assert main(["faces", "label", str(clip), "0", "Joe", "--faces", str(tmp_path)]) == 2
    assert "has not been reviewed" in capsys.readouterr().err
    assert main(["faces", "remove", "nobody", "--faces", str(tmp_path)]) == 2
    assert "nobody called 'nobody'" in capsys.readouterr().err
    assert main(["faces", "list", "--faces", str(tmp_path / "empty")]) == 0
    assert "nobody is enrolled" in capsys.readouterr().out


def test_enroll_records_the_photo(tmp_path, capsys):
    photo = photos()["obama.jpg"]
    assert main(["enroll", "Barack", str(photo), "--faces", str(tmp_path)]) == 0
    assert FaceDatabase(tmp_path).sources("Barack") == [f"photo:{photo.resolve()}"]


def test_cluster_groups_by_distance():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = [centres[k] + rng.normal(scale=0.01, size=128) for k in (0, 1, 2, 0, 1, 0)]
    groups = cluster(points)
    assert sorted(map(sorted, groups)) == [[0, 3, 5], [1, 4], [2]]
    assert purity(groups, [0, 1, 2, 0, 1, 0]) == 1.0
    assert purity([[0, 1, 2, 3, 4, 5]], [0, 1, 2, 0, 1, 0]) == 0.5


@pytest.mark.slow
def test_review_of_a_recording_folder_reads_its_frames(video, tmp_path, capsys):
    """A run folder (--record) is reviewed from its lossless frames; the review stays in the folder."""
    path, _ = video
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"format": 1, "status": "complete"}))
    (run / "frames.mkv").write_bytes(path.read_bytes())  # PyAV reads the container whatever its name
    result = run_json(capsys, ["faces", "review", str(run), "--faces", str(tmp_path / "faces"), "--json"])
    assert len(result["clusters"]) == 2 and result["review"] == [str(run / "faces_review.json")]
    assert (run / "faces_review.png").is_file()
    (run / "frames.mkv").unlink()
    assert main(["faces", "review", str(run)]) == 2
    assert "recorded without camera frames" in capsys.readouterr().err
