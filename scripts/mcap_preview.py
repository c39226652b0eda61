"""Draw a picture of an MCAP file made by ``edgepilot export --mcap`` from its own decoded messages: the camera frame
at a chosen time (foxglove.CompressedVideo decoded with PyAV, or CompressedImage) with that frame's
foxglove.ImageAnnotations drawn on it, and the /telemetry, /commands and /events channels on the timeline, with a
cursor at that time. It shows what the file holds, laid out the way Foxglove's Image and Plot panels show it; it is
not a screenshot of Foxglove or Lichtblick.

    python scripts/mcap_preview.py flight.mcap preview.png --at 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import cv2
import numpy as np
from mcap.decoder import DecoderFactory
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory as ProtobufDecoders


class JsonDecoders(DecoderFactory):
    def decoder_for(self, message_encoding, schema):
        return json.loads if message_encoding == "json" else None


def read(path: Path) -> dict[str, list[tuple[float, object]]]:
    """topic -> [(log time in seconds from the first message, decoded message)]."""
    topics: dict[str, list[tuple[int, object]]] = {}
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[ProtobufDecoders(), JsonDecoders()])
        for _, channel, message, decoded in reader.iter_decoded_messages():
            topics.setdefault(channel.topic, []).append((message.log_time, decoded))
    start = min(items[0][0] for items in topics.values())
    return {topic: [((t - start) / 1e9, m) for t, m in items] for topic, items in topics.items()}


def frame_at(camera: list[tuple[float, object]], at_s: float) -> tuple[int, np.ndarray]:
    """The index and BGR image of the last camera message at or before ``at_s``, decoded from the messages."""
    index = max(i for i, (t, _) in enumerate(camera) if t <= at_s) if camera[0][0] <= at_s else 0
    first = camera[0][1]
    if first.format == "h264":
        codec = av.CodecContext.create("h264", "r")
        image = None
        for _, message in camera[: index + 1]:  # from the first key frame: each message is one access unit
            for frame in codec.decode(av.Packet(message.data)):
                image = frame.to_ndarray(format="bgr24")
        return index, image
    return index, cv2.imdecode(np.frombuffer(camera[index][1].data, np.uint8), cv2.IMREAD_COLOR)


def draw_annotations(image: np.ndarray, annotations) -> None:
    for points in annotations.points:
        colour = tuple(int(255 * c) for c in (points.outline_color.b, points.outline_color.g, points.outline_color.r))
        polygon = np.array([[p.x, p.y] for p in points.points], np.int32)
        cv2.polylines(image, [polygon], True, colour, max(1, round(points.thickness)))
    for text in annotations.texts:
        colour = tuple(int(255 * c) for c in (text.text_color.b, text.text_color.g, text.text_color.r))
        cv2.putText(image, text.text, (int(text.position.x), int(text.position.y)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colour, 1, cv2.LINE_AA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mcap", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--at", type=float, default=5.0, help="time (s from the start) of the camera frame shown")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = read(args.mcap)
    index, image = frame_at(topics["/camera"], args.at)
    draw_annotations(image, topics["/camera/detections"][index][1])
    at_s = topics["/camera"][index][0]
    ticks = topics["/telemetry"]
    fig = plt.figure(figsize=(14, 6.5), dpi=100)
    grid = fig.add_gridspec(3, 2, width_ratios=(1.25, 1))
    ax_image = fig.add_subplot(grid[:, 0])
    ax_image.imshow(image[:, :, ::-1])
    ax_image.set_axis_off()
    ax_image.set_title(f"/camera ({type(topics['/camera'][0][1]).__name__}) + /camera/detections "
                       f"(ImageAnnotations) at {at_s:.2f} s", fontsize=9)
    t = [time for time, _ in ticks]
    panels = [("/telemetry .telemetry.z_cm (cm)", [m["telemetry"]["z_cm"] for _, m in ticks]),
              ("/telemetry .telemetry.yaw_deg (deg)", [m["telemetry"]["yaw_deg"] for _, m in ticks]),
              ("/telemetry .sent.yaw_rate_deg_s (deg/s)",
               [m["sent"]["yaw_rate_deg_s"] if m["sent"] else np.nan for _, m in ticks])]
    first = None
    for row, (title, values) in enumerate(panels):
        ax = fig.add_subplot(grid[row, 1], sharex=first)
        first = first or ax
        ax.plot(t, values, lw=1.2)
        ax.axvline(at_s, color="tab:red", lw=1)
        ax.set_title(title, fontsize=9, loc="left")
        for time, command in topics.get("/commands", []):
            ax.axvline(time, color="tab:green", ls=":", lw=1)
            if row == 0:
                ax.text(time, ax.get_ylim()[1], f" {command['command']} ({command['source']})", fontsize=7,
                        va="top", color="tab:green")
        for time, _ in topics.get("/events", []):
            ax.plot(time, ax.get_ylim()[0], "v", color="tab:orange")
        if row == len(panels) - 1:
            ax.set_xlabel("time (s) - green: /commands, orange: /events, red: the frame shown")
    counts = ", ".join(f"{topic} {len(items)}" for topic, items in sorted(topics.items()))
    fig.suptitle(f"Rendered from {args.mcap.name}'s own decoded messages by scripts/mcap_preview.py (not a "
                 f"Foxglove screenshot)\n{counts}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.png)
    print(f"{args.png}: frame {index} at {at_s:.2f} s; {counts}")


if __name__ == "__main__":
    main()
