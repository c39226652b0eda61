"""Spoken feedback, offline: text to speech through a synthesiser the OS installs (no download, no network).

    tts = make_tts()                        # espeak-ng if installed, else flite; InputError saying how to install
    speaker = Speaker(tts, play=True, wav=Path("said.wav"))
    speaker.say("taking off", t_s=0.4)      # returns at once; a thread synthesises and plays it
    speaker.speaking()                      # True while it plays (and a moment after): the microphone's gate
    speaker.close()                         # finishes what is queued, writes the WAV

Backends are called through their command line (``espeak-ng --stdout``, ``flite -o``): both are packaged by Debian and
Raspberry Pi OS (``apt install espeak-ng``), take a few megabytes and start in tens of milliseconds. A backend is
anything with ``name`` and ``synthesize(text) -> int16 samples at 16 kHz``.

The WAV (``wav=``) is the run's timeline: each phrase starts at the run time it was said (``t_s``), or right after the
previous phrase if that is still speaking, with silence between; so it lines up with the recording's events.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Protocol

import numpy as np

from edgepilot.pilot.core.errors import InputError, ModelError
from edgepilot.voice.audio import RATE, StreamResampler, to_int16

log = logging.getLogger(__name__)

#: After speech ends the microphone stays gated this long more (room echo, the output device's buffer).
GATE_TAIL_S = 0.3
SYNTH_TIMEOUT_S = 10.0


class TextToSpeech(Protocol):
    name: str

    def synthesize(self, text: str) -> np.ndarray:
        """Mono int16 samples at 16 kHz."""


def _wav_to_16k(data: bytes, what: str) -> np.ndarray:
    """A WAV (as bytes) to 16 kHz mono int16. espeak-ng's ``--stdout`` header gives a placeholder length (it streams),
    so the data chunk is taken to the end of the bytes rather than trusted."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ModelError(f"{what} did not produce a WAV")
    at = data.find(b"fmt ")
    channels, rate, width = (int.from_bytes(data[at + 10:at + 12], "little"),
                             int.from_bytes(data[at + 12:at + 16], "little"),
                             int.from_bytes(data[at + 22:at + 24], "little") // 8)
    start = data.find(b"data", at) + 8
    if at < 0 or start < 8 or width != 2 or channels < 1:
        raise ModelError(f"{what}: unexpected WAV format ({channels} channels, {8 * width}-bit)")
    pcm = np.frombuffer(data[start:start + (len(data) - start) // (2 * channels) * 2 * channels], "<i2")
    mono = pcm.reshape(-1, channels).mean(axis=1)
    return to_int16(StreamResampler(rate, RATE).process(mono, final=True)) if rate != RATE else to_int16(mono)


def _run(argv: list[str], what: str) -> bytes:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=SYNTH_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        raise ModelError(f"{what} failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()[:200]}")
    return done.stdout


class EspeakNg:
    """eSpeak NG (formant synthesis: robotic but clear, 100+ languages)."""

    name = "espeak-ng"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 165) -> None:
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise InputError("spoken feedback needs espeak-ng: sudo apt install espeak-ng")
        self.voice, self.words_per_minute = voice, words_per_minute

    def synthesize(self, text: str) -> np.ndarray:
        # "--" ends the options: text can never be taken for one.
        data = _run([self.binary, "--stdout", "-v", self.voice, "-s", str(self.words_per_minute), "--", text],
                    "espeak-ng")
        return _wav_to_16k(data, "espeak-ng")


class Flite:
    """CMU Flite (diphone synthesis, English)."""

    name = "flite"

    def __init__(self, voice: str = "slt") -> None:
        self.binary = shutil.which("flite")
        if self.binary is None:
            raise InputError("spoken feedback with flite needs it installed: sudo apt install flite")
        self.voice = voice

    def synthesize(self, text: str) -> np.ndarray:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "said.wav"
            _run([self.binary, "-voice", self.voice, "-t", text, "-o", str(out)], "flite")
            return _wav_to_16k(out.read_bytes(), "flite")


BACKENDS = {"espeak-ng": EspeakNg, "flite": Flite}


def make_tts(name: str | None = None) -> TextToSpeech:
    """The named backend, or the first installed of espeak-ng, flite."""
    if name is not None:
        if name not in BACKENDS:
            raise InputError(f"unknown speech synthesiser {name!r}; choose {' or '.join(BACKENDS)}")
        return BACKENDS[name]()
    for candidate in BACKENDS:
        if shutil.which(candidate):
            return BACKENDS[candidate]()
    raise InputError("spoken feedback needs a speech synthesiser: sudo apt install espeak-ng (or flite)")


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())


class Speaker:
    """Says phrases on a thread of its own, in order, through the loudspeaker (``play``) and/or into a WAV."""

    def __init__(self, tts: TextToSpeech, *, play: bool = False, wav: Path | None = None,
                 device: int | str | None = None) -> None:
        self.tts = tts
        self.wav = wav
        self._sd = None
        if play:
            try:
                import sounddevice
            except (OSError, ImportError):
                raise InputError("--speak needs PortAudio to play sound (apt install libportaudio2); "
                                 "or write it with --speak-to F.wav") from None
            self._sd = sounddevice
        self.plays = play
        self.device = device
        self._queue: queue.Queue[tuple[str, float, float] | None] = queue.Queue()
        self._timeline: list[tuple[float, np.ndarray]] = []
        self._speaking_until = 0.0  # time.monotonic()
        self._busy = threading.Event()
        #: (text, t_s asked, wall seconds from the request to the audio being ready) for every phrase said.
        self.said: list[tuple[str, float, float]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="speaker", daemon=True)
        self._thread.start()

    def say(self, text: str, t_s: float) -> None:
        """Queue ``text`` said at run time ``t_s``; never blocks."""
        self._busy.set()
        self._queue.put((text, t_s, time.monotonic()))

    def speaking(self) -> bool:
        """True from a request until its sound has played (plus :data:`GATE_TAIL_S`): while this is true the
        microphone must not be listened to, or the pilot hears itself."""
        return self._busy.is_set() or time.monotonic() < self._speaking_until

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            text, t_s, asked = item
            try:
                samples = self.tts.synthesize(text)
                ready = time.monotonic()
                self.said.append((text, t_s, ready - asked))
                log.info("said %r (ready %.0f ms after the request)", text, 1e3 * (ready - asked))
                self._timeline.append((t_s, samples))
                if self._sd is not None:
                    duration = len(samples) / RATE
                    self._speaking_until = ready + duration + GATE_TAIL_S
                    self._sd.play(samples, RATE, device=self.device, blocking=True)
            except Exception as exc:  # noqa: BLE001 - feedback must never take the pilot down; reported at close
                self.error = self.error or exc
                log.warning("could not say %r: %s", text, exc)
            finally:
                if self._queue.empty():
                    self._busy.clear()
                    self._speaking_until = max(self._speaking_until, time.monotonic() + GATE_TAIL_S)

    def close(self) -> None:
        """Say what is queued, then write the WAV (if asked). Idempotent."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=SYNTH_TIMEOUT_S * 2)
        if self.wav is not None and self._timeline is not None:
            write_wav(self.wav, timeline(self._timeline))
            self._timeline = None  # type: ignore[assignment]


def timeline(phrases: list[tuple[float, np.ndarray]], gap_s: float = 0.6) -> np.ndarray:
    """Place each phrase at its time (seconds) with silence between; a phrase never overlaps the one before (it
    starts ``gap_s`` after it instead)."""
    out: list[np.ndarray] = []
    at = 0
    for t_s, samples in sorted(phrases, key=lambda p: p[0]):
        start = max(round(t_s * RATE), at + (round(gap_s * RATE) if out else 0))
        out.append(np.zeros(start - at, np.int16))
        out.append(np.asarray(samples, np.int16))
        at = start + len(samples)
    out.append(np.zeros(round(0.3 * RATE), np.int16))
    return np.concatenate(out) if out else np.zeros(0, np.int16)
