"""Audio sources: WAV reading at any rate and channel count, resampling, pacing, clear errors; the microphone."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from voice_data import add_noise, items, manifest, read_wav, seed_of

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.errors import InputError
from edgepilot.voice.audio import RATE, MicSource, StreamResampler, WavSource, open_source
from edgepilot.voice.denoise import SpectralDenoiser
from edgepilot.voice.endpoint import FRAME, VoiceActivity

DATA = Path(__file__).parent / "data" / "voice"


def read_all(source: WavSource) -> np.ndarray:
    return np.concatenate(list(source.chunks())).astype(np.float64)


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        dtype = {1: np.uint8, 2: "<i2", 4: "<i4"}[width]
        wav.writeframes(np.asarray(samples).astype(dtype).tobytes())
    return path


@pytest.mark.parametrize("rate_in", [8000, 22050, 44100, 48000])
def test_resampler_keeps_a_tone_and_its_length(rate_in: int) -> None:
    t = np.arange(rate_in) / rate_in
    tone = 8000 * np.sin(2 * np.pi * 440 * t)
    resampler = StreamResampler(rate_in)
    blocks = [resampler.process(tone[i:i + 1001], final=i + 1001 >= len(tone)) for i in range(0, len(tone), 1001)]
    out = np.concatenate(blocks)
    assert abs(len(out) - RATE) <= 1
    expected = 8000 * np.sin(2 * np.pi * 440 * np.arange(len(out)) / RATE)
    middle = slice(200, len(out) - 200)
    error = out[middle] - expected[middle]
    assert 10 * np.log10(np.mean(expected[middle] ** 2) / np.mean(error**2)) > 40  # dB


def test_resampler_removes_what_16_khz_cannot_hold() -> None:
    rate_in = 44100
    t = np.arange(rate_in) / rate_in
    out = StreamResampler(rate_in).process(8000 * np.sin(2 * np.pi * 12000 * t), final=True)
    assert np.sqrt(np.mean(out[200:-200] ** 2)) < 8000 / 100  # > 40 dB down, not aliased to 4 kHz


def test_44k_stereo_matches_16k_mono() -> None:
    """The committed 44.1 kHz stereo file is sox's conversion of the first session: reading it gives that session."""
    entry = next(m for m in manifest() if m["set"] == "long44k")
    mono = next(item for item in items("long") if item.name == entry["same_as"]).samples.astype(np.float64)
    stereo = read_all(WavSource(DATA / entry["file"]))
    n = min(len(mono), len(stereo))
    assert abs(len(mono) - len(stereo)) <= 2
    snr = 10 * np.log10(np.mean(mono[:n] ** 2) / np.mean((mono[:n] - stereo[:n]) ** 2))
    assert snr > 30


