"""Any SSD-style detection .tflite with the TF Object Detection API / Model Maker output signature: boxes
(normalised y1, x1, y2, x2), classes (0-based index), scores and count, as produced by the
``TFLite_Detection_PostProcess`` op (SSD MobileNet, SSDLite, EfficientDet-Lite and the bundled pedestrian model).

Exports do not agree on the order of the four outputs (TF1 SSD: boxes, classes, scores, count; Model Maker's
EfficientDet-Lite: scores, boxes, count, classes), so they are found from the post-processing op itself when the
runtime tells us its outputs, else from the tensor names, else from shapes and values.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edgepilot.pilot.core.errors import InputError, ModelError
from edgepilot.pilot.core.messages import Detection
from edgepilot.vision.litert import load_interpreter

log = logging.getLogger(__name__)

POSTPROCESS = "TFLite_Detection_PostProcess"


def read_labels(path: str | Path | None) -> list[str]:
    """One label per line; ``N label`` lines (a number first) are accepted too. Empty lines are kept as ''."""
    if path is None:
        return []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read labels file {path}: {exc.strerror}") from None
    labels = []
    for line in lines:
        first, _, rest = line.strip().partition(" ")
        labels.append(rest.strip() if first.isdigit() and rest else line.strip())
    return labels


class SsdDetector:
    """A TF OD API style detection model. ``labels[i]`` names class ``i``; a leading ``???`` line (the background
    placeholder of the TF Lite example label maps) is skipped."""

    def __init__(self, model: str | Path, labels: list[str] | None = None, threads: int = 1,
                 score_threshold: float = 0.4, keep: tuple[str, ...] | None = None,
                 mean: float = 127.5, std: float = 127.5) -> None:
        self._interpreter = load_interpreter(model, threads)
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][3] != 3:
            raise ModelError(f"{Path(model).name}: expected one image input (1, H, W, 3), got "
                             f"{[list(d['shape']) for d in inputs]}")
        self._input = inputs[0]
        self.input_height, self.input_width = int(inputs[0]["shape"][1]), int(inputs[0]["shape"][2])
        self._boxes, self._classes, self._scores, self._count = self._find_outputs(Path(model).name)
        labels = list(labels or [])
        if labels and labels[0] == "???":
            labels = labels[1:]
        self.class_names = labels
        self.labels = tuple(label for label in labels if label) or ("object",)
        self.score_threshold = score_threshold
        self.keep = set(keep) if keep else None
        self.mean, self.std = mean, std

    def _find_outputs(self, name: str) -> tuple[int, int, int, int]:
        outputs = self._interpreter.get_output_details()
        if len(outputs) != 4:
            raise ModelError(f"{name}: an SSD detection model has 4 outputs (boxes, classes, scores, count), "
                             f"this one has {len(outputs)}")
        try:
            for op in self._interpreter._get_ops_details():
                if op["op_name"] == POSTPROCESS:
                    return tuple(int(i) for i in op["outputs"])  # type: ignore[return-value]
        except (AttributeError, KeyError, RuntimeError):
            log.debug("runtime does not describe its ops; finding the outputs by name or shape")
        by_name = {d["name"]: d["index"] for d in outputs}
        if POSTPROCESS in by_name:
            return tuple(by_name[POSTPROCESS + s] for s in ("", ":1", ":2", ":3"))  # type: ignore[return-value]
        boxes = [d["index"] for d in outputs if len(d["shape"]) == 3 and d["shape"][-1] == 4]
        count = [d["index"] for d in outputs if int(np.prod(d["shape"])) == 1]
        pair = [d["index"] for d in outputs if d["index"] not in boxes + count]
        if len(boxes) != 1 or len(count) != 1 or len(pair) != 2:
            raise ModelError(f"{name}: cannot tell boxes, classes, scores and count apart in its outputs")
        # Classes and scores have the same shape; a dry run on a grey image tells them apart (classes are whole).
        self._run(np.full((self.input_height, self.input_width, 3), 128, np.uint8))
        a, b = (self._interpreter.get_tensor(i)[0] for i in pair)
        classes_first = np.allclose(a, np.round(a)) and not np.allclose(b, np.round(b))
        classes, scores = (pair[0], pair[1]) if classes_first else (pair[1], pair[0])
        return boxes[0], classes, scores, count[0]

    def _run(self, resized_rgb: np.ndarray) -> None:
        dtype = self._input["dtype"]
        if dtype == np.float32:
            tensor = (resized_rgb.astype(np.float32) - self.mean) / self.std
        else:
            tensor = resized_rgb.astype(dtype)  # uint8 models take raw pixels (quantisation is in the model)
        self._interpreter.set_tensor(self._input["index"], tensor[None])
        self._interpreter.invoke()

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Detections in ``image_bgr`` pixels. The image is stretched to the input size, as the exports expect."""
        h, w = image_bgr.shape[:2]
        resized = cv2.resize(image_bgr, (self.input_width, self.input_height), interpolation=cv2.INTER_AREA)
        self._run(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB))
        get = self._interpreter.get_tensor
        count = int(get(self._count).ravel()[0])
        boxes, classes, scores = get(self._boxes)[0][:count], get(self._classes)[0][:count], get(self._scores)[0][:count]
        out = []
        for (y1, x1, y2, x2), cls, score in zip(boxes, classes, scores, strict=True):
            if score < self.score_threshold:
                continue
            index = int(round(float(cls)))
            label = self.class_names[index] if 0 <= index < len(self.class_names) else f"class{index}"
            if self.keep is not None and label not in self.keep:
                continue
            box = (float(np.clip(x1, 0, 1) * w), float(np.clip(y1, 0, 1) * h),
                   float(np.clip(x2, 0, 1) * w), float(np.clip(y2, 0, 1) * h))
            out.append(Detection(label, float(score), box))
        return out
