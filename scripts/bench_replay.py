#!/usr/bin/env python3
"""Replay throughput: ``edgepilot replay VIDEO --detect face,person`` on a 768x576 10 fps and a 960x720 30 fps video,
with and without the annotated output (``--out``), in frames per second and as a multiple of real time; the same
work done serially (decode, detect, annotate, encode one after the other) for comparison; what each stage costs;
and what the flight recorder costs a real-time 30 Hz flight.

The videos are made from real street footage: ``market_street.mp4`` (1906, public domain, many pedestrians; cached by
``scripts/fetch_test_data.py``), cropped to 4:3 and scaled, resampled to 10 / 30 fps, encoded in H.264, cached.

Usage: ``nice python scripts/bench_replay.py [--runs 3] [--no-recorder]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import fetch_test_data  # noqa: E402

from edgepilot.pilot.app.cli import main as edgepilot  # noqa: E402
from edgepilot.pilot.core.messages import Frame  # noqa: E402

VIDEOS = {"768x576@10": ((768, 576), 10.0, 20.0), "960x720@30": ((960, 720), 30.0, 10.0)}  # size, fps, seconds


def make_video(name: str, cache: Path) -> Path:
    """The benchmark video ``name`` from the real street footage (made once, then cached)."""
    from edgepilot.vision.video_io import VideoWriter

    (width, height), fps, seconds = VIDEOS[name]
    path = cache / f"market_street_{name.replace('@', '_')}fps.mp4"
    if path.is_file():
        return path
    source = fetch_test_data.fetch(cache)["market_street.mp4"]
    capture = cv2.VideoCapture(str(source))
    source_fps = capture.get(cv2.CAP_PROP_FPS)
    wanted = int(seconds * fps)
    part = path.with_suffix(".part.mp4")
    with VideoWriter(part, width, height, fps) as writer:
        index, written = 0, 0
        while written < wanted:
            ok, image = capture.read()
            if not ok:
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop the footage if it is shorter than asked
                continue
            if index * fps / source_fps >= written:  # resample to the target rate
                h, w = image.shape[:2]
                crop = image[:, (w - h * 4 // 3) // 2:(w + h * 4 // 3) // 2]  # 16:9 -> 4:3, centred
                writer.write(cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC))
                written += 1
            index += 1
    part.rename(path)
    return path


def replay(video: Path, extra: list[str]) -> dict:
    """One ``edgepilot replay`` run in this process: frames per second from the first frame to the last (the
    steady state), and from the command's start (including loading the models)."""
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = edgepilot(["replay", str(video), "--detect", "face,person", "--json", *extra])
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"replay failed ({code}): {out.getvalue()[-300:]}")
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    return {"fps": summary["processing_fps"], "wall_fps": summary["frames"] / wall, "frames": summary["frames"]}


def serial(video: Path, out_path: Path | None) -> float:
    """The same work on one thread: decode, detect, annotate, encode, one frame after the other (frames/s)."""
    from edgepilot.vision.overlay import draw
    from edgepilot.vision.pipeline import Perception
    from edgepilot.vision.video_io import VideoWriter, open_source

    source = open_source(video)
    perception = Perception(detect=("face", "person"))
    writer = VideoWriter(out_path, source.width, source.height, source.fps) if out_path else None
    started, frames = time.perf_counter(), 0
    for frame in source.frames:
        detections = perception.process(frame)
        if writer is not None:
            writer.write(draw(frame.image, detections, 0.0))
        frames += 1
    if writer is not None:
        writer.close()
    return frames / (time.perf_counter() - started)


def stages(video: Path, frames: int = 60) -> dict[str, tuple[float, float]]:
    """Median and p95 milliseconds per frame of each pipeline stage, measured one at a time."""
    from edgepilot.vision.overlay import draw
    from edgepilot.vision.pipeline import Perception
    from edgepilot.vision.video_io import VideoWriter, open_source

    source = open_source(video)
    images, decode = [], []
    for _ in range(frames):
        t = time.perf_counter()
        frame = next(source.frames, None)
        decode.append(time.perf_counter() - t)
        if frame is None:
            break
        images.append(frame)
    perception = Perception(detect=("face", "person"))
    detect, annotate, encode = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        writer = VideoWriter(Path(tmp) / "o.mp4", source.width, source.height, source.fps)
        for frame in images:
            t0 = time.perf_counter()
            detections = perception.process(Frame(frame.image, frame.t_s, frame.index))
            t1 = time.perf_counter()
            image = draw(frame.image.copy(), detections, 0.0)
            t2 = time.perf_counter()
            writer.write(image)
            t3 = time.perf_counter()
            detect.append(t1 - t0)
            annotate.append(t2 - t1)
            encode.append(t3 - t2)
        writer.close()

    def ms(values: list[float]) -> tuple[float, float]:
        return float(np.median(values) * 1000), float(np.percentile(values, 95) * 1000)

    return {"decode": ms(decode), "detect": ms(detect), "annotate": ms(annotate), "encode": ms(encode)}


