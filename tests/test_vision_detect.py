"""BlazeFace / BlazePose decoding and the person detectors, on the bundled models and real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from vision_synth import background, photos

from edgepilot.models import model_path
from edgepilot.vision.anchors import FACE_FULL_RANGE, FACE_SHORT_RANGE, POSE, generate_anchors
from edgepilot.vision.blaze import FACE_FULL, FACE_SHORT, POSE_DETECTOR, BlazeDetector, letterbox
from edgepilot.vision.detectors import FaceDetector, PoseDetector, tile_grid
from edgepilot.vision.litert import load_interpreter
from edgepilot.vision.nms import iou_matrix, weighted_nms
from edgepilot.vision.pipeline import PERSON_MODEL
from edgepilot.vision.ssd import SsdDetector


@pytest.mark.parametrize(("config", "options", "count"), [
    (FACE_SHORT, FACE_SHORT_RANGE, 896), (FACE_FULL, FACE_FULL_RANGE, 2304), (POSE_DETECTOR, POSE, 2254)])
def test_anchor_count_matches_the_model_outputs(config, options, count):
    anchors = generate_anchors(options)
    interpreter = load_interpreter(model_path(config.model))
    rows = {int(d["shape"][1]) for d in interpreter.get_output_details()}
    assert rows == {count} and len(anchors) == count
    assert anchors.min() > 0 and anchors.max() < 1


def test_first_anchors_walk_the_finest_grid_cell_by_cell():
    anchors = generate_anchors(FACE_SHORT_RANGE)  # 16x16 grid, 2 anchors per cell first
    np.testing.assert_allclose(anchors[:4], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]] * 2)
    np.testing.assert_allclose(anchors[512], [0.5 / 8, 0.5 / 8])  # then the 8x8 grid with 6 per cell
    np.testing.assert_allclose(anchors[512 + 6], [1.5 / 8, 0.5 / 8])


def test_weighted_nms_averages_a_cluster_and_keeps_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.3, 0.8])
    out, out_scores, extras = weighted_nms(boxes, scores, np.array([[1.0], [3.0], [7.0]]), 0.3)
    np.testing.assert_allclose(out[0], [0.5, 0, 10.5, 10])  # (0.9*0 + 0.3*2) / 1.2
    np.testing.assert_allclose(out_scores, [0.9, 0.8])
    np.testing.assert_allclose(extras[:, 0], [1.5, 7.0])


def test_letterbox_keeps_aspect_and_centres():
    square, scale, pad_x, pad_y = letterbox(np.full((100, 200, 3), 255, np.uint8), 128)
    assert scale == pytest.approx(0.64) and pad_x == 0 and pad_y == 32
    assert square[31, 64].max() == 0 and square[32, 64].min() == 255 and square[96, 64].max() == 0


@pytest.mark.parametrize("model_range", ["full", "short"])
def test_one_face_per_real_photo_agrees_with_dlib(model_range):
    import dlib

    hog = dlib.get_frontal_face_detector()
    detector = FaceDetector(model_range)
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png"):
        image = cv2.imread(str(photos()[name]))
        faces = detector.detect(image)
        assert len(faces) == 1, name
        reference = max(hog(image[:, :, ::-1].copy(), 0), key=lambda r: r.area())
        ref_box = [reference.left(), reference.top(), reference.right(), reference.bottom()]
        assert iou_matrix([faces[0].box], [ref_box])[0, 0] > 0.5, name
        right_eye, left_eye = faces[0].keypoints[0], faces[0].keypoints[1]
        assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left


def test_boxes_map_back_through_padding_and_regions():
    image = cv2.imread(str(photos()["obama.jpg"]))  # 910 x 1137: the height sets the letterbox scale
    h, w = image.shape[:2]
    detector = BlazeDetector(FACE_FULL)
    plain = detector.detect(image).boxes[0]
    # Widening to a square keeps the scale, so the face must come back shifted by the offset (within 5%: the
    # shift is not a multiple of the anchor stride, and a CNN is not exactly shift-invariant).
    canvas = background(h, h, seed=3)
    canvas[:, 200:200 + w] = image
    shifted = detector.detect(canvas).boxes[0]
    np.testing.assert_allclose(shifted, plain + [200, 0, 200, 0], atol=0.05 * (plain[2] - plain[0]))
    in_roi = detector.detect(canvas, roi=(200, 0, w, h)).boxes[0]
    np.testing.assert_allclose(in_roi, plain + [200, 0, 200, 0], atol=0.5)


def test_no_face_on_a_background():
    assert FaceDetector("full").detect(background(640, 480, seed=5)) == []


def test_tiles_cover_the_frame_with_overlap():
    tiles = tile_grid(640, 360, 3)
    assert min(x for x, _, _, _ in tiles) == 0 and max(x + w for x, _, w, _ in tiles) == 640
    assert max(y + h for _, y, _, h in tiles) == 360
    assert all(w >= 640 / 3 for _, _, w, _ in tiles)


def test_person_detectors_find_the_astronaut_and_nothing_in_noise():
    image = cv2.imread(str(photos()["astronaut.png"]))
    ssd = SsdDetector(model_path(PERSON_MODEL), ["person"], score_threshold=0.3)
    for detector in (ssd, PoseDetector()):
        people = detector.detect(image)
        assert len(people) >= 1 and people[0].label == "person"
        x1, y1, x2, y2 = people[0].box
        assert x1 < 190 < x2 and y1 < 120 < y2  # contains her face
        assert detector.detect(background(512, 512, seed=7)) == []
