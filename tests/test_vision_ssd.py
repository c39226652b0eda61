"""The generic SSD detector on real .tflite files: a tiny model built here with LiteRT's real
TFLite_Detection_PostProcess op (decoding + NMS), and the bundled pedestrian model."""

from __future__ import annotations

import numpy as np
import pytest
from vision_synth import ssd_tflite

from edgepilot.models import model_path
from edgepilot.pilot.core.errors import ModelError
from edgepilot.vision.ssd import SsdDetector, read_labels

ANCHORS = np.array([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.3, 0.7, 0.2, 0.4]],
                   np.float32)  # y_center, x_center, h, w


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(ssd_tflite.tiny_ssd_model(ANCHORS, num_classes=4, score_threshold=0.3))
    return path


def predictions_image(rows: np.ndarray) -> np.ndarray:
    """The BGR uint8 "image" whose normalised RGB values are ``rows`` (N, 9) in [-1, 1]."""
    rgb = np.round(rows * 127.5 + 127.5).clip(0, 255).astype(np.uint8).reshape(len(rows), 3, 3)
    return rgb[:, :, ::-1].copy()


def normalised(box, image) -> np.ndarray:
    h, w = image.shape[:2]
    return np.array(box) / [w, h, w, h]


def test_tiny_model_boxes_labels_and_scores(tiny):
    rows = np.full((4, 9), -1.0)  # the model passes the values through as they are: -1 is a score below any
    rows[:, :4] = 0.0  # no offset: each box is its anchor
    rows[:, 4:] = -1.0
    rows[0, 4 + 1 + 2] = 0.8  # anchor 0: class 2 ("cat")
    rows[3, 4 + 1 + 0] = 0.6  # anchor 3: class 0 ("person")
    rows[1, 0] = 0.5  # anchor 1 moves down by 0.5 / 10 * h = 0.025, but its score stays below the threshold
    detector = SsdDetector(tiny, ["???", "person", "bicycle", "cat", "dog"], score_threshold=0.3)
    image = predictions_image(rows)
    found = detector.detect(image)
    assert [(d.label, round(d.score, 2)) for d in found] == [("cat", 0.8), ("person", 0.6)]
    # anchor 0: y 0..0.5, x 0..0.5 of the frame; anchor 3: y 0.2..0.4, x 0.5..0.9
    np.testing.assert_allclose(normalised(found[0].box, image), (0, 0, 0.5, 0.5), atol=0.01)
    np.testing.assert_allclose(normalised(found[1].box, image), (0.5, 0.2, 0.9, 0.4), atol=0.01)


def test_box_encoding_offsets_and_scale(tiny):
    rows = np.full((4, 9), -1.0)
    rows[:, :4] = 0.0
    rows[2, 4 + 1 + 3] = 0.9  # anchor 2 (whole image), class 3
    rows[2, :4] = [0.5, -0.5, 0.0, 0.0]  # ty, tx: centre moves by 0.5/10 of the anchor size: y +0.05, x -0.05
    detector = SsdDetector(tiny, ["person", "bicycle", "cat", "dog"], score_threshold=0.3, keep=("dog",))
    image = predictions_image(rows)
    (dog,) = detector.detect(image)
    np.testing.assert_allclose(normalised(dog.box, image), (0, 0.05, 0.95, 1.0), atol=0.01)  # clipped to the frame


def test_keep_filters_labels(tiny):
    rows = np.full((4, 9), -1.0)
    rows[:, :4] = 0.0
    rows[0, 4 + 1] = 0.9
    detector = SsdDetector(tiny, ["person", "bicycle"], score_threshold=0.3, keep=("bicycle",))
    assert detector.detect(predictions_image(rows)) == []


def test_labels_file_forms(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("0 person\n1 bicycle\n\ncar\n")
    assert read_labels(path) == ["person", "bicycle", "", "car"]


def test_a_model_without_the_ssd_outputs_is_rejected():
    with pytest.raises(ModelError, match="4 outputs"):
        SsdDetector(model_path("face_detection_short_range.tflite"))


def test_bundled_pedestrian_model_outputs_are_found_from_the_op():
    detector = SsdDetector(model_path("pedestrian_ssdlite.tflite"), read_labels(model_path("pedestrian_ssdlite.txt")))
    assert (detector.input_width, detector.input_height) == (300, 300)
    assert detector.labels == ("person",)
