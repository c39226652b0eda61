"""Perception on its own thread: read the newest camera frame, detect, publish the result to a latest-value slot.

The loop never waits for perception; it reads whatever was published last, and frame age tells how old that is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edgepilot.pilot.core.errors import EdgepilotError
from edgepilot.pilot.core.hal import Camera
from edgepilot.pilot.core.messages import Detection, Frame, Seen

log = logging.getLogger(__name__)

Detect = Callable[[Frame], list[Detection]]


def perceive_once(camera: Camera, detect: Detect | None) -> Seen | None:
    """One frame through perception; None when the camera has nothing new."""
    frame = camera.read()
    if frame is None:
        return None
    detections = tuple(detect(frame)) if detect is not None else ()
    return Seen(frame.t_s, frame.width, frame.height, detections, frame)


class PerceptionWorker:
    """Runs :func:`perceive_once` in a loop on a thread and hands each result to ``publish``."""

    def __init__(self, camera: Camera, detect: Detect | None, publish: Callable[[Seen], None],
                 max_fps: float = 30.0, idle_s: float = 0.005) -> None:
        self.camera = camera
        self.detect = detect
        self.publish = publish
        self.period_s = 1.0 / max_fps  # a simulated camera renders on demand: do not spin faster than a real one
        self.idle_s = idle_s
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perception", daemon=True)
        self._last_index: int | None = None

    def start(self) -> PerceptionWorker:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            next_s = time.monotonic()
            while not self._stop.is_set():
                self._stop.wait(max(0.0, next_s - time.monotonic()))
                next_s = time.monotonic() + self.period_s
                frame = self.camera.read()
                if frame is None or frame.index == self._last_index:
                    self._stop.wait(self.idle_s)
                    continue
                self._last_index = frame.index
                detections = tuple(self.detect(frame)) if self.detect is not None else ()
                self.publish(Seen(frame.t_s, frame.width, frame.height, detections, frame))
        except EdgepilotError as exc:
            self.error = exc
            log.error("perception stopped: %s", exc)
        except Exception as exc:  # noqa: BLE001 - surfaced by stop(); the loop's watchdog already hovers
            self.error = exc
            log.exception("perception stopped by an unexpected error")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
