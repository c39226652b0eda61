#!/usr/bin/env python3
"""Write standard SSD detection .tflite files with nothing but LiteRT's flatbuffer schema (no TensorFlow).

Two uses:

- :func:`append_ssd_postprocess` finishes an SSD backbone converted to .tflite (raw box encodings + class logits)
  with the ``TFLite_Detection_PostProcess`` op, exactly what the TF Object Detection API's TFLite export does, so the
  result has the standard output signature: boxes, classes, scores, count.
- :func:`tiny_ssd_model` builds a small but real detection model for tests: its "image" input *is* the raw
  predictions (reshaped and sliced), followed by the same post-processing op. A test writes the box encodings and
  scores it wants into the pixels and checks what LiteRT's real decoding and NMS give back.

``python scripts/ssd_tflite.py finish BACKBONE.tflite ANCHORS.npy NUM_CLASSES OUT.tflite`` runs the first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as fb
from flatbuffers import Builder, flexbuffers

POSTPROCESS = "TFLite_Detection_PostProcess"


def postprocess_options(num_classes: int, max_detections: int = 20, score_threshold: float = 1e-8,
                        iou_threshold: float = 0.6, scales: tuple[float, float, float, float] = (10, 10, 5, 5),
                        regular_nms: bool = False) -> bytes:
    """The op's flexbuffer options, with the TF OD API's usual values."""
    b = flexbuffers.Builder()
    with b.Map():
        b.Int("max_detections", max_detections)
        b.Int("max_classes_per_detection", 1)
        b.Int("detections_per_class", 100)
        b.Bool("use_regular_nms", regular_nms)
        b.Float("nms_score_threshold", score_threshold)
        b.Float("nms_iou_threshold", iou_threshold)
        b.Int("num_classes", num_classes)
        b.Float("y_scale", scales[0])
        b.Float("x_scale", scales[1])
        b.Float("h_scale", scales[2])
        b.Float("w_scale", scales[3])
    return bytes(b.Finish())


def _opcode(model: fb.ModelT, builtin: int, custom: str | None = None) -> int:
    for i, code in enumerate(model.operatorCodes or []):
        name = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and name == custom:
            return i
    model.operatorCodes = (model.operatorCodes or []) + [
        fb.OperatorCodeT(deprecatedBuiltinCode=min(builtin, 127), customCode=custom, version=1, builtinCode=builtin)]
    return len(model.operatorCodes) - 1


def _tensor(model: fb.ModelT, graph: fb.SubGraphT, name: str, shape: list[int], dtype: int = fb.TensorType.FLOAT32,
            data: np.ndarray | None = None) -> int:
    buffer = 0
    if data is not None:
        model.buffers.append(fb.BufferT(data=np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)))
        buffer = len(model.buffers) - 1
    graph.tensors.append(fb.TensorT(shape=list(shape), type=dtype, buffer=buffer, name=name))
    return len(graph.tensors) - 1


def _op(model: fb.ModelT, graph: fb.SubGraphT, builtin: int, inputs: list[int], outputs: list[int],
        options_type: int = 0, options: object = None, custom: str | None = None, custom_options: bytes = b"") -> None:
    op = fb.OperatorT(opcodeIndex=_opcode(model, builtin, custom), inputs=inputs, outputs=outputs,
                      builtinOptionsType=options_type, builtinOptions=options)
    if custom:
        op.customOptions = list(custom_options)
        op.customOptionsFormat = fb.CustomOptionsFormat.FLEXBUFFERS
    graph.operators.append(op)


def _reshape(model: fb.ModelT, graph: fb.SubGraphT, source: int, shape: list[int], name: str) -> int:
    shape_t = _tensor(model, graph, name + "/shape", [len(shape)], fb.TensorType.INT32, np.array(shape, np.int32))
    out = _tensor(model, graph, name, shape)
    _op(model, graph, fb.BuiltinOperator.RESHAPE, [source, shape_t], [out], fb.BuiltinOptions.ReshapeOptions,
        fb.ReshapeOptionsT(newShape=list(shape)))
    return out


def _finish(model: fb.ModelT, graph: fb.SubGraphT, boxes: int, scores: int, anchors_yxhw: np.ndarray,
            options: bytes, max_detections: int) -> None:
    """Append the post-processing op on (1, N, 4) encodings and (1, N, classes+1) scores; make its outputs the
    graph's outputs, named as the TF OD API export names them."""
    anchors = _tensor(model, graph, "anchors", list(anchors_yxhw.shape), data=anchors_yxhw.astype(np.float32))
    names = [POSTPROCESS, POSTPROCESS + ":1", POSTPROCESS + ":2", POSTPROCESS + ":3"]
    shapes = [[1, max_detections, 4], [1, max_detections], [1, max_detections], [1]]
    outputs = [_tensor(model, graph, n, s) for n, s in zip(names, shapes, strict=True)]
    _op(model, graph, fb.BuiltinOperator.CUSTOM, [boxes, scores, anchors], outputs, custom=POSTPROCESS,
        custom_options=options)
    graph.outputs = outputs


