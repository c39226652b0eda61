"""Silencing native libraries that print straight to file descriptor 2 (LiteRT's "Created TensorFlow Lite XNNPACK
delegate", FFmpeg's "moov atom not found"): the CLI promises one clear line per error, and their failures surface as
Python exceptions or return values anyway. With debug logging on, nothing is hidden."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger("vision")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
