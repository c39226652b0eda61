"""A language's spoken commands, loaded from ``voice/lang/<code>.toml``, and the reading of recognised words.

Spoken words -> the natural command text pilot.grammar understands ("go up fifty centimeters" -> "up 50 centimeters",
"오른쪽 으로 구 십 도 회전" -> "turn right 90 degrees") -> :func:`pilot.grammar.parse_command`. The recognisers are
restricted to the same phrases (see :mod:`voice.grammar_export`), and anything that does not match a phrase exactly
is not a command.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Any

from pilot.errors import InputError
from voice.numbers import NumberWords, Phrase, format_number

NUMBER_SLOTS = ("distance", "angle", "speed")
_SLOT = re.compile(r"\{([a-z_]+)\}")
_LANG_DIR = resources.files("voice").joinpath("lang")


@dataclass(frozen=True)
class Literal:
    words: Phrase


@dataclass(frozen=True)
class WordSlot:
    name: str
    choices: tuple[tuple[Phrase, str], ...]  # spoken words -> grammar word


@dataclass(frozen=True)
class NumberSlot:
    name: str
    units: tuple[tuple[Phrase, str], ...]  # spoken unit (may be empty) -> grammar unit word


Element = Literal | WordSlot | NumberSlot


@dataclass(frozen=True)
class CommandSpec:
    patterns: tuple[tuple[Element, ...], ...]
    means: str


class Status(Enum):
    """How far a word sequence is from a command: what the endpointer needs to decide how long to wait."""

    NONE = "none"  # cannot become a command
    PREFIX = "prefix"  # may become one if the speaker goes on
    COMPLETE = "complete"  # a command, and nothing can follow
    EXTENDABLE = "extendable"  # a command, but more may follow ("up fifty" -> "up fifty five centimeters")


def available_languages() -> list[str]:
    return sorted(p.name[:-5] for p in _LANG_DIR.iterdir() if p.name.endswith(".toml"))


def _phrase(text: str) -> Phrase:
    return tuple(text.split())


class Vocabulary:
    """Everything a recogniser needs to know about one language's commands."""

    def __init__(self, table: dict[str, Any], where: str) -> None:
        try:
            self.code = str(table["code"])
            self.name = str(table.get("name", self.code))
            self.unknown_word = str(table.get("unknown_word", "[unk]"))
            self.numbers = NumberWords.from_table(table["numbers"], where)
            units = {slot: tuple((_phrase(k), str(v)) for k, v in table["units"][slot].items()) for slot in NUMBER_SLOTS}
            self.commands = tuple(self._command(entry, units, where) for entry in table["commands"])
        except KeyError as exc:
            raise InputError(f"{where}: missing {exc.args[0]!r}") from None
        self.number_phrases: dict[Phrase, float] = self.numbers.phrases()
        self._number_prefixes = {p[:i] for p in self.number_phrases for i in range(1, len(p))}
        self._longest_number = max(len(p) for p in self.number_phrases)
        self.words: frozenset[str] = frozenset(self._all_words())
        self.rejection_words = frozenset(table.get("rejection", {}).get("words", ())) - self.words

    @staticmethod
    def _command(entry: dict[str, Any], units: dict[str, tuple[tuple[Phrase, str], ...]], where: str) -> CommandSpec:
        slot_tables = {k: v for k, v in entry.items() if k not in ("say", "means")}
        patterns = []
        for text in entry["say"]:
            elements: list[Element] = []
            for index, piece in enumerate(_SLOT.split(text)):
                if index % 2 == 0:  # text between slots
                    if piece.strip():
                        elements.append(Literal(_phrase(piece)))
                elif piece in NUMBER_SLOTS:
                    elements.append(NumberSlot(piece, units[piece]))
                elif piece in slot_tables:
                    choices = tuple((_phrase(k), str(v)) for k, v in slot_tables[piece].items())
                    elements.append(WordSlot(piece, choices))
                else:
                    raise InputError(f"{where}: phrase {text!r} uses slot {{{piece}}} but the entry does not define it")
            patterns.append(tuple(elements))
        return CommandSpec(tuple(patterns), str(entry["means"]))

    def _all_words(self) -> Iterator[str]:
        yield from self.numbers.words
        for command in self.commands:
            for pattern in command.patterns:
                for element in pattern:
                    if isinstance(element, Literal):
                        yield from element.words
                    else:
                        pairs = element.choices if isinstance(element, WordSlot) else element.units
                        for spoken, _ in pairs:
                            yield from spoken

    @classmethod
    def load(cls, code: str) -> Vocabulary:
        """The built-in language ``code`` ("en", "ko", ...); an :class:`InputError` naming the choices if unknown."""
        if code not in available_languages():
            raise InputError(f"no voice commands for language {code!r}; available: {', '.join(available_languages())}")
        where = f"voice/lang/{code}.toml"
        try:
            table = tomllib.loads(_LANG_DIR.joinpath(f"{code}.toml").read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{where} is not valid TOML: {exc}") from None
        return cls(table, where)

    # -- reading recognised words -------------------------------------------------------------------------------

    def _walk(self, elements: Sequence[Element], words: Phrase, pos: int, slots: dict[str, str]) -> Iterator[
            tuple[Status, dict[str, str]]]:
        """Yield (COMPLETE, slots) for every full match and (PREFIX, {}) wherever the words run out mid-pattern."""
        if not elements:
            if pos == len(words):
                yield Status.COMPLETE, slots
            return
        if pos == len(words):
            yield Status.PREFIX, {}
            return
        head, rest = elements[0], elements[1:]
        if isinstance(head, Literal):
            n = len(head.words)
            if words[pos:pos + n] == head.words:
                yield from self._walk(rest, words, pos + n, slots)
            elif head.words[: len(words) - pos] == words[pos:]:
                yield Status.PREFIX, {}
        elif isinstance(head, WordSlot):
            for spoken, meaning in head.choices:
                n = len(spoken)
                if words[pos:pos + n] == spoken:
                    yield from self._walk(rest, words, pos + n, {**slots, head.name: meaning})
                elif spoken[: len(words) - pos] == words[pos:]:
                    yield Status.PREFIX, {}
        else:
            for end in range(pos + 1, min(len(words), pos + self._longest_number) + 1):
                number = words[pos:end]
                if end == len(words) and number in self._number_prefixes:
                    yield Status.PREFIX, {}
                if number not in self.number_phrases:
                    continue
                text = format_number(self.number_phrases[number])
                for spoken, unit in head.units:
                    n = len(spoken)
                    if words[end:end + n] == spoken:
                        value = f"{text} {unit}".strip()
                        yield from self._walk(rest, words, end + n, {**slots, head.name: value})
                    elif spoken and spoken[: len(words) - end] == words[end:]:
                        yield Status.PREFIX, {}

    def read(self, words: Sequence[str]) -> tuple[Status, str | None]:
        """Classify recognised words and give the natural command text when they are exactly one command.

        Two different meanings for the same words (a badly written language file) count as not understood.
        """
        phrase = tuple(words)
        meanings: set[str] = set()
        prefix = False
        if phrase:
            for command in self.commands:
                for pattern in command.patterns:
                    for status, slots in self._walk(pattern, phrase, 0, {}):
                        if status is Status.PREFIX:
                            prefix = True
                        else:
                            meanings.add(command.means.format(**slots))
        if len(meanings) == 1:
            return (Status.EXTENDABLE if prefix else Status.COMPLETE), meanings.pop()
        if not meanings and (prefix or not phrase):
            return Status.PREFIX, None
        return Status.NONE, None

    def command_text(self, words: Sequence[str]) -> str | None:
        """The natural command text for exactly-one-command words, else None."""
        status, text = self.read(words)
        return text if status in (Status.COMPLETE, Status.EXTENDABLE) else None
