"""Opening what ``edgepilot replay`` reads: a video file (mp4, avi, mkv, mov, raw .h264/.h265), one image, or a
folder of images, as a stream of :class:`edgepilot.pilot.core.messages.Frame` (optionally only between two times); writing the
annotated video (H.264 through PyAV, OpenCV as the fallback); and the threads that let decoding, detection and
encoding overlap (:func:`prefetch`, :class:`BackgroundWriter`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.messages import Frame
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


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path} is not a readable image (corrupt or unsupported format)")
    return image


def folder_images(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def open_source(path: str | Path, start_s: float = 0.0, end_s: float | None = None) -> Source:
    """Open ``path``; :class:`InputError` with a clear reason if it is missing, empty or unreadable. Only frames
    whose time (index / fps) lies in ``[start_s, end_s]`` are read; their indices stay those of the whole input."""
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
    """Keep the frames between ``start_s`` and ``end_s``. Skipped frames are decoded (exact on any format, including
    raw H.264 that cannot seek) but not converted or processed."""
    frames = source.frames  # a video skipped to start_s already; images and folders are cut here
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
    with native_stderr_silenced():  # FFmpeg's complaints about a broken file would precede our one-line error
        capture = cv2.VideoCapture(str(path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok or first is None:
        capture.release()
        raise InputError(f"{path} is not a readable video (corrupt, empty or an unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if 1.0 <= fps <= 240.0 else DEFAULT_FPS  # raw .h264 streams often report 0 or nonsense
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    width, height = first.shape[1], first.shape[0]
    index = 0
    while index / fps < start_s - 1e-9:  # decode without converting: exact on any format, even raw H.264
        if not capture.grab():
            first = None
            break
        index += 1
    if first is not None and index > 0:
        ok, first = capture.retrieve()
        first = first if ok else None

    def frames() -> Iterator[Frame]:
        try:
            image, i = first, index
            while image is not None:
                yield Frame(image, i / fps, i, path.name)
                ok, image = capture.read()
                image = image if ok else None
                i += 1
        finally:
            capture.release()

    return Source(path, "video", fps, width, height, count if count > 0 else None, frames())


class VideoWriter:
    """A video file at a fixed size and frame rate, written with PyAV: H.264 in .mp4 / .mkv / .mov, MJPEG in .avi.
    Frames of another size are resized. Even sizes use 4:2:0 colour (plays everywhere); odd sizes, which 4:2:0
    cannot hold, use 4:4:4 (plays in ffmpeg, VLC, mpv; not in browsers)."""

    CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".m4v": "libx264", ".avi": "mjpeg"}

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        import av

        self.path = Path(path)
        self.size = (width, height)
        codec = self.CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise InputError(f"cannot write video {self.path}: give it one of the suffixes "
                             f"{', '.join(sorted(self.CODECS))}")
        even = width % 2 == 0 and height % 2 == 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(str(self.path), "w")
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot write video {self.path}: {exc}") from None
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = width, height
        if codec == "mjpeg":
            stream.pix_fmt = "yuvj420p" if even else "yuvj444p"
            stream.options = {"q:v": "3"}
        else:
            stream.pix_fmt = "yuv420p" if even else "yuv444p"
            stream.options = {"preset": "superfast", "crf": "23"}  # 2x faster than veryfast, 10% bigger
        self._av, self._container, self._stream = av, container, stream

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode():
                container.mux(packet)
        finally:
            container.close()

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
