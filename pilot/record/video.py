"""The recorder's video: the camera frames perception saw, encoded on a background thread.

Two streams, because one cannot serve both purposes:

- ``frames.mkv``: FFV1, lossless. Replay feeds these exact pixels to perception again; re-running a detector on
  H.264-decoded frames would see different pixels from the live run and could decide differently, so a lossy stream
  cannot be a regression test. FFV1 costs about 14 ms per 640x480 frame on one core here and 100-150 KB per frame.
- ``video.mp4``: H.264 (libx264, ultrafast) for watching, about 4 ms and 15 KB per frame.

Both carry the frame's time (milliseconds from the first frame) as their presentation time stamp; the exact time
is in ``detections.jsonl``. Both survive a killed process: Matroska clusters and MP4 fragments (``empty_moov``) are
closed every second, and the files are fsync'ed every second.

The queue in front of the encoder is bounded: when the machine cannot keep up, frames are dropped from the recording
(counted, and said in the manifest), never does the control loop or perception wait for the disk.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.video import VideoEncoder, video_frame
from edgepilot.pilot.record.files import FLUSH_S, LOSSLESS_VIDEO, VIEWING_VIDEO

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)


class VideoRecorder:
    """Queue frames with :meth:`put` (any thread, never blocks); a thread encodes them into the run folder."""

    def __init__(self, folder: Path, lossless: bool = True, viewing: bool = True, max_queue: int = 60) -> None:
        self.folder = folder
        self.lossless = lossless
        self.viewing = viewing
        #: Wait for room in the queue instead of dropping a frame: for simulations on a fake clock, where nothing
        #: is real time and a complete recording matters more than speed.
        self.block = False
        self.written = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self._queued = 0
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self._last_pts = -1
        self._streams: list[VideoEncoder] = []
        self._queue: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="recorder-video", daemon=True)
        self._thread.start()

    def put(self, image: np.ndarray, t_s: float) -> int | None:
        """Queue a BGR frame; its index in the video files, or None if it was dropped (queue full, size changed,
        encoder failed). Frames arrive from one producer at a time (the recorder holds a lock)."""
        height, width = image.shape[:2]
        if self._size is None:
            self._size = (width, height)
        if (width, height) != self._size or self.error is not None:
            self.dropped += 1
            return None
        try:
            self._queue.put((image, t_s), block=self.block)
        except queue.Full:
            self.dropped += 1
            return None
        index = self._queued
        self._queued += 1
        return index

    def _open(self, width: int, height: int) -> None:
        flush = {"flush_packets": "1"}
        if self.lossless:
            self._streams.append(VideoEncoder(
                "ffv1", width, height, "bgr0", path=self.folder / LOSSLESS_VIDEO, format="matroska", rate=30,
                time_base=MS, options={"level": "3", "slices": "4", "slicecrc": "1"},
                container_options={**flush, "cluster_time_limit": "1000"}, threads=2))
        if self.viewing and width % 2 == 0 and height % 2 == 0:  # 4:2:0 H.264 needs even sizes
            self._streams.append(VideoEncoder(
                "libx264", width, height, "yuv420p", path=self.folder / VIEWING_VIDEO, format="mp4", rate=30,
                time_base=MS, options={"preset": "ultrafast", "tune": "zerolatency", "g": "30", "crf": "23"},
                container_options={**flush, "movflags": "empty_moov+default_base_moof+frag_keyframe",
                                   "frag_duration": "1000000"}, threads=1))

    def _run(self) -> None:
        last_sync = time.monotonic()
        try:
            while (item := self._queue.get()) is not None:
                image, t_s = item
                if not self._streams:
                    self._open(image.shape[1], image.shape[0])
                    self._t0 = t_s
                pts = max(self._last_pts + 1, int(round((t_s - self._t0) * 1000.0)))
                self._last_pts = pts
                frame = video_frame(image, pts, MS)  # one conversion for both files
                for stream in self._streams:
                    stream.encode(frame)
                self.written += 1
                if time.monotonic() - last_sync >= FLUSH_S:
                    self._sync()
                    last_sync = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - the run goes on without video; close() and the manifest say so
            self.error = exc
            log.error("video recording stopped: %s", exc)
            while self._queue.get() is not None:  # keep draining so put() never blocks and close() returns
                pass

    def _sync(self) -> None:
        for stream in self._streams:
            try:
                fd = os.open(stream.path, os.O_RDONLY)
                try:
                    os.fsync(fd)  # syncs the file's data whichever descriptor asks
                finally:
                    os.close(fd)
            except OSError as exc:
                log.debug("fsync %s failed: %s", stream.path, exc)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        for stream in self._streams:
            try:
                stream.close()
            except Exception as exc:  # noqa: BLE001 - a failed trailer leaves a still-readable fragmented file
                log.warning("closing %s: %s", stream.path.name, exc)
        self._streams = []
        self._sync()


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Decode a recorded video frame by frame (BGR). Stops quietly where a cut-off file ends."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{path} is not a readable video ({exc})") from None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="bgr24")
        except (av.FFmpegError, EOFError) as exc:
            log.info("%s ends early (%s): a recording cut short", path.name, exc)
    finally:
        container.close()
