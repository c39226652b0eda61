#!/usr/bin/env python3
"""Benchmark the microphone's resampling: time per 20 ms block, 48 -> 16 kHz and 44.1 -> 16 kHz, for the
hand-written windowed-sinc resampler that edgepilot used before (copied below as the baseline, since it has left the
library) and for :class:`edgepilot.voice.audio.StreamResampler` (libsoxr), side by side in one run.

Each block is timed as MicSource's callback does the work: an int16 block in, int16 samples at 16 kHz out ("of
which libsoxr": only the float32 conversion and ``ResampleStream.resample_chunk``). The resamplers take turns, round by round, over the same signal, so both see the same machine state. libsoxr filters in
blocks of its own (about 30 ms of output at these rates), so its per-block cost is uneven: the median is the typical
callback, the mean is what it costs over time (a share of one core), the maximum is the callback's worst case.

    python scripts/bench_resample.py                  # 60 s of audio per rate, 5 rounds
    python scripts/bench_resample.py --seconds 10 --rounds 3
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import soxr

from edgepilot.voice.audio import CHUNK_MS, RATE, StreamResampler, to_int16

_PHASES = 512


class WindowedSincResampler:
    """The baseline: edgepilot's resampler before soxr, unchanged (Kaiser-windowed sinc, 16 taps each side, its
    kernel looked up in a table of 512 phases per input sample)."""

    def __init__(self, rate_in: int, rate_out: int = RATE, half_taps: int = 16) -> None:
        self.step = rate_in / rate_out  # input samples per output sample
        self.cutoff = min(1.0, 1.0 / self.step) * 0.92  # of the input Nyquist; a little below to leave a roll-off
        self.half_width = int(math.ceil(half_taps / min(1.0, 1.0 / self.step)))
        self._buffer = np.zeros(self.half_width, dtype=np.float64)  # starts with silence history
        self._next = float(self.half_width)  # position of the next output sample in the buffer
        self.identity = rate_in == rate_out
        self._table = np.zeros(0) if self.identity else self._make_table()

    def _kernel(self, offsets: np.ndarray) -> np.ndarray:
        return self._table[np.rint((offsets + self.half_width) * _PHASES).astype(np.int64)]

    def _make_table(self) -> np.ndarray:
        offsets = np.arange(2 * self.half_width * _PHASES + 1) / _PHASES - self.half_width
        ratio = np.clip(offsets / (self.half_width + 0.5), -1.0, 1.0)
        kaiser = np.i0(8.0 * np.sqrt(1.0 - ratio**2)) / np.i0(8.0)  # the Kaiser window's closed form
        return self.cutoff * np.sinc(self.cutoff * offsets) * kaiser

    def process(self, block: np.ndarray, final: bool = False) -> np.ndarray:
        if self.identity:
            return np.asarray(block, dtype=np.float64)
        pad = np.zeros(self.half_width + 1) if final else np.zeros(0)
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float64), pad])
        last = len(self._buffer) - self.half_width - 1  # latest position with a full window on the right
        count = int(math.floor((last - self._next) / self.step)) + 1 if last >= self._next else 0
        if final:
            count = max(count, 0)
        positions = self._next + self.step * np.arange(count)
        base = np.floor(positions).astype(np.int64)
        taps = np.arange(-self.half_width + 1, self.half_width + 1)
        index = base[:, None] + taps[None, :]
        out = np.sum(self._buffer[index] * self._kernel(positions[:, None] - index), axis=1) if count else np.zeros(0)
        self._next += self.step * count
        drop = max(0, int(math.floor(self._next)) - self.half_width)
        self._buffer = self._buffer[drop:]
        self._next -= drop
        return out


def old_callback(resampler: WindowedSincResampler, block: np.ndarray) -> np.ndarray:
    return to_int16(resampler.process(block[:, 0].astype(np.float64)))  # MicSource._on_audio before soxr


def new_callback(resampler: StreamResampler, block: np.ndarray) -> np.ndarray:
    return to_int16(resampler.process(block[:, 0]))  # MicSource._on_audio now


def bare_soxr_callback(stream: soxr.ResampleStream, block: np.ndarray) -> np.ndarray:
    return stream.resample_chunk(np.ascontiguousarray(block[:, 0], dtype=np.float32))  # libsoxr's share of it


def bare_soxr(rate: int) -> soxr.ResampleStream:
    return soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality=StreamResampler.QUALITY)


def signal(rate: int, seconds: float) -> np.ndarray:
    """Noise shaped like speech's spectrum (falling 6 dB an octave above 500 Hz), at a speaking level, as PortAudio's
    (frames, 1) int16 blocks would hold it. The content does not change the work; it keeps the numbers honest."""
    rng = np.random.default_rng(rate)
    spectrum = np.fft.rfft(rng.normal(0, 1, int(rate * seconds)))
    freqs = np.fft.rfftfreq(int(rate * seconds), 1 / rate)
    shaped = np.fft.irfft(spectrum / np.maximum(1.0, freqs / 500), n=int(rate * seconds))
    return np.round(shaped * 3000 / np.std(shaped)).clip(-32768, 32767).astype(np.int16)[:, None]


def time_blocks(callback: Callable[[Any, np.ndarray], np.ndarray], resampler: Any, samples: np.ndarray,
                block: int) -> tuple[np.ndarray, int]:
    """Seconds per block, and how many output samples came out."""
    times = np.empty(len(samples) // block)
    produced = 0
    clock = time.perf_counter
    for k in range(len(times)):
        piece = samples[k * block:(k + 1) * block]
        start = clock()
        out = callback(resampler, piece)
        times[k] = clock() - start
        produced += len(out)
    return times, produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per rate and round (default 60)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each resampler once per round (default 5)")
    args = parser.parse_args()
    print(f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"soxr {soxr.__version__} (libsoxr {soxr.__libsoxr_version__}), quality {StreamResampler.QUALITY}; "
          f"{args.rounds} rounds x {args.seconds:g} s of audio per rate, {CHUNK_MS} ms blocks")
    rows = []
    for rate in (48000, 44100):
        block = rate * CHUNK_MS // 1000
        samples = signal(rate, args.seconds)
        runs = {"windowed sinc (old)": (old_callback, WindowedSincResampler),
                "soxr (new)": (new_callback, StreamResampler),
                "  of which libsoxr": (bare_soxr_callback, bare_soxr)}
        times: dict[str, list[np.ndarray]] = {name: [] for name in runs}
        produced: dict[str, int] = {}
        for callback, make in runs.values():  # warm up: caches, the allocator, numpy's first calls
            time_blocks(callback, make(rate), samples[: rate * 2], block)
        gc.disable()
        try:
            for _ in range(args.rounds):
                for name, (callback, make) in runs.items():
                    run_times, produced[name] = time_blocks(callback, make(rate), samples, block)
                    times[name].append(run_times)
        finally:
            gc.enable()
        stats = {}
        for name, parts in times.items():
            ms = np.concatenate(parts) * 1e3
            stats[name] = {"median": float(np.median(ms)), "mean": float(np.mean(ms)),
                           "p99": float(np.percentile(ms, 99)), "max": float(np.max(ms))}
            expected = round(len(samples) // block * block * RATE / rate)
            rows.append((f"{rate / 1000:g} -> 16 kHz", name, stats[name], produced[name], expected))
        old, new = stats["windowed sinc (old)"], stats["soxr (new)"]
        rows.append((f"{rate / 1000:g} -> 16 kHz", "ratio old/new",
                     {key: old[key] / new[key] for key in ("median", "mean", "p99", "max")}, None, None))

    print(f"\n{'rates':<14} {'resampler':<20} {'median ms':>10} {'mean ms':>10} {'p99 ms':>10} {'max ms':>10} "
          f"{'core %':>7}  samples out (unflushed)")
    for rates, name, row, out, expected in rows:
        if out is None:
            print(f"{rates:<14} {name:<20} " + " ".join(f"{row[key]:>9.1f}x" for key in ("median", "mean", "p99",
                                                                                        "max")))
            continue
        core = 100 * row["mean"] / CHUNK_MS  # share of one core that the resampling takes in real time
        print(f"{rates:<14} {name:<20} " + " ".join(f"{row[key]:>10.4f}" for key in ("median", "mean", "p99", "max"))
              + f" {core:>6.2f}%  {out} of {expected}")


if __name__ == "__main__":
    main()
