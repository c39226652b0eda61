"""Voice activity: which 10 ms frames hold speech, against a noise floor that follows steady noise (propellers, fans).

Energy is measured in the speech band (250-3800 Hz) so low-frequency hum and rumble count for little. The noise floor
is the quietest frame of the last ``floor_window_s`` (minimum statistics): speech always has a quiet moment between
words within a second or so, steady noise never does, so noise that starts, grows or fades is followed within that
window while speech is never taken for noise. Digital silence (a stream's first zeros, a muted input) is no noise
level: it is left out, or the floor would sit far below any real noise and every propeller frame would be "speech".
A frame is speech when it stands ``on_db`` above the floor; an utterance starts after a few speech frames, and *when*
it ends is decided by the caller (see :mod:`edgepilot.voice.listener`), which knows whether the words so far already make a
command.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

FRAME = 160  # 10 ms at 16 kHz


@dataclass(frozen=True)
class VadConfig:
    on_db: float = 9.0  # above the noise floor
    min_level_db: float = 25.0  # absolute level (dB re 1 LSB RMS in the band): digital silence is never speech
    start_frames: int = 3  # speech frames within the last `start_window` to start an utterance
    start_window: int = 5
    floor_window_s: float = 1.5
    digital_silence_db: float = 0.0  # a frame quieter than this is exact zeros or nearly: not a noise level


_BLOCK = 25  # frames per block of the windowed minimum (0.25 s)


class VoiceActivity:
    """Feed 10 ms frames; read ``in_speech``, ``silence_frames`` (since the last speech frame) and ``last_speech``."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        freqs = np.fft.rfftfreq(2 * FRAME, 1 / 16000)
        self._band = (freqs >= 250) & (freqs <= 3800)
        self._window = np.hanning(2 * FRAME)
        self._previous = np.zeros(FRAME)
        self._floor_db: float | None = None
        self._block_min = float("inf")
        self._block_minima: collections.deque[float] = collections.deque(
            maxlen=max(1, round(self.config.floor_window_s * 16000 / FRAME / _BLOCK)))
        self._recent: list[bool] = []
        self.frames = 0
        self.in_speech = False
        self.silence_frames = 0
        self.last_speech_frame = -1

    def level_db(self, frame: np.ndarray) -> float:
        """Band energy of this frame (with the previous one, a 20 ms window), dB re 1 LSB."""
        samples = np.concatenate([self._previous, frame.astype(np.float64)])
        self._previous = samples[FRAME:]
        spectrum = np.abs(np.fft.rfft(samples * self._window)) ** 2
        power = float(np.sum(spectrum[self._band])) / (FRAME * 2) ** 2 * 4
        return 10.0 * np.log10(power + 1e-9)

    def push(self, frame: np.ndarray) -> bool:
        """Take one 10 ms frame; return whether it is speech."""
        config = self.config
        level = self.level_db(frame)
        self._track_floor(level)
        speech = level > max(self._floor_db + config.on_db, config.min_level_db)
        self._recent = (self._recent + [speech])[-config.start_window:]
        if not self.in_speech and sum(self._recent) >= config.start_frames:
            self.in_speech = True
        if speech:
            self.silence_frames = 0
            self.last_speech_frame = self.frames
        else:
            self.silence_frames += 1
        self.frames += 1
        return speech

    def _track_floor(self, level: float) -> None:
        if level >= self.config.digital_silence_db:
            self._block_min = min(self._block_min, level)
        if self.frames % _BLOCK == _BLOCK - 1 and self._block_min < float("inf"):
            self._block_minima.append(self._block_min)
            self._block_min = float("inf")
        known = min([*self._block_minima, self._block_min])
        if known < float("inf"):
            self._floor_db = known
        elif self._floor_db is None:
            self._floor_db = level  # only digital silence so far

    def end_utterance(self) -> None:
        """The caller ended the utterance: wait for new speech."""
        self.in_speech = False
        self._recent = []

    @property
    def floor_db(self) -> float:
        return self._floor_db if self._floor_db is not None else 0.0
