"""Opening what ``edgepilot replay`` reads: a video file (mp4, avi, mkv, mov, raw .h264/.h265; decoded with PyAV,
timed by its time stamps, seeking to a start), one image, or a folder of images, as a stream of
:class:`edgepilot.pilot.core.messages.Frame` (optionally only between two times); writing the annotated video
(through :class:`edgepilot.pilot.core.video.VideoEncoder`); and the threads that let decoding, detection and
encoding overlap (:func:`prefetch`, :class:`BackgroundWriter`).
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.messages import Frame
from edgepilot.pilot.core.video import VideoEncoder
from edgepilot.vision.quiet import native_stderr_silenced

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".h264", ".264", ".h265", ".hevc", ".mjpeg"}
#: Frame rate assumed for image folders and for raw streams that do not say.
DEFAULT_FPS = 30.0


@dataclass
class Source:
    """An opened input: its frames (a one-shot iterator), nominal frame rate, size of the first frame, frame count
    if known."""

    path: Path
    kind: str  # "video", "image", "folder"
    fps: float
    width: int
    height: int
    count: int | None
    frames: Iterator[Frame]
    #: Why reading stopped before the end of the file (a damaged or cut part), once the frames have been read.
    damaged: list[str] = field(default_factory=list)


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path} is not a readable image (corrupt or unsupported format)")
    return image


def folder_images(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def open_source(path: str | Path, start_s: float = 0.0, end_s: float | None = None) -> Source:
    """Open ``path``; :class:`InputError` with a clear reason if it is missing, empty or unreadable. Only frames
    whose time lies in ``[start_s, end_s]`` are read; their indices stay those of the whole input. A video's frame
    times are its time stamps from the first frame (``index / fps`` for raw streams, images and folders)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        source = _open_folder(path)
    else:
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            image = read_image(path)
            frame = Frame(image, 0.0, 0, path.name)
            source = Source(path, "image", DEFAULT_FPS, image.shape[1], image.shape[0], 1, iter([frame]))
        elif suffix in VIDEO_SUFFIXES or suffix == "":
            source = _open_video(path, start_s)
        else:
            raise InputError(f"{path}: unknown input type {suffix!r}; give a video "
                             f"({', '.join(sorted(VIDEO_SUFFIXES))}), an image or a folder of images")
    if start_s > 0 or end_s is not None:
        _cut(source, start_s, end_s)
    return source


def _cut(source: Source, start_s: float, end_s: float | None) -> None:
    """Keep the frames between ``start_s`` and ``end_s``; :class:`InputError` if there are none. A video starts at
    ``start_s`` already (:func:`_open_video` seeks there); images and folders are cut here."""
    frames = source.frames
    first = next((f for f in frames if f.t_s >= start_s - 1e-9), None)
    if first is None or (end_s is not None and first.t_s > end_s + 1e-9):
        raise InputError(f"{source.path} has no frames between {start_s:g} s and "
                         f"{'the end' if end_s is None else f'{end_s:g} s'}")

    def kept() -> Iterator[Frame]:
        yield first
        for frame in frames:
            if end_s is not None and frame.t_s > end_s + 1e-9:
                break
            yield frame

    if source.count is not None:
        last = source.count if end_s is None else min(source.count, int(end_s * source.fps + 1e-6) + 1)
        source.count = max(1, last - first.index)
    source.frames = kept()


