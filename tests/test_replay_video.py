"""``edgepilot replay`` on any video: cut by time, annotated output at the input's size and rate, detectors on every
N-th frame with every frame still annotated, the report picture, the progress bar, clear errors; reading videos by
their time stamps (variable frame rate), seeking to a start, the one PyAV encoder."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from vision_synth import face_clip, photos

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.video import VideoEncoder
from edgepilot.vision import video_io
from edgepilot.vision.video_io import VideoWriter, open_source, prefetch


def write_clip(path, clip, fps):
    with VideoWriter(path, clip[0].shape[1], clip[0].shape[0], fps) as writer:
        for image in clip:
            writer.write(image)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """30 frames, 320x240, 10 fps, one moving face."""
    path = tmp_path_factory.mktemp("clip") / "face.mp4"
    write_clip(path, face_clip(photos()["obama2.jpg"], frames=30, size=(320, 240), seed=5, zoom=(0.7, 0.9)), 10.0)
    return path


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_start_and_end_cut_the_video_and_keep_its_frame_numbers(clip, tmp_path):
    assert main(["replay", str(clip), "--start", "1", "--end", "2", "--jsonl", str(tmp_path / "o.jsonl")]) == 0
    lines = jsonl(tmp_path / "o.jsonl")
    assert [line["frame"] for line in lines] == list(range(10, 21))
    assert lines[0]["t_s"] == pytest.approx(1.0) and lines[-1]["t_s"] == pytest.approx(2.0)


@pytest.mark.parametrize(("size", "fps"), [((320, 240), 12.5), ((321, 241), 7.0)])
def test_annotated_output_has_the_input_size_rate_and_every_frame(tmp_path, capsys, size, fps):
    source = tmp_path / f"in{size[0]}.avi"
    write_clip(source, face_clip(photos()["obama2.jpg"], frames=12, size=size, seed=6, zoom=(0.7, 0.9)), fps)
    out = tmp_path / "out.mp4"
    assert main(["replay", str(source), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 12 and summary["realtime_x"] > 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.codec_context.width, stream.codec_context.height) == size
        assert float(stream.average_rate) == pytest.approx(fps, rel=0.01)
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == ("yuv420p" if size[0] % 2 == 0 else "yuv444p")
    assert len(frames) == 12


def test_detectors_on_every_third_frame_still_annotate_every_frame(clip, tmp_path):
    assert main(["replay", str(clip), "--every", "3", "--jsonl", str(tmp_path / "o.jsonl")]) == 0
    lines = jsonl(tmp_path / "o.jsonl")
    assert len(lines) == 30
    faces = [[d for d in line["detections"] if d["label"] == "face"] for line in lines]
    assert sum(1 for f in faces if f) >= 27  # the tracker carries the face between detector frames
    tracks = {d["track"] for f in faces for d in f}
    assert len(tracks) == 1
    boxes = [f[0]["box"] for f in faces[12:15] if f]  # a detection on 12, predictions on 13 and 14
    assert len(boxes) == 3 and boxes[1] != boxes[0] and boxes[2] != boxes[1]  # they move with the face


def test_video_report_picture(clip, tmp_path, capsys):
    report = tmp_path / "report.png"
    assert main(["replay", str(clip), "--detect", "face,person", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "face: in view in" in out and f"report: {report}" in out
    assert report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prefetch_reraises_the_decoders_error():
    def frames():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(frames()):
            got.append(item)
    assert got == [1]


@pytest.mark.parametrize(("args", "message"), [
    (["--every", "0"], "--every must be 1 or more"),
    (["--start", "2", "--end", "1"], "--end must be after --start"),
    (["--start", "-1"], "--start must be 0 or more"),
    (["--start", "10"], "has no frames between 10 s and the end"),
])
def test_bad_options_are_one_clear_line(clip, capfd, args, message):
    assert main(["replay", str(clip), *args]) == 2
    err = capfd.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("name", "content", "message"), [
    ("clip.xyz", b"data", "unknown input type '.xyz'"),
    ("empty.mkv", b"", "not a readable video"),
    ("folder", None, "not a recording: no manifest.json"),
])
def test_bad_inputs_are_one_clear_line(tmp_path, capfd, name, content, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
        (path / "notes.txt").write_text("no images here")
    else:
        path.write_bytes(content)
    assert main(["replay", str(path)]) == 2
    err = capfd.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cut_works_on_image_folders(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((32, 32, 3), 40 * i, np.uint8))
    out = tmp_path / "o.jsonl"
    assert main(["replay", str(folder), "--start", str(1 / 30), "--end", str(3 / 30), "--jsonl", str(out)]) == 0
    assert [line["source"] for line in jsonl(out)] == ["001.png", "002.png", "003.png"]


def test_report_shows_who_was_recognised_and_when(tmp_path):
    from edgepilot.pilot.app.report import video_report

    timeline = [(i / 10, [{"label": "face", "name": "ada" if 10 <= i < 30 else None},
                          {"label": "person", "name": None}]) for i in range(50)]
    lines = video_report(tmp_path / "r.png", timeline, "synthetic")
    assert "recognised ada: 1.0-2.9 s (20 frames)" in lines
    assert "face: in view in 50 of 50 frames" in lines and (tmp_path / "r.png").stat().st_size > 10_000


BITS = 10  # a frame's number drawn as black/white stripes, which survive lossy compression


def numbered(i: int, size: tuple[int, int] = (160, 48)) -> np.ndarray:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    stripe = size[0] // BITS
    for bit in range(BITS):
        if (i >> bit) & 1:
            image[:, bit * stripe:(bit + 1) * stripe] = 255
    return image


def number_of(image: np.ndarray) -> int:
    stripe = image.shape[1] // BITS
    return sum(1 << bit for bit in range(BITS) if image[:, bit * stripe + stripe // 2].mean() > 128)


def vfr_times_ms(frames: int) -> list[int]:
    """A phone clip's irregular timing: gaps of 33, 33 and 100 ms."""
    gaps = [33, 33, 100]
    return [sum(gaps[k % 3] for k in range(i)) for i in range(frames)]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_variable_frame_rate_clip_reads_back_its_time_stamps(tmp_path, suffix):
    """Written with PyAV directly, pts in milliseconds, the first one not zero (times count from the first frame)."""
    path, ms = tmp_path / f"vfr{suffix}", Fraction(1, 1000)
    times = vfr_times_ms(20)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = ms
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(numbered(i), format="bgr24")
            frame.pts, frame.time_base = 500 + t, ms
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    source = open_source(path)
    frames = list(source.frames)
    assert (source.width, source.height) == (160, 48)
    assert [f.index for f in frames] == list(range(20))
    assert [number_of(f.image) for f in frames] == list(range(20))
    assert [f.t_s for f in frames] == pytest.approx([t / 1000 for t in times], abs=1e-6)
    cut = list(open_source(path, 0.5, 1.0).frames)  # 0.498 s is frame 9, 0.531 s frame 10, ..., 0.996 s frame 18
    assert [(f.index, number_of(f.image)) for f in cut] == [(i, i) for i in range(10, 19)]
    assert [f.t_s for f in cut] == pytest.approx([t / 1000 for t in times[10:19]], abs=1e-6)


