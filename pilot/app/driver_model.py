"""A learned driver's file and its model card: running it on LiteRT (the runtime the rest of edgepilot uses) and
saying which model drove (sha256 and card, into the run's manifest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import ModelError
from edgepilot.robot_car.learned import INPUT_H, INPUT_W, Infer


def card_path(model: Path) -> Path:
    """The model card lives next to the model: ``driver.tflite`` -> ``driver.card.json``."""
    return Path(model).with_suffix(".card.json")


def model_identity(model: Path) -> dict:
    from edgepilot.pilot.record.files import sha256_of

    card = card_path(model)
    return {"file": str(model), "sha256": sha256_of(model),
            "card": json.loads(card.read_text()) if card.is_file() else None}


def load_driver(model: Path, threads: int = 1) -> Infer:
    """The .tflite driver as ``infer(frame) -> (steering, throttle)``; int8 input/output are (de)quantised here."""
    from edgepilot.vision.litert import load_interpreter

    interpreter = load_interpreter(model, threads)
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    if len(inputs) != 1 or tuple(inputs[0]["shape"][1:]) != (INPUT_H, INPUT_W, 3) or \
            int(np.prod(outputs[0]["shape"])) != 2:
        raise ModelError(f"{model} is not a driver from 'edgepilot train' (it takes {inputs[0]['shape'].tolist()}, "
                         f"a driver takes [1, {INPUT_H}, {INPUT_W}, 3] and says steering and throttle)")
    source, sink = inputs[0], outputs[0]
    in_scale, in_zero = source["quantization"]
    out_scale, out_zero = sink["quantization"]

    def infer(frame: np.ndarray) -> tuple[float, float]:
        x = frame[None]
        if source["dtype"] != np.float32:
            x = np.clip(np.round(x / in_scale + in_zero), *_limits(source["dtype"])).astype(source["dtype"])
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(sink["index"]).reshape(-1).astype(np.float32)
        if sink["dtype"] != np.float32:
            y = (y - out_zero) * out_scale
        return float(y[0]), float(y[1])

    return infer


def _limits(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)
