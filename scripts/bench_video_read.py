#!/usr/bin/env python3
"""How long ``edgepilot replay VIDEO --start 60`` takes to reach its first frame: seeking to the key frame before the
start (what :func:`edgepilot.vision.video_io.open_source` does) against decoding every frame from the beginning
(what it does on a raw stream that cannot seek, and what the OpenCV reader did before), side by side in one run.

The video: 2 minutes of 640x480 at 30 fps (3600 frames), a moving textured scene with sensor noise, H.264 (libx264
superfast, crf 23, as ``--out`` writes it) with a key frame every ``--gop`` frames (default 60, 2 s, like a phone),
made once and cached in scripts/cache/bench.

Usage: ``nice python scripts/bench_video_read.py [--runs 5] [--start 60] [--gop 60]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS, SECONDS = 640, 480, 30, 120


def make_clip(path: Path, gop: int) -> Path:
    from edgepilot.pilot.core.video import VideoEncoder

    if path.is_file():
        return path
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (HEIGHT // 8, 2 * WIDTH // 8, 3), dtype=np.uint8), (2 * WIDTH, HEIGHT),
                         interpolation=cv2.INTER_CUBIC)
    part = path.with_suffix(".part.mp4")
    with VideoEncoder("libx264", WIDTH, HEIGHT, "yuv420p", path=part, rate=FPS,
                      options={"preset": "superfast", "crf": "23", "g": str(gop)}) as encoder:
        for i in range(FPS * SECONDS):
            x = (i * 4) % WIDTH
            image = texture[:, x:x + WIDTH].copy()
            cx = int(WIDTH / 2 + WIDTH / 3 * np.sin(i / 40))
            cv2.circle(image, (cx, HEIGHT // 2), 60, (40, 200, 255), -1)
            cv2.putText(image, f"{i}", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
            noise = rng.integers(-6, 7, image.shape, dtype=np.int16)
            encoder.encode(np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    part.rename(path)
    return path


def first_frame(path: Path, start_s: float, seek: bool):
    """Seconds to open ``path`` at ``start_s`` and get the first frame, and that frame."""
    from edgepilot.vision import video_io

    real = video_io._seek
    if not seek:
        video_io._seek = lambda *args: None  # the reader's own fallback: decode from the beginning, drop, no convert
    try:
        started = time.perf_counter()
        source = video_io.open_source(path, start_s)
        frame = next(source.frames)
        elapsed = time.perf_counter() - started
        source.frames.close()
    finally:
        video_io._seek = real
    return elapsed, frame


def opencv_first_frame(path: Path, start_s: float):
    """The previous reader: cv2.VideoCapture, grab() (decode, no conversion) up to the start, then retrieve()."""
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    index = 0
    capture.grab()
    while index / fps < start_s - 1e-9 and capture.grab():
        index += 1
    ok, image = capture.retrieve()
    elapsed = time.perf_counter() - started
    capture.release()
    return elapsed, index, image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each way (median reported)")
    parser.add_argument("--start", type=float, default=60.0, help="the --start to reach, seconds")
    parser.add_argument("--gop", type=int, default=60, help="key frame interval of the generated clip, frames")
    parser.add_argument("--no-opencv", action="store_true", help="skip the previous (OpenCV) reader")
    args = parser.parse_args()
    cache = ROOT / "scripts" / "cache" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    path = make_clip(cache / f"video_read_{WIDTH}x{HEIGHT}_{SECONDS}s_g{args.gop}.mp4", args.gop)
    print(f"{path.name}: {WIDTH}x{HEIGHT}, {FPS} fps, {SECONDS} s, key frame every {args.gop} frames; "
          f"time to the first frame of --start {args.start:g}, {args.runs} runs each (median, min, max)")
    ways = {"seek": [], "decode from start": []} | ({} if args.no_opencv else {"opencv (before)": []})
    frames = {}
    for _ in range(args.runs):  # interleaved, so a busy moment of the machine hits every way alike
        for way in ("seek", "decode from start"):
            elapsed, frame = first_frame(path, args.start, way == "seek")
            ways[way].append(elapsed)
            frames[way] = frame
        if not args.no_opencv:
            elapsed, index, image = opencv_first_frame(path, args.start)
            ways["opencv (before)"].append(elapsed)
    seek, full = frames["seek"], frames["decode from start"]
    same = (seek.index, seek.t_s) == (full.index, full.t_s) and np.array_equal(seek.image, full.image)
    print(f"first frame: #{seek.index} at {seek.t_s:.4f} s by seeking, #{full.index} at {full.t_s:.4f} s decoding "
          f"from the start: {'identical' if same else 'DIFFERENT'}")
    base = statistics.median(ways["seek"])
    for way, times in ways.items():
        median = statistics.median(times)
        print(f"{way:<18} {median * 1000:9.1f} ms  (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})  "
              f"{median / base:6.1f}x the seek")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
