#!/usr/bin/env python3
"""Make the voice test audio in tests/data/voice/ (committed, so tests need none of these tools).

Needs: flite (English voices slt and kal16), espeak-ng (Korean voice), sox.  apt install flite espeak-ng sox

- clean/: one English command per file, both voices, 16 kHz mono int16
- ood/: speech that is not a command (must give nothing)
- long/: a 44.1 kHz stereo copy of the first multi-command session (the sessions themselves, and the noisy set, are
  made from the clean files when used: tests/voice_data.py)
- bad/: a corrupt and a truncated WAV
- ko/: Korean commands spoken by espeak-ng (flite has no Korean voice)
manifest.json lists every file with the commands it must give, in order, and the sessions' phrases.

``--heldout DIR`` instead writes voices that were never used for tuning (flite's awb and rms) plus sentences that
are no command and were never looked at while tuning, for every voice: scripts/bench_voice.py reports them apart.

``--voices DIR`` writes every command and out-of-grammar phrase in every voice of :data:`VOICE_GROUPS` (flite's
voices, espeak-ng's English accents and variants at other speeds and pitches, flite voices sped up or pitched by sox)
for scripts/bench_voice.py's per-voice-group table. Debian 12 has no MBROLA voice packages, so none are used.

``--heldout-test`` writes tests/data/voice/heldout/: a few commands and out-of-grammar phrases in two voices that
were never used for tuning (espeak-ng's Caribbean English and flite's awb sped up), for tests/test_voice_safety.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from voice_data import read_wav, seed_of, session, write_wav  # noqa: E402

RATE = 16000
OUT = ROOT / "tests" / "data" / "voice"
VOICES = ("slt", "kal16")
HELDOUT_VOICES = ("awb", "rms")

# (spoken text, canonical command)
ENGLISH = [
    ("take off", "takeoff"),
    ("land", "land"),
    ("stop", "stop"),
    ("hover", "stop"),
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
    "emergency",  # motors off only from the deliberate "emergency stop"
]
# Not looked at while tuning: only in the held-out report.
HELDOUT_NOT_COMMANDS = [
    "please open the window",
    "my phone is ringing",
    "what time is it",
    "I am going home now",
    "this is only a test",
    "the dog is barking again",
    "stand over there",
    "sand",
    "shop",
    "turn the music down",
]
# Said by users, but no valid command: each must give none (the pilot answers with the reason instead).
OUT_OF_GRAMMAR = [
    "go forward ten meters",
    "go up six hundred centimeters",
    "fly back seven meters",
    "turn right four hundred degrees",
    "go up twenty three centimeters",
    "go down ten centimeters",
    "go sideways fifty centimeters",
    "go up",
    "turn right",
    "flip",
    "fly forward",
    "speed two hundred",
]
# Voice groups (group, voice label, tool, arguments): the tool is flite, espeak-ng, or sox applied to a flite voice.
VOICE_GROUPS = [
    ("flite-tuned", "slt", "flite", ["slt"]),
    ("flite-tuned", "kal16", "flite", ["kal16"]),
    ("flite-other", "awb", "flite", ["awb"]),
    ("flite-other", "rms", "flite", ["rms"]),
    ("flite-other", "kal", "flite", ["kal"]),
    ("espeak-us", "en-us", "espeak-ng", ["-v", "en-us"]),
    ("espeak-us", "en-us+f3", "espeak-ng", ["-v", "en-us+f3", "-s", "150"]),
    ("espeak-us", "en-us-nyc", "espeak-ng", ["-v", "en-us-nyc", "-s", "190"]),
    ("espeak-uk", "en-gb", "espeak-ng", ["-v", "en-gb"]),
    ("espeak-uk", "en-gb-scotland", "espeak-ng", ["-v", "en-gb-scotland"]),
    ("espeak-uk", "en-gb-x-rp+f4", "espeak-ng", ["-v", "en-gb-x-rp+f4", "-p", "70"]),
    ("espeak-uk", "en-gb-x-gbcwmd", "espeak-ng", ["-v", "en-gb-x-gbcwmd", "-s", "140"]),
    ("espeak-other", "en-029", "espeak-ng", ["-v", "en-029"]),
    ("espeak-other", "en+m3-slow", "espeak-ng", ["-v", "en+m3", "-s", "120", "-p", "30"]),
    ("espeak-other", "en-gb-x-gbclan+klatt", "espeak-ng", ["-v", "en-gb-x-gbclan+klatt"]),
    ("perturbed", "awb-fast", "sox", ["awb", "tempo", "1.2"]),
    ("perturbed", "rms-high", "sox", ["rms", "pitch", "300"]),
    ("perturbed", "slt-slow-low", "sox", ["slt", "tempo", "0.85", "pitch", "-250"]),
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


def flite(text: str, voice: str, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    return read_wav(path)


def espeak_korean(text: str, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return read_wav(path)


def speak(tool: str, arguments: list[str], text: str, path: Path):
    """``text`` in one voice of :data:`VOICE_GROUPS`, as a 16 kHz mono WAV at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw.wav")
    if tool == "flite":
        subprocess.run(["flite", "-voice", arguments[0], "-t", text, "-o", str(raw)], check=True)
        effects: list[str] = []
    elif tool == "espeak-ng":
        subprocess.run(["espeak-ng", *arguments, "-w", str(raw), text], check=True)
        effects = []
    else:
        subprocess.run(["flite", "-voice", arguments[0], "-t", text, "-o", str(raw)], check=True)
        effects = arguments[1:]
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path), *effects], check=True)
    raw.unlink()
    return read_wav(path)