@pytest.mark.parametrize(("suffix", "start_s"), [(".mp4", 20.0), (".mkv", 20.0), (".mp4", 20.999), (".mkv", 0.1)])
def test_start_seeks_to_the_first_frame_at_or_after_it(tmp_path, monkeypatch, suffix, start_s):
    """A 600-frame clip (33 s, variable rate, key frame every 30 frames, B-frames): the first frame read is the one
    at or just after the start, with its own time and number, and few frames before it are decoded."""
    path = tmp_path / f"long{suffix}"
    times = vfr_times_ms(600)
    with VideoEncoder("libx264", 160, 48, "yuv420p", path=path, rate=30, time_base=Fraction(1, 1000),
                      options={"preset": "ultrafast", "g": "30", "bf": "2"}) as encoder:
        for i, t in enumerate(times):
            encoder.encode(numbered(i), pts=t)
    decoded = []

    def counted(*args):
        for frame in real(*args):
            decoded.append(frame.pts)
            yield frame

    real = video_io._decoded
    monkeypatch.setattr(video_io, "_decoded", counted)
    first = next(open_source(path, start_s).frames)
    expected = next(i for i, t in enumerate(times) if t / 1000 >= start_s - 1e-9)
    assert (first.index, number_of(first.image)) == (expected, expected)
    assert first.t_s == pytest.approx(times[expected] / 1000, abs=1e-6)
    assert len(decoded) < 100  # the frame at the start is number 360-380; decoding from the beginning reads them all


def test_raw_h264_is_timed_by_its_frame_rate(tmp_path):
    """A raw stream has no time stamps: frames are index / fps, the rate the H.264 stream itself states."""
    encoder = VideoEncoder("libx264", 160, 48, "yuv420p", rate=15, options={"preset": "ultrafast"})
    data = b"".join(encoder.encode(numbered(i)) for i in range(30)) + encoder.close()
    assert encoder.close() == b""  # closing twice is harmless
    (tmp_path / "raw.h264").write_bytes(data)
    source = open_source(tmp_path / "raw.h264", 1.0)
    frames = list(source.frames)
    assert source.fps == 15.0
    assert [(f.index, number_of(f.image)) for f in frames] == [(i, i) for i in range(15, 30)]
    assert frames[0].t_s == pytest.approx(1.0)


def test_unwritable_video_is_one_clear_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    path = tmp_path / "file" / "out.mp4"
    with pytest.raises(InputError, match="cannot write video") as error, \
            VideoEncoder("libx264", 64, 48, "yuv420p", path=path) as encoder:
        encoder.encode(np.zeros((48, 64, 3), np.uint8))
    assert len(str(error.value).splitlines()) == 1
    with pytest.raises(InputError, match="cannot write video"):
        VideoWriter(tmp_path / "file" / "out.mp4", 64, 48, 10.0)


@pytest.mark.parametrize("suffix, damage", [(".mp4", "cut"), (".mkv", "cut"), (".mp4", "garble")])
def test_a_cut_or_garbled_video_says_it_ended_early_and_exits_non_zero(tmp_path, capsys, suffix, damage):
    whole = tmp_path / f"whole{suffix}"
    container = av.open(str(whole), "w", options={"movflags": "faststart"} if suffix == ".mp4" else {})
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    for i in range(90):
        image = np.full((240, 320, 3), (i * 3) % 255, np.uint8)
        image[:, (i * 3) % 320] = 255
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    data = bytearray(whole.read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    else:
        for k in range(len(data) // 3, len(data) // 3 + 3000):
            data[k] = (data[k] * 7 + 13) % 256
    broken = tmp_path / f"broken{suffix}"
    broken.write_bytes(bytes(data))
    assert main(["replay", str(whole), "--detect", "face", "--jsonl", str(tmp_path / "w.jsonl")]) == 0
    capsys.readouterr()
    jsonl = tmp_path / "b.jsonl"
    assert main(["replay", str(broken), "--detect", "face", "--jsonl", str(jsonl)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"edgepilot replay: {broken} ended early: read ")
    read = len(jsonl.read_text().splitlines())
    assert 0 < read < 90 and f"read {read} " in err[0]  # what was read is kept, and the count is told
