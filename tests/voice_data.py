"""The voice test sets, including the ones made from the committed clean speech when they are used.

tests/data/voice/manifest.json lists the committed files (clean commands, speech that is no command, Korean, broken
WAVs, a 44.1 kHz stereo session). The noisy set (pink noise 15 dB below the speech, as propellers make) and the
multi-command sessions are made here from the clean files, with noise seeded by the file name: the same samples on
every run and machine, and 10 MB less in the repository. scripts/make_test_audio.py writes the committed files (and
voices held out from tuning, for scripts/bench_voice.py).
"""

from __future__ import annotations

import json
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16000
SNR_DB = 15.0
DATA = Path(__file__).parent / "data" / "voice"
SESSION_PAUSE_S = 1.2
SESSION_NOISE_RMS = 30.0  # a quiet room's hiss under the sessions


@dataclass(frozen=True)
class Item:
    name: str  # a path-like label ("noisy/land_slt.wav"), for messages
    samples: np.ndarray  # int16, 16 kHz mono
    expected: list[str]
    kind: str  # clean | noisy | ood | long
    voice: str
    segments: list[tuple[float, float]] | None = None  # where each command is spoken (long files)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == RATE, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_int16(samples).tobytes())


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2")


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise whose power falls 3 dB per octave (1/f), like a propeller's broadband hum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / np.sqrt(np.mean(noise**2))


def _unit(noise: np.ndarray) -> np.ndarray:
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def _lowpass(noise: np.ndarray, cutoff_hz: float) -> np.ndarray:
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
    return np.fft.irfft(spectrum / np.sqrt(1 + (freqs / cutoff_hz) ** 4), len(noise))


def brown_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Power falling 6 dB per octave above 20 Hz (a rumble)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    return _unit(np.fft.irfft(spectrum / np.maximum(freqs, 20.0), n))


def _slow(n: int, rng: np.random.Generator, rate_hz: float) -> np.ndarray:
    """A smooth random signal in [-1, 1] that changes about ``rate_hz`` times a second."""
    knots = rng.uniform(-1, 1, int(n / RATE * rate_hz) + 3)
    return np.interp(np.arange(n) / RATE * rate_hz, np.arange(len(knots)), knots)


def rotor_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """A quadcopter: blade-pass harmonics near 190 Hz whose pitch wobbles as the motors correct, over brown noise."""
    t = np.arange(n) / RATE
    f0 = rng.uniform(170, 210) * (1 + 0.03 * _slow(n, rng, 2.0))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    tone = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 16))
    tone *= 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)  # four rotors beating against each other
    return _unit(_unit(tone) + brown_noise(n, rng))


