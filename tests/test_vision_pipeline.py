"""The whole path: a moving, zooming, noisy face keeps its name; ``edgepilot replay`` on videos, raw H.264, images
and folders; clear errors for bad input."""

from __future__ import annotations

import json
import shutil

import av
import cv2
import numpy as np
import pytest
from vision_synth import face_clip, photos

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.core.messages import Frame
from edgepilot.vision.detectors import FaceDetector
from edgepilot.vision.identity import FaceDatabase, FaceEncoder
from edgepilot.vision.pipeline import Perception
from edgepilot.vision.video_io import VideoWriter

FPS = 30.0


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory):
    """obama enrolled from obama.jpg and biden from biden.jpg, as `edgepilot enroll` does it."""
    folder = tmp_path_factory.mktemp("faces")
    database, detector, encoder = FaceDatabase(folder), FaceDetector(), FaceEncoder()
    for name in ("obama", "biden"):
        image = cv2.imread(str(photos()[f"{name}.jpg"]))
        database.add(name, [encoder.encode(image, detector.detect(image)[0].box)])
    return folder


def run_clip(perception: Perception, clip: list[np.ndarray]) -> list[list]:
    return [[d for d in perception.process(Frame(image, i / FPS, i)) if d.label == "face"]
            for i, image in enumerate(clip)]


@pytest.mark.parametrize(("photo", "name"), [("obama2.jpg", "obama"), ("obama3.jpg", "obama")])
def test_name_holds_on_a_moving_zooming_noisy_face(faces_dir, photo, name):
    # obama2/obama3 are other photos than the enrolled one; the clip zooms the face from ~30 px to ~140 px.
    clip = face_clip(photos()[photo], frames=90, seed=1)
    perception = Perception(detect=("face",), faces_dir=faces_dir)
    frames = run_clip(perception, clip)
    seen = [f[0] for f in frames if f]
    assert len(seen) >= 0.95 * len(clip)
    assert all(len(f) <= 1 for f in frames)  # no phantom second face
    assert len({d.track for d in seen}) <= 2  # few track switches
    named = [d.name for d in seen]
    first = named.index(name)
    assert named[first:].count(name) >= 0.95 * len(named[first:])
    assert "biden" not in named
    # Identity runs on new tracks and re-confirmations only, never on every frame.
    assert perception.namer.embeddings_computed <= 8


def test_another_person_is_not_given_a_name(faces_dir):
    database = FaceDatabase(faces_dir)
    only_obama = faces_dir.parent / "only_obama"
    FaceDatabase(only_obama).add("obama", database.embeddings("obama"))
    frames = run_clip(Perception(detect="face", faces_dir=only_obama), face_clip(photos()["biden.jpg"], 45, seed=2))
    assert sum(1 for f in frames if f) >= 40
    assert all(d.name is None for f in frames for d in f)


def test_no_database_means_no_embeddings():
    perception = Perception(detect=("face",))
    run_clip(perception, face_clip(photos()["obama2.jpg"], frames=5))
    assert perception.namer is None


def test_faces_and_people_get_separate_tracks():
    image = cv2.imread(str(photos()["astronaut.png"]))
    detections = Perception(detect=("face", "person")).process(Frame(image, 0.0))
    labels = sorted(d.label for d in detections)
    assert labels == ["face", "person"] and len({d.track for d in detections}) == 2


def write_clip(path, clip):
    with VideoWriter(path, clip[0].shape[1], clip[0].shape[0], FPS) as writer:
        for image in clip:
            writer.write(image)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_video_writes_jsonl_annotated_video_and_summary(tmp_path, faces_dir, capsys):
    clip = face_clip(photos()["obama2.jpg"], frames=24, seed=3, zoom=(0.8, 1.0))
    write_clip(tmp_path / "in.mp4", clip)
    args = ["replay", str(tmp_path / "in.mp4"), "--faces", str(faces_dir), "--jsonl", str(tmp_path / "o.jsonl"),
            "--out", str(tmp_path / "o.mp4"), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 24 and summary["names"]["obama"] >= 22
    lines = read_jsonl(tmp_path / "o.jsonl")
    assert [line["frame"] for line in lines] == list(range(24))
    assert lines[1]["t_s"] == pytest.approx(1 / FPS, abs=1e-3) and lines[0]["source"] == "in.mp4"
    face = lines[-1]["detections"][0]
    assert set(face) == {"label", "score", "box", "track", "name"} and face["name"] == "obama" and len(face["box"]) == 4
    out = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert (out.get(cv2.CAP_PROP_FRAME_WIDTH), out.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)
    assert out.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS, abs=0.1)
    assert int(out.get(cv2.CAP_PROP_FRAME_COUNT)) == 24


def test_replay_raw_h264(tmp_path, capsys):
    clip = face_clip(photos()["obama2.jpg"], frames=10, seed=4, zoom=(0.8, 1.0))
    with av.open(str(tmp_path / "in.h264"), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=int(FPS))
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for image in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert main(["replay", str(tmp_path / "in.h264")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 10 and all(len(line["detections"]) == 1 for line in lines)


def test_replay_image_and_folder(tmp_path, faces_dir, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("biden.jpg", "obama.jpg", "obama_partial_face.jpg"):
        shutil.copy(photos()[name], folder / name)
    assert main(["replay", str(folder), "--faces", str(faces_dir)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["source"], [d["name"] for d in line["detections"]]) for line in lines] == [
        ("biden.jpg", ["biden"]), ("obama.jpg", ["obama"]), ("obama_partial_face.jpg", ["obama"])]
    assert main(["replay", str(folder / "obama.jpg"), "--faces", str(faces_dir)]) == 0
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["detections"][0]["name"] == "obama"


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"), (b"not a video at all", "not a readable video"), (b"", "not a readable video")])
def test_replay_bad_input_is_one_clear_line(tmp_path, capfd, content, message):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    assert main(["replay", str(path)]) == 2
    err = capfd.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_replay_unknown_detect_target(tmp_path, capfd):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
    assert main(["replay", str(tmp_path / "a.png"), "--detect", "face,unicorn"]) == 2
    assert "cannot detect unicorn" in capfd.readouterr().err
