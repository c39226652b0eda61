"""``edgepilot train RUN_DIR... --out driver.tflite``: behaviour cloning. A small CNN (DonkeyCar's "linear" class,
about 0.2 M parameters, 120x160 input) learns the steering and throttle of recorded drives, is quantised to int8 and
written as a .tflite that ``drive --autopilot model FILE`` runs on LiteRT. Next to it: ``FILE.card.json`` (the model
card: every training run's manifest sha256, the config, the code version, the metrics, the seed) and
``FILE.loss.png`` (the loss curves).

TensorFlow is needed only here: ``pip install 'edgepilot[train]'`` (tensorflow-cpu, prebuilt wheels). Driving never
imports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import InputError

log = logging.getLogger(__name__)

TRAIN_EXTRA = "the learned driver is trained with TensorFlow: pip install 'edgepilot[train]' (tensorflow-cpu)"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch: int = 64
    learning_rate: float = 1e-3
    validation: float = 0.2   # the last fifth of each run (in time) is held out: no near-duplicate frames leak
    flip: bool = True         # half of each batch mirrored, steering too: balances the turns
    augment: bool = True      # other light each epoch: brightness, colour cast, shadows (driving_data.augment)
    seed: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders from 'drive --record'")
    parser.add_argument("--out", type=Path, required=True, help="the model to write, e.g. driver.tflite")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="passes over the data (default 12)")
    parser.add_argument("--batch", type=int, default=TrainConfig.batch, help="batch size (default 64)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, help="random seed (default 0)")
    parser.add_argument("--no-flip", action="store_true", help="do not mirror frames")
    parser.add_argument("--no-augment", action="store_true", help="train on the frames as recorded (no changes of "
                        "brightness, colour or shadows)")
    parser.add_argument("--json", action="store_true", help="end stdout with one JSON object (the model card)")


def build_model(keras):
    """Five convolutions and two dense layers to (steering, throttle): DonkeyCar's linear model, narrower."""
    from edgepilot.robot_car.learned import INPUT_H, INPUT_W

    layers = keras.layers
    inputs = keras.Input((INPUT_H, INPUT_W, 3), name="frame")
    x = inputs
    for filters, size, stride in ((24, 5, 2), (32, 5, 2), (48, 5, 2), (64, 3, 2), (64, 3, 1)):
        x = layers.Conv2D(filters, size, strides=stride, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.1)(layers.Dense(100, activation="relu")(x))
    x = layers.Dense(50, activation="relu")(x)
    outputs = layers.Dense(2, activation="tanh", name="steering_throttle")(x)
    return keras.Model(inputs, outputs)


def split(frames: np.ndarray, labels: np.ndarray, holdout: float) -> tuple[tuple, tuple]:
    cut = int(round(len(frames) * (1.0 - holdout)))
    return (frames[:cut], labels[:cut]), (frames[cut:], labels[cut:])


def run(args: argparse.Namespace) -> int:
    if args.epochs < 1 or args.batch < 1:
        raise InputError("--epochs and --batch must be at least 1")
    if args.out.suffix != ".tflite":
        raise InputError(f"--out must end in .tflite, got {args.out}")
    cfg = TrainConfig(epochs=args.epochs, batch=args.batch, seed=args.seed, flip=not args.no_flip,
                      augment=not args.no_augment)
    from edgepilot.pilot.app.driving_data import load_run

    runs = [load_run(folder) for folder in args.runs]  # before importing TensorFlow: bad input fails fast
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
        import tensorflow as tf
    except ImportError:
        raise InputError(TRAIN_EXTRA) from None
    keras.utils.set_random_seed(cfg.seed)
    train_parts, val_parts = zip(*(split(r.frames, r.labels, cfg.validation) for r in runs), strict=True)
    x_train = np.concatenate([p[0] for p in train_parts])
    y_train = np.concatenate([p[1] for p in train_parts])
    x_val = np.concatenate([p[0] for p in val_parts])
    y_val = np.concatenate([p[1] for p in val_parts])
    model = build_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mse", metrics=["mae"])
    started = time.monotonic()
    history = model.fit(_Batches(x_train, y_train, cfg), epochs=cfg.epochs,
                        validation_data=(x_val.astype(np.float32) / 255.0, y_val) if len(x_val) else None,
                        verbose=0, callbacks=[_Progress(cfg.epochs)])
    train_s = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tflite = _quantise(tf, model, x_train)
    args.out.write_bytes(tflite)
    metrics = _metrics(args.out, x_val, y_val, history.history, train_s, model.count_params(), len(x_train))
    card = _card(args.out, runs, cfg, metrics)
    from edgepilot.pilot.app.driver_model import card_path

    card_path(args.out).write_text(json.dumps(card, indent=1) + "\n")
    _plot(history.history, args.out.with_suffix(".loss.png"))
    if args.json:
        print(json.dumps(card), flush=True)
    else:
        print(f"trained on {len(x_train)} frames ({len(x_val)} held out) in {train_s:.0f} s: validation MAE "
              f"steering {metrics['val_mae_steering']} throttle {metrics['val_mae_throttle']} (int8 model)")
        print(f"model {args.out} ({metrics['model_bytes'] // 1024} KB, {metrics['parameters']} parameters, "
              f"{metrics['inference_ms_median']} ms per frame); card {card_path(args.out)}")
    return 0


