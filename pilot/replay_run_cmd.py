"""``edgepilot replay RUN_DIR``: the command-line side of :func:`pilot.replay_run.replay_recording` (reached through
the ``replay`` verb when its input is a recording). Exit status 0 when the replayed decisions match the recording,
1 when they differ, so a CI job can replay recorded runs as regression tests."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from pilot.record_io import DETECTIONS, read_jsonl, read_manifest


def _fps(records: list[dict]) -> float:
    """The recorded frame rate (the median interval between frames), for the annotated video."""
    gaps = [b["t_s"] - a["t_s"] for a, b in zip(records, records[1:], strict=False) if b["t_s"] > a["t_s"]]
    return min(60.0, max(1.0, 1.0 / statistics.median(gaps))) if gaps else 30.0


def run_recording(args: argparse.Namespace) -> int:
    from pilot.replay_run import replay_recording
    from vision.overlay import draw
    from vision.replay_cmd import Progress, detection_json
    from vision.video_io import VideoWriter

    folder = Path(args.input).expanduser()
    records, _ = read_jsonl(folder / DETECTIONS)
    progress = Progress(len(records) or None)
    jsonl = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else None  # noqa: SIM115
    video: list[VideoWriter] = []
    done = [0]

    def on_frame(frame, detections) -> None:
        if jsonl is not None:
            jsonl.write(json.dumps({"frame": done[0], "t_s": round(frame.t_s, 3), "source": frame.source,
                                    "detections": [detection_json(d) for d in detections]}) + "\n")
        if args.out is not None:
            if not video:
                video.append(VideoWriter(args.out, frame.width, frame.height, _fps(records)))
            video[0].write(draw(frame.image.copy(), detections))
        done[0] += 1
        progress.update(done[0])

    try:
        result = replay_recording(folder, on_frame=on_frame)
    finally:
        progress.close()
        for writer in video:
            writer.close()
        if jsonl is not None:
            jsonl.close()
    summary: list[str] = []
    if args.report is not None:
        from pilot.run_report import run_report

        summary = run_report(folder, args.report)
    if args.json:
        print(json.dumps({**result.as_dict(), "report": str(args.report) if args.report else None}), flush=True)
    else:
        _print(folder, result, summary)
    return 0 if result.decisions_match else 1


def _print(folder: Path, result, summary: list[str]) -> None:
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