def flight(record: bool, seconds: float) -> dict:
    """A real-time simulated follow flight (30 Hz, perception on its thread), with or without --record."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "edgepilot.pilot.app.cli", "fly", "--vehicle", "sim", "--follow", "me", "--max-duration",
                   str(seconds), "--json"] + (["--record", str(Path(tmp) / "run")] if record else [])
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"flight failed: {result.stderr[-300:]}")
        loop = json.loads(result.stdout.strip().splitlines()[-1])["loop"]
        summary = {}
        if record:
            manifest = json.loads((Path(tmp) / "run" / "manifest.json").read_text())
            summary = manifest["summary"]
            started = time.perf_counter()
            replayed = subprocess.run([sys.executable, "-m", "edgepilot.pilot.app.cli", "replay", str(Path(tmp) / "run"), "--json"],
                                      capture_output=True, text=True, cwd=ROOT)
            replay_s = time.perf_counter() - started
            check = json.loads(replayed.stdout.strip().splitlines()[-1])
            summary.update({"replay_s": replay_s, "decisions_match": check["decisions_match"],
                            "decisions": check["decisions"],
                            "mb": sum(p.stat().st_size for p in (Path(tmp) / "run").iterdir()) / 1e6})
    return {**loop, **summary}


def tick_cost(record: bool, ticks: int = 900) -> float:
    """Microseconds the pilot spends per tick on a fake clock (no camera), with or without the recorder attached:
    the difference is what recording costs the control loop's thread."""
    from edgepilot.pilot.core.clock import FakeClock
    from edgepilot.pilot.core.grammar import parse_script
    from edgepilot.pilot.core.runner import Pilot
    from edgepilot.pilot.record.recorder import Recorder
    from edgepilot.sim.vehicles import SimDrone

    clock = FakeClock()
    pilot = Pilot(SimDrone(clock), clock=clock, max_ticks=ticks)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Path(tmp) / "run", video=False) if record else None
        if recorder is not None:
            recorder.attach(pilot)
        started = time.perf_counter()
        pilot.run(parse_script("takeoff; wait 25; land"))
        elapsed = time.perf_counter() - started
        if recorder is not None:
            recorder.close()
    return elapsed / ticks * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="replays per configuration (median reported)")
    parser.add_argument("--no-recorder", action="store_true", help="skip the flight recorder measurement")
    parser.add_argument("--flight-s", type=float, default=15.0, help="length of the recorded flights")
    args = parser.parse_args()
    cache = fetch_test_data.default_cache() / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    print(f"replay throughput, face + person detection, 1 detector thread, {args.runs} run(s) each (median, min)")
    print("all: both detectors on every frame (--person-every 1); p2: the default, as the live pilot: faces on "
          "every frame, people on every other one, the tracker moving their boxes in between. Every frame is "
          "annotated. 'x real time' counts from the first frame, 'with load' includes loading the models.")
    print(f"{'video':<12} {'detectors':<14} {'fps':>7} {'min':>7} {'x real time':>12} {'with load':>11} "
          f"{'serial fps':>11} {'pipelined/serial':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in VIDEOS:
            video = make_video(name, cache)
            fps = VIDEOS[name][1]
            every_frame = ["--person-every", "1"]
            for label, extra in (("all", every_frame), ("all --out", [*every_frame, "--out", f"{tmp}/o.mp4"]),
                                 ("p2 --out", ["--out", f"{tmp}/o.mp4"])):
                runs = [replay(video, extra) for _ in range(args.runs)]
                median = statistics.median(r["fps"] for r in runs)
                wall = statistics.median(r["wall_fps"] for r in runs)
                slowest = min(r["fps"] for r in runs)
                line = (f"{name:<12} {label:<14} {median:7.1f} {slowest:7.1f} {median / fps:11.2f}x "
                        f"{wall / fps:10.2f}x")
                if label.startswith("all"):
                    base = serial(video, Path(tmp) / "s.mp4" if "--out" in extra else None)
                    line += f" {base:11.1f} {median / base:16.2f}x"
                print(line, flush=True)
            cost = stages(video)
            print(f"{'':<12} per frame (median / p95 ms): " + ", ".join(
                f"{stage} {m:.1f} / {p:.1f}" for stage, (m, p) in cost.items()), flush=True)
    if not args.no_recorder:
        plain_us = statistics.median(tick_cost(False) for _ in range(3))
        recorded_us = statistics.median(tick_cost(True) for _ in range(3))
        print(f"\nflight recorder: a pilot tick on a fake clock takes {plain_us:.0f} us plain, {recorded_us:.0f} us "
              f"recorded (+{recorded_us - plain_us:.0f} us per tick on the loop's thread)")
        print(f"real-time simulated follow flight, {args.flight_s:g} s at 30 Hz, perception on its thread:")
        print(f"{'':<12} {'achieved Hz':>11} {'overruns':>9} {'p99 period':>11} {'p99 jitter':>11} {'frames':>7} "
              f"{'dropped':>8} {'MB':>6} {'replay':>8} {'decisions':>10}")
        for record in (False, True):
            r = flight(record, args.flight_s)
            extra = (f"{r['video_frames']:7d} {r['video_frames_dropped']:8d} {r['mb']:6.1f} {r['replay_s']:7.1f}s "
                     f"{'same' if r['decisions_match'] else 'DIFFER'} ({r['decisions']})") if record else ""
            print(f"{'--record' if record else 'plain':<12} {r['achieved_hz']:11.2f} {r['overruns']:9d} "
                  f"{r['p99_period_ms']:9.1f}ms {r['p99_jitter_ms']:9.1f}ms {extra}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
