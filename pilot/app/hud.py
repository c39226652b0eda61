"""The heads-up display on the annotated video: mode, battery, what was said, what is seen."""

from __future__ import annotations

import cv2
import numpy as np


def draw_hud(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """A dark translucent panel in the bottom-left corner with one text line each; drawn in place, returned."""
    if not lines:
        return image
    scale = max(0.45, image.shape[0] / 1000)
    line_h = int(26 * scale) + 4
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for t in lines) + 12
    height = line_h * len(lines) + 8
    y0 = image.shape[0] - height
    panel = image[y0:, :width]
    panel[:] = (panel * 0.4).astype(np.uint8)
    for i, text in enumerate(lines):
        y = y0 + line_h * (i + 1)
        cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image
