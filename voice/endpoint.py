"""Voice activity: which 10 ms frames hold speech, against a noise floor that follows steady noise (propellers, fans).

Energy is measured in the speech band (250-3800 Hz) so low-frequency hum and rumble count for little. The noise floor
falls at once to a quieter frame and rises slowly, so a steady noise is learnt in a second or two while speech (which
comes and goes) never is. A frame is speech when it stands ``on_db`` above the floor; an utterance starts after a few
speech frames, and *when* it ends is decided by the caller (see :mod:`voice.listener`), which knows whether the words so
far already make a command.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME = 160  # 10 ms at 16 kHz


@dataclass(frozen=True)
class VadConfig:
    on_db: float = 9.0  # above the noise floor
    min_level_db: float = 25.0  # absolute level (dB re 1 LSB RMS in the band): digital silence is never speech
    start_frames: int = 3  # speech frames within the last `start_window` to start an utterance
    start_window: int = 5
    floor_rise_db_per_s: float = 3.0


class VoiceActivity:
    """Feed 10 ms frames; read ``in_speech``, ``silence_frames`` (since the last speech frame) and ``last_speech``."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        freqs = np.fft.rfftfreq(2 * FRAME, 1 / 16000)
        self._band = (freqs >= 250) & (freqs <= 3800)
        self._window = np.hanning(2 * FRAME)
        self._previous = np.zeros(FRAME)
        self._floor_db: float | None = None
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
        if self._floor_db is None or level < self._floor_db:
            self._floor_db = level
        else:
            self._floor_db += config.floor_rise_db_per_s * FRAME / 16000
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

    def end_utterance(self) -> None:
        """The caller ended the utterance: wait for new speech."""
        self.in_speech = False
        self._recent = []

    @property
    def floor_db(self) -> float:
        return self._floor_db if self._floor_db is not None else 0.0
