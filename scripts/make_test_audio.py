#!/usr/bin/env python3
"""Make the voice test audio in tests/data/voice/ (committed, so tests need none of these tools).

Needs: flite (English voices slt and kal16), espeak-ng (Korean voice), sox.  apt install flite espeak-ng sox

- clean/: one English command per file, both voices, 16 kHz mono int16
- noisy/: the same with pink noise 15 dB below the speech (seeded, so the files are reproducible)
- ood/: speech that is not a command (must give nothing)
- long/: several commands separated by pauses, one file per voice, plus a 44.1 kHz stereo copy
- bad/: a corrupt and a truncated WAV
- ko/: Korean commands spoken by espeak-ng (flite has no Korean voice)
manifest.json lists every file with the commands it must give, in order.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 16000
SNR_DB = 15.0
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "voice"
VOICES = ("slt", "kal16")

# (spoken text, canonical command)
ENGLISH = [
    ("take off", "takeoff"),
    ("land", "land"),
    ("stop", "stop"),
    ("hover", "stop"),
    ("emergency", "emergency"),
    ("follow me", "follow me"),
    ("take a photo", "photo"),
    ("take a picture", "photo"),
    ("go up fifty centimeters", "up 50"),
    ("go down thirty centimeters", "down 30"),
    ("fly forward one meter", "forward 100"),
    ("fly forward one point five meters", "forward 150"),
    ("move back eighty centimeters", "back 80"),
    ("go left forty five centimeters", "left 45"),
    ("go right twenty centimeters", "right 20"),
    ("up one hundred", "up 100"),
    ("down sixty", "down 60"),
    ("go up one hundred twenty centimeters", "up 120"),
    ("go down one hundred and fifty centimeters", "down 150"),
    ("forward two meters", "forward 200"),
    ("back seventy five centimeters", "back 75"),
    ("left one meter", "left 100"),
    ("right zero point five meters", "right 50"),
    ("go up twenty five centimeters", "up 25"),
    ("fly back three meters", "back 300"),
    ("go forward two hundred centimeters", "forward 200"),
    ("move up forty centimeters", "up 40"),
    ("turn right ninety degrees", "cw 90"),
    ("turn left forty five degrees", "ccw 45"),
    ("rotate right one hundred eighty degrees", "cw 180"),
    ("turn left three hundred sixty degrees", "ccw 360"),
    ("turn right thirty", "cw 30"),
    ("turn left fifteen degrees", "ccw 15"),
    ("turn right one hundred twenty degrees", "cw 120"),
    ("turn left ninety", "ccw 90"),
    ("turn right sixty degrees", "cw 60"),
    ("flip left", "flip l"),
    ("flip right", "flip r"),
    ("flip forward", "flip f"),
    ("flip back", "flip b"),
    ("speed fifty", "speed 50"),
    ("set speed twenty", "speed 20"),
    ("land now", "land"),
    ("emergency stop", "emergency"),
    ("go forward ninety centimeters", "forward 90"),
    ("go down seventy centimeters", "down 70"),
    ("turn left two hundred degrees", "ccw 200"),
    ("move right sixty five centimeters", "right 65"),
    ("go back four meters", "back 400"),
    ("fly up two hundred fifty centimeters", "up 250"),
]
NOT_COMMANDS = [
    "the weather is nice today",
    "hello there how are you",
    "I think we should go to the store",
    "hand",
    "top",
    "can you hear me",
    "thank you very much",
    "where is my coffee",
    "let us play a game",
    "good morning everybody",
]
LONG = [
    ["take off", "go up fifty centimeters", "turn right ninety degrees", "fly forward one meter", "land"],
    ["take off", "flip left", "turn left forty five degrees", "go down thirty centimeters", "stop", "land"],
]
KOREAN = [
    ("이륙", "takeoff"),
    ("착륙", "land"),
    ("정지", "stop"),
    ("멈춰", "stop"),
    ("비상 정지", "emergency"),
    ("따라와", "follow me"),
    ("사진 찍어", "photo"),
    ("위로 오십 센티미터", "up 50"),
    ("아래로 삼십 센티미터", "down 30"),
    ("앞으로 일 미터", "forward 100"),
    ("뒤로 팔십 센티미터", "back 80"),
    ("오른쪽으로 구십 도 회전", "cw 90"),
    ("왼쪽으로 사십오 도 회전", "ccw 45"),
    ("왼쪽으로 플립", "flip l"),
]


def slug(text: str) -> str:
    return "_".join(text.split())


def read_mono16k(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == RATE, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.round(samples), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise with power falling 3 dB per octave (1/f), like a propeller's broadband hum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / np.sqrt(np.mean(noise**2))


def speech_rms(samples: np.ndarray) -> float:
    """RMS over the voiced 20 ms frames (the loudest 60%), so leading/trailing silence does not lower it."""
    frames = samples[: len(samples) // 320 * 320].reshape(-1, 320)
    energy = np.sort(np.mean(frames**2, axis=1))
    return float(np.sqrt(np.mean(energy[int(len(energy) * 0.4):])))


def add_noise(samples: np.ndarray, rng: np.random.Generator, snr_db: float = SNR_DB) -> np.ndarray:
    return samples + pink_noise(len(samples), rng) * speech_rms(samples) / 10 ** (snr_db / 20)


def flite(text: str, voice: str, path: Path) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    return read_mono16k(path)


def espeak_korean(text: str, path: Path) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return read_mono16k(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for tool in ("flite", "espeak-ng", "sox"):
        if not shutil.which(tool):
            print(f"make_test_audio: {tool} is missing (apt install flite espeak-ng sox)", file=sys.stderr)
            return 1
    out: Path = args.out
    for sub in ("clean", "noisy", "ood", "long", "bad", "ko"):
        shutil.rmtree(out / sub, ignore_errors=True)
    rng = np.random.default_rng(20240601)
    manifest: list[dict] = []

    def record(path: Path, kind: str, expected: list[str], lang: str = "en", **extra: object) -> None:
        manifest.append({"file": str(path.relative_to(out)), "set": kind, "lang": lang, "expected": expected, **extra})

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for voice in VOICES:
            for text, command in ENGLISH:
                name = f"{slug(text)}_{voice}.wav"
                speech = flite(text, voice, out / "clean" / name)
                record(out / "clean" / name, "clean", [command], voice=voice, text=text)
                write_wav(out / "noisy" / name, add_noise(speech, rng))
                record(out / "noisy" / name, "noisy", [command], voice=voice, text=text)
            for text in NOT_COMMANDS:
                name = f"{slug(text)}_{voice}.wav"
                flite(text, voice, out / "ood" / name)
                record(out / "ood" / name, "ood", [], voice=voice, text=text)
            for number, texts in enumerate(LONG):
                pause = np.zeros(int(1.2 * RATE))
                pieces, segments, t = [pause], [], len(pause) / RATE
                for text in texts:
                    speech = flite(text, voice, tmp / "piece.wav")
                    segments.append([round(t, 3), round(t + len(speech) / RATE, 3)])
                    pieces += [speech, pause]
                    t += (len(speech) + len(pause)) / RATE
                commands = [dict(ENGLISH)[text] for text in texts]
                path = out / "long" / f"session{number + 1}_{voice}.wav"
                signal = np.concatenate(pieces)
                write_wav(path, signal + pink_noise(len(signal), rng) * 30.0)
                record(path, "long", commands, voice=voice, segments=segments)
                if number == 0 and voice == VOICES[0]:
                    stereo = path.with_name(path.stem + "_44k_stereo.wav")
                    subprocess.run(["sox", str(path), "-r", "44100", "-c", "2", str(stereo)], check=True)
                    record(stereo, "long", commands, voice=voice, segments=segments, rate=44100, channels=2)
        for text, command in KOREAN:
            name = f"ko_{len([m for m in manifest if m['lang'] == 'ko']) + 1:02d}.wav"
            espeak_korean(text, out / "ko" / name)
            record(out / "ko" / name, "ko", [command], lang="ko", voice="espeak-ng ko", text=text)

    good = out / "clean" / f"{slug(ENGLISH[0][0])}_{VOICES[0]}.wav"
    data = good.read_bytes()
    (out / "bad").mkdir(parents=True, exist_ok=True)
    (out / "bad" / "truncated.wav").write_bytes(data[: 44 + (len(data) - 44) // 3])  # header promises more frames
    (out / "bad" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    (out / "bad" / "not_a_wav.wav").write_text("this is not audio\n")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
