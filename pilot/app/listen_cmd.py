"""``edgepilot listen``: recognise spoken commands from the microphone (live) or from WAV files."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from edgepilot.pilot.core.errors import InputError
from edgepilot.voice.engines import ENGINES, make_recogniser
from edgepilot.voice.listener import Heard, Transcriber, VoiceConfig
from edgepilot.voice.vocabulary import Vocabulary, available_languages

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="recogniser (default: vosk when a Vosk model for the language is present, else whisper for English when "
                             "installed, else pocketsphinx)")
    parser.add_argument("--lang", default="en", help=f"command language: {', '.join(available_languages())}")
    parser.add_argument("--model", default=None, metavar="PATH", help="model folder (Vosk, PocketSphinx or Whisper)")
    parser.add_argument("--wav", nargs="+", default=None, metavar="FILE",
                        help="recognise these WAV files instead of the microphone (any rate, any channels)")
    parser.add_argument("--realtime", action="store_true", help="play WAV files at real-time pace, like a microphone")
    parser.add_argument("--device", default=None, help="microphone: device index or part of its name")
    parser.add_argument("--json", action="store_true",
                        help="one JSON line per utterance: file, text, command (null when not understood), "
                             "confidence, t_speech_end, t_emit, reason (why not understood)")
    parser.add_argument("--min-confidence", type=float, default=None, metavar="P",
                        help="drop commands below this confidence, 0-1 (default: the engine's; risky commands "
                             "need at least the engine's risky threshold)")


def _print(heard: Heard, as_json: bool) -> None:
    """Every utterance: a command on stdout; not understood, with the reason, on stderr (both in JSON with --json)."""
    if as_json:
        print(json.dumps({**heard.to_json(), "reason": heard.reason}, ensure_ascii=False), flush=True)
        return
    where = f"{heard.file}  " if heard.file and heard.file != "mic" else ""
    if heard.command is None:
        print(f"{where}{heard.t_speech_end:7.2f}s  not understood: {heard.reason}", file=sys.stderr, flush=True)
    else:
        print(f"{where}{heard.t_speech_end:7.2f}s  {heard.command.text:<14} "
              f"\"{' '.join(heard.words)}\"  ({heard.confidence:.2f})", flush=True)


def _nothing_heard(path: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": path, "text": "", "command": None, "reason": "no speech heard"}), flush=True)
    else:
        print(f"{path}: no speech heard", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from edgepilot.voice.audio import MicSource, WavSource

    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        raise InputError(f"--min-confidence must be 0-1, got {args.min_confidence}")
    config = VoiceConfig(min_confidence=args.min_confidence)
    # Open every file first, so a bad one is reported before a model is loaded.
    sources = [WavSource(path, realtime=args.realtime) for path in args.wav] if args.wav else []
    recogniser = make_recogniser(args.engine, Vocabulary.load(args.lang), args.model)
    log.info("engine %s, language %s", recogniser.name, args.lang)
    transcriber = Transcriber(recogniser, config)
    if sources:
        for source in sources:
            heard_any = False
            for heard in transcriber.run(source.chunks(), file=str(source.path)):
                _print(heard, args.json)
                heard_any = True
            if not heard_any:
                _nothing_heard(str(source.path), args.json)
        return 0
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    mic = MicSource(device=device)
    if not args.json:
        print(f"listening on {mic.device_name!r} ({recogniser.name}, {args.lang}); Ctrl-C to stop", file=sys.stderr)
    try:
        for heard in transcriber.run(mic.chunks(), file="mic"):
            _print(heard, args.json)
    finally:
        mic.close()
    return 0