def _pack(model: fb.ModelT) -> bytes:
    builder = Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def append_ssd_postprocess(backbone: bytes, anchors_yxhw: np.ndarray, num_classes: int, logits: bool = True,
                           **options: object) -> bytes:
    """Finish a converted SSD backbone whose two outputs are box encodings ((1, N, 4) or (1, N, 1, 4)) and class
    predictions with background ((1, N, classes + 1), logits unless ``logits=False``)."""
    model = fb.ModelT.InitFromPackedBuf(backbone, 0)
    graph = model.subgraphs[0]
    outs = list(graph.outputs)
    box_out = next(i for i in outs if graph.tensors[i].shape[-1] == 4)
    cls_out = next(i for i in outs if i != box_out)
    n = int(anchors_yxhw.shape[0])
    boxes = _reshape(model, graph, box_out, [1, n, 4], "box_encodings")
    scores = cls_out
    if logits:
        scores = _tensor(model, graph, "class_predictions", [1, n, num_classes + 1])
        _op(model, graph, fb.BuiltinOperator.LOGISTIC, [cls_out], [scores])
    max_detections = int(options.get("max_detections", 20))
    _finish(model, graph, boxes, scores, anchors_yxhw, postprocess_options(num_classes, **options), max_detections)
    return _pack(model)


def tiny_ssd_model(anchors_yxhw: np.ndarray, num_classes: int, max_detections: int = 10,
                   score_threshold: float = 0.5, iou_threshold: float = 0.5) -> bytes:
    """A detection model whose float input (1, N, 1, 4 + classes + 1) holds, per anchor, the box encoding
    (ty, tx, th, tw) and the class scores with background; the TF OD API post-processing decodes it."""
    n, width = int(anchors_yxhw.shape[0]), 4 + num_classes + 1
    if width % 3:
        raise ValueError("4 + num_classes + 1 must be a multiple of 3 so the input looks like an RGB image")
    model = fb.ModelT(version=3, operatorCodes=[], subgraphs=[], buffers=[fb.BufferT()], description="tiny ssd")
    graph = fb.SubGraphT(tensors=[], inputs=[], outputs=[], operators=[], name="main")
    model.subgraphs.append(graph)
    image = _tensor(model, graph, "normalized_input_image_tensor", [1, n, width // 3, 3])
    graph.inputs = [image]
    flat = _reshape(model, graph, image, [1, n, width], "predictions")

    def slice_(begin: int, size: int, name: str) -> int:
        b = _tensor(model, graph, name + "/begin", [3], fb.TensorType.INT32, np.array([0, 0, begin], np.int32))
        s = _tensor(model, graph, name + "/size", [3], fb.TensorType.INT32, np.array([1, n, size], np.int32))
        out = _tensor(model, graph, name, [1, n, size])
        _op(model, graph, fb.BuiltinOperator.SLICE, [flat, b, s], [out], fb.BuiltinOptions.SliceOptions,
            fb.SliceOptionsT())
        return out

    boxes = slice_(0, 4, "box_encodings")
    scores = slice_(4, num_classes + 1, "class_predictions")
    options = postprocess_options(num_classes, max_detections, score_threshold, iou_threshold)
    _finish(model, graph, boxes, scores, anchors_yxhw, options, max_detections)
    return _pack(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    finish = sub.add_parser("finish", help="add the detection post-processing op to a converted SSD backbone")
    finish.add_argument("backbone", type=Path)
    finish.add_argument("anchors", type=Path, help=".npy of (N, 4) anchors as y_center, x_center, h, w")
    finish.add_argument("num_classes", type=int)
    finish.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    data = append_ssd_postprocess(args.backbone.read_bytes(), np.load(args.anchors), args.num_classes)
    args.out.write_bytes(data)
    print(f"{args.out}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
