"""Drawing detections on frames for the annotated video and the live view (OpenCV, in place)."""

from __future__ import annotations

import cv2
import numpy as np

from edgepilot.pilot.core.messages import Detection

#: BGR colours: known faces green, unknown faces orange, people blue, anything else grey.
COLOURS = {"known": (60, 200, 60), "face": (0, 160, 255), "person": (255, 140, 0)}
OTHER = (200, 200, 200)


def colour_for(detection: Detection) -> tuple[int, int, int]:
    if detection.name:
        return COLOURS["known"]
    return COLOURS.get(detection.label, OTHER)


def caption(detection: Detection) -> str:
    who = detection.name or ("unknown" if detection.label == "face" else detection.label)
    track = f"#{detection.track} " if detection.track is not None else ""
    return f"{track}{who} {detection.score:.2f}"


def _label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(th + base, y)
    cv2.rectangle(image, (x, y - th - base), (x + tw + 4, y), colour, -1)
    cv2.putText(image, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def draw(image: np.ndarray, detections: list[Detection], fps: float | None = None) -> np.ndarray:
    """Boxes, track ids, names and scores (and fps in the corner) drawn on ``image``; returns it."""
    scale = max(0.4, min(image.shape[:2]) / 900)
    thickness = max(1, round(scale * 2))
    for d in detections:
        colour = colour_for(d)
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
        for px, py in d.keypoints:
            cv2.circle(image, (int(px), int(py)), thickness + 1, colour, -1)
        _label(image, caption(d), x1, y1, colour, scale)
    if fps is not None:
        _label(image, f"{fps:.1f} fps", 4, image.shape[0] - 4, (255, 255, 255), scale)  # bottom: boxes sit on top
    return image
