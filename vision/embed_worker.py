"""dlib's face embedding in a process of its own, so a live camera never waits for it.

dlib holds the GIL for the whole ~100 ms of an embedding (dlib-bin is built without BLAS), so a thread would stall
the frame pipeline and the control loop just the same. A child process owns the models; the pipeline hands it one
face crop at a time and picks the answer up on a later frame. Offline replays do not use it: they wait for every
embedding, which keeps them reproducible frame for frame.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from multiprocessing.connection import Connection

import numpy as np

from edgepilot.pilot.core.errors import InputError, ModelError

log = logging.getLogger(__name__)

_READY = "ready"


def _serve(conn: Connection, jitters: int) -> None:
    """Child: load the models, then answer ``(key, crop, rect)`` with ``(key, embedding or error text)``."""
    from edgepilot.vision.identity import FaceEncoder

    try:
        encoder = FaceEncoder(jitters)
    except ModelError as exc:
        conn.send(str(exc))
        return
    conn.send(_READY)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        key, crop, rect = request
        try:
            conn.send((key, encoder.encode_crop(crop, rect)))
        except (RuntimeError, ValueError) as exc:
            conn.send((key, f"dlib could not embed the face: {exc}"))


class EmbeddingWorker:
    """One face in flight at a time: :meth:`submit` when :attr:`busy` is False, :meth:`poll` on every frame."""

    def __init__(self, jitters: int = 1, start_timeout_s: float = 30.0) -> None:
        ctx = mp.get_context("spawn")  # no fork: the parent has threads (camera, perception, link)
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, jitters), name="edgepilot-embed", daemon=True)
        self._process.start()
        child.close()
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise ModelError(f"the face embedding process did not start within {start_timeout_s:.0f} s")
        status = self._conn.recv()
        if status != _READY:
            self.close()
            raise ModelError(status)
        self.busy = False

    def submit(self, key: object, crop_rgb: np.ndarray, rect: tuple[int, int, int, int]) -> None:
        if self.busy:
            raise RuntimeError("one embedding at a time: poll() until the last one is back")
        self._conn.send((key, crop_rgb, rect))
        self.busy = True

    def poll(self) -> tuple[object, np.ndarray | InputError] | None:
        """The answer to the last submit if it is back: ``(key, embedding)``, or ``(key, InputError)``."""
        if not self.busy or not self._conn.poll():
            return None
        try:
            key, result = self._conn.recv()
        except (EOFError, OSError):
            raise ModelError("the face embedding process stopped") from None
        self.busy = False
        return key, (InputError(result) if isinstance(result, str) else result)

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._process.join(timeout=2.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=2.0)
        self._conn.close()
