"""``edgepilot replay INPUT``: run perception offline on a video, an image or a folder of images, or replay a
recording (a run folder from ``--record``) and check the pilot decides as it did live.

For videos: one JSON line per frame (``--jsonl``, or stdout when no other output is asked for), the annotated video at
the input's size and rate (``--out``), a picture of the detections over time (``--report``) and with ``--json`` a
summary object as the last line of stdout. Decoding, detection and annotating + encoding run on three threads. A
progress bar with the rate and the time left goes to stderr on a terminal.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from tqdm import tqdm

from edgepilot.pilot.app.web import launch as web_launch
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.messages import Detection, Frame

#: The person detector runs on every other frame by default, as in the live pilot (pilot/run_cmd.py).
PERSON_EVERY = 2
#: Options that choose perception for a video; a recording brings its own.
PERCEPTION_OPTIONS = ("detect", "faces", "threads", "face_range", "person_detector", "tiles", "model", "labels",
                      "every", "person_every", "start", "end", "max_frames")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="video (mp4, avi, mkv, raw .h264), image, folder of images, or a "
                        "recording (a folder made by --record)")
    parser.add_argument("--detect", default=None, help="comma-separated: face, person, or classes of --model "
                        "('objects' = all of them) (default: face)")
    parser.add_argument("--faces", type=Path, default=None, metavar="DIR",
                        help="face database (default: $EDGEPILOT_FACES or ~/.local/share/edgepilot/faces if it exists)")
    parser.add_argument("--jsonl", type=Path, default=None, metavar="OUT.jsonl", help="per-frame detections")
    parser.add_argument("--out", type=Path, default=None, metavar="OUT.mp4", help="annotated video")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.png",
                        help="a picture of the run (trajectory, height, battery, detections, commands) or of the "
                             "video's detections over time")
    parser.add_argument("--json", action="store_true", help="print a summary JSON object as the last stdout line")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the detectors (default: 1)")
    parser.add_argument("--face-range", choices=("full", "short"), default=None,
                        help="BlazeFace model: full (up to ~5 m, default) or short (~2 m, faster)")
    parser.add_argument("--person-detector", choices=("ssd", "pose"), default=None,
                        help="ssd: bundled pedestrian SSDLite (near and far, default); pose: BlazePose (near only)")
    parser.add_argument("--tiles", type=int, default=None, help="extra tiles per row for the person detector "
                        "(2 or 3 find farther people at 2-4x the cost)")
    parser.add_argument("--model", type=Path, default=None, help="an SSD detection .tflite (TF OD API outputs)")
    parser.add_argument("--labels", type=Path, default=None, help="labels file for --model, one per line")
    parser.add_argument("--every", type=int, default=None, metavar="N", help="run the detectors on every N-th "
                        "frame only; the tracker moves the boxes in between (faster; every frame is still annotated)")
    parser.add_argument("--person-every", type=int, default=None, metavar="N",
                        help="run the person detector on every N-th frame, the tracker moving the boxes in between "
                             "(default 2, as the pilot does live: it costs 3x the face detector; 1 = every frame)")
    parser.add_argument("--start", type=float, default=None, metavar="S", help="start this many seconds in")
    parser.add_argument("--end", type=float, default=None, metavar="S", help="stop at this many seconds")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    web_launch.add_arguments(parser)


def _progress(total: int | None) -> tqdm:
    """Frames, rate and time left on stderr, only when stderr is a terminal."""
    return tqdm(total=total, unit="frame", disable=None, leave=False, dynamic_ncols=True)


def run(args: argparse.Namespace) -> int:
    path = args.input.expanduser()
    from edgepilot.pilot.record.files import is_recording

    web_launch.check_arguments(args)
    if args.web is not None and not is_recording(path):
        raise InputError("--web shows a recording (a folder made by --record) as it happened; for a video, open "
                         "the annotated --out video instead")
    if is_recording(path):

        given = [f"--{name.replace('_', '-')}" for name in PERCEPTION_OPTIONS if getattr(args, name) is not None]
        if given:
            raise InputError(f"{', '.join(given)}: a recording replays with the perception it was recorded with; "
                             "drop these options")
        return _replay_recording(args)
    return _replay_video(args)


def _check(args: argparse.Namespace) -> None:
    for name in ("every", "person_every", "threads", "max_frames"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be 1 or more, got {value}")
    start, end = args.start or 0.0, args.end
    if not math.isfinite(start) or start < 0:
        raise InputError(f"--start must be 0 or more seconds, got {args.start:g}")
    if end is not None and not (math.isfinite(end) and end > start):
        raise InputError(f"--end must be after --start ({start:g} s), got {end:g}")


def _perception(args: argparse.Namespace):
    from edgepilot.vision.identity import faces_dir_to_use
    from edgepilot.vision.pipeline import Perception

    faces_dir = faces_dir_to_use(args.faces)
    return Perception(detect=args.detect or "face", faces_dir=faces_dir, threads=args.threads or 1,
                      face_range=args.face_range or "full", person_detector=args.person_detector or "ssd",
                      person_tiles=args.tiles or 0, model=args.model, labels=args.labels,
                      person_every=args.person_every or PERSON_EVERY)


def predicted(perception, frame: Frame) -> list[Detection]:
    """Where the tracker puts what it follows on a frame the detectors skip (named faces keep their names)."""
    labels = tuple(label for detector, _ in perception.detectors for label in detector.labels)
    return [Detection(t.label, round(t.score, 4), tuple(round(float(v), 1) for v in t.predict(frame.t_s)), t.id,
                      t.name) for t in perception.tracker.coasting(frame.t_s, labels)]


def _replay_video(args: argparse.Namespace) -> int:
    from edgepilot.vision.overlay import draw
    from edgepilot.vision.video_io import BackgroundWriter, VideoWriter, open_source, prefetch

    _check(args)
    source = open_source(args.input, args.start or 0.0, args.end)
    perception = _perception(args)
    every = args.every or 1
    to_stdout = args.jsonl is None and args.out is None and not args.json and args.report is None
    jsonl = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else (sys.stdout if to_stdout else None)  # noqa: SIM115
    video = VideoWriter(args.out, source.width, source.height, source.fps) if args.out else None

    def annotate(image, detections, fps) -> None:  # on the encoder's thread
        video.write(draw(image, detections, fps))

    writer = BackgroundWriter(annotate) if video is not None else None
    total = source.count if args.max_frames is None else min(args.max_frames, source.count or 10**9)
    progress = _progress(total)
    labels: Counter[str] = Counter()
    names: Counter[str] = Counter()
    tracks: set[int] = set()
    timeline: list[tuple[float, list[Detection]]] = []
    frames, started, size = 0, time.perf_counter(), None
    try:
        for frame in prefetch(source.frames):
            if args.max_frames is not None and frames >= args.max_frames:
                break
            if size is not None and frame.image.shape != size:
                perception.reset()  # a folder of unrelated photos: nothing carries over from one to the next
            size = frame.image.shape
            detections = perception.process(frame) if frames % every == 0 else predicted(perception, frame)
            frames += 1
            labels.update(d.label for d in detections)
            names.update(d.name for d in detections if d.name)
            tracks.update(d.track for d in detections if d.track is not None)
            if args.report is not None:
                timeline.append((frame.t_s, detections))
            if jsonl is not None:
                jsonl.write(json.dumps({"frame": frame.index, "t_s": round(frame.t_s, 3), "source": frame.source,
                                        "detections": [d.to_json() for d in detections]}) + "\n")
            if writer is not None:
                writer.put(frame.image, detections, frames / max(time.perf_counter() - started, 1e-6))
            progress.update(1)
    finally:
        progress.close()
        try:
            if writer is not None:
                writer.close()
        finally:
            if video is not None:
                video.close()
            if jsonl is not None and jsonl is not sys.stdout:
                jsonl.close()
    elapsed = time.perf_counter() - started
    ended_early = _ended_early(source, frames, args)
    if args.report is not None:
        from edgepilot.pilot.app.report import video_report

        lines = video_report(args.report, timeline, str(args.input))
        if not args.json:
            print("\n".join(lines))
    if args.json:
        duration = frames / source.fps
        print(json.dumps({"input": str(args.input), "kind": source.kind, "frames": frames,
                          "input_fps": round(source.fps, 2), "processing_fps": round(frames / max(elapsed, 1e-6), 1),
                          "realtime_x": round(duration / max(elapsed, 1e-6), 2), "every": every,
                          "detections": dict(labels), "tracks": len(tracks), "names": dict(names),
                          "jsonl": str(args.jsonl) if args.jsonl else None,
                          "out": str(args.out) if args.out else None,
                          "report": str(args.report) if args.report else None,
                          "ended_early": ended_early}))
    if ended_early:
        print(f"edgepilot replay: {args.input} ended early: {ended_early}; what was read is in the outputs",
              file=sys.stderr)
        return 1
    return 0


def _ended_early(source, frames: int, args: argparse.Namespace) -> str | None:
    """Why a video gave fewer frames than it holds (a damaged or cut file), or None when it was read to its end."""
    if args.max_frames is not None and frames >= args.max_frames:
        return None
    if source.damaged:
        return f"read {frames} frames, then {source.damaged[0]}"
    # A cut file decodes cleanly up to the cut: tell it by the frames it says it holds (5% slack for counts that come
    # from the duration).
    if source.kind == "video" and source.count and frames < 0.95 * source.count:
        return f"read {frames} of the {source.count} frames it should hold (the file is cut or damaged)"
    return None


def _fps(records: list[dict]) -> float:
    """The recorded frame rate (the median interval between frames), for the annotated video."""
    gaps = [b["t_s"] - a["t_s"] for a, b in zip(records, records[1:], strict=False) if b["t_s"] > a["t_s"]]
    return min(60.0, max(1.0, 1.0 / statistics.median(gaps))) if gaps else 30.0


def _replay_recording(args: argparse.Namespace) -> int:
    from edgepilot.pilot.record.files import DETECTIONS, read_jsonl
    from edgepilot.pilot.record.replay import replay_recording
    from edgepilot.vision.overlay import draw
    from edgepilot.vision.video_io import VideoWriter

    folder = Path(args.input).expanduser()
    records, _ = read_jsonl(folder / DETECTIONS)
    progress = _progress(len(records) or None)
    jsonl = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else None  # noqa: SIM115
    video: list[VideoWriter] = []
    done = [0]

    def on_frame(frame, detections) -> None:
        if jsonl is not None:
            jsonl.write(json.dumps({"frame": done[0], "t_s": round(frame.t_s, 3), "source": frame.source,
                                    "detections": [d.to_json() for d in detections]}) + "\n")
        if args.out is not None:
            if not video:
                video.append(VideoWriter(args.out, frame.width, frame.height, _fps(records)))
            video[0].write(draw(frame.image.copy(), detections))
        done[0] += 1
        progress.update(1)

    with ExitStack() as stack:
        watch = _web_watch(args, folder, stack)
        if watch is not None:
            progress.disable = True  # the page shows the progress
        try:
            result = replay_recording(folder, on_frame=on_frame, watch=watch)
        finally:
            progress.close()
            if watch is not None:
                watch.cockpit.status.end("replay finished")
        for writer in video:
            writer.close()
        if jsonl is not None:
            jsonl.close()
    summary: list[str] = []
    if args.report is not None:
        from edgepilot.pilot.app.report import run_report

        summary = run_report(folder, args.report)
    if args.json:
        print(json.dumps({**result.as_dict(), "report": str(args.report) if args.report else None}), flush=True)
    else:
        _print(folder, result, summary)
    return 0 if result.decisions_match else 1


class RealTime:
    """A tap that holds each replayed tick until its recorded time has passed on the wall clock (for watching)."""

    def __init__(self) -> None:
        self._start: float | None = None

    def on_tick(self, t_s: float, *rest) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now - t_s
        wait = self._start + t_s - now
        if wait > 0:
            time.sleep(wait)

    def on_command(self, record) -> None: ...

    def on_event(self, event) -> None: ...


def _web_watch(args: argparse.Namespace, folder: Path, stack: ExitStack):
    """With --web: a ``watch(pilot)`` that shows the replay in the cockpit, read-only, paced to real time."""
    cockpit = web_launch.open_cockpit(args, stack)
    if cockpit is None:
        return None
    from edgepilot.pilot.record.files import TICKS, read_jsonl

    ticks, _ = read_jsonl(folder / TICKS)
    cockpit.read_only = f"this is a replay of {folder.name}: it cannot be commanded"
    cockpit.status.set(replay={"folder": str(folder), "total_s": round(ticks[-1]["t_s"], 2) if ticks else 0.0})

    def watch(pilot) -> None:
        cockpit.attach(pilot)
        pilot.add_tap(RealTime())

    watch.cockpit = cockpit
    return watch


def _print(folder: Path, result, summary: list[str]) -> None:
    from edgepilot.pilot.record.files import read_manifest

    manifest = read_manifest(folder)
    name = (manifest.get("vehicle") or {}).get("name", "?")
    state = "cut short" if result.truncated else "complete"
    print(f"recording {folder}: {name}, {result.ticks} of {result.recorded_ticks} ticks replayed ({state})")
    if result.frames:
        same = "identical to" if result.detection_mismatches == 0 else \
            f"different from ({result.detection_mismatches} frames)"
        print(f"perception: {result.frames} frames ({result.video} video), detections {same} the recording")
    if result.decisions_match:
        print(f"decisions: {result.decisions} compared, all identical")
    else:
        m = result.first_mismatch or {}
        where = f"tick {m['tick']}" if "tick" in m else f"command {m.get('command')}"
        print(f"decisions: {result.decisions} compared, DIFFERENT from {where} (t={m.get('t_s', 0):.3f} s): "
              f"{m.get('what')} recorded {m.get('recorded')}, replayed {m.get('replayed')}")
    for note in result.notes:
        print(f"note: {note}")
    for line in summary:
        print(line)