def _open_folder(path: Path) -> Source:
    images = folder_images(path)
    if not images:
        raise InputError(f"{path}: not a recording: no manifest.json, and it holds no images "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    first = read_image(images[0])

    def frames() -> Iterator[Frame]:
        for i, p in enumerate(images):
            image = first if i == 0 else cv2.imread(str(p), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("skipping unreadable image %s", p)
                continue
            yield Frame(image, i / DEFAULT_FPS, i, p.name)

    return Source(path, "folder", DEFAULT_FPS, first.shape[1], first.shape[0], len(images), frames())


def _open_video(path: Path, start_s: float = 0.0) -> Source:
    """A video read with PyAV, its frames from ``start_s`` on (the caller cuts the end). Frame times are the
    stream's time stamps (``pts * time_base``) from the first frame, right for variable-rate phone clips; a stream
    without time stamps (raw .h264 / .h265 / .mjpeg) is timed ``index / fps``. A start is reached by seeking to the
    key frame before it and decoding from there, frames before the start decoded but not converted; raw streams,
    and files that cannot seek, decode from the beginning."""
    import av

    damaged: list[str] = []
    container, stream, first, decoded = _open_decoder(path, damaged)
    timed = not container.format.flags & av.format.Flags.no_timestamps.value and first.pts is not None
    if timed:
        fps = float(stream.average_rate or stream.guessed_rate or 0)
    else:  # a raw demuxer's rate is its default (25), not the stream's: the codec's (H.264 VUI) if it says one
        fps = float(stream.codec_context.framerate or 0)
    fps = fps if 1.0 <= fps <= 240.0 else DEFAULT_FPS
    width, height, count = first.width, first.height, _frame_count(container, stream, fps)
    origin = first.pts if timed else 0
    time_base = stream.time_base or Fraction(1)

    def seconds(frame: Any, index: int) -> float:
        if timed and frame.pts is not None:
            return float((frame.pts - origin) * time_base)
        return index / fps

    frames: Iterator[Any] = itertools.chain([first], decoded)
    index: int | None = 0  # None: numbered from the first kept frame's time (after a seek)
    if start_s > 0 and seconds(first, 0) < start_s - 1e-9:
        if timed:
            decoded.close()
            sought = _seek(container, stream, path, origin, start_s, damaged)
            if sought is not None:
                frames, index = sought, None
            else:  # start afresh: a failed seek may leave the demuxer anywhere
                container.close()
                container, stream, first, decoded = _open_decoder(path, damaged)
                frames = itertools.chain([first], decoded)
        skipped = 0
        for frame in frames:
            if seconds(frame, skipped) >= start_s - 1e-9:
                frames = itertools.chain([frame], frames)
                break
            skipped += 1
        else:
            frames = iter(())
        if index is not None:
            index = skipped

    def converted() -> Iterator[Frame]:
        i = index
        try:
            for frame in frames:
                if i is None:  # after a seek: count the frames before this one from the packets (no decoding)
                    i = _frames_before(path, stream.index, origin, frame.pts)
                    i = int(round(seconds(frame, 0) * fps)) if i is None else i
                yield Frame(frame.to_ndarray(format="bgr24"), seconds(frame, i), i, path.name)
                i += 1
        finally:
            container.close()

    return Source(path, "video", fps, width, height, count, converted(), damaged)


def _open_decoder(path: Path, damaged: list[str]) -> tuple[Any, Any, Any, Iterator[Any]]:
    """The opened container, its first video stream, the first frame and the decoder's iterator of the rest;
    :class:`InputError` in one line if there is no such frame."""
    import av

    unreadable = f"{path} is not a readable video (corrupt, empty or an unsupported codec)"
    with native_stderr_silenced():  # FFmpeg's complaints about a broken file would precede our one-line error
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            log.debug("opening %s: %s", path, exc)
            raise InputError(unreadable) from None
        if not container.streams.video:
            container.close()
            raise InputError(f"{path} holds no video stream; give a video file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = _decoded(container, stream, path, damaged)
        first = next(decoded, None)
    if first is None:
        container.close()
        raise InputError(unreadable)
    return container, stream, first, decoded


def _decoded(container: Any, stream: Any, path: Path, damaged: list[str]) -> Iterator[Any]:
    """The video's frames in presentation order; stops where a damaged or cut file can no longer be read and says
    why in ``damaged``."""
    import av

    try:
        yield from container.decode(stream)
    except (av.FFmpegError, EOFError) as exc:
        log.debug("%s: stopped reading at a damaged part (%s)", path.name, exc)
        damaged.append(f"a damaged part ({exc.__class__.__name__})")


def _seek(container: Any, stream: Any, path: Path, origin: int, start_s: float,
          damaged: list[str]) -> Iterator[Any] | None:
    """The frames from the key frame at or before ``start_s`` on, or None if the file cannot seek there. A key
    frame found by its decoding time can show after the start (B-frames): then seek 1, 2, 4... s further back."""
    import av

    time_base = stream.time_base
    target = origin + math.floor(Fraction(start_s) / time_base)
    back = 0
    while target - back > origin:
        try:
            container.seek(target - back, stream=stream, backward=True, any_frame=False)
        except (av.FFmpegError, OSError) as exc:
            log.debug("%s: cannot seek (%s); decoding from the start", path.name, exc)
            return None
        frames = _decoded(container, stream, path, damaged)
        first = next(frames, None)
        if first is not None and first.pts is not None and (first.pts - origin) * time_base <= start_s + 1e-9:
            return itertools.chain([first], frames)  # nothing between the start and this frame was jumped over
        frames.close()
        back = max(2 * back, int(1 / time_base))
    return None


def _frames_before(path: Path, stream_index: int, origin: int, pts: int) -> int | None:
    """How many frames of the stream show from the first frame (``origin``) to before time stamp ``pts``: its
    packets read from the start of the file (demuxing only, a small part of decoding's cost). None if that fails."""
    import av

    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams[stream_index]
            for packet in container.demux(stream):
                if packet.dts is not None and packet.dts > pts:  # pts >= dts: none of the rest shows earlier
                    break
                stamp = packet.pts if packet.pts is not None else packet.dts
                if packet.size and stamp is not None and origin <= stamp < pts:  # not cut by an edit list
                    count += 1
    except (av.FFmpegError, OSError, EOFError) as exc:
        log.debug("%s: cannot count the frames before the start (%s)", path.name, exc)
        return None
    return count


def _frame_count(container: Any, stream: Any, fps: float) -> int | None:
    """The number of frames the file says it holds, else its duration times the frame rate (as OpenCV counts)."""
    if stream.frames > 0:
        return int(stream.frames)
    if container.duration:
        return int(round(container.duration / 1_000_000 * fps)) or None
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * fps)) or None
    return None


class VideoWriter:
    """A video file at a fixed size and frame rate, written with PyAV: H.264 in .mp4 / .mkv / .mov, MJPEG in .avi.
    Frames of another size are resized. Even sizes use 4:2:0 colour (plays everywhere); odd sizes, which 4:2:0
    cannot hold, use 4:4:4 (plays in ffmpeg, VLC, mpv; not in browsers)."""

    CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".m4v": "libx264", ".avi": "mjpeg"}

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        self.path = Path(path)
        self.size = (width, height)
        codec = self.CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise InputError(f"cannot write video {self.path}: give it one of the suffixes "
                             f"{', '.join(sorted(self.CODECS))}")
        even = width % 2 == 0 and height % 2 == 0
        if codec == "mjpeg":
            pix_fmt, options = ("yuvj420p" if even else "yuvj444p"), {"q:v": "3"}
        else:  # superfast: 2x faster than veryfast, 10% bigger
            pix_fmt, options = ("yuv420p" if even else "yuv444p"), {"preset": "superfast", "crf": "23"}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write video {self.path}: {exc}") from None
        self._encoder = VideoEncoder(codec, width, height, pix_fmt, path=self.path,
                                     rate=Fraction(fps).limit_denominator(1001), options=options)

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self._encoder.encode(image)

    def close(self) -> None:
        self._encoder.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DONE = object()


def prefetch(items: Iterable[Any], size: int = 8, name: str = "decode") -> Iterator[Any]:
    """Iterate ``items`` on a thread, up to ``size`` ahead (decoding overlaps detection). Errors are re-raised
    here; stopping early (break, exception) stops the thread."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            buffer.put((_DONE, exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


class BackgroundWriter:
    """Runs ``write(*item)`` for each :meth:`put` item on a thread (annotate + encode overlap detection). The queue
    is bounded so a slow encoder slows the producer instead of filling memory. :meth:`close` waits for the rest and
    re-raises the thread's error."""

    def __init__(self, write: Callable[..., None], size: int = 8, name: str = "encode") -> None:
        self._write = write
        self._queue: queue.Queue[tuple | None] = queue.Queue(maxsize=size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # noqa: BLE001 - re-raised by put() / close()
                    self._error = exc

    def put(self, *item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error
