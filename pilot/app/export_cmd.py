"""``edgepilot export RUN_DIR [--mcap OUT.mcap] [--wandb [DIR]] [--mlflow [STORE]]``: a run folder in the tools people
already use, offline.

- ``--mcap``: one MCAP file for Foxglove / Lichtblick (see :mod:`edgepilot.pilot.record.to_mcap`).
- ``--wandb``: an offline Weights & Biases run under ``DIR`` (default ``./wandb``; ``wandb sync DIR/wandb/offline-run-*``
  uploads it later): the run's setup as config, one history step per control tick, the metrics as summary, the models
  as a reference artifact carrying their sha256, and the annotated video. Needs ``pip install 'edgepilot[wandb]'``.
  ``WANDB_MODE`` is forced to ``offline``: export never touches the network.
- ``--mlflow``: a run in a local MLflow store (``STORE``, default ``./mlruns``: an SQLite database ``mlflow.db`` and an
  ``artifacts`` folder; view with ``mlflow ui --backend-store-uri sqlite:///STORE/mlflow.db``): setup as params,
  per-tick metrics by step, summary metrics, tags for vehicle / verb / code / decisions, the manifest, the models'
  hashes and the annotated video as artifacts. Needs ``pip install 'edgepilot[mlflow]'``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgepilot.pilot.app.runs_cmd import describe, lane_offsets
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.runs import Run, load_run, target_offsets

log = logging.getLogger(__name__)

#: Telemetry fields logged per tick.
SERIES = ("x_cm", "y_cm", "z_cm", "yaw_deg", "battery_pct", "vx_cm_s", "vy_cm_s", "vz_cm_s")
SENT = ("vx_cm_s", "vy_cm_s", "vz_cm_s", "yaw_rate_deg_s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder made by --record")
    parser.add_argument("--mcap", type=Path, metavar="OUT.mcap", help="write an MCAP file for Foxglove / Lichtblick")
    parser.add_argument("--jpeg", action="store_true", help="MCAP camera as JPEG images (foxglove.CompressedImage) "
                        "instead of the recording's H.264 (foxglove.CompressedVideo)")
    parser.add_argument("--wandb", type=Path, nargs="?", const=Path("."), metavar="DIR",
                        help="write an offline W&B run under DIR/wandb (default: here)")
    parser.add_argument("--mlflow", type=Path, nargs="?", const=Path("mlruns"), metavar="STORE",
                        help="log to the local MLflow store STORE (default mlruns/)")
    parser.add_argument("--project", default="edgepilot", help="W&B project / MLflow experiment (default edgepilot)")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON object")


def run(args: argparse.Namespace) -> int:
    if args.mcap is None and args.wandb is None and args.mlflow is None:
        raise InputError("say where to export: --mcap OUT.mcap, --wandb [DIR] and/or --mlflow [STORE]")
    if args.mcap is not None and args.mcap.suffix.lower() != ".mcap":
        raise InputError(f"--mcap {args.mcap}: give the output file the suffix .mcap")
    run_ = load_run(args.run_dir)
    if not run_.ticks:
        raise InputError(f"{args.run_dir}: the recording has no ticks; nothing to export")
    written: dict[str, Any] = {"run": str(run_.folder)}
    if args.mcap is not None:
        from edgepilot.pilot.record.to_mcap import export_mcap

        try:
            counts = export_mcap(run_, args.mcap, jpeg=args.jpeg)
        except ImportError as exc:
            raise InputError(f"--mcap needs the Python package {exc.name!r}: pip install mcap mcap-protobuf-support "
                             "foxglove-schemas-protobuf") from None
        written["mcap"] = {"file": str(args.mcap), "messages": dict(sorted(counts.items()))}
    if args.wandb is not None or args.mlflow is not None:
        with tempfile.TemporaryDirectory(prefix="edgepilot-export-") as tmp:
            video = annotated_video(run_, Path(tmp) / "annotated.mp4")
            if args.wandb is not None:
                written["wandb"] = export_wandb(run_, args.wandb, args.project, video)
            if args.mlflow is not None:
                written["mlflow"] = export_mlflow(run_, args.mlflow, args.project, video)
    if args.json:
        print(json.dumps(written))
    else:
        for key, value in written.items():
            if key != "run":
                print(f"{key}: {value if isinstance(value, str) else json.dumps(value)}")
    return 0


# -- what both trackers get ---------------------------------------------------------------------------------------------
def setup(run: Run) -> dict[str, Any]:
    m = run.manifest
    return {"run_folder": str(run.folder), "verb": run.verb, "vehicle": m.get("vehicle"), "config": m.get("config"),
            "seeds": m.get("seeds"), "pilot": m.get("pilot"), "perception": m.get("perception"),
            "edgepilot": m.get("edgepilot"), "git": m.get("git"), "format": m.get("format"),
            "replay_of": (m.get("replay_of") or {}).get("folder"), "models": run.models}


def per_tick(run: Run) -> Iterator[tuple[int, dict[str, float]]]:
    """(step, numbers) for each control tick: time, pose, battery, the set-point sent, and the tracking or lane
    offset where there is one."""
    lane = lane_offsets(run)
    target = dict(target_offsets(run))
    for i, tick in enumerate(run.ticks):
        values = {"t_s": float(tick["t_s"])}
        values.update({k: float(tick["telemetry"][k]) for k in SERIES})
        if tick["sent"] is not None:
            values.update({f"sent_{k}": float(v) for k, v in zip(SENT, tick["sent"], strict=True)})
        if lane is not None:
            values["lane_offset_cm"] = lane[i]
        if tick["t_s"] in target:
            values["target_offset_frac"] = target[tick["t_s"]]
        yield i, values


def summary(run: Run) -> dict[str, float]:
    """The run's metrics as flat numbers (``command_latency_s.median``...); missing ones left out."""
    flat: dict[str, float] = {}
    for key, value in describe(run)["metrics"].items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, number in items:
            if isinstance(number, int | float) and not isinstance(number, bool):
                flat[key if sub is None else f"{key}.{sub}"] = float(number)
    return flat


