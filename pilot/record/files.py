"""The files of a run folder (a recording) and how they are written and read back.

A run folder holds::

    manifest.json      what ran: versions, argv and config, models (sha256), vehicle, seeds; "status" says whether
                       the run closed its recording ("complete") or was cut short ("recording")
    telemetry.jsonl    one line per control tick: the vehicle's state, what the pilot saw, was told and sent
    commands.jsonl     every command with its source (script, voice, keys, safety...) and result
    detections.jsonl   one line per camera frame perception processed: exact time stamp and detections
    events.jsonl       safety actions, rejections, vehicle events
    frames.mkv         the frames perception saw, lossless (FFV1): what replay feeds perception again
    video.mp4          the same frames in H.264 for watching

The JSONL files are written by one thread, flushed and fsync'ed every second, so a crash or a power cut loses at most
the last second; a reader accepts a cut-off last line (the file is then "truncated").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from edgepilot.pilot.core.errors import InputError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TICKS = "telemetry.jsonl"
COMMANDS = "commands.jsonl"
DETECTIONS = "detections.jsonl"
EVENTS = "events.jsonl"
LOSSLESS_VIDEO = "frames.mkv"
VIEWING_VIDEO = "video.mp4"
JSONL_FILES = (TICKS, COMMANDS, DETECTIONS, EVENTS)
#: Bumped when the layout changes in a way an older replay cannot read.
FORMAT = 1
FLUSH_S = 1.0


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: dict) -> None:
    """Write to a temporary file, fsync, rename over ``path``: readers see the old or the new file, never half."""
    part = path.with_name(path.name + ".part")
    with open(part, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def is_recording(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder} is not a recording: no manifest.json")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is corrupt ({exc}); the recording cannot be replayed") from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise InputError(f"{path} is not an edgepilot recording manifest")
    if manifest["format"] > FORMAT:
        raise InputError(f"{folder} was recorded by a newer edgepilot (format {manifest['format']}); upgrade to "
                         "replay it")
    return manifest


def read_jsonl(path: Path) -> tuple[list[dict], bool]:
    """The records of a JSONL file and whether it was cut off (a last line without its newline or unparsable, as
    a killed writer leaves it). A missing file reads as empty and cut off. A bad line in the middle is corruption."""
    if not path.is_file():
        return [], True
    data = path.read_bytes()
    lines = data.split(b"\n")
    cut = lines.pop() != b""  # the text after the last newline: empty for a complete file
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if number == len(lines) and not cut:  # a torn write can also end with a newline of garbage
                return records, True
            raise InputError(f"{path} line {number} is corrupt; the recording cannot be replayed") from None
    return records, cut


class JsonlWriter:
    """Appends records to the run folder's JSONL files from one background thread, so the control loop only pays
    for a queue put. Flushes and fsyncs every :data:`FLUSH_S`. The queue is bounded: if the disk stalls for longer
    than it holds, records are dropped and counted rather than stalling the loop."""

    def __init__(self, folder: Path, names: tuple[str, ...] = JSONL_FILES, max_queue: int = 50_000,
                 flush_s: float = FLUSH_S) -> None:
        self.folder = folder
        self.flush_s = flush_s
        #: Wait for room instead of dropping (simulations on a fake clock: completeness over speed).
        self.block = False
        self.dropped = 0
        self.error: BaseException | None = None
        # Large buffers: the files reach the disk together, at each sync, never one ahead of another (a default 8 kB
        # buffer let the ticks spill to disk while the commands of those ticks waited: a killed run then replayed a
        # command the recording did not have). The ticks, which bound a replay, are synced last.
        self._files = {name: open(folder / name, "a", encoding="utf-8", buffering=1 << 20)  # noqa: SIM115
                       for name in sorted(names, key=lambda n: n == TICKS)}
        self._queue: queue.Queue[tuple[str, dict] | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="recorder-jsonl", daemon=True)
        self._thread.start()

    def put(self, name: str, record: dict) -> None:
        try:
            self._queue.put((name, record), block=self.block)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        last_flush = time.monotonic()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.flush_s)
                except queue.Empty:
                    item = ...
                if item is None:
                    break
                if item is not ...:
                    name, record = item
                    self._files[name].write(json.dumps(record, separators=(",", ":"), default=_plain) + "\n")
                if time.monotonic() - last_flush >= self.flush_s:
                    self._sync()
                    last_flush = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - a full disk must not take the flight down; close() reports it
            self.error = exc
            log.error("recording stopped: %s", exc)
        finally:
            self._sync()

    def _sync(self) -> None:
        for f in self._files.values():
            try:
                f.flush()
                os.fsync(f.fileno())
            except (OSError, ValueError) as exc:
                log.debug("sync failed: %s", exc)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._queue.put(None)  # blocking put: everything before it gets written
        self._thread.join()
        for f in self._files.values():
            f.close()


def _plain(value: Any) -> Any:
    """numpy scalars (a detector's float32 score) as Python numbers; anything else as its text."""
    return value.item() if hasattr(value, "item") else str(value)