@pytest.mark.parametrize("width", [1, 2, 4])
def test_sample_widths_and_channels_are_downmixed(tmp_path: Path, width: int) -> None:
    rate = 32000
    t = np.arange(rate // 2) / rate
    tone = np.sin(2 * np.pi * 300 * t)
    scale = {1: 100, 2: 10000, 4: 10000 * 65536}[width]
    left, right = tone * scale, -tone * scale * 0.5  # downmix: average of the two
    stereo = np.stack([left, right], axis=1).reshape(-1)
    if width == 1:
        stereo = stereo + 128
    out = read_all(WavSource(write_wav(tmp_path / "x.wav", stereo, rate, channels=2, width=width)))
    expected_peak = {1: 100 * 256, 2: 10000, 4: 10000}[width] * 0.25
    assert len(out) == pytest.approx(RATE / 2, abs=2)
    assert np.max(np.abs(out[500:-500])) == pytest.approx(expected_peak, rel=0.05)


def test_realtime_pacing_follows_the_clock() -> None:
    clock = FakeClock()
    source = WavSource(DATA / "clean" / "take_off_slt.wav", realtime=True, clock=clock)
    total = 0
    for chunk in source.chunks():
        total += len(chunk)
        assert clock.now() == pytest.approx(total / RATE, abs=1e-6)  # never ahead of real time
    assert total / RATE == pytest.approx(source.duration_s, abs=0.01)


@pytest.mark.parametrize(("name", "message"), [
    ("truncated.wav", "truncated"),
    ("corrupt.wav", "not a readable WAV"),
    ("not_a_wav.wav", "not a readable WAV"),
    ("missing.wav", "no such file"),
])
def test_bad_files_are_clear_input_errors(name: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_all(WavSource(DATA / "bad" / name))


def test_directory_is_not_a_wav() -> None:
    with pytest.raises(InputError, match="directory"):
        WavSource(DATA)


def test_microphone_is_opened_or_a_clear_error() -> None:
    """With no microphone (CI), opening one is an InputError that says what to do; with one, it records."""
    try:
        source = open_source("mic")
    except InputError as exc:
        assert "microphone" in str(exc) or "PortAudio" in str(exc)
        return
    try:  # pragma: no cover - only on a machine with a microphone
        chunk = next(iter(source.chunks()))
        assert chunk.dtype == np.int16 and len(chunk) > 0
    finally:
        source.close()


def test_unknown_microphone_name_is_a_clear_error() -> None:
    with pytest.raises(InputError):
        MicSource(device="no such device 1234")


def test_voice_activity_finds_speech_in_pink_noise() -> None:
    name = "clean/go_up_fifty_centimeters_kal16.wav"
    clean = read_wav(DATA / name).astype(np.float64)
    samples = add_noise(clean, seed_of(name))
    vad = VoiceActivity()
    flags = np.array([vad.push(samples[i:i + FRAME]) for i in range(0, len(samples) - FRAME + 1, FRAME)])
    energy = np.array([np.mean(clean[i:i + FRAME] ** 2) for i in range(0, len(clean) - FRAME + 1, FRAME)])
    loud = energy > np.max(energy) / 100  # within 20 dB of the peak in the clean recording
    assert np.mean(flags[loud]) > 0.7  # the quieter consonants drown in the noise
    assert np.mean(flags[energy < np.max(energy) / 1e5]) < 0.2  # the noise alone is not speech


def test_voice_activity_floor_follows_noise_after_digital_silence() -> None:
    """A stream that starts with exact zeros (the denoiser's delay, a muted input) and then carries steady noise: the
    floor is the noise, so the noise is not speech and speech above it is."""
    rng = np.random.default_rng(3)
    vad = VoiceActivity()
    frames = [np.zeros(FRAME)] * 50 + [rng.normal(0, 300, FRAME) for _ in range(300)]
    flags = [vad.push(frame) for frame in frames]
    assert not any(flags[200:])
    assert vad.floor_db > 40  # 300 LSB RMS of white noise in the speech band, not digital silence
    assert vad.push(rng.normal(0, 3000, FRAME)) and vad.push(rng.normal(0, 3000, FRAME))


def denoise(samples: np.ndarray, denoiser: SpectralDenoiser | None = None) -> np.ndarray:
    denoiser = denoiser or SpectralDenoiser()
    return np.concatenate([denoiser.process(samples[i:i + 320].astype(np.int16)) for i in range(0, len(samples), 320)])


def denoise_aligned(samples: np.ndarray, denoiser: SpectralDenoiser | None = None) -> np.ndarray:
    """``denoise`` without the denoiser's delay: as many samples as ``samples``, sample for sample."""
    denoiser = denoiser or SpectralDenoiser()
    out = denoise(samples, denoiser).astype(np.float64)
    return np.concatenate([out, np.zeros(len(samples) + denoiser.delay - len(out))])[denoiser.delay:][:len(samples)]


def test_denoiser_lowers_steady_noise_and_keeps_length() -> None:
    noise = np.random.default_rng(1).normal(0, 500, RATE * 2)
    out = denoise(noise)
    assert abs(len(out) - len(noise)) <= 512
    assert np.std(out[RATE:].astype(float)) < 0.2 * np.std(noise)  # the gain floor is -20 dB


def test_denoiser_keeps_speech_and_raises_its_snr() -> None:
    name = "clean/turn_right_ninety_degrees_slt.wav"
    clean = read_wav(DATA / name).astype(np.float64)
    noisy = add_noise(clean, seed_of(name)).astype(np.float64)
    out = denoise_aligned(noisy)

    def snr_db(x: np.ndarray) -> float:
        return 10 * np.log10(np.sum(clean**2) / np.sum((x - clean) ** 2))

    assert snr_db(out) > snr_db(noisy) + 3  # measured: 12.9 -> 17.6 dB
    assert np.sum(out**2) == pytest.approx(np.sum(clean**2), rel=0.25)  # the speech keeps its level


def test_denoiser_learns_noise_that_starts_after_digital_silence() -> None:
    denoiser = SpectralDenoiser()
    denoise(np.zeros(RATE // 2), denoiser)
    noise = np.random.default_rng(2).normal(0, 500, RATE * 6)
    out = denoise(noise, denoiser)
    assert np.std(out[-RATE:].astype(float)) < 0.5 * np.std(noise)


def test_whole_utterance_cleaning_keeps_word_onsets() -> None:
    """The streaming gain lags at the start of every word (its a-priori SNR is mostly the previous frame's); the
    whole-utterance cleaning runs that estimate both ways in time, so word onsets come out closer to the clean speech,
    and nothing is delayed. Measured on 15 noisy commands: onset SNR 17.9 -> 18.3 dB (median), better in 12."""
    better, gains = 0, []
    for entry in [m for m in manifest() if m["set"] == "clean"][::7]:
        clean = read_wav(DATA / entry["file"]).astype(np.float64)
        noisy = add_noise(clean, seed_of(entry["file"]))
        denoiser = SpectralDenoiser()
        streamed = denoise_aligned(noisy, denoiser)
        whole = denoiser.clean_utterance(noisy).astype(np.float64)
        assert len(whole) == len(clean)
        middle = slice(len(clean) // 4, 3 * len(clean) // 4)
        lag = np.argmax(np.correlate(whole[middle], clean[middle], "full")) - (len(clean[middle]) - 1)
        assert lag == 0
        # Word onsets: the 50 ms from each 10 ms frame at least 15 dB louder than the frame 50 ms before.
        frames = clean[: len(clean) // 160 * 160].reshape(-1, 160)
        level = 10 * np.log10(np.mean(frames**2, axis=1) + 1.0)
        onsets = [i for i in range(5, len(level)) if level[i] > level[i - 5] + 15]
        at = np.concatenate([np.arange(i * 160, (i + 5) * 160) for i in onsets])

        def onset_snr_db(x: np.ndarray, at: np.ndarray = at, clean: np.ndarray = clean) -> float:
            return float(10 * np.log10(np.sum(clean[at] ** 2) / np.sum((x[at] - clean[at]) ** 2)))

        assert onset_snr_db(whole) > onset_snr_db(noisy.astype(np.float64)) + 1.0
        better += onset_snr_db(whole) > onset_snr_db(streamed)
        gains.append(onset_snr_db(whole) - onset_snr_db(streamed))
    assert better >= 10 and np.median(gains) > 0.2, (better, gains)
