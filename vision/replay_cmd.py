"""``edgepilot replay INPUT``: run perception offline on a video, an image or a folder of images.

Writes one JSON line per frame (``--jsonl``, or stdout when no other output is asked for), the annotated video
(``--out``) and with ``--json`` a summary object as the last line of stdout. A progress bar goes to stderr on a
terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from pilot.messages import Detection


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="video (mp4, avi, mkv, raw .h264), image, or folder of images")
    parser.add_argument("--detect", default="face", help="comma-separated: face, person, or classes of --model "
                        "('objects' = all of them) (default: %(default)s)")
    parser.add_argument("--faces", type=Path, default=None, metavar="DIR",
                        help="face database (default: $EDGEPILOT_FACES or ~/.local/share/edgepilot/faces if it exists)")
    parser.add_argument("--jsonl", type=Path, default=None, metavar="OUT.jsonl", help="per-frame detections")
    parser.add_argument("--out", type=Path, default=None, metavar="OUT.mp4", help="annotated video")
    parser.add_argument("--json", action="store_true", help="print a summary JSON object as the last stdout line")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the detectors (default: 1)")
    parser.add_argument("--face-range", choices=("full", "short"), default="full",
                        help="BlazeFace model: full (up to ~5 m, default) or short (~2 m, faster)")
    parser.add_argument("--person-detector", choices=("ssd", "pose"), default="ssd",
                        help="ssd: bundled pedestrian SSDLite (near and far, default); pose: BlazePose (near only)")
    parser.add_argument("--tiles", type=int, default=0, help="extra tiles per row for the person detector "
                        "(2 or 3 find farther people at 2-4x the cost)")
    parser.add_argument("--model", type=Path, default=None, help="an SSD detection .tflite (TF OD API outputs)")
    parser.add_argument("--labels", type=Path, default=None, help="labels file for --model, one per line")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")


def detection_json(d: Detection) -> dict:
    return {"label": d.label, "score": round(d.score, 3), "box": [round(v, 1) for v in d.box],
            "track": d.track, "name": d.name}


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int | None) -> None:
        self.total, self.enabled, self._last = total, sys.stderr.isatty(), 0.0

    def update(self, done: int, fps: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.2:
            return
        self._last = now
        if self.total:
            filled = int(30 * done / self.total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}"
        else:
            bar = f"{done} frames"
        sys.stderr.write(f"\r{bar} {fps:5.1f} fps")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def run(args: argparse.Namespace) -> int:
    from vision.identity import default_faces_dir
    from vision.overlay import draw
    from vision.pipeline import Perception
    from vision.video_io import VideoWriter, open_source

    source = open_source(args.input)
    faces_dir = args.faces
    if faces_dir is None and default_faces_dir().is_dir():
        faces_dir = default_faces_dir()
    perception = Perception(detect=args.detect, faces_dir=faces_dir, threads=args.threads,
                            face_range=args.face_range, person_detector=args.person_detector,
                            person_tiles=args.tiles, model=args.model, labels=args.labels)
    to_stdout = args.jsonl is None and args.out is None and not args.json
    jsonl = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else (sys.stdout if to_stdout else None)  # noqa: SIM115
    writer = VideoWriter(args.out, source.width, source.height, source.fps) if args.out else None
    progress = Progress(source.count if args.max_frames is None else min(args.max_frames, source.count or 10**9))
    labels: Counter[str] = Counter()
    names: Counter[str] = Counter()
    tracks: set[int] = set()
    frames, started, fps = 0, time.perf_counter(), 0.0
    size = None
    try:
        for frame in source.frames:
            if args.max_frames is not None and frames >= args.max_frames:
                break
            if size is not None and frame.image.shape != size:
                perception.reset()  # a folder of unrelated photos: nothing carries over from one to the next
            size = frame.image.shape
            t0 = time.perf_counter()
            detections = perception.process(frame)
            fps = 0.9 * fps + 0.1 / max(time.perf_counter() - t0, 1e-6) if frames else 1 / max(
                time.perf_counter() - t0, 1e-6)
            frames += 1
            labels.update(d.label for d in detections)
            names.update(d.name for d in detections if d.name)
            tracks.update(d.track for d in detections if d.track is not None)
            if jsonl is not None:
                jsonl.write(json.dumps({"frame": frame.index, "t_s": round(frame.t_s, 3), "source": frame.source,
                                        "detections": [detection_json(d) for d in detections]}) + "\n")
            if writer is not None:
                writer.write(draw(frame.image.copy(), detections, fps))
            progress.update(frames, fps)
    finally:
        progress.close()
        if writer is not None:
            writer.close()
        if jsonl is not None and jsonl is not sys.stdout:
            jsonl.close()
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"input": str(args.input), "kind": source.kind, "frames": frames,
                          "input_fps": round(source.fps, 2), "processing_fps": round(frames / max(elapsed, 1e-6), 1),
                          "detections": dict(labels), "tracks": len(tracks), "names": dict(names),
                          "jsonl": str(args.jsonl) if args.jsonl else None,
                          "out": str(args.out) if args.out else None}))
    return 0
