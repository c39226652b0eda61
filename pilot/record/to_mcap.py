"""A run folder as one MCAP file for Foxglove (or its open fork Lichtblick): the camera, the detections drawn on it,
and the run's data as plottable channels, all on one timeline.

Channels (topic: schema, encoding):

- ``/camera``: ``foxglove.CompressedVideo`` (protobuf), the recording's H.264 (``video.mp4``) as Annex B access units,
  one per frame; or, with ``jpeg=True`` or when the run has only ``frames.mkv``, ``foxglove.CompressedImage`` JPEGs.
- ``/camera/detections``: ``foxglove.ImageAnnotations`` (protobuf): each frame's boxes and their labels, names, track
  ids and scores, stamped with the frame's time, so the Image panel draws them on the right frame.
- ``/telemetry``, ``/commands``, ``/events``, ``/voice``: JSON with a JSON Schema each: one message per control tick
  (the vehicle's state, the set-point sent, the mode), per command (source and result), per event, and per command a
  person said (the tick that took it).

Foxglove's schemas come from ``foxglove-schemas-protobuf`` (published by Foxglove), written with the ``mcap`` package.
Times: the run's wall-clock start (the manifest's ``created``) plus the run's own clock, so every channel shares one
timeline; the manifest itself is the MCAP metadata record ``edgepilot.manifest``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.record.files import LOSSLESS_VIDEO, VIEWING_VIDEO
from edgepilot.pilot.record.runs import Run

log = logging.getLogger(__name__)

CAMERA_FRAME = "camera"
LABEL_COLOURS = {"face": (1.0, 0.6, 0.0), "person": (0.1, 0.5, 1.0)}
NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
STRING = {"type": "string"}
TELEMETRY_SCHEMA = {
    "title": "edgepilot.Tick", "description": "One control tick: the vehicle's state, the set-point sent, the mode",
    "type": "object",
    "properties": {
        "tick": {"type": "integer"}, "t_s": NUMBER, "mode": STRING,
        "telemetry": {"type": "object", "properties": {
            "x_cm": NUMBER, "y_cm": NUMBER, "z_cm": NUMBER, "yaw_deg": NUMBER, "flying": {"type": "boolean"},
            "battery_pct": NUMBER, "vx_cm_s": NUMBER, "vy_cm_s": NUMBER, "vz_cm_s": NUMBER}},
        "sent": {"type": ["object", "null"], "description": "velocity set-point sent this tick (after safety)",
                 "properties": {"vx_cm_s": NUMBER, "vy_cm_s": NUMBER, "vz_cm_s": NUMBER, "yaw_rate_deg_s": NUMBER}},
    },
}
COMMAND_SCHEMA = {
    "title": "edgepilot.Command", "type": "object",
    "properties": {"t_s": NUMBER, "command": STRING, "source": STRING, "result": STRING},
}
EVENT_SCHEMA = {"title": "edgepilot.Event", "type": "object",
                "properties": {"t_s": NUMBER, "type": STRING, "detail": STRING}}
VOICE_SCHEMA = {
    "title": "edgepilot.Heard", "description": "A spoken command, when the pilot took it from the recogniser",
    "type": "object", "properties": {"t_s": NUMBER, "tick": {"type": "integer"}, "verb": STRING,
                                     "arg": {"type": ["string", "number", "null"]}},
}
SENT_FIELDS = ("vx_cm_s", "vy_cm_s", "vz_cm_s", "yaw_rate_deg_s")


def export_mcap(run: Run, out: Path, jpeg: bool = False) -> Counter:
    """Write ``run`` to ``out``; the number of messages written per topic."""
    from mcap.writer import CompressionType, Writer

    base_ns = _base_ns(run)
    start_s = run.ticks[0].get("start_s", 0.0) if run.ticks else 0.0
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    try:
        stream = open(out, "wb")  # noqa: SIM115 - closed below, after the writer's summary
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    with stream:
        writer = Writer(stream, compression=CompressionType.ZSTD)
        writer.start(profile="", library="edgepilot")
        channels = _Channels(writer)
        messages: list[tuple[int, str, bytes]] = []  # (log time, topic, data), written in time order

        def add(topic: str, t_rel_s: float, data: bytes) -> None:
            messages.append((base_ns + round(t_rel_s * 1e9), topic, data))
            counts[topic] += 1

        for tick in run.ticks:
            add("/telemetry", tick["t_s"], _json(_tick(tick)))
            for command in tick.get("inputs", ()):
                if command["source"] == "voice":
                    add("/voice", tick["t_s"], _json({"t_s": tick["t_s"], "tick": tick["tick"], **command}))
        for command in run.commands:
            add("/commands", command["t_s"], _json(command))
        for event in run.events:
            add("/events", event["t_s"], _json(event))
        times = {d["video"]: d["t_s"] for d in run.detections if d.get("video") is not None}
        camera = _camera(run, jpeg)
        if camera is not None:
            kind, frames = camera
            for index, data in frames:
                if index in times:
                    stamp = base_ns + round((times[index] - start_s) * 1e9)
                    add("/camera", times[index] - start_s, _image(kind, data, stamp))
        for record in run.detections:
            stamp = base_ns + round((record["t_s"] - start_s) * 1e9)
            add("/camera/detections", record["t_s"] - start_s, _annotations(record, stamp))
        for log_ns, topic, data in sorted(messages, key=lambda m: m[0]):
            writer.add_message(channels.id(topic, camera[0] if camera else None), log_time=log_ns, data=data,
                               publish_time=log_ns)
        writer.add_metadata("edgepilot.manifest", {"manifest": json.dumps(run.manifest)})
        writer.finish()
    return counts


def _base_ns(run: Run) -> int:
    created = run.manifest.get("created")
    try:
        when = datetime.fromisoformat(created) if created else None
    except ValueError:
        when = None
    return int((when or datetime.fromtimestamp(0, UTC)).timestamp() * 1e9)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _tick(tick: dict) -> dict:
    telemetry = {k: v for k, v in tick["telemetry"].items() if k not in ("t_s", "last_state_s")}
    sent = None if tick["sent"] is None else dict(zip(SENT_FIELDS, tick["sent"], strict=True))
    return {"tick": tick["tick"], "t_s": tick["t_s"], "mode": tick["mode"], "telemetry": telemetry, "sent": sent}


class _Channels:
    """Registers each topic's schema and channel on first use."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.ids: dict[str, int] = {}

    def id(self, topic: str, camera_kind: str | None) -> int:
        if topic in self.ids:
            return self.ids[topic]
        if topic in ("/camera", "/camera/detections"):
            from mcap_protobuf.schema import register_schema

            cls = _annotation_class() if topic == "/camera/detections" else _image_class(camera_kind)
            schema = register_schema(self.writer, cls)
            channel = self.writer.register_channel(topic=topic, message_encoding="protobuf", schema_id=schema)
        else:
            schema_json = {"/telemetry": TELEMETRY_SCHEMA, "/commands": COMMAND_SCHEMA, "/events": EVENT_SCHEMA,
                           "/voice": VOICE_SCHEMA}[topic]
            schema = self.writer.register_schema(name=schema_json["title"], encoding="jsonschema",
                                                 data=json.dumps(schema_json).encode())
            channel = self.writer.register_channel(topic=topic, message_encoding="json", schema_id=schema)
        self.ids[topic] = channel
        return channel


