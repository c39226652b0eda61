"""SSD anchors for the BlazeFace / BlazePose detectors, generated the way MediaPipe's graphs configure them.

Every model here uses ``fixed_anchor_size``: an anchor is a centre (x, y) in [0, 1] of the model input with width and
height 1, and the model regresses offsets from it. What differs between models is how many anchors sit on each cell of
each feature map, which follows from the strides, the aspect ratios and the interpolated-scale option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorOptions:
    input_size: int
    strides: tuple[int, ...]
    aspect_ratios: tuple[float, ...] = (1.0,)
    #: > 0 adds one more anchor per cell for each layer (MediaPipe's ``interpolated_scale_aspect_ratio``).
    interpolated_scale_aspect_ratio: float = 1.0
    anchor_offset: float = 0.5


#: BlazeFace short range: 128x128, 16x16x2 + 8x8x6 = 896 anchors.
FACE_SHORT_RANGE = AnchorOptions(input_size=128, strides=(8, 16, 16, 16))
#: BlazeFace full range: 192x192, one layer of stride 4 without the interpolated anchor: 48x48 = 2304 anchors.
FACE_FULL_RANGE = AnchorOptions(input_size=192, strides=(4,), interpolated_scale_aspect_ratio=0.0)
#: BlazePose detector: 224x224, 28x28x2 + 14x14x2 + 7x7x6 = 2254 anchors.
POSE = AnchorOptions(input_size=224, strides=(8, 16, 32, 32, 32))


def anchors_per_cell(options: AnchorOptions, layer_count: int) -> int:
    """Anchors on each cell of a feature map shared by ``layer_count`` consecutive layers of the same stride."""
    per_layer = len(options.aspect_ratios) + (1 if options.interpolated_scale_aspect_ratio > 0 else 0)
    return per_layer * layer_count


def generate_anchors(options: AnchorOptions) -> np.ndarray:
    """(N, 2) float32 anchor centres (x, y) in [0, 1], in the order the model's outputs use:
    feature map by feature map, row by row, cell by cell, anchor by anchor."""
    centres = []
    strides = list(options.strides)
    layer = 0
    while layer < len(strides):
        # Consecutive layers with the same stride share one feature map; their anchors are interleaved per cell.
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        count = anchors_per_cell(options, same - layer)
        size = math.ceil(options.input_size / strides[layer])
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        grid = np.stack([(xs + options.anchor_offset) / size, (ys + options.anchor_offset) / size], axis=-1)
        centres.append(np.repeat(grid.reshape(-1, 2), count, axis=0))
        layer = same
    return np.concatenate(centres).astype(np.float32)
