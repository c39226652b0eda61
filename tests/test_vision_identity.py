"""Face identity on real photos, the face database's atomic writes, and ``edgepilot enroll``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from vision_synth import background, photos

from edgepilot.pilot.app.cli import main
from edgepilot.vision.detectors import FaceDetector
from edgepilot.vision.identity import DEFAULT_THRESHOLD, FaceDatabase, FaceEncoder


@pytest.fixture(scope="module")
def embed():
    detector, encoder = FaceDetector("full"), FaceEncoder()

    def embed_photo(name: str) -> np.ndarray:
        image = cv2.imread(str(photos()[name]))
        (face,) = detector.detect(image)
        return encoder.encode(image, face.box)

    return embed_photo


def test_same_person_close_other_person_far(embed, tmp_path):
    database = FaceDatabase(tmp_path)
    database.add("obama", [embed("obama.jpg")])
    for other in ("obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg"):
        match = database.match(embed(other))
        assert match.name == "obama", (other, match.distance)
        assert match.distance < DEFAULT_THRESHOLD - 0.1  # a margin, not a coin flip
    stranger = database.match(embed("biden.jpg"))
    assert stranger.name is None and stranger.distance > DEFAULT_THRESHOLD + 0.1
    assert database.match(embed("astronaut.png")).name is None


def test_database_reloads_and_appends(tmp_path):
    database = FaceDatabase(tmp_path)
    database.add("ada", np.ones((1, 128)))
    database.add("ada", np.zeros((2, 128)))
    again = FaceDatabase(tmp_path)
    assert again.names == ["ada"] and again.embeddings("ada").shape == (3, 128)


def test_a_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    database = FaceDatabase(tmp_path)
    database.add("ada", np.ones((1, 128)))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(OSError):
        database.add("ada", np.zeros((1, 128)))
    monkeypatch.undo()
    # no temporary file left behind (ada.json, the sources, is written first: its extra row is cut on loading)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "ada.json", tmp_path / "ada.npy"]
    np.testing.assert_array_equal(FaceDatabase(tmp_path).embeddings("ada"), np.ones((1, 128)))
    assert FaceDatabase(tmp_path).sources("ada") == ["unknown"]


def test_leftovers_and_junk_are_ignored(tmp_path):
    (tmp_path / ".bob.x1y2.tmp").write_bytes(b"half a file")  # what a power cut leaves
    (tmp_path / "carol.npy").write_bytes(b"not numpy")
    np.save(tmp_path / "dave.npy", np.zeros((2, 3)))
    assert FaceDatabase(tmp_path).names == []


def run_enroll(*args: str) -> int:
    return main(["enroll", *args])


def test_enroll_then_recognised(tmp_path, capsys, embed):
    faces = tmp_path / "faces"
    assert run_enroll("Barack Obama", str(photos()["obama.jpg"]), str(photos()["obama2.jpg"]), "--faces",
                      str(faces)) == 0
    assert "enrolled Barack Obama from 2 photo(s)" in capsys.readouterr().out
    database = FaceDatabase(faces)
    assert database.match(embed("obama_partial_face.jpg")).name == "Barack Obama"
    assert database.match(embed("biden.jpg")).name is None


@pytest.mark.parametrize(("make", "message"), [
    ("blank", "no face found"), ("two", "2 faces found"), ("corrupt", "not a readable image"),
    ("missing", "does not exist")])
def test_enroll_refuses_and_writes_nothing(tmp_path, capsys, make, message):
    path = tmp_path / "photo.jpg"
    if make == "blank":
        cv2.imwrite(str(path), background(640, 480, seed=1))
    elif make == "two":
        a, b = (cv2.resize(cv2.imread(str(photos()[n])), (400, 500)) for n in ("obama.jpg", "biden.jpg"))
        cv2.imwrite(str(path), np.hstack([a, b]))
    elif make == "corrupt":
        path.write_bytes(b"\xff\xd8 this is not really a jpeg")
    faces = tmp_path / "faces"
    good = str(photos()["obama.jpg"])
    assert run_enroll("obama", good, str(path), "--faces", str(faces)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not faces.exists() or not any(faces.iterdir())


def test_enroll_rejects_a_bad_name(tmp_path, capsys):
    assert run_enroll("../etc/passwd", str(photos()["obama.jpg"]), "--faces", str(tmp_path)) == 2
    assert "invalid name" in capsys.readouterr().err