HELDOUT_TEST_VOICES = ("en-029", "awb-fast")
# Halves of a phrase, to be joined across a pause (tests/test_voice_safety.py): (flite voice, text).
PIECES = (("slt", "go up"), ("slt", "fifty centimeters"), ("kal16", "turn right"), ("kal16", "ninety degrees"))
HELDOUT_TEST_PHRASES = ("take off", "land", "stop", "go up fifty centimeters", "turn right ninety degrees",
                        "fly forward one meter", "flip left", "go down thirty centimeters", "take a photo", "follow me",
                        "go forward ten meters", "go up six hundred centimeters", "turn right four hundred degrees",
                        "go up")


def write_voice_groups(out: Path, voices: tuple[str, ...] | None = None,
                       texts: tuple[str, ...] | None = None) -> list[dict]:
    manifest = []
    for group, label, tool, arguments in VOICE_GROUPS:
        if voices is not None and label not in voices:
            continue
        phrases = [(text, [command]) for text, command in ENGLISH] + [(text, []) for text in OUT_OF_GRAMMAR]
        phrases = [(text, expected) for text, expected in phrases if texts is None or text in texts]
        for text, expected in phrases:
            kind = "clean" if expected else "oog"
            path = out / label / f"{slug(text)}.wav"
            speak(tool, arguments, text, path)
            manifest.append({"file": str(path.relative_to(out)), "set": kind, "lang": "en", "expected": expected,
                             "voice": label, "group": group, "text": text})
    return manifest


