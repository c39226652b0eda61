"""The spoken vocabulary: numbers, phrases, and the recogniser grammars built from them (no audio)."""

from __future__ import annotations

import functools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgepilot.pilot.core.errors import CommandRejected, InputError
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.voice.grammar_export import to_vosk_phrases, word_graph
from edgepilot.voice.numbers import format_number
from edgepilot.voice.vocabulary import NumberSlot, Status, Vocabulary, available_languages


@pytest.fixture(scope="module")
def en() -> Vocabulary:
    return Vocabulary.load("en")


@pytest.fixture(scope="module")
def ko() -> Vocabulary:
    return Vocabulary.load("ko")


def canonical(vocab: Vocabulary, text: str) -> str | None:
    meaning = vocab.command_text(text.split())
    return parse_command(meaning, source="voice").text if meaning else None


@pytest.mark.parametrize(("spoken", "command"), [
    ("take off", "takeoff"),
    ("go up fifty centimeters", "up 50"),
    ("go up forty five", "up 45"),
    ("turn right ninety degrees", "cw 90"),
    ("rotate left one hundred twenty degrees", "ccw 120"),
    ("fly forward one point five meters", "forward 150"),
    ("move back one meter", "back 100"),
    ("down one hundred and fifty centimeters", "down 150"),
    ("flip left", "flip l"),
    ("follow me", "follow me"),
    ("take a picture", "photo"),
    ("speed fifty", "speed 50"),
    ("emergency stop", "emergency"),
    ("land", "land"),
    ("stop", "stop"),
])
def test_english_phrases_give_canonical_commands(en: Vocabulary, spoken: str, command: str) -> None:
    assert canonical(en, spoken) == command


@pytest.mark.parametrize(("spoken", "command"), [
    ("이륙", "takeoff"),
    ("위로 오 십 센티미터", "up 50"),
    ("오른쪽 으로 구 십 도 회전", "cw 90"),
    ("왼쪽 으로 회전 사 십 오 도", "ccw 45"),
    ("앞으로 일 점 오 미터", "forward 150"),
    ("아래로 백 이 십", "down 120"),
    ("왼쪽 으로 플립", "flip l"),
    ("비상 정지", "emergency"),
])
def test_korean_phrases_give_canonical_commands(ko: Vocabulary, spoken: str, command: str) -> None:
    assert canonical(ko, spoken) == command


@pytest.mark.parametrize("words", [
    "forty fifty", "up forty fifty", "up fifty forty", "go up", "turn right", "one hundred hundred", "up point five",
    "turn up ninety", "flip", "take", "up fifty degrees", "turn left fifty centimeters", "up five point",
    "hello there", "",
])
def test_word_soup_is_not_a_command(en: Vocabulary, words: str) -> None:
    assert en.command_text(words.split()) is None


@pytest.mark.parametrize("words", [
    "go up six hundred", "go up fifteen", "up nine centimeters", "forward ten meters", "up one point five",
    "turn right four hundred", "turn left zero", "turn right nine point nine", "speed five", "speed one hundred ten",
    "go up twenty three", "turn right nineteen degrees", "speed fifteen", "up one point two three",
])
def test_numbers_outside_the_command_range_are_not_phrases(en: Vocabulary, words: str) -> None:
    assert en.command_text(words.split()) is None


def test_each_unit_offers_exactly_the_valid_numbers(en: Vocabulary) -> None:
    """Every number the grammar offers makes a valid command in the language's steps, and every such number is
    offered (checked exhaustively against pilot.grammar for moves in centimeters and meters, turns and speed)."""
    assert en.steps == {"distance": 5.0, "angle": 5.0, "speed": 10.0}
    for template, unit, step in (("up {}", "centimeters", 5), ("up {}", "meters", 5), ("turn left {}", "degrees", 5),
                                 ("speed {}", "", 10)):
        words = "".join(f" {w}" for w in unit.split())
        for phrase, value in en.number_phrases.items():
            text = template.format(format_number(value)) + (f" {unit}" if unit else "")
            try:
                command = parse_command(text)
                valid = round(float(command.arg)) % step == 0 and float(command.arg).is_integer()
            except CommandRejected:
                valid = False
            if valid and not value.is_integer() and unit in ("degrees", ""):
                valid = False  # decimals the command rounds away are not offered
            spoken = template.format(" ".join(phrase)) + words
            assert (en.command_text(spoken.split()) is not None) == valid, spoken


@functools.cache
def _loaded(lang: str) -> Vocabulary:
    return Vocabulary.load(lang)  # once per language, not per example (the deadline timed the loading)


