"""The Tello's video as a :class:`edgepilot.pilot.core.hal.Camera`: H.264 from UDP 11111 decoded with PyAV on its own thread, latest
frame only, each frame stamped with the time it was decoded so its age is known.

Why not djitellopy's ``BackgroundFrameRead``: it converts through PIL to RGB (our frames are BGR), stamps nothing
(frame age unknown), and its thread can only stop after one more frame arrives, so a frozen stream hangs shutdown.
Frames the decoder flags as damaged (corrupt datagrams) are counted in ``corrupt_packets`` and never published.
The stream address is djitellopy's (:data:`edgepilot.drone.tello_protocol.VIDEO_URL`, from its class constants).
"""

from __future__ import annotations

import logging
import threading

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.messages import Frame

log = logging.getLogger(__name__)


class TelloCamera:
    def __init__(self, url: str = "udp://@0.0.0.0:11111", clock: Clock | None = None,
                 read_timeout_s: float = 1.0, first_open_timeout_s: float = 3.0) -> None:
        self.url = url
        self.clock = clock or MonotonicClock()
        self.read_timeout_s = read_timeout_s
        #: The first open waits this long for the stream to start (a drone takes a moment after ``streamon``; giving
        #: up sooner would miss its first key frame and wait for the next).
        self.first_open_timeout_s = first_open_timeout_s
        self.frames_decoded = 0
        self.stalls = 0  # times the stream went quiet for read_timeout_s (frozen video, Wi-Fi trouble)
        #: Frames the decoder flagged as damaged (dropped, not published) plus packets it could not decode at all.
        self.corrupt_packets = 0
        self._latest: Frame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tello-video", daemon=True)
        self._thread.start()

    def read(self) -> Frame | None:
        with self._lock:
            return self._latest

    def frame_age_s(self) -> float | None:
        """Seconds since the newest frame was decoded, or None before the first one."""
        latest = self.read()
        return None if latest is None else self.clock.now() - latest.t_s

    def wait_first_frame(self, timeout_s: float) -> bool:
        deadline = self.clock.now() + timeout_s
        while self.read() is None and self.clock.now() < deadline and self._thread.is_alive():
            self._stop.wait(0.05)
        return self.read() is not None

    def close(self) -> None:
        self._stop.set()
        wait_s = max(self.read_timeout_s, self.first_open_timeout_s) + 3.0
        self._thread.join(timeout=wait_s)
        if self._thread.is_alive():
            log.warning("the video thread did not stop within %.1f s", wait_s)

    def _run(self) -> None:
        import av  # PyAV only when video is on

        opened = False
        while not self._stop.is_set():
            open_timeout_s = self.read_timeout_s if opened else max(self.read_timeout_s, self.first_open_timeout_s)
            # Analyse 0.1 s of stream (0 would mean FFmpeg's default, 5 s, cut short only by the open timeout), and
            # keep what the analysis read: it holds the stream's first key frame ("nobuffer" would throw it away, and
            # the first picture would wait for the next key frame, a second later).
            try:
                container = av.open(self.url, format="h264", timeout=(open_timeout_s, self.read_timeout_s),
                                    options={"flags": "low_delay", "probesize": "32768", "analyzeduration": "100000"})
            except (av.FFmpegError, OSError) as exc:
                self.stalls += 1
                log.debug("video: no stream yet (%s)", exc)
                self._stop.wait(0.2)  # e.g. the port is taken: do not spin
                continue
            opened = True
            try:
                self._decode(container)
                self.stalls += 1  # the demuxer ended: the stream went quiet for read_timeout_s
            except (av.InvalidDataError, ValueError) as exc:
                # A packet too broken to decode: reopen and resync at the next key frame.
                self.corrupt_packets += 1
                log.debug("video: corrupt data (%s); reopening", exc)
            except (av.FFmpegError, OSError) as exc:
                # A read timeout (frozen stream): reopen and resync at the next key frame.
                self.stalls += 1
                log.debug("video: stream interrupted (%s); reopening", exc)
            finally:
                container.close()

    def _decode(self, container) -> None:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # frame threading would hold frames back: latency
        previous_packet_s: float | None = None
        for packet in container.demux(stream):
            now = self.clock.now()
            # The parser releases the last frame of a stream only when the stream stops (read timeout). That frame
            # is as old as the silence before it: publishing it would hide a frozen stream behind a fresh stamp.
            stale = previous_packet_s is not None and now - previous_packet_s > self.read_timeout_s / 2
            previous_packet_s = now
            if packet.size == 0:
                continue  # the end-of-stream flush marker: nothing new in it
            for frame in packet.decode():
                if frame.is_corrupt:
                    self.corrupt_packets += 1  # broken slices: perception must not look for people in them
                    continue
                if stale:
                    continue
                image = frame.to_ndarray(format="bgr24")  # BGR, like every other Frame in edgepilot
                self.frames_decoded += 1
                with self._lock:
                    self._latest = Frame(image, self.clock.now(), self.frames_decoded, "tello")
            if self._stop.is_set():
                return
