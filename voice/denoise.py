"""Streaming spectral subtraction for steady noise (propellers, motors, fans) before recognition.

Short-time spectra (32 ms frames, 16 ms hop, square-root Hann windows so overlap-add is exact) lose a learnt noise
spectrum. The noise spectrum follows each frequency's quiet moments: it falls to a quieter (smoothed) frame at once and
rises slowly, so speech, which comes and goes, is not learnt as noise. Costs 16 ms of delay and a few % of one core.
PocketSphinx's GMM model in particular hears much better through it (see scripts/bench_voice.py).
"""

from __future__ import annotations

import numpy as np

SIZE = 512
HOP = 256


class SpectralDenoiser:
    def __init__(self, over_subtract: float = 2.0, gain_floor: float = 0.1, rise_db_per_s: float = 2.0) -> None:
        self.over_subtract = over_subtract
        self.gain_floor = gain_floor
        self._rise = 10 ** (rise_db_per_s / 10 * HOP / 16000)
        self._window = np.sqrt(np.hanning(SIZE + 1)[:-1])
        self._input = np.zeros(SIZE - HOP)  # the previous frame's tail
        self._output = np.zeros(SIZE - HOP)  # overlap-add carry
        self._smoothed: np.ndarray | None = None
        self._noise: np.ndarray | None = None

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Take int16 samples, return as many denoised int16 samples (delayed by ``SIZE - HOP``)."""
        buffer = np.concatenate([self._input, samples.astype(np.float64)])
        hops = (len(buffer) - (SIZE - HOP)) // HOP
        out = np.empty(hops * HOP)
        for k in range(hops):
            frame = buffer[k * HOP: k * HOP + SIZE] * self._window
            spectrum = np.fft.rfft(frame)
            power = spectrum.real**2 + spectrum.imag**2
            if self._smoothed is None:
                self._smoothed = power.copy()
                self._noise = power.copy()
            self._smoothed = 0.7 * self._smoothed + 0.3 * power
            assert self._noise is not None
            self._noise = np.where(self._smoothed < self._noise, self._smoothed, self._noise * self._rise)
            gain = np.sqrt(np.maximum(1.0 - self.over_subtract * self._noise / np.maximum(power, 1e-9),
                                      self.gain_floor))
            frame_out = np.fft.irfft(spectrum * gain, SIZE) * self._window
            frame_out[: SIZE - HOP] += self._output
            out[k * HOP:(k + 1) * HOP] = frame_out[:HOP]
            self._output = frame_out[HOP:]
        self._input = buffer[hops * HOP:]
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)