@settings(deadline=None)  # the suite runs on every core: a wall-clock deadline measures the machine's load
@given(st.integers(min_value=0, max_value=999))
def test_every_integer_reads_back(n: int) -> None:
    for lang in ("en", "ko"):
        vocab = _loaded(lang)
        spellings = vocab.numbers.spell(n)
        assert spellings
        for phrase in spellings:
            assert vocab.number_phrases[phrase] == n


def test_number_table_is_exact(en: Vocabulary, ko: Vocabulary) -> None:
    assert en.number_phrases[("forty", "five")] == 45
    assert en.number_phrases[("one", "hundred", "and", "twenty")] == 120
    assert en.number_phrases[("one", "point", "five")] == 1.5
    assert ("a", "hundred") not in en.number_phrases  # too close to "two hundred"
    assert ko.number_phrases[("삼", "백", "육", "십")] == 360
    assert ko.number_phrases[("십",)] == 10
    assert ("일", "십") not in ko.number_phrases
    assert format_number(1.5) == "1.5" and format_number(50.0) == "50"


def test_endpointing_status(en: Vocabulary) -> None:
    assert en.read(["take", "off"])[0] is Status.COMPLETE
    assert en.read(["go", "up", "fifty", "centimeters"])[0] is Status.COMPLETE
    assert en.read(["go", "up", "fifty"])[0] is Status.EXTENDABLE
    assert en.read(["turn", "right"])[0] is Status.PREFIX
    assert en.read(["weather"])[0] is Status.NONE


def test_safety_words_always_in_vocabulary() -> None:
    for lang in available_languages():
        vocab = Vocabulary.load(lang)
        meanings = {spec.means for spec in vocab.commands}
        assert {"stop", "land"} <= meanings, lang


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="available: en, ko"):
        Vocabulary.load("xx")


def _accepts(arcs: list[tuple[int, int, str | None]], final: int, words: list[str]) -> bool:
    """Does the word graph accept exactly this word sequence (following empty moves)?"""
    def closure(states: set[int]) -> set[int]:
        todo, seen = list(states), set(states)
        while todo:
            state = todo.pop()
            for src, dst, word in arcs:
                if src == state and word is None and dst not in seen:
                    seen.add(dst)
                    todo.append(dst)
        return seen

    states = closure({0})
    for word in words:
        states = closure({dst for src, dst, w in arcs if src in states and w == word})
    return final in states


def test_word_graph_accepts_commands_and_nothing_else(en: Vocabulary) -> None:
    graph, _ = word_graph(en)
    rng = random.Random(7)
    phrases = to_vosk_phrases(en, with_rejection=False)
    for phrase in rng.sample(phrases, 60):
        assert _accepts(graph.arcs, graph.FINAL, phrase.split()), phrase
    for soup in ("forty fifty", "up fifty forty", "turn right", "take", "up fifty degrees"):
        assert not _accepts(graph.arcs, graph.FINAL, soup.split()), soup
    assert graph.num_states < 2000  # a JSGF of the same grammar compiled to 25,000 states


def test_word_graph_probabilities_sum_to_one(en: Vocabulary) -> None:
    graph, weights = word_graph(en, rejection_weight=0.01)
    totals: dict[int, float] = {}
    for transition in graph.transitions(weights):
        totals[transition[0]] = totals.get(transition[0], 0.0) + transition[2]
    assert all(abs(total - 1.0) < 1e-9 for total in totals.values())


def test_vosk_phrases_are_commands_or_rejection_words(en: Vocabulary, ko: Vocabulary) -> None:
    for vocab in (en, ko):
        phrases = to_vosk_phrases(vocab)
        assert len(phrases) < 20000
        json.dumps(phrases, ensure_ascii=False)
        for phrase in phrases:
            words = phrase.split()
            is_rejection = len(words) == 1 and (words[0] in vocab.rejection_words or words[0] == vocab.unknown_word)
            assert is_rejection or vocab.command_text(words) is not None, phrase
        # Every word pair of every number a slot offers is taught, so Vosk's bigram model knows every such number.
        pairs = {tuple(p.split()[i:i + 2]) for p in phrases for i in range(len(p.split()) - 1)}
        offered = {number for spec in vocab.commands for pattern in spec.patterns for element in pattern
                   if isinstance(element, NumberSlot) for choice in element.choices for number in choice.phrases}
        assert len(offered) > 100
        for number in offered:
            assert all(pair in pairs for pair in zip(number, number[1:], strict=False)), number