class _Batches:
    """The training frames in shuffled batches, each mirrored and relit anew every epoch (``driving_data.augment``),
    scaled to [0, 1] only batch by batch (the whole set as float32 would be four times its size)."""

    def __new__(cls, frames: np.ndarray, labels: np.ndarray, cfg: TrainConfig):
        import keras

        from edgepilot.pilot.app.driving_data import augment

        class Batches(keras.utils.PyDataset):
            def __init__(self):
                super().__init__()
                self.rng = np.random.default_rng(cfg.seed)
                self.order = self.rng.permutation(len(frames))

            def __len__(self):
                return -(-len(frames) // cfg.batch)

            def __getitem__(self, index):
                chosen = np.sort(self.order[index * cfg.batch:(index + 1) * cfg.batch])
                x, y = augment(frames[chosen], labels[chosen], self.rng, flip=cfg.flip, light=cfg.augment)
                return x.astype(np.float32) / 255.0, y

            def on_epoch_end(self):
                self.order = self.rng.permutation(len(frames))

        return Batches()


class _Progress:
    """A progress bar over the epochs (stderr), with the losses as they come."""

    def __new__(cls, epochs: int):
        import keras
        from tqdm import tqdm

        class Progress(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=epochs, desc="training", unit="epoch", file=sys.stderr)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if "loss" in k})
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        return Progress()


def _quantise(tf, model, x_train: np.ndarray) -> bytes:
    """Full int8: weights, activations, input and output (what a Pi's XNNPACK runs fastest)."""
    rng = np.random.default_rng(0)
    sample = x_train[rng.choice(len(x_train), size=min(200, len(x_train)), replace=False)]

    def representative():
        for frame in sample:
            yield [frame[None].astype(np.float32) / 255.0]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _metrics(model_path: Path, x_val: np.ndarray, y_val: np.ndarray, history: dict, train_s: float, params: int,
             train_frames: int) -> dict:
    """The quantised model's own errors on the held-out frames, its size and its speed on LiteRT (one thread)."""
    from edgepilot.pilot.app.driver_model import load_driver

    infer = load_driver(model_path)
    times, predictions = [], []
    for frame in x_val:
        start = time.perf_counter()
        predictions.append(infer(frame.astype(np.float32) / 255.0))
        times.append(time.perf_counter() - start)
    if not times:  # no held-out frames: time a few training frames instead
        for _ in range(20):
            start = time.perf_counter()
            infer(np.zeros_like(x_val[:1], np.float32)[0] if len(x_val) else np.zeros((120, 160, 3), np.float32))
            times.append(time.perf_counter() - start)
    error = np.abs(np.asarray(predictions) - y_val) if predictions else np.zeros((1, 2))
    return {"train_frames": int(train_frames), "val_frames": int(len(x_val)), "parameters": int(params),
            "train_s": round(train_s, 1), "epochs_run": len(history.get("loss", [])),
            "final_loss": round(float(history["loss"][-1]), 5),
            "final_val_loss": round(float(history["val_loss"][-1]), 5) if "val_loss" in history else None,
            "val_mae_steering": round(float(error[:, 0].mean()), 4),
            "val_mae_throttle": round(float(error[:, 1].mean()), 4),
            "model_bytes": model_path.stat().st_size,
            "inference_ms_median": round(float(np.median(times)) * 1000.0, 2)}


def _card(model_path: Path, runs, cfg: TrainConfig, metrics: dict) -> dict:
    from edgepilot.pilot.record.files import sha256_of
    from edgepilot.pilot.record.spec import software
    from edgepilot.robot_car.learned import INPUT_H, INPUT_W, STEER_DEG_S, THROTTLE_CM_S

    return {"model": model_path.name, "sha256": sha256_of(model_path), "kind": "edgepilot learned driver",
            "input": [INPUT_H, INPUT_W, 3], "outputs": {"steering": f"yaw rate / {STEER_DEG_S:g} deg/s",
                                                       "throttle": f"forward speed / {THROTTLE_CM_S:g} cm/s"},
            "quantisation": "int8 (weights, activations, input, output)",
            "runs": [{"folder": str(r.folder), "manifest_sha256": r.manifest_sha256, "frames": len(r.frames),
                      "world_seed": r.world_seed} for r in runs],
            "config": asdict(cfg), "seed": cfg.seed, "code": software(), "metrics": metrics}


def _plot(history: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("no loss plot: matplotlib is not installed (pip install 'edgepilot[all]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
