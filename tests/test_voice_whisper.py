"""Whisper's text read as command words, and the stop/land phrases scored against the audio where Whisper wrote a few
words that are no command."""

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
])
def test_whisper_text_as_command_words(text: str, words: tuple[str, ...]) -> None:
    assert to_words(text, VOCAB) == words


@pytest.mark.skipif(not whisper_available(), reason="pip install 'edgepilot[whisper]'")
def test_a_safety_phrase_whisper_wrote_as_other_words_still_lands() -> None:
    """flite's rms voice (held out: never used for tuning) says "land now"; Whisper writes "learn now". Scored against
    the audio, "Land now." is likelier than Whisper's words (with the prior for a safety phrase): the drone lands."""
    from edgepilot.voice.engines import make_recogniser

    recogniser = make_recogniser("whisper", VOCAB)
    speech = read_wav(DATA / "safety" / "rms_land_now.wav").astype(np.float64)
    pad = np.zeros(6400)
    signal = np.concatenate([pad, speech, pad])
    samples = to_int16(signal + np.random.default_rng(seed_of("rms_land_now")).standard_normal(len(signal)) * 3)
    heard = list(Transcriber(recogniser).run(chunks(samples)))
    assert [h.command.text for h in heard if h.command] == ["land"]
    landed = next(h for h in heard if h.command)
    assert landed.detail.get("safety_phrase"), landed.detail
    assert VOCAB.command_text(landed.detail["whisper_wrote"].split()) is None, landed.detail  # Whisper's own words


@pytest.mark.parametrize(("words", "refused"), [
    ("up six hundred", True),  # understood, out of range: refused with its reason, never scored as "stop"
    ("go sideways fifty centimeters", True),
    ("hardware", False),  # misheard: the stop/land phrases may be scored against the audio
    ("turn right", False),
    ("land", False),
])
def test_refused_commands_are_told_from_misheard_words(words: str, refused: bool) -> None:
    assert VOCAB.refuses(words.split()) is refused
