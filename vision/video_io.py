"""Opening what ``edgepilot replay`` reads: a video file (mp4, avi, mkv, mov, raw .h264/.h265), one image, or a
folder of images, as a stream of :class:`pilot.messages.Frame`; and writing the annotated video.

Kept apart from the replay command so that recorded run folders can be added as one more kind of source.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pilot.errors import InputError
from pilot.messages import Frame
from vision.quiet import native_stderr_silenced

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


def open_source(path: str | Path) -> Source:
    """Open ``path``; :class:`InputError` with a clear reason if it is missing, empty or unreadable."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        return _open_folder(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        image = read_image(path)
        frame = Frame(image, 0.0, 0, path.name)
        return Source(path, "image", DEFAULT_FPS, image.shape[1], image.shape[0], 1, iter([frame]))
    if suffix in VIDEO_SUFFIXES or suffix == "":
        return _open_video(path)
    raise InputError(f"{path}: unknown input type {suffix!r}; give a video ({', '.join(sorted(VIDEO_SUFFIXES))}), "
                     "an image or a folder of images")


def _open_folder(path: Path) -> Source:
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    first = read_image(images[0])

    def frames() -> Iterator[Frame]:
        for i, p in enumerate(images):
            image = first if i == 0 else cv2.imread(str(p), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("skipping unreadable image %s", p)
                continue
            yield Frame(image, i / DEFAULT_FPS, i, p.name)

    return Source(path, "folder", DEFAULT_FPS, first.shape[1], first.shape[0], len(images), frames())


def _open_video(path: Path) -> Source:
    with native_stderr_silenced():  # FFmpeg's complaints about a broken file would precede our one-line error
        capture = cv2.VideoCapture(str(path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok or first is None:
        capture.release()
        raise InputError(f"{path} is not a readable video (corrupt, empty or an unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if 1.0 <= fps <= 240.0 else DEFAULT_FPS  # raw .h264 streams often report 0 or nonsense
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames() -> Iterator[Frame]:
        try:
            image, index = first, 0
            while image is not None:
                yield Frame(image, index / fps, index, path.name)
                ok, image = capture.read()
                image = image if ok else None
                index += 1
        finally:
            capture.release()

    return Source(path, "video", fps, first.shape[1], first.shape[0], count if count > 0 else None, frames())


class VideoWriter:
    """An mp4 (or avi / mkv by suffix) at a fixed size and frame rate; frames of another size are resized."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = {".avi": "MJPG", ".mkv": "mp4v"}.get(self.path.suffix.lower(), "mp4v")
        self.size = (width, height)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), fps, self.size)
        if not self._writer.isOpened():
            raise InputError(f"cannot write video {self.path} (check the folder and the suffix: .mp4, .avi, .mkv)")

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self._writer.write(image)

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
