"""The live view: the newest camera frame with boxes, names, track ids and the HUD, as one JPEG.

One encoder thread serves every viewer: it wakes when perception publishes a new frame, draws and encodes it once
(only while somebody watches), and hands it over as the single latest JPEG. Nothing queues: a frame that arrives
while the previous one is being encoded replaces it, and a viewer that is slow to take frames simply skips some.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from edgepilot.pilot.app.hud import draw_hud
from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.core.messages import Seen

log = logging.getLogger(__name__)

JPEG_QUALITY = 70


@dataclass(frozen=True)
class Jpeg:
    seq: int
    data: bytes
    #: time.perf_counter() when the frame reached the run status (perception done), and when its JPEG was ready.
    frame_ready_s: float
    encoded_s: float


def annotate(seen: Seen, snapshot: dict) -> bytes | None:
    """The annotated JPEG of ``seen``'s frame (None if it has none)."""
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
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buffer.tobytes() if ok else None


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

    def start(self) -> FrameEncoder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.status.wake_frame_waiters()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        done = 0
        while not self._stop.is_set():
            count, seen, ready_s = self.status.wait_frame(done, timeout_s=0.5)
            if count == done or seen is None or not self.watching():
                continue
            done = count
            started = time.perf_counter()
            try:
                data = annotate(seen, self.status.snapshot())
            except Exception:  # noqa: BLE001 - a bad frame must not end the live view
                log.warning("could not encode a frame for the web view", exc_info=True)
                continue
            if data is None:
                continue
            encoded = time.perf_counter()
            if len(self.encode_s) < 100_000:
                self.encode_s.append(encoded - started)
            self.on_jpeg(Jpeg(count, data, ready_s, encoded))
