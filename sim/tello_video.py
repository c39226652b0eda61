"""Video for the Tello emulator: a generated test pattern (until the simulator's renderer plugs in), an H.264 encoder
(a :class:`edgepilot.pilot.core.video.VideoEncoder`), and a time stamp drawn into every frame so the receiving side
can measure glass-to-decode lag.

The stamp is 32 black/white cells along the top of the image holding the capture time in milliseconds of
CLOCK_MONOTONIC (modulo 2**32). The clock is shared by every process and network namespace of one machine, so a
reader can compute the age of a decoded frame without any side channel.
"""

from __future__ import annotations

import time

import numpy as np

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.messages import Frame
from edgepilot.pilot.core.video import VideoEncoder

TELLO_WIDTH, TELLO_HEIGHT = 960, 720
STAMP_BITS = 32
STAMP_CELL_PX = 24
STAMP_ORIGIN = (8, 8)  # (x, y) of the first cell


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000.0) % (1 << STAMP_BITS)


def draw_stamp(image: np.ndarray, value_ms: int) -> None:
    """Write ``value_ms`` into the top-left corner of a BGR image, most significant bit first."""
    x0, y0 = STAMP_ORIGIN
    cell = STAMP_CELL_PX
    image[y0 - 4:y0 + cell + 4, x0 - 4:x0 + STAMP_BITS * cell + 4] = 128
    for bit in range(STAMP_BITS):
        on = (value_ms >> (STAMP_BITS - 1 - bit)) & 1
        image[y0:y0 + cell, x0 + bit * cell:x0 + (bit + 1) * cell] = 255 if on else 0


def read_stamp(image: np.ndarray) -> int | None:
    """The stamp of a decoded frame, or None if the image is too small to hold one."""
    x0, y0 = STAMP_ORIGIN
    cell = STAMP_CELL_PX
    if image.ndim != 3 or image.shape[0] < y0 + cell or image.shape[1] < x0 + STAMP_BITS * cell:
        return None
    value = 0
    for bit in range(STAMP_BITS):
        cy, cx = y0 + cell // 2, x0 + bit * cell + cell // 2
        patch = image[cy - 4:cy + 4, cx - 4:cx + 4].astype(np.float32)
        value = (value << 1) | int(patch.mean() > 128)
    return value


def stamp_age_ms(stamp: int, now_ms: int | None = None) -> int:
    """Milliseconds between a stamp and now, modulo wrap-around."""
    now = monotonic_ms() if now_ms is None else now_ms
    return (now - stamp) % (1 << STAMP_BITS)


class TestPatternCamera:
    """A :class:`edgepilot.pilot.core.hal.Camera` that draws a moving pattern and the time stamp. Colour bars in B, G, R order
    (blue left) let a test check that nobody swapped the channels."""

    __test__ = False  # not a pytest test class

    def __init__(self, clock: Clock | None = None, width: int = TELLO_WIDTH, height: int = TELLO_HEIGHT) -> None:
        self.clock = clock or MonotonicClock()
        self.width, self.height = width, height
        self._index = 0
        base = np.zeros((height, width, 3), np.uint8)
        third = width // 3
        base[:, :third] = (255, 0, 0)  # blue
        base[:, third:2 * third] = (0, 255, 0)  # green
        base[:, 2 * third:] = (0, 0, 255)  # red
        base[height // 2:] //= 2
        self._base = base

    def read(self) -> Frame:
        image = self._base.copy()
        size = self.height // 6
        x = (self._index * 8) % max(1, self.width - size)
        y = self.height // 2 - size // 2
        image[y:y + size, x:x + size] = 255
        draw_stamp(image, monotonic_ms())
        self._index += 1
        return Frame(image, self.clock.now(), self._index, "emulator")

    def close(self) -> None:
        pass


class H264Encoder(VideoEncoder):
    """Encodes BGR frames to an Annex-B H.264 byte stream (:meth:`encode` returns each frame's bytes), low latency,
    with SPS/PPS repeated at every key frame (like the Tello), so a receiver that joins late can start decoding at
    the next key frame."""

    def __init__(self, width: int = TELLO_WIDTH, height: int = TELLO_HEIGHT, fps: int = 30,
                 bitrate: int = 2_000_000) -> None:
        super().__init__("libx264", width, height, "yuv420p", rate=fps, bit_rate=bitrate,
                         options={"preset": "ultrafast", "tune": "zerolatency",
                                  "x264-params": f"keyint={fps}:min-keyint={fps}:repeat-headers=1:threads=1"})
