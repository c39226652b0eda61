"""Whisper's text read as command words, and a held-out voice's "land now"."""

from __future__ import annotations

import numpy as np
import pytest
from voice_data import DATA, chunks, read_wav, seed_of, to_int16

from edgepilot.voice.engines import whisper_available
from edgepilot.voice.listener import Transcriber
from edgepilot.voice.vocabulary import Vocabulary
from edgepilot.voice.whisper_engine import to_words

VOCAB = Vocabulary.load("en")


@pytest.mark.parametrize(("text", "words"), [
    ("Flyback 3 meters.", ("fly", "back", "three", "meters")),
    ("Takeoff!", ("takeoff",)),
    ("Go forward 10 m.", ("go", "forward", "ten", "meters")),
    ("go up 50 cm", ("go", "up", "fifty", "centimeters")),
    ("Turn left 90°.", ("turn", "left", "ninety", "degrees")),
    ("fly up 1.5 meters", ("fly", "up", "one", "point", "five", "meters")),
    ("I'd like a latte, please.", ("i", "d", "like", "a", "latte", "please")),  # no word is split into a command
    ("Turn left to hundred degrees.", ("turn", "left", "two", "hundred", "degrees")),
    ("Fly up to 50 cm.", ("fly", "up", "to", "fifty", "centimeters")),  # "to" before another number stays
    ("...", ()),
    ("Stop, stop!", ("stop",)),  # said twice: one command
    ("Land now, land now.", ("land", "now")),
    ("step, step, step, step, step, step", ("step",)),  # Whisper's repetition loop
    ("Go up, go down.", ("go", "up", "go", "down")),  # two different phrases stay two (no command)
])
def test_whisper_text_as_command_words(text: str, words: tuple[str, ...]) -> None:
    assert to_words(text, VOCAB) == words


@pytest.mark.skipif(not whisper_available(), reason="pip install 'edgepilot[whisper]'")
def test_a_held_out_voice_saying_land_now_lands() -> None:
    """flite's rms voice (held out: never used for tuning) says "land now". Without the safety phrases in Whisper's
    prompt it wrote "learn now"; with them, "land now.": the drone lands."""
    from edgepilot.voice.engines import make_recogniser

    recogniser = make_recogniser("whisper", VOCAB)
    speech = read_wav(DATA / "safety" / "rms_land_now.wav").astype(np.float64)
    pad = np.zeros(6400)
    signal = np.concatenate([pad, speech, pad])
    samples = to_int16(signal + np.random.default_rng(seed_of("rms_land_now")).standard_normal(len(signal)) * 3)
    heard = list(Transcriber(recogniser).run(chunks(samples)))
    assert [h.command.text for h in heard if h.command] == ["land"]
    assert to_words(next(h for h in heard if h.command).detail["text"], VOCAB) == ("land", "now")  # Whisper's own


@pytest.mark.skipif(not whisper_available(), reason="pip install 'edgepilot[whisper]'")
@pytest.mark.parametrize(("written", "command"), [
    (" Stop.", "stop"),  # a short safety word Whisper thinks may be no speech: kept, it does no harm when wrong
    (" Land.", "land"),
    (" Go up fifty centimeters.", None),  # any other command from audio Whisper thinks holds no speech: dropped
])
def test_above_the_no_speech_limit_only_a_safe_command_is_kept(written: str, command: str | None) -> None:
    from types import SimpleNamespace

    from edgepilot.voice.engines import make_recogniser
    from edgepilot.voice.whisper_engine import MAX_NO_SPEECH

    recogniser = make_recogniser("whisper", VOCAB)
    model = recogniser._whisper.model
    ids = recogniser._tokenizer.encode(written)
    result = SimpleNamespace(sequences_ids=[ids], scores=[-0.05], no_speech_prob=MAX_NO_SPEECH + 0.2)
    recogniser._whisper.model = SimpleNamespace(encode=model.encode, generate=lambda *args, **kwargs: [result])
    recogniser.start()
    recogniser.feed(np.zeros(16000, dtype=np.int16))
    heard = recogniser._transcribe(16000)
    said = VOCAB.command_text(heard.words) if heard.confidence >= recogniser.thresholds[0] else None
    assert said == command, heard
