"""Runs as data: ``runs list`` (formats told apart, broken folders listed), ``runs compare`` (two replays of one
recording are identical; a changed model or config is named), the metrics on a hand-made run whose answers are known,
and bad input as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.record.files import write_json_atomic
from edgepilot.pilot.record.runs import decisions_digest, load_run


def last_json(text: str):
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A recorded simulated follow flight (2 s, fast clock) and two replays of it, each recorded."""
    root = tmp_path_factory.mktemp("runs")
    flight = root / "flight"
    assert main(["fly", "--vehicle", "sim", "--fast", "--follow", "me", "--max-duration", "2", "--record",
                 str(flight), "--json"]) == 0
    for name in ("replay1", "replay2"):
        assert main(["replay", str(flight), "--record", str(root / name), "--json"]) == 0
    return {"root": root, "flight": flight, "replay1": root / "replay1", "replay2": root / "replay2"}


@pytest.mark.slow
def test_two_replays_of_one_recording_compare_as_identical(runs, tmp_path, capsys):
    png = tmp_path / "compare.png"
    assert main(["runs", "compare", str(runs["replay1"]), str(runs["replay2"]), "--png", str(png), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["identical"] is True and result["same_decisions"] is True and result["differences"] == {}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    first, second = result["runs"]
    assert first["verb"] == second["verb"] == "replay" and first["replay_of"] == str(runs["flight"])
    assert first["metrics"] == second["metrics"] and first["metrics"]["ticks"] == 61
    # The live run decided the same as its replays; what differs is how the pilot was driven (its clock).
    assert main(["runs", "compare", str(runs["flight"]), str(runs["replay1"]), "--json"]) == 0
    live = last_json(capsys.readouterr().out)
    assert live["same_decisions"] is True and live["identical"] is False
    assert live["differences"]["pilot.clock"] == ["FakeClock", "ReplayClock"]
    assert main(["runs", "compare", str(runs["replay1"]), str(runs["replay2"])]) == 0
    text = capsys.readouterr().out
    assert "identical: same setup, models and code" in text and "pedestrian_ssdlite.tflite sha256" in text
    assert "SSDLite MobileNetV2" in text  # what the model card (models/MODELS.md) says about it


@pytest.mark.slow
def test_compare_names_a_changed_model_and_different_decisions(runs, tmp_path, capsys):
    changed = tmp_path / "changed"
    shutil.copytree(runs["flight"], changed, ignore=shutil.ignore_patterns("*.mkv", "*.mp4"))
    manifest = json.loads((changed / "manifest.json").read_text())
    manifest["models"][0]["sha256"] = "0" * 64
    write_json_atomic(changed / "manifest.json", manifest)
    ticks = (changed / "telemetry.jsonl").read_text().splitlines()
    last = json.loads(ticks[-1])
    last["mode"] = "emergency"
    (changed / "telemetry.jsonl").write_text("\n".join([*ticks[:-1], json.dumps(last)]) + "\n")
    assert main(["runs", "compare", str(runs["flight"]), str(changed), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    name = manifest["models"][0]["name"]
    assert result["identical"] is False and result["same_decisions"] is False
    assert result["differences"][f"models.{name}"][1] == "0" * 64
    assert {m["sha256"] for m in result["models"]} >= {"0" * 64}


@pytest.mark.slow
def test_runs_list_shows_every_run_and_tells_formats_apart(runs, tmp_path, capsys):
    root = tmp_path / "many"
    root.mkdir()
    shutil.copytree(runs["flight"], root / "a-flight", ignore=shutil.ignore_patterns("*.mkv", "*.mp4"))
    newer = root / "b-newer"
    shutil.copytree(runs["flight"], newer, ignore=shutil.ignore_patterns("*.mkv", "*.mp4"))
    manifest = json.loads((newer / "manifest.json").read_text())
    write_json_atomic(newer / "manifest.json", {**manifest, "format": 7})
    broken = root / "c-broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"format": 1, "sta')
    (root / "not-a-run").mkdir()
    assert main(["runs", "list", str(root), "--json"]) == 0
    listed = {Path(r["folder"]).name: r for r in last_json(capsys.readouterr().out)}
    assert set(listed) == {"a-flight", "b-newer", "c-broken"}
    a = listed["a-flight"]
    assert (a["verb"], a["vehicle"], a["format"], a["status"]) == ("fly", "sim-drone", "1", "complete")
    assert a["commands"] == ["takeoff", "follow me"] and a["duration_s"] == 2.0
    assert set(a["models"]) == {"face_detection_full_range_sparse.tflite", "pedestrian_ssdlite.tflite"}
    assert listed["b-newer"]["format"] == "7 (newer)" and listed["b-newer"]["status"] == "unreadable"
    assert "newer edgepilot (format 7" in listed["b-newer"]["problem"]
    assert listed["c-broken"]["status"] == "unreadable" and "corrupt" in listed["c-broken"]["problem"]
    assert main(["runs", "list", str(root)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["run", "date", "vehicle", "verb"]
    assert any(line.startswith("a-flight") and " fly " in line for line in table)
    assert any(line.startswith("b-newer") and "7 (newer)" in line for line in table)


def _write_run(folder: Path, ticks: list[dict], detections: list[dict], commands=(), events=(), kind="drone",
               hz=30.0) -> Path:
    folder.mkdir()
    write_json_atomic(folder / "manifest.json", {
        "format": 1, "edgepilot": "0.2.0", "git": None, "created": "2026-12-01T10:00:00+00:00", "argv": [],
        "config": {"verb": "fly", "vehicle": "tello"}, "seeds": {}, "status": "complete",
        "vehicle": {"name": "tello", "kind": kind}, "pilot": {"hz": hz, "kind": kind}, "models": []})
    for name, records in (("telemetry.jsonl", ticks), ("detections.jsonl", detections),
                          ("commands.jsonl", commands), ("events.jsonl", events)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def _tick(i: int, t_s: float, mode: str, battery: float, seen=None, vehicle=None, sent=None) -> dict:
    telemetry = {"t_s": t_s, "x_cm": float(i), "y_cm": 0.0, "z_cm": 80.0, "yaw_deg": 0.0, "flying": True,
                 "battery_pct": battery, "vx_cm_s": 0.0, "vy_cm_s": 0.0, "vz_cm_s": 0.0, "last_state_s": t_s}
    tick = {"tick": i, "t_s": t_s, "telemetry": telemetry, "sent": sent, "mode": mode, "seen": seen or []}
    if vehicle:
        tick["vehicle"] = vehicle
    return tick


def test_metrics_of_a_run_whose_answers_are_known(tmp_path):
    """Four following ticks, the target (largest face) 10%, 20%, 5% and -40% of the width off centre: 2 of 4 centred.
    A command sent on tick 0 that the vehicle finished on tick 3 (0.1 s); periods 33, 33, 50, 33 ms at 30 Hz."""
    times = [0.0, 1 / 30, 2 / 30, 2 / 30 + 0.05, 2 / 30 + 0.05 + 1 / 30]
    offsets = [0.1, 0.2, 0.05, -0.4]
    detections = []
    for n, off in enumerate(offsets):
        cx = 320 + off * 640
        detections.append({"frame": n, "t_s": times[n + 1], "width": 640, "height": 480, "video": None,
                           "detections": [{"label": "face", "score": 0.9, "box": [cx - 40, 100, cx + 40, 180],
                                           "track": 1, "name": None},
                                          {"label": "face", "score": 0.9, "box": [0, 0, 10, 10], "track": 2,
                                           "name": None}]})
    ticks = [_tick(0, times[0], "hovering", 90.0, vehicle={"busy": [False, True], "execute": [None]})]
    ticks += [_tick(i + 1, times[i + 1], "following", 90.0 - i, seen=[i, i], sent=[0.0, 0.0, 0.0, 5.0])
              for i in range(4)]
    for i, busy in ((1, True), (2, True), (3, False)):
        ticks[i]["vehicle"] = {"busy": [busy]}
    events = [{"t_s": 0.1, "type": "manual_override", "detail": "keyboard took over"},
              {"t_s": 0.12, "type": "battery_low", "detail": ""}]
    run = load_run(_write_run(tmp_path / "known", ticks, detections, events=events))
    m = run.metrics
    assert m["tracking_centred_fraction"] == 0.5
    assert m["handovers"] == 1 and m["events"] == 2 and m["stops"] == 0
    assert m["command_latency_s"] == {"count": 1, "median": round(times[3], 3), "max": round(times[3], 3)}
    assert m["battery_used_pct"] == 3.0
    assert m["loop_period_p99_ms"] == 50.0
    assert m["loop_jitter_ms"] == pytest.approx(1000 * ((0.05 - 1 / 30) ** 2 / 4) ** 0.5, abs=1e-3)
    assert m["distance_m"] == 0.04
    # The digest follows decisions: same ticks and commands, same digest; one set-point changed, another one.
    same = decisions_digest(ticks, [])
    ticks[2]["sent"] = [0.0, 0.0, 0.0, 5.1]
    assert run.digest == same != decisions_digest(ticks, [])


def test_stops_count_each_time_the_car_stopped(tmp_path):
    modes = ["driving", "blocked", "blocked", "driving", "blocked", "driving"]
    ticks = [_tick(i, i / 30, mode, 100.0) for i, mode in enumerate(modes)]
    run = load_run(_write_run(tmp_path / "car", ticks, [], kind="car"))
    assert run.metrics["stops"] == 2 and run.metrics["tracking_centred_fraction"] is None


@pytest.mark.parametrize("argv, message", [
    (["runs", "compare", "{a}"], "give two or more run folders"),
    (["runs", "compare", "{a}", "{missing}"], "is not a folder"),
    (["runs", "compare", "{a}", "{empty}"], "is not a recording"),
    (["runs", "list", "{missing}"], "does not exist"),
])
def test_bad_input_is_one_line(tmp_path, capfd, argv, message):
    ticks = [_tick(0, 0.0, "landed", 100.0)]
    paths = {"a": str(_write_run(tmp_path / "a", ticks, [])), "missing": str(tmp_path / "missing"),
             "empty": str(tmp_path / "empty")}
    (tmp_path / "empty").mkdir()
    assert main([a.format(**paths) for a in argv]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("edgepilot runs:")


# -- export ------------------------------------------------------------------------------------------------------------
def _mcap(path: Path):
    """(channel topic -> (schema name, encoding), messages as (topic, log time, decoded), metadata names)."""
    from mcap.decoder import DecoderFactory
    from mcap.reader import make_reader
    from mcap_protobuf.decoder import DecoderFactory as ProtobufDecoders

    class JsonDecoders(DecoderFactory):
        def decoder_for(self, message_encoding, schema):
            return json.loads if message_encoding == "json" and schema.encoding == "jsonschema" else None

    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[ProtobufDecoders(), JsonDecoders()])
        summary = reader.get_summary()
        channels = {c.topic: (summary.schemas[c.schema_id].name, c.message_encoding)
                    for c in summary.channels.values()}
        messages = []
        for _, channel, message, decoded in reader.iter_decoded_messages(log_time_order=False):
            messages.append((channel.topic, message.log_time, decoded))
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    return channels, messages, metadata


@pytest.mark.slow
def test_mcap_round_trip_every_channel_and_count(runs, tmp_path, capsys):
    import av

    flight = runs["flight"]
    out = tmp_path / "flight.mcap"
    assert main(["export", str(flight), "--mcap", str(out), "--json"]) == 0
    reported = last_json(capsys.readouterr().out)["mcap"]["messages"]
    channels, messages, metadata = _mcap(out)
    run = load_run(flight)
    frames = run.manifest["summary"]["video_frames"]
    expected = {"/camera": frames, "/camera/detections": len(run.detections), "/telemetry": len(run.ticks),
                "/commands": len(run.commands), "/events": len(run.events)}
    assert channels == {"/camera": ("foxglove.CompressedVideo", "protobuf"),
                        "/camera/detections": ("foxglove.ImageAnnotations", "protobuf"),
                        "/telemetry": ("edgepilot.Tick", "json"), "/commands": ("edgepilot.Command", "json"),
                        "/events": ("edgepilot.Event", "json")}
    counts = {topic: sum(1 for m in messages if m[0] == topic) for topic in channels}
    assert counts == expected == reported and frames == len(run.ticks) == 61
    times = [m[1] for m in messages]
    assert times == sorted(times)  # one timeline
    assert json.loads(metadata["edgepilot.manifest"]["manifest"])["created"] == run.manifest["created"]
    # The video decodes, frame for frame, and each frame's annotations carry its time stamp and its boxes.
    video = [m[2] for m in messages if m[0] == "/camera"]
    assert video[0].format == "h264" and b"\x00\x00\x01\x67" in video[0].data  # Annex B, with its SPS
    codec = av.CodecContext.create("h264", "r")
    decoded = [f for v in video for f in codec.decode(av.Packet(v.data))]  # one message, one frame, as viewers do
    decoded += list(codec.decode(None))
    assert len(decoded) == frames and (decoded[0].width, decoded[0].height) == (640, 480)
    annotations = [m[2] for m in messages if m[0] == "/camera/detections"]
    seen = next(i for i, d in enumerate(run.detections) if d["detections"])
    boxes = [[(p.x, p.y) for p in a.points][::2] for a in annotations[seen].points]
    assert [[tuple(d["box"][:2]), tuple(d["box"][2:])] for d in run.detections[seen]["detections"]] == \
        [[tuple(map(float, b[0])), tuple(map(float, b[1]))] for b in boxes]
    stamp = annotations[seen].points[0].timestamp
    assert (stamp.seconds, stamp.nanos) == (video[seen].timestamp.seconds, video[seen].timestamp.nanos)
    telemetry = [m[2] for m in messages if m[0] == "/telemetry"]
    assert telemetry[-1]["telemetry"]["z_cm"] == run.ticks[-1]["telemetry"]["z_cm"]


def test_mcap_jpeg_camera_and_voice_channel(runs, tmp_path):
    """``--jpeg``: foxglove.CompressedImage frames that decode to the recording's size; a run with spoken commands
    gets a /voice channel with one message per command taken."""
    import cv2
    import numpy as np

    ticks = [_tick(i, i / 30, "hovering", 100.0) for i in range(5)]
    ticks[1]["inputs"] = [{"verb": "takeoff", "arg": None, "source": "voice"}]
    ticks[3]["inputs"] = [{"verb": "up", "arg": 50, "source": "voice"}, {"verb": "stop", "arg": None,
                                                                         "source": "keys"}]
    folder = _write_run(tmp_path / "voice", ticks, [], commands=[
        {"t_s": 1 / 30, "command": "takeoff", "source": "voice", "result": "ok"}])
    out = tmp_path / "voice.mcap"
    assert main(["export", str(folder), "--mcap", str(out)]) == 0
    channels, messages, _ = _mcap(out)
    assert set(channels) == {"/telemetry", "/commands", "/voice"}
    assert [m[2]["verb"] for m in messages if m[0] == "/voice"] == ["takeoff", "up"]
    first = runs["flight"]
    jpeg = tmp_path / "jpeg.mcap"
    assert main(["export", str(first), "--mcap", str(jpeg), "--jpeg"]) == 0
    channels, messages, _ = _mcap(jpeg)
    assert channels["/camera"] == ("foxglove.CompressedImage", "protobuf")
    images = [m[2] for m in messages if m[0] == "/camera"]
    assert len(images) == 61 and images[0].format == "jpeg"
    image = cv2.imdecode(np.frombuffer(images[0].data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)


def _wandb_records(path: Path):
    """The records of an offline W&B run file (``run-ID.wandb``: a header, then a LevelDB-style log of 32 KiB
    blocks whose records are wandb's protobuf ``Record``)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buffer = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        buffer += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buffer)
            yield record
            buffer = b""


@pytest.mark.slow
def test_wandb_and_mlflow_exports_offline(runs, tmp_path):
    """Both exporters in a process with no network at all (its own empty network namespace when we are root), with
    WANDB_MODE unset: the W&B run is written offline and the MLflow run into the local store."""
    import os
    import subprocess
    import sys

    import mlflow

    flight = runs["flight"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "MLFLOW_"))}
    env.update({"WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"), "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
                "WANDB_DATA_DIR": str(tmp_path / "wandb-data")})
    command = [sys.executable, "-m", "edgepilot.pilot.app.cli", "export", str(flight), "--wandb", str(tmp_path),
               "--mlflow", str(tmp_path / "mlruns"), "--json"]
    if os.geteuid() == 0 and shutil.which("unshare"):
        command = ["unshare", "--net", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh", *command]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    written = last_json(done.stdout)
    run = load_run(flight)

    files = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1 and Path(written["wandb"]) == files[0].parent
    records = list(_wandb_records(files[0]))
    kinds = [r.WhichOneof("record_type") for r in records]
    steps = {r.history.step.num for r in records if r.HasField("history")}
    assert steps == set(range(len(run.ticks)))
    config = {item.key: json.loads(item.value_json) for r in records if r.HasField("run") for item in r.run.config.update}
    assert config["verb"] == "fly" and config["config"]["follow"] == "me"
    artifact = next(r.artifact for r in records if r.HasField("artifact"))
    assert json.loads(artifact.metadata) == run.models and len(artifact.manifest.contents) == len(run.models)
    summary = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
               for r in records if r.HasField("summary") for item in r.summary.update}
    assert summary["decisions_sha256"] == run.digest and summary["ticks"] == len(run.ticks)
    assert "exit" in kinds
    assert list(files[0].parent.glob("files/media/videos/annotated_video_*.mp4"))

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("edgepilot")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED" and found.data.tags["decisions_sha256"] == run.digest
    assert found.data.params["config.follow"] == "me" and found.data.metrics["ticks"] == len(run.ticks)
    assert len(client.get_metric_history(found.info.run_id, "z_cm")) == len(run.ticks)
    assert {a.path for a in client.list_artifacts(found.info.run_id)} == {"manifest.json", "models.json",
                                                                          "annotated.mp4"}


@pytest.mark.parametrize("argv, message", [
    (["export", "{a}"], "say where to export"),
    (["export", "{a}", "--mcap", "{tmp}/out.bag"], "suffix .mcap"),
    (["export", "{missing}", "--mcap", "{tmp}/x.mcap"], "is not a folder"),
    (["replay", "{video}", "--record", "{tmp}/rec"], "is not one"),
])
def test_export_bad_input_is_one_line(tmp_path, capfd, argv, message):
    a = _write_run(tmp_path / "a", [_tick(0, 0.0, "landed", 100.0)], [])
    video = tmp_path / "clip.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(video), np.zeros((48, 64, 3), np.uint8))
    paths = {"a": str(a), "missing": str(tmp_path / "missing"), "tmp": str(tmp_path), "video": str(video)}
    assert main([x.format(**paths) for x in argv]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
