"""Audio sources for the recognisers: WAV files (any rate and channel count) and the microphone.

Both implement :class:`edgepilot.pilot.core.hal.AudioSource`: mono int16 chunks at 16 kHz. Files are resampled and down-mixed here
(libsoxr's streaming resampler, so the microphone can use it too when a device cannot record at 16 kHz), and
can be played at real-time pace (as a microphone would deliver them) or as fast as the recogniser can take them.
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.errors import InputError

log = logging.getLogger(__name__)

RATE = 16000
CHUNK_MS = 20


class StreamResampler:
    """Band-limited resampling of a stream, block by block, by libsoxr (``soxr.ResampleStream``).

    Any pair of rates works (44100 -> 16000 as well as 22050 -> 16000) and block boundaries leave no trace. A block is
    int16-scale samples of any real dtype; the output is float32 on the same scale, not clipped (``to_int16`` does).
    libsoxr filters in blocks of its own, so the output comes in bursts: a 20 ms block at 48 kHz yields 0 or about
    490 samples, on average 30 ms after they came in (56 ms at most). ``final=True`` flushes the tail and ends the
    stream (a later block starts a new one); a stream of ``n`` samples gives ``n * rate_out / rate_in`` of them,
    rounded half up. Equal rates pass the samples through.
    """

    # "HQ", libsoxr's 20-bit recipe: at 16 kHz out it is flat to 7.4 kHz and > 120 dB down from 8.2 kHz, so it keeps
    # all the recognisers hear (pocketsphinx's filterbank ends at 6.8 kHz) with aliases below int16's noise floor;
    # "LQ" is 8 dB down at 6.8 kHz, "MQ" costs as much for 16 bits, "VHQ" adds 20 ms of latency for bits int16 drops.
    QUALITY = "HQ"

    def __init__(self, rate_in: int, rate_out: int = RATE) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise InputError(f"invalid sample rate {rate_in} -> {rate_out} Hz")
        self.rate_in = rate_in
        self.rate_out = rate_out
        self.identity = rate_in == rate_out
        # Made here rather than on the first block, which for the microphone is in PortAudio's callback.
        self._stream = None if self.identity else self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream:
        # float32: the HQ recipe computes in single precision, so float32 in and out needs no conversion in libsoxr,
        # libsoxr clips only integer output (so int16-scale floats need no scaling), and float32's 24-bit mantissa
        # holds 16- and 24-bit samples on the int16 scale exactly (32-bit ones to a thousandth of an int16 step).
        return soxr.ResampleStream(self.rate_in, self.rate_out, 1, dtype="float32", quality=self.QUALITY)

    def process(self, block: np.ndarray, final: bool = False) -> np.ndarray:
        """Resample the next ``block`` (1-D, int16 scale); with ``final`` flush what is left."""
        samples = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        if self.identity:
            return samples
        if self._stream is None:  # the previous stream was ended by ``final``
            self._stream = self._new_stream()
        out = self._stream.resample_chunk(samples, last=final)
        if final:
            self._stream = None
        return out


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


def _decode_frames(raw: bytes, width: int, channels: int) -> np.ndarray:
    """PCM bytes -> float samples (int16 scale), channels averaged."""
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = bytes3[:, 0] | (bytes3[:, 1] << 8) | (bytes3[:, 2] << 16)
        data = np.where(value >= 1 << 23, value - (1 << 24), value).astype(np.float64) / 256.0
    else:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    return data.reshape(-1, channels).mean(axis=1)


class WavSource:
    """A WAV file as 16 kHz mono int16 chunks, at real-time pace or as fast as they are taken."""

    sample_rate = RATE

    def __init__(self, path: str | Path, realtime: bool = False, chunk_ms: int = CHUNK_MS,
                 clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.chunk_ms = chunk_ms
        self.clock = clock or MonotonicClock()
        self._closed = False
        try:
            with wave.open(str(self.path), "rb") as wav:
                self.channels = wav.getnchannels()
                self.width = wav.getsampwidth()
                self.file_rate = wav.getframerate()
                self.frames = wav.getnframes()
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{self.path}: is a directory, not a WAV file") from None
        except (wave.Error, EOFError, RuntimeError, ValueError, struct.error) as exc:
            # wave raises a bare RuntimeError for a chunk that claims to run past the end of the file.
            reason = str(exc) or "a chunk runs past the end of the file"
            raise InputError(f"{self.path}: not a readable WAV file ({reason}); convert it with "
                             f"'ffmpeg -i IN -ac 1 -ar 16000 -sample_fmt s16 OUT.wav'") from None
        if self.width not in (1, 2, 3, 4) or self.channels < 1 or self.file_rate < 4000:
            raise InputError(f"{self.path}: unsupported WAV ({self.channels} channels, {8 * self.width}-bit, "
                             f"{self.file_rate} Hz); use 8-32 bit PCM at 4 kHz or more")
        data_bytes = self.frames * self.channels * self.width
        header_guess = self.path.stat().st_size - data_bytes
        if header_guess < 44:  # a WAV header is at least 44 bytes, so the data is shorter than the header says
            raise InputError(f"{self.path}: truncated WAV: the header promises {self.frames / self.file_rate:.2f} s "
                             f"of audio but the file ends early")

    @property
    def duration_s(self) -> float:
        return self.frames / self.file_rate

    def chunks(self) -> Iterator[np.ndarray]:
        block_frames = max(1, self.file_rate * self.chunk_ms // 1000)
        resampler = StreamResampler(self.file_rate, RATE)
        start = self.clock.now()
        sent = 0
        with wave.open(str(self.path), "rb") as wav:
            read = 0
            while not self._closed:
                raw = wav.readframes(block_frames)
                frames = len(raw) // (self.width * self.channels)
                read += frames
                final = read >= self.frames or frames == 0
                if frames == 0 and read < self.frames:
                    raise InputError(f"{self.path}: truncated WAV: ends after {read / self.file_rate:.2f} s of "
                                     f"{self.duration_s:.2f} s")
                samples = _decode_frames(raw[: frames * self.width * self.channels], self.width, self.channels)
                out = to_int16(resampler.process(samples, final=final))
                if out.size:
                    if self.realtime:
                        self.clock.sleep(start + (sent + out.size) / RATE - self.clock.now())
                    sent += out.size
                    yield out
                if final:
                    return

    def close(self) -> None:
        self._closed = True


class MicSource:
    """The microphone (PortAudio via sounddevice), 16 kHz mono int16, in 20 ms chunks.

    ``device`` is a device index or part of its name (see ``python -m sounddevice``); None is the system default.
    If the device cannot record at 16 kHz it records at its own rate and is resampled here.
    """

    sample_rate = RATE

    def __init__(self, device: int | str | None = None, chunk_ms: int = CHUNK_MS, max_queue_s: float = 5.0) -> None:
        try:
            import sounddevice
        except OSError:
            raise InputError("the PortAudio library is missing, so no microphone can be opened "
                             "(apt install libportaudio2); or give --wav FILE") from None
        except ImportError:
            raise InputError("the Python package 'sounddevice' is missing (pip install sounddevice)") from None
        self._sd = sounddevice
        try:
            info = sounddevice.query_devices(device, kind="input")
        except (ValueError, sounddevice.PortAudioError) as exc:
            raise InputError(f"no microphone found ({exc}); plug one in, pick one with --device "
                             f"(list: python -m sounddevice), or give --wav FILE") from None
        if info.get("max_input_channels", 0) < 1:
            raise InputError(f"device {info.get('name')!r} has no input channels; pick a microphone with --device")
        self.device_name = str(info.get("name"))
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max(1, int(max_queue_s * 1000 / chunk_ms)))
        self._dropped = 0
        self._lock = threading.Lock()
        rate = RATE
        try:
            sounddevice.check_input_settings(device=device, samplerate=RATE, channels=1, dtype="int16")
        except Exception:  # noqa: BLE001 - PortAudio reports an unsupported rate in several ways
            rate = int(info["default_samplerate"])
            log.info("microphone %r cannot record at 16 kHz; recording at %d Hz and resampling", self.device_name, rate)
        self._resampler = StreamResampler(rate, RATE)
        try:
            self._stream = sounddevice.InputStream(
                device=device, samplerate=rate, channels=1, dtype="int16",
                blocksize=rate * chunk_ms // 1000, callback=self._on_audio)
            self._stream.start()
        except sounddevice.PortAudioError as exc:
            raise InputError(f"cannot open microphone {self.device_name!r}: {exc}") from None
        log.info("listening on %r at %d Hz", self.device_name, rate)

    def _on_audio(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        # PortAudio's thread: only copy and hand over. When the consumer falls behind, drop the oldest audio rather
        # than block the audio thread (which would drop new audio instead).
        chunk = to_int16(self._resampler.process(indata[:, 0]))
        if not chunk.size:  # the resampler gives its output in bursts: nothing new in this block
            return
        while True:
            try:
                self._queue.put_nowait(chunk)
                return
            except queue.Full:
                with self._lock:
                    self._dropped += 1
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def chunks(self) -> Iterator[np.ndarray]:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            stream.stop()
            stream.close()
            if self._dropped:
                log.warning("the recogniser fell behind: %d microphone chunks were dropped", self._dropped)
            self._queue.put(None)


def open_source(spec: str, realtime: bool = True, device: int | str | None = None) -> WavSource | MicSource:
    """``"mic"`` (or ``"mic:DEVICE"``) for the microphone, else a WAV file path."""
    if spec == "mic" or spec.startswith("mic:"):
        name = spec[4:] or device
        if isinstance(name, str) and name.isdigit():
            name = int(name)
        return MicSource(device=name)
    return WavSource(spec, realtime=realtime)