def _image_class(kind: str | None) -> Any:
    if kind == "h264":
        from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo

        return CompressedVideo
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage

    return CompressedImage


def _annotation_class() -> Any:
    from foxglove_schemas_protobuf.ImageAnnotations_pb2 import ImageAnnotations

    return ImageAnnotations


def _timestamp(stamp_ns: int) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    return Timestamp(seconds=stamp_ns // 1_000_000_000, nanos=stamp_ns % 1_000_000_000)


def _image(kind: str, data: bytes, stamp_ns: int) -> bytes:
    cls = _image_class(kind)
    return cls(timestamp=_timestamp(stamp_ns), frame_id=CAMERA_FRAME, data=data, format=kind).SerializeToString()


def _annotations(record: dict, stamp_ns: int) -> bytes:
    from foxglove_schemas_protobuf.Color_pb2 import Color
    from foxglove_schemas_protobuf.Point2_pb2 import Point2
    from foxglove_schemas_protobuf.PointsAnnotation_pb2 import PointsAnnotation
    from foxglove_schemas_protobuf.TextAnnotation_pb2 import TextAnnotation

    message = _annotation_class()()
    stamp = _timestamp(stamp_ns)
    for d in record["detections"]:
        x1, y1, x2, y2 = d["box"]
        r, g, b = LABEL_COLOURS.get(d["label"], (0.2, 0.9, 0.2))
        colour = Color(r=r, g=g, b=b, a=1.0)
        message.points.append(PointsAnnotation(
            timestamp=stamp, type=PointsAnnotation.Type.LINE_LOOP, outline_color=colour, thickness=2.0,
            points=[Point2(x=x1, y=y1), Point2(x=x2, y=y1), Point2(x=x2, y=y2), Point2(x=x1, y=y2)]))
        text = d["name"] or d["label"]
        if d.get("track") is not None:
            text += f" #{d['track']}"
        message.texts.append(TextAnnotation(
            timestamp=stamp, position=Point2(x=x1, y=max(0.0, y1 - 4.0)), text=f"{text} {d['score']:.2f}",
            font_size=14.0, text_color=colour, background_color=Color(r=0.0, g=0.0, b=0.0, a=0.6)))
    return message.SerializeToString()


def _camera(run: Run, jpeg: bool) -> tuple[str, Iterator[tuple[int, bytes]]] | None:
    """("h264", Annex B access units) from video.mp4, else ("jpeg", encoded frames) from either video."""
    viewing, lossless = run.folder / VIEWING_VIDEO, run.folder / LOSSLESS_VIDEO
    if viewing.is_file() and not jpeg:
        return "h264", _h264_units(viewing)
    for path in (lossless, viewing):
        if path.is_file():
            return "jpeg", _jpegs(path)
    return None


def _h264_units(path: Path) -> Iterator[tuple[int, bytes]]:
    """The MP4's H.264 packets in Annex B form (start codes, SPS/PPS before each key frame), as Foxglove's
    CompressedVideo wants them; the recorder's encoder makes no B-frames, so decode order is frame order."""
    import av
    import av.bitstream

    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        annexb = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        index = 0
        try:
            for packet in container.demux(stream):
                for unit in annexb.filter(packet if packet.size else None):
                    yield index, bytes(unit)
                    index += 1
        except (av.FFmpegError, EOFError) as exc:  # a recording cut short: what was written is exported
            log.info("%s ends early (%s)", path.name, exc)
    finally:
        container.close()


def _jpegs(path: Path) -> Iterator[tuple[int, bytes]]:
    import cv2

    from edgepilot.pilot.record.video import read_frames

    for index, image in enumerate(read_frames(path)):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            yield index, data.tobytes()
