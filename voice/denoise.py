"""Streaming noise reduction for steady noise (propellers, motors, fans) before endpointing and recognition.

Short-time spectra (32 ms frames, 16 ms hop, square-root Hann windows so overlap-add is exact) are multiplied by a
Wiener gain whose a-priori SNR is estimated "decision-directed" (Ephraim and Malah: mostly from the previous frame's
cleaned spectrum), which leaves far less "musical" residual noise than plain spectral subtraction. PocketSphinx heard
much better through it: on the noisy test set (pink noise 15 dB below the speech), 92-95% of the commands came out
right as the best hypothesis, against 78% with the spectral subtraction used before and 60% with no noise reduction
(scripts/bench_voice.py).

The noise spectrum is the average of the first 0.1 s (a stream starts before anyone speaks), then follows the noise:
a frequency bin whose power stays within ``speech_ratio`` of the estimate is noise and is averaged in (a time constant
of about 0.15 s); a louder bin (speech) only lets the estimate creep up at ``rise_db_per_s``, so a word is never
learnt as noise; and the estimate is never below the quietest moment of the last 1.5 s, so noise that starts or grows
suddenly is learnt within that time. Costs 16 ms of delay and a few % of one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 512
HOP = 256
RATE = 16000
MIN_WINDOW_HOPS = 32  # 0.5 s; the noise is at least the quietest moment of the last three of these


@dataclass(frozen=True)
class DenoiseConfig:
    gain_floor: float = 0.1  # the least a bin is multiplied by (-20 dB): deeper cuts sound like chirps to the model
    decision_directed: float = 0.98  # weight of the previous frame's cleaned spectrum in the a-priori SNR
    learn_s: float = 0.1  # noise learnt at the start of the stream
    speech_ratio: float = 3.0  # a bin louder than this times the noise estimate is speech
    noise_smoothing: float = 0.9  # per 16 ms hop, for the bins that are noise
    rise_db_per_s: float = 2.0  # how fast the estimate may rise under speech


def _prior_snr(power: np.ndarray, noise: np.ndarray, previous_clean: np.ndarray | None,
               config: DenoiseConfig) -> np.ndarray:
    """Decision-directed a-priori SNR of one frame, from the previous frame's cleaned power (None: the first)."""
    measured = np.maximum(power / noise - 1.0, 0.0)
    if previous_clean is None:
        return measured
    alpha = config.decision_directed
    return alpha * previous_clean / noise + (1.0 - alpha) * measured


def _wiener_gain(prior_snr: np.ndarray, config: DenoiseConfig) -> np.ndarray:
    return np.maximum(prior_snr / (1.0 + prior_snr), config.gain_floor)