def write_english(out: Path, voices: tuple[str, ...], ood: list[str], manifest: list[dict], kind_ood: str = "ood",
                  commands: bool = True) -> None:
    def record(path: Path, kind: str, expected: list[str], **extra: object) -> None:
        manifest.append({"file": str(path.relative_to(out)), "set": kind, "lang": "en", "expected": expected, **extra})

    for voice in voices:
        if commands:
            for text, command in ENGLISH:
                path = out / "clean" / f"{slug(text)}_{voice}.wav"
                flite(text, voice, path)
                record(path, "clean", [command], voice=voice, text=text)
        for text in ood:
            path = out / "ood" / f"{slug(text)}_{voice}.wav"
            flite(text, voice, path)
            record(path, kind_ood, [], voice=voice, text=text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--heldout", type=Path, help="write the held-out voices and sentences here instead")
    parser.add_argument("--voices", type=Path, help="write every voice group's commands here instead")
    parser.add_argument("--heldout-test", action="store_true", help="write tests/data/voice/heldout/ instead")
    args = parser.parse_args()
    tools = ("flite",) if args.heldout else ("flite", "espeak-ng", "sox")
    for tool in tools:
        if not shutil.which(tool):
            print(f"make_test_audio: {tool} is missing (apt install {' '.join(tools)})", file=sys.stderr)
            return 1
    manifest: list[dict] = []
    if args.heldout_test:
        out = args.out / "heldout"
        shutil.rmtree(out, ignore_errors=True)
        manifest = write_voice_groups(out, HELDOUT_TEST_VOICES, HELDOUT_TEST_PHRASES)
        for voice, text in PIECES:
            flite(text, voice, out / "pieces" / f"{slug(text)}_{voice}.wav")
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(manifest)} files to {out}")
        return 0
    if args.voices:
        shutil.rmtree(args.voices, ignore_errors=True)
        manifest = write_voice_groups(args.voices)
        (args.voices / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(manifest)} files in {len(VOICE_GROUPS)} voices to {args.voices}")
        return 0
    if args.heldout:
        out: Path = args.heldout
        shutil.rmtree(out, ignore_errors=True)
        write_english(out, HELDOUT_VOICES, NOT_COMMANDS, manifest)
        write_english(out, HELDOUT_VOICES + VOICES, HELDOUT_NOT_COMMANDS, manifest, "ood_heldout", commands=False)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(manifest)} held-out files to {out}")
        return 0

    out = args.out
    for sub in ("clean", "noisy", "ood", "long", "bad", "ko"):
        shutil.rmtree(out / sub, ignore_errors=True)
    write_english(out, VOICES, NOT_COMMANDS, manifest)
    commands = dict(ENGLISH)
    for voice in VOICES:
        for number, texts in enumerate(LONG):
            manifest.append({"name": f"long/session{number + 1}_{voice}.wav", "set": "session", "lang": "en",
                             "voice": voice, "texts": texts, "expected": [commands[t] for t in texts]})
    # The first session at 44.1 kHz stereo (sox's resampler), to check reading any WAV gives what 16 kHz mono does.
    first = next(m for m in manifest if m["set"] == "session")
    pieces = [read_wav(out / "clean" / f"{slug(text)}_{first['voice']}.wav") for text in first["texts"]]
    samples, segments = session(pieces, seed_of(first["name"]))
    with tempfile.TemporaryDirectory() as tmp:
        mono = Path(tmp) / "session.wav"
        write_wav(mono, samples)
        stereo = out / first["name"].replace(".wav", "_44k_stereo.wav")
        stereo.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sox", str(mono), "-r", "44100", "-c", "2", str(stereo)], check=True)
    manifest.append({"file": str(stereo.relative_to(out)), "set": "long44k", "lang": "en", "voice": first["voice"],
                     "expected": first["expected"], "segments": segments, "rate": 44100, "channels": 2,
                     "same_as": first["name"]})
    for text, command in KOREAN:
        name = f"ko_{len([m for m in manifest if m['lang'] == 'ko']) + 1:02d}.wav"
        espeak_korean(text, out / "ko" / name)
        manifest.append({"file": f"ko/{name}", "set": "ko", "lang": "ko", "expected": [command],
                         "voice": "espeak-ng ko", "text": text})

    good = out / "clean" / f"{slug(ENGLISH[0][0])}_{VOICES[0]}.wav"
    data = good.read_bytes()
    (out / "bad").mkdir(parents=True, exist_ok=True)
    (out / "bad" / "truncated.wav").write_bytes(data[: 44 + (len(data) - 44) // 3])  # header promises more frames
    (out / "bad" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    (out / "bad" / "not_a_wav.wav").write_text("this is not audio\n")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} entries to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
