"""Encoding BGR frames with PyAV, the one wrapper behind every video edgepilot writes: the annotated replay output
(:class:`edgepilot.vision.video_io.VideoWriter`), the flight recorder's lossless and viewing streams
(:mod:`edgepilot.pilot.record.video`) and the Tello emulator's raw H.264 (:mod:`edgepilot.sim.tello_video`).

A :class:`VideoEncoder` either writes a file (a container holding one video stream) or, without a path, is a bare
codec context whose :meth:`VideoEncoder.encode` returns the encoded bytes (an Annex-B H.264 stream for UDP, say).
PyAV is imported only when an encoder is made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepilot.pilot.core.errors import InputError

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)


def video_frame(image: np.ndarray, pts: int | None = None, time_base: Fraction | None = None) -> av.VideoFrame:
    """A PyAV frame of a BGR image, with a presentation time stamp in ``time_base`` units if given (without one the
    encoder numbers the frames 0, 1, 2... in its own time base). One frame can go to several encoders."""
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
    if pts is not None:
        frame.pts = pts
        if time_base is not None:
            frame.time_base = time_base
    return frame


class VideoEncoder:
    """One video encoder: into the file ``path`` (container ``format``, guessed from the suffix if None) or, when
    ``path`` is None, into bytes (:meth:`encode` returns them).

    ``rate`` is the nominal frame rate; ``time_base`` the unit of the time stamps (``1/rate`` if None); ``options``
    go to the codec (``crf``, ``preset``, ``x264-params``...), ``container_options`` to the muxer; ``bit_rate`` and
    ``threads`` are set only if given. Errors of the file (cannot create, cannot write, unknown codec) are
    :class:`InputError` with one line naming the file. :meth:`close` flushes and is safe to call twice.
    """

    def __init__(self, codec: str, width: int, height: int, pix_fmt: str, *, path: str | Path | None = None,
                 format: str | None = None, rate: Fraction | int | float = 30, time_base: Fraction | None = None,
                 options: Mapping[str, str] | None = None, container_options: Mapping[str, str] | None = None,
                 bit_rate: int | None = None, threads: int | None = None) -> None:
        import av

        self.path = None if path is None else Path(path)
        self.time_base = time_base
        self._av = av
        self._container: Any = None
        if self.path is None:
            context = av.CodecContext.create(codec, "w")
            context.width, context.height, context.pix_fmt = width, height, pix_fmt
            context.time_base = time_base if time_base is not None else 1 / Fraction(rate)
            context.framerate = Fraction(rate)
            self._configure(context, options, bit_rate, threads)
            context.open()
            self._codec: Any = context
            return
        try:
            self._container = av.open(str(self.path), "w", format=format, options=dict(container_options or {}))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot write video {self.path}: {exc}") from None
        try:
            stream = self._container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if time_base is not None:
                stream.time_base = time_base
                stream.codec_context.time_base = time_base  # else libx264 counts in 1/rate; the muxer rejects the pts
            self._configure(stream.codec_context, options, bit_rate, threads)
        except (av.FFmpegError, ValueError) as exc:
            self._container.close()
            self._container = None
            raise InputError(f"cannot write video {self.path} with {codec}: {exc}") from None
        self._codec = stream

    @staticmethod
    def _configure(context: Any, options: Mapping[str, str] | None, bit_rate: int | None,
                   threads: int | None) -> None:
        if bit_rate is not None:
            context.bit_rate = bit_rate
        if threads is not None:
            context.thread_count = threads
        if options:
            context.options = dict(options)

    @property
    def closed(self) -> bool:
        return self._codec is None

    def encode(self, image: np.ndarray | av.VideoFrame, pts: int | None = None) -> bytes:
        """Encode one frame: a BGR image (stamped ``pts`` in :attr:`time_base` units, or numbered by the encoder if
        None) or a ready :func:`video_frame`. A file encoder writes the packets and returns b""; a bytes encoder
        returns what the codec produced (possibly nothing yet)."""
        if self._codec is None:
            raise RuntimeError(f"encoding into a closed video encoder ({self.path or 'bytes'})")
        frame = image if isinstance(image, self._av.VideoFrame) else video_frame(image, pts, self.time_base)
        return self._emit(frame)

    def _emit(self, frame: av.VideoFrame | None) -> bytes:
        if self._container is None:
            return b"".join(bytes(packet) for packet in self._codec.encode(frame))
        try:
            for packet in self._codec.encode(frame):
                self._container.mux(packet)
        except self._av.FFmpegError as exc:  # av's OSError (disk full...) is an FFmpegError too
            raise InputError(f"cannot write video {self.path}: {exc}") from None
        return b""

    def close(self) -> bytes:
        """Flush the encoder (and write the file's trailer); the last bytes of a bytes encoder. Later calls do
        nothing."""
        if self._codec is None:
            return b""
        try:
            return self._emit(None)
        finally:
            self._codec = None
            container, self._container = self._container, None
            if container is not None:
                try:
                    container.close()
                except self._av.FFmpegError as exc:
                    raise InputError(f"cannot finish video {self.path}: {exc}") from None

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