class SpectralDenoiser:
    """``process(int16 samples) -> int16 samples`` (as many, delayed by ``SIZE - HOP``)."""

    def __init__(self, config: DenoiseConfig | None = None) -> None:
        self.config = config or DenoiseConfig()
        self._rise = 10 ** (self.config.rise_db_per_s / 10 * HOP / RATE)
        self._learn_frames = max(1, round(self.config.learn_s * RATE / HOP))
        self._window = np.sqrt(np.hanning(SIZE + 1)[:-1])
        self._input = np.zeros(SIZE - HOP)  # the previous frame's tail
        self._output = np.zeros(SIZE - HOP)  # overlap-add carry
        self._noise = np.zeros(SIZE // 2 + 1)
        self._smoothed: np.ndarray | None = None
        self._previous_clean: np.ndarray | None = None
        self._frames = 0
        self._window_min: list[np.ndarray] = []  # minima of the last few sub-windows of ``MIN_WINDOW_HOPS``
        self._sub_min: np.ndarray | None = None

    def _track_noise(self, power: np.ndarray) -> None:
        config = self.config
        self._frames += 1
        if self._frames <= self._learn_frames:
            self._noise += (power - self._noise) / self._frames  # running mean
            self._smoothed = self._noise.copy()
            return
        assert self._smoothed is not None
        self._smoothed = 0.7 * self._smoothed + 0.3 * power
        # A small absolute floor, so an estimate learnt on digital silence can still rise when noise starts.
        noise = np.maximum(self._noise, 1.0)
        is_noise = power < config.speech_ratio * noise
        averaged = config.noise_smoothing * noise + (1.0 - config.noise_smoothing) * power
        crept = np.minimum(noise * self._rise, np.maximum(self._smoothed, noise))
        # Noise that starts after a silence (motors spinning up) looks like speech at first; but nothing that is
        # there for 1.5 s without a quiet moment is speech, so the quietest smoothed moment bounds the estimate.
        self._sub_min = self._smoothed.copy() if self._sub_min is None else np.minimum(self._sub_min, self._smoothed)
        if self._frames % MIN_WINDOW_HOPS == 0:
            self._window_min = [*self._window_min[-2:], self._sub_min]
            self._sub_min = None
        floor = np.min(self._window_min, axis=0) if len(self._window_min) == 3 else 0.0
        self._noise = np.maximum(np.where(is_noise, averaged, crept), floor)

    def _gain(self, power: np.ndarray) -> np.ndarray:
        gain = _wiener_gain(_prior_snr(power, np.maximum(self._noise, 1e-3), self._previous_clean, self.config),
                            self.config)
        self._previous_clean = gain**2 * power
        return gain

    def clean_utterance(self, samples: np.ndarray) -> np.ndarray:
        """``samples`` (a whole utterance, not yet denoised) cleaned with the present noise estimate, non-causally.

        The streaming gain lags at every onset, because its a-priori SNR is mostly the previous frame's: the start of
        a short word is cut, and in pink noise PocketSphinx heard "go up fifty" as "go left fifty" (most of its wrong
        commands in noise). Here the a-priori SNR is also run backwards in time, and the larger of the two is used,
        which lags at neither end of a word. Returns as many samples, aligned with the input (no delay).
        """
        config = self.config
        noise = np.maximum(self._noise, 1e-3)
        padded = np.concatenate([np.zeros(SIZE - HOP), samples.astype(np.float64), np.zeros(SIZE)])
        count = (len(padded) - SIZE) // HOP + 1
        spectra = np.fft.rfft(np.stack([padded[k * HOP:k * HOP + SIZE] for k in range(count)]) * self._window, axis=1)
        power = spectra.real**2 + spectra.imag**2

        def prior_snr(order: range) -> np.ndarray:
            out = np.empty_like(power)
            previous = None
            for k in order:
                out[k] = _prior_snr(power[k], noise, previous, config)
                previous = _wiener_gain(out[k], config) ** 2 * power[k]
            return out

        snr = np.maximum(prior_snr(range(count)), prior_snr(range(count - 1, -1, -1)))
        frames = np.fft.irfft(spectra * _wiener_gain(snr, config), SIZE, axis=1) * self._window
        out = np.zeros(len(padded))
        for k in range(count):
            out[k * HOP:k * HOP + SIZE] += frames[k]
        return np.clip(np.round(out[SIZE - HOP:SIZE - HOP + len(samples)]), -32768, 32767).astype(np.int16)

    @property
    def delay(self) -> int:
        """Samples held back: ``process(np.zeros(delay))`` at the end of a stream returns the rest."""
        return SIZE - HOP

    def process(self, samples: np.ndarray) -> np.ndarray:
        buffer = np.concatenate([self._input, samples.astype(np.float64)])
        hops = (len(buffer) - (SIZE - HOP)) // HOP
        out = np.empty(hops * HOP)
        for k in range(hops):
            spectrum = np.fft.rfft(buffer[k * HOP: k * HOP + SIZE] * self._window)
            power = spectrum.real**2 + spectrum.imag**2
            self._track_noise(power)
            frame_out = np.fft.irfft(spectrum * self._gain(power), SIZE) * self._window
            frame_out[: SIZE - HOP] += self._output
            out[k * HOP:(k + 1) * HOP] = frame_out[:HOP]
            self._output = frame_out[HOP:]
        self._input = buffer[hops * HOP:]
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)
