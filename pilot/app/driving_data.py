"""Training examples from recorded drives: every camera frame of a run folder with the steering and throttle the
driver (keys, web cockpit, voice or the CV autopilot) sent while that frame was the newest one.

The recorder keeps, per control tick, which frames the pilot read (``seen``) and the velocity it sent after safety
(``sent``); per frame, its position in ``frames.mkv``. A frame's label is the first set-point sent from the tick that
first read it (within :data:`MAX_TICKS_TO_LABEL` ticks). Only frames driven forward are examples: stops for people
and waits belong to the safety layer, not to the driver. A ``trim`` in the manifest (``edgepilot runs trim``) limits
the ticks used. :func:`augment` is how training varies them, epoch after epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.files import (
    DETECTIONS,
    LOSSLESS_VIDEO,
    MANIFEST,
    TICKS,
    read_jsonl,
    read_manifest,
    sha256_of,
)
from edgepilot.pilot.record.video import read_frames
from edgepilot.robot_car.learned import labels_of, preprocess
from edgepilot.sim.augment import shadow

MAX_TICKS_TO_LABEL = 3


@dataclass
class RunExamples:
    folder: Path
    manifest_sha256: str
    frames: np.ndarray   # N x 120 x 160 x 3, uint8 (preprocessed, x255)
    labels: np.ndarray   # N x 2: steering, throttle
    world_seed: int | None = None  # the simulator's world it was driven in (None: a real car)


def world_seed(manifest: dict) -> int | None:
    """The simulator world a run was recorded in (``demo`` or a ``sim`` vehicle's ``--seed``), else None."""
    config = manifest.get("config") or {}
    simulated = config.get("verb") == "demo" or config.get("vehicle") in ("sim", "sim-car")
    return int(config["seed"]) if simulated and config.get("seed") is not None else None


def trim_window(manifest: dict) -> tuple[float, float]:
    trim = manifest.get("trim") or {}
    return float(trim.get("from_s", 0.0)), float(trim.get("until_s", float("inf")))


def frame_labels(folder: Path) -> dict[int, tuple[float, float]]:
    """Video frame index -> (steering, throttle) for the frames of ``folder`` driven forward."""
    manifest = read_manifest(folder)
    start, until = trim_window(manifest)
    ticks, _ = read_jsonl(folder / TICKS)
    detections, _ = read_jsonl(folder / DETECTIONS)
    video_of = {d["frame"]: d.get("video") for d in detections}
    labels: dict[int, tuple[float, float]] = {}
    labelled: set[int] = set()
    for i, tick in enumerate(ticks):
        if not start <= tick["t_s"] < until:
            continue
        for number in tick.get("seen") or []:
            if number is None or number in labelled:
                continue
            labelled.add(number)
            sent = next((t["sent"] for t in ticks[i:i + MAX_TICKS_TO_LABEL] if t.get("sent") is not None), None)
            video = video_of.get(number)
            if sent is None or video is None or sent[0] <= 0:
                continue
            labels[video] = labels_of(sent[0], sent[3])
    return labels


def load_run(folder: Path) -> RunExamples:
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise InputError(f"{folder} is not a recorded run (no {MANIFEST}); record one with 'edgepilot drive --record "
                         f"{folder} ...'")
    if not (folder / LOSSLESS_VIDEO).is_file():
        raise InputError(f"{folder} has no {LOSSLESS_VIDEO}: it was recorded without video and cannot teach a driver")
    labels = frame_labels(folder)
    frames, targets = [], []
    for index, image in enumerate(read_frames(folder / LOSSLESS_VIDEO)):
        if index in labels:
            frames.append(np.round(preprocess(image) * 255.0).astype(np.uint8))
            targets.append(labels[index])
    if not frames:
        raise InputError(f"{folder}: no frame was driven forward in it; nothing to learn from")
    return RunExamples(folder, sha256_of(folder / MANIFEST), np.stack(frames), np.asarray(targets, np.float32),
                       world_seed(read_manifest(folder)))


def augment(frames: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, flip: bool = True,
            light: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A batch as one epoch sees it (uint8 frames in, uint8 out): half of it mirrored, with the steering mirrored;
    and, with ``light``, DonkeyCar's kind of augmentation, which leaves the labels as they are: brightness x0.6-1.4, a
    colour cast of up to 10% per channel, and in two frames of five a hard-edged shadow (x0.3-0.8) across the road.
    A driver taught by a few worlds' laps then meets other floors and other light less surprised."""
    frames = frames.copy()
    labels = labels.copy()
    if flip:
        mirrored = rng.random(len(frames)) < 0.5
        frames[mirrored] = frames[mirrored, :, ::-1]
        labels[mirrored, 0] *= -1.0
    if light:
        gains = rng.uniform(0.6, 1.4, (len(frames), 1, 1, 1)) * rng.uniform(0.9, 1.1, (len(frames), 1, 1, 3))
        frames = np.clip(frames.astype(np.float32) * gains, 0, 255).astype(np.uint8)
        for i in np.nonzero(rng.random(len(frames)) < 0.4)[0]:
            frames[i] = shadow(frames[i], rng, darkness=float(rng.uniform(0.3, 0.8)))
    return frames, labels