def wind_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Wind on a microphone: low rumble below ~300 Hz in gusts."""
    gusts = 0.35 + 0.65 * (_slow(n, rng, 0.7) + 1) / 2
    return _unit(_lowpass(rng.standard_normal(n), 300.0) * gusts)


def fan_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """A fan: broadband hiss rolling off above 2 kHz, with mains hum at 100, 200 and 300 Hz."""
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) / k for k, f in enumerate((100, 200, 300), 1))
    return _unit(_unit(_lowpass(pink_noise(n, rng), 2000.0)) + 0.5 * _unit(hum))


def babble_noise(n: int, rng: np.random.Generator, talkers: list[np.ndarray]) -> np.ndarray:
    """Several people talking at once: ``talkers`` (speech, int16) at random offsets, looped to length ``n``."""
    mix = np.zeros(n)
    for index in rng.choice(len(talkers), size=min(5, len(talkers)), replace=False):
        speech = talkers[index].astype(np.float64)
        speech = np.tile(speech, n // max(len(speech), 1) + 2)
        start = int(rng.integers(0, len(speech) - n))
        mix += _unit(speech[start:start + n])
    return _unit(mix)


NOISES = ("rotor", "wind", "babble", "fan")


def noise(kind: str, n: int, seed: int, talkers: list[np.ndarray] | None = None) -> np.ndarray:
    """Unit-RMS noise of one of :data:`NOISES` (or "pink"); babble needs ``talkers``."""
    rng = np.random.default_rng(seed)
    if kind == "babble":
        return babble_noise(n, rng, talkers or [])
    return {"rotor": rotor_noise, "wind": wind_noise, "fan": fan_noise, "pink": pink_noise}[kind](n, rng)


def mix(samples: np.ndarray, noise_samples: np.ndarray, snr_db: float) -> np.ndarray:
    """``samples`` with ``noise_samples`` (unit RMS, as long) ``snr_db`` below the speech, as int16."""
    return to_int16(samples.astype(np.float64) + noise_samples * speech_rms(samples) / 10 ** (snr_db / 20))


def speech_rms(samples: np.ndarray) -> float:
    """RMS over the voiced 20 ms frames (the loudest 60%), so leading/trailing silence does not lower it."""
    samples = samples.astype(np.float64)
    frames = samples[: len(samples) // 320 * 320].reshape(-1, 320)
    energy = np.sort(np.mean(frames**2, axis=1))
    return float(np.sqrt(np.mean(energy[int(len(energy) * 0.4):])))


def add_noise(samples: np.ndarray, seed: int, snr_db: float = SNR_DB) -> np.ndarray:
    """``samples`` with pink noise ``snr_db`` below the speech, as int16."""
    noise = pink_noise(len(samples), np.random.default_rng(seed))
    return to_int16(samples.astype(np.float64) + noise * speech_rms(samples) / 10 ** (snr_db / 20))


def session(pieces: list[np.ndarray], seed: int, snr_db: float | None = None) -> tuple[np.ndarray,
                                                                                   list[tuple[float, float]]]:
    """Commands separated by pauses, over a quiet hiss (or pink noise ``snr_db`` below the speech, all the way
    through, as from a flying drone's propellers); and where each command is."""
    pause = np.zeros(int(SESSION_PAUSE_S * RATE))
    parts, segments, t = [pause], [], len(pause) / RATE
    for speech in pieces:
        segments.append((round(t, 3), round(t + len(speech) / RATE, 3)))
        parts += [speech.astype(np.float64), pause]
        t += (len(speech) + len(pause)) / RATE
    signal = np.concatenate(parts)
    level = SESSION_NOISE_RMS if snr_db is None else speech_rms(signal) / 10 ** (snr_db / 20)
    return to_int16(signal + pink_noise(len(signal), np.random.default_rng(seed)) * level), segments


def manifest(root: Path = DATA) -> list[dict]:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def items(kind: str, root: Path = DATA, voices: tuple[str, ...] | None = None, every: int = 1,
          noise_seeds: int = 1) -> Iterator[Item]:
    """The ``kind`` set in ``root``: a set of the manifest (clean, ood, ood_heldout, ko), ``noisy`` (the clean set in
    pink noise), ``long`` (sessions made from the clean files), or any of these with ``_noisy`` (in pink noise).
    ``noise_seeds``: each file of a noisy set that many times, in different noise (names from the second on end in
    ``#1``, ``#2``, ...)."""

    def seeded(name: str) -> Iterator[tuple[str, int]]:
        for k in range(noise_seeds):
            label = f"{name}#{k}" if k else name
            yield label, seed_of(label)

    entries = manifest(root)
    clean = [m for m in entries if m["set"] == "clean" and (voices is None or m["voice"] in voices)]
    if kind == "noisy":
        for m in clean[::every]:
            samples = read_wav(root / m["file"])
            for name, seed in seeded(m["file"].replace("clean/", "noisy/", 1)):
                yield Item(name, add_noise(samples, seed), m["expected"], "noisy", m["voice"])
    elif kind in ("long", "long_noisy"):
        by_text = {(m["voice"], m["text"]): m for m in clean}
        sessions = [m for m in entries if m["set"] == "session" and (voices is None or m["voice"] in voices)]
        for s in sessions[::every]:
            pieces = [read_wav(root / by_text[(s["voice"], text)]["file"]) for text in s["texts"]]
            noisy = kind == "long_noisy"
            name = s["name"].replace("long/", "long_noisy/", 1) if noisy else s["name"]
            samples, segments = session(pieces, seed_of(name), SNR_DB if noisy else None)
            expected = [by_text[(s["voice"], text)]["expected"][0] for text in s["texts"]]
            yield Item(name, samples, expected, kind, s["voice"], segments)
    else:
        base = kind.removesuffix("_noisy")
        for m in [m for m in entries if m["set"] == base and (voices is None or m.get("voice") in voices)][::every]:
            samples = read_wav(root / m["file"])
            if base == kind:
                yield Item(m["file"], samples, m["expected"], kind, m.get("voice", ""))
            else:
                for name, seed in seeded(f"{kind}/{m['file'].split('/', 1)[1]}"):
                    yield Item(name, add_noise(samples, seed), m["expected"], kind, m.get("voice", ""))


def chunks(samples: np.ndarray, chunk: int = RATE // 50) -> Iterator[np.ndarray]:
    """20 ms pieces, as the microphone and WavSource deliver them."""
    for start in range(0, len(samples), chunk):
        yield samples[start:start + chunk]


def real_speech_root() -> Path | None:
    """The shared folder of real people's speech that holds no command ($EDGEPILOT_REAL_SPEECH, or
    ../shared/data/real-speech next to the repository or its parent), if present."""
    import os

    env = os.environ.get("EDGEPILOT_REAL_SPEECH")
    repo = Path(__file__).resolve().parents[1]
    candidates = [Path(env)] if env else [repo.parent / "shared" / "data" / "real-speech",
                                          repo.parent.parent / "shared" / "data" / "real-speech"]
    return next((c for c in candidates if (c / "no-command").is_dir()), None)


def read_audio(path: Path) -> np.ndarray:
    """Any audio file PyAV reads (FLAC, WAV, ...), as 16 kHz mono int16."""
    import av

    out = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            out += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype("<i2") if out else np.zeros(0, dtype="<i2")
