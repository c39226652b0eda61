"""The live view: the newest camera frame with boxes, names, track ids and the HUD, as one JPEG.

One encoder thread serves every viewer: it wakes when perception publishes a new frame, draws and encodes it once
(only while somebody watches), and hands it over as the single latest JPEG. Nothing queues: a frame that arrives
while the previous one is being encoded replaces it, and a viewer that is slow to take frames simply skips some.
While the page's "Record" is on, the same annotated frames also go to a video file, in real time (a frame is repeated
for as long as it was the newest, so the clip plays at the speed it happened).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgepilot.pilot.app.hud import draw_hud
from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.core.messages import Seen

log = logging.getLogger(__name__)

JPEG_QUALITY = 70
CLIP_FPS = 30.0


@dataclass(frozen=True)
class Jpeg:
    seq: int
    data: bytes
    #: time.perf_counter() when the frame reached the run status (perception done), and when its JPEG was ready.
    frame_ready_s: float
    encoded_s: float


def annotate(seen: Seen, snapshot: dict) -> np.ndarray | None:
    """``seen``'s frame with its detections and the HUD drawn on a copy (None if it has no frame)."""
    from edgepilot.vision.overlay import draw

    if seen.frame is None:
        return None
    image = seen.frame.image.copy()
    draw(image, list(seen.detections))
    lines = [f"t {snapshot['t_s']:5.1f} s  {snapshot['mode']}"]
    if snapshot["kind"] == "drone":
        lines.append(f"battery {snapshot['battery_pct']:.0f}%  height {snapshot['height_cm']:.0f} cm")
    if snapshot.get("following"):
        lines.append(f"following {snapshot['following']['who']}: {snapshot['following']['state']}")
    draw_hud(image, lines)
    return image


def jpeg(image: np.ndarray) -> bytes | None:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buffer.tobytes() if ok else None


class Clip:
    """An annotated video being written at :data:`CLIP_FPS` in real time (frames repeated to fill the gaps)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = None
        self._last: tuple[np.ndarray, float] | None = None
        self.frames = 0

    def add(self, image: np.ndarray, t_s: float) -> None:
        from edgepilot.vision.video_io import VideoWriter

        if self._writer is None:
            self._writer = VideoWriter(self.path, image.shape[1], image.shape[0], CLIP_FPS)
        if self._last is not None:
            previous, previous_t = self._last
            for _ in range(max(0, min(round((t_s - previous_t) * CLIP_FPS) - 1, int(5 * CLIP_FPS)))):
                self._writer.write(previous)  # it stayed the newest frame this long
                self.frames += 1
        self._writer.write(image)
        self.frames += 1
        self._last = (image, t_s)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class FrameEncoder:
    """Encodes the run's newest frame on its own thread while ``watching()`` is true; ``on_jpeg`` gets each result
    (on the encoder's thread)."""

    def __init__(self, status: RunStatus, on_jpeg: Callable[[Jpeg], None], watching: Callable[[], bool]) -> None:
        self.status = status
        self.on_jpeg = on_jpeg
        self.watching = watching
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="web-video", daemon=True)
        self.encode_s: list[float] = []
        self._clip: Clip | None = None
        self._clip_lock = threading.Lock()

    def start(self) -> FrameEncoder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.status.wake_frame_waiters()
        self._thread.join(timeout=2.0)
        self.record(None)

    def record(self, path: Path | None) -> Path | None:
        """Start writing the annotated video to ``path``, or stop (None); returns the clip that was stopped."""
        with self._clip_lock:
            old, self._clip = self._clip, (Clip(path) if path is not None else None)
        if old is not None:
            old.close()
            log.info("annotated video: %s (%d frames)", old.path, old.frames)
            return old.path
        return None

    @property
    def recording(self) -> Path | None:
        clip = self._clip
        return clip.path if clip is not None else None

    def _run(self) -> None:
        done = 0
        while not self._stop.is_set():
            count, seen, ready_s = self.status.wait_frame(done, timeout_s=0.5)
            if count == done:
                continue
            done = count
            watching = self.watching()
            if seen is None or seen.frame is None or not (watching or self._clip is not None):
                continue
            started = time.perf_counter()
            try:
                image = annotate(seen, self.status.snapshot())
                with self._clip_lock:
                    if self._clip is not None and image is not None:
                        self._clip.add(image, seen.frame.t_s)
                data = jpeg(image) if watching and image is not None else None
            except Exception:  # noqa: BLE001 - a bad frame must not end the live view
                log.warning("could not encode a frame for the web view", exc_info=True)
                continue
            if data is None:
                continue
            encoded = time.perf_counter()
            if len(self.encode_s) < 100_000:
                self.encode_s.append(encoded - started)
            self.on_jpeg(Jpeg(count, data, ready_s, encoded))