def annotated_video(run: Run, out: Path) -> Path | None:
    """The camera video with the recorded detections drawn on it (what perception saw, frame by frame)."""
    from edgepilot.pilot.core.messages import Detection
    from edgepilot.pilot.record.files import LOSSLESS_VIDEO, VIEWING_VIDEO
    from edgepilot.pilot.record.video import read_frames
    from edgepilot.vision.overlay import draw
    from edgepilot.vision.video_io import VideoWriter

    source = next((run.folder / n for n in (VIEWING_VIDEO, LOSSLESS_VIDEO) if (run.folder / n).is_file()), None)
    if source is None:
        return None
    by_index = {d["video"]: d for d in run.detections if d.get("video") is not None}
    times = [d["t_s"] for d in run.detections]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    fps = min(60.0, max(1.0, 1.0 / statistics.median(gaps))) if gaps else 30.0
    writer = None
    try:
        for index, image in enumerate(read_frames(source)):
            record = by_index.get(index)
            detections = [Detection(d["label"], d["score"], tuple(d["box"]), d["track"], d["name"])
                          for d in (record["detections"] if record else [])]
            if writer is None:
                writer = VideoWriter(out, image.shape[1], image.shape[0], fps)
            writer.write(draw(image.copy(), detections))
    finally:
        if writer is not None:
            writer.close()
    return out if writer is not None else None


# -- Weights & Biases ------------------------------------------------------------------------------------------------
def export_wandb(run: Run, folder: Path, project: str, video: Path | None) -> str:
    os.environ["WANDB_MODE"] = "offline"  # whatever the user's settings say: export is offline
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb
    except ImportError:
        raise InputError("--wandb needs the wandb package: pip install 'edgepilot[wandb]'") from None
    folder.mkdir(parents=True, exist_ok=True)
    w = wandb.init(project=project, dir=str(folder), mode="offline", name=run.folder.name, config=setup(run),
                   job_type=run.verb, tags=[run.vehicle, run.verb], settings=wandb.Settings(silent=True))
    try:
        for step, values in per_tick(run):
            w.log(values, step=step)
        last = len(run.ticks) - 1
        if video is not None:
            w.log({"annotated_video": wandb.Video(str(video), format="mp4")}, step=last)
        models = wandb.Artifact(f"models-{run.folder.name}", type="model",
                                metadata={m["name"]: m.get("sha256") for m in run.manifest.get("models") or []})
        for m in run.manifest.get("models") or []:
            if m.get("path") and Path(m["path"]).is_file():
                models.add_reference(Path(m["path"]).resolve().as_uri(), name=m["name"])
        w.log_artifact(models)
        w.summary.update({**summary(run), "decisions_sha256": run.digest})
        run_dir = Path(w.dir).parent
    finally:
        w.finish()
    return str(run_dir)


# -- MLflow ----------------------------------------------------------------------------------------------------------
def export_mlflow(run: Run, store: Path, experiment: str, video: Path | None) -> str:
    try:
        import mlflow
        from mlflow.entities import Metric, Param
    except ImportError:
        raise InputError("--mlflow needs the mlflow package: pip install 'edgepilot[mlflow]'") from None
    from edgepilot.pilot.app.runs_compare import setup_of

    for name in ("mlflow", "alembic"):  # their INFO lines (creating tables...) are not the user's business
        logging.getLogger(name).setLevel(logging.WARNING)
    store = store.expanduser().resolve()
    store.mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(
        experiment, artifact_location=(store / "artifacts").as_uri())
    tags = {"vehicle": run.vehicle, "verb": run.verb, "edgepilot": run.code, "decisions_sha256": run.digest,
            "run_folder": str(run.folder), "mlflow.runName": run.folder.name}
    mlrun = client.create_run(experiment_id, tags=tags)
    run_id = mlrun.info.run_id
    try:
        params = [Param(k[:250], (json.dumps(v) if not isinstance(v, str) else v)[:6000])
                  for k, v in setup_of(run).items()]
        stamp_ms = _created_ms(run)
        metrics = [Metric(key, value, stamp_ms + round(values["t_s"] * 1000), step)
                   for step, values in per_tick(run) for key, value in values.items() if key != "t_s"]
        metrics += [Metric(key, value, stamp_ms, 0) for key, value in summary(run).items()]
        for i in range(0, max(len(params), 1), 100):
            client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        client.log_dict(run_id, run.manifest, "manifest.json")
        client.log_dict(run_id, run.models, "models.json")
        if video is not None:
            client.log_artifact(run_id, str(video))
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return f"{store} run {run_id}"


def _created_ms(run: Run) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(run.manifest["created"]).timestamp() * 1000)
    except (KeyError, TypeError, ValueError):
        return 0
