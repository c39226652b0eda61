"""A language's spoken commands, loaded from ``voice/lang/<code>.toml``, and the reading of recognised words.

Spoken words -> the natural command text pilot.grammar understands ("go up fifty centimeters" -> "up 50 centimeters",
"오른쪽 으로 구 십 도 회전" -> "turn right 90 degrees") -> :func:`edgepilot.pilot.core.grammar.parse_command`. The recognisers are
restricted to the same phrases (see :mod:`edgepilot.voice.grammar_export`), and anything that does not match a phrase exactly
is not a command.

A number slot only offers the numbers that make a valid command with each unit, as pilot.grammar decides (moves are
20-500 cm, so "fifteen centimeters", "nine" and "ten meters" are not phrases at all), and, if the language file has
``[steps]``, only multiples of the step ("go up twenty five", not "go up twenty three"). The "-teen"/"-ty" pairs
(nineteen/ninety) were PocketSphinx's commonest confusion in noise, and with steps of 5 most of them cannot occur.
Beside the commands the recognisers may offer what users say that is no valid command (``[out_of_grammar]`` and
:attr:`NumberSlot.rejected`: numbers out of range or off the steps, directions no command has, a phrase cut short),
so that "go forward ten meters" is heard as itself rather than as the nearest command, and
:meth:`Vocabulary.why_not` says why it is none ("ten meters is more than 500 cm").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Any

from edgepilot.pilot.core.errors import CommandRejected, InputError
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.pilot.core.messages import Command
from edgepilot.voice.numbers import NumberWords, Phrase, format_number

NUMBER_SLOTS = ("distance", "angle", "speed")
_SLOT = re.compile(r"\{([a-z_]+)\}")
#: pilot.grammar's range refusal: "distance must be 20-500 cm (Tello SDK range), got 1000".
_RANGE = re.compile(r"must be ([\d.]+)-([\d.]+) (\S+) .*got ([-\d.]+)")
_LANG_DIR = resources.files("edgepilot.voice").joinpath("lang")


@dataclass(frozen=True)
class Literal:
    words: Phrase


@dataclass(frozen=True)
class WordSlot:
    name: str
    choices: tuple[tuple[Phrase, str], ...]  # spoken words -> grammar word


@dataclass(frozen=True)
class NumberChoice:
    """The numbers that make a valid command when said with these units."""

    units: tuple[tuple[Phrase, str], ...]  # spoken unit (may be empty) -> grammar unit word
    values: tuple[tuple[Phrase, float], ...]  # number phrase -> the command's argument (cm, degrees, cm/s)
    phrases: frozenset[Phrase]
    prefixes: frozenset[Phrase]  # proper beginnings of those phrases

    @classmethod
    def of(cls, units: tuple[tuple[Phrase, str], ...], values: tuple[tuple[Phrase, float], ...]) -> NumberChoice:
        phrases = frozenset(p for p, _ in values)
        return cls(units, values, phrases, frozenset(p[:i] for p in phrases for i in range(1, len(p))))


@dataclass(frozen=True)
class NumberSlot:
    name: str
    units: tuple[tuple[Phrase, str], ...]  # spoken unit (may be empty) -> grammar unit word
    choices: tuple[NumberChoice, ...]  # the units grouped by the numbers they allow
    rejected: tuple[NumberChoice, ...] = ()  # the units grouped by the numbers they do not allow (out of range, steps)


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


def _said_often(phrase: Phrase, value: float) -> bool:
    """The refused numbers offered to the recogniser: those of one or two words ("ten", "twenty three") and whole
    hundreds ("six hundred"), not all 2,000 (the decoder would be five times slower)."""
    return len(phrase) <= 2 or (value.is_integer() and value % 100 == 0)


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
            self.number_phrases: dict[Phrase, float] = self.numbers.phrases()
            units = {slot: tuple((_phrase(k), str(v)) for k, v in table["units"][slot].items()) for slot in NUMBER_SLOTS}
            self.steps = {slot: float(table.get("steps", {}).get(slot, 0)) for slot in NUMBER_SLOTS}
            self.commands = tuple(self._command(entry, units, where) for entry in table["commands"])
        except KeyError as exc:
            raise InputError(f"{where}: missing {exc.args[0]!r}") from None
        self._longest_number = max(len(p) for p in self.number_phrases)
        self.words: frozenset[str] = frozenset(self._all_words())
        self._unit_words = tuple(tuple(spoken for spoken, _ in units[slot]) for slot in NUMBER_SLOTS)
        self.rejection_words = frozenset(table.get("rejection", {}).get("words", ())) - self.words
        oog = table.get("out_of_grammar", {})
        self.other_directions = frozenset(oog.get("directions", ())) - self.words
        self.fillers = frozenset(oog.get("fillers", ())) - self.words

    def _valid_numbers(self, means: str, slot: str, slot_tables: dict[str, Any],
                       unit: str) -> tuple[tuple[Phrase, float], ...]:
        """The number phrases that make ``means`` a valid command when said in ``slot`` with ``unit``, each with the
        command's argument (1.5 meters -> 150).

        The other slots are filled with their first choice: a range never depends on the direction. A decimal that the
        command rounds away is not offered either ("nine point nine degrees" would be cw 10): it only adds confusions.
        """
        filled = {name: str(next(iter(table.values()))) for name, table in slot_tables.items() if name != slot}
        if set(_SLOT.findall(means)) - {slot} - set(filled):
            return tuple(self.number_phrases.items())  # more than one number in a command: no range is checked

        def command(value: float) -> Command | None:
            try:
                return parse_command(means.format(**filled, **{slot: f"{format_number(value)} {unit}".strip()}))
            except CommandRejected:
                return None

        valid: dict[float, float] = {}
        for value in set(self.number_phrases.values()):
            parsed = command(value)
            # A tenth counts only if the command tells it from both neighbouring tenths.
            if parsed is not None and (value.is_integer() or parsed not in (command(value - 0.1), command(value + 0.1))):
                valid[value] = float(parsed.arg) if isinstance(parsed.arg, int | float) else value
        step = self.steps.get(slot, 0.0)
        if step:
            valid = {value: arg for value, arg in valid.items() if abs(arg / step - round(arg / step)) < 1e-9}
        return tuple(sorted((p, valid[v]) for p, v in self.number_phrases.items() if v in valid))

    def _command(self, entry: dict[str, Any], units: dict[str, tuple[tuple[Phrase, str], ...]],
                 where: str) -> CommandSpec:
        slot_tables = {k: v for k, v in entry.items() if k not in ("say", "means")}
        means = str(entry["means"])
        numbers: dict[str, NumberSlot] = {}
        often = [(p, v) for p, v in self.number_phrases.items() if _said_often(p, v)]
        patterns = []
        for text in entry["say"]:
            elements: list[Element] = []
            for index, piece in enumerate(_SLOT.split(text)):
                if index % 2 == 0:  # text between slots
                    if piece.strip():
                        elements.append(Literal(_phrase(piece)))
                elif piece in NUMBER_SLOTS:
                    if piece not in numbers:
                        by_unit = {unit: self._valid_numbers(means, piece, slot_tables, unit)
                                   for unit in dict.fromkeys(u for _, u in units[piece])}
                        groups = tuple(NumberChoice.of(tuple(u for u in units[piece] if by_unit[u[1]] == allowed),
                                                       allowed)
                                       for allowed in dict.fromkeys(by_unit.values()) if allowed)
                        refused = {unit: tuple(sorted((p, v) for p, v in often if p not in dict(allowed)))
                                   for unit, allowed in by_unit.items()}
                        rejected = tuple(NumberChoice.of(tuple(u for u in units[piece] if refused[u[1]] == values),
                                                         values)
                                         for values in dict.fromkeys(refused.values()) if values)
                        numbers[piece] = NumberSlot(piece, units[piece], groups, rejected)
                    elements.append(numbers[piece])
                elif piece in slot_tables:
                    choices = tuple((_phrase(k), str(v)) for k, v in slot_tables[piece].items())
                    elements.append(WordSlot(piece, choices))
                else:
                    raise InputError(f"{where}: phrase {text!r} uses slot {{{piece}}} but the entry does not define it")
            patterns.append(tuple(elements))
        return CommandSpec(tuple(patterns), means)

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

    def _walk(self, elements: Sequence[Element], words: Phrase, pos: int, slots: dict[str, str],
              refused: bool = False) -> Iterator[tuple[Status, dict[str, str]]]:
        """Yield (COMPLETE, slots) for every full match and (PREFIX, {}) wherever the words run out mid-pattern.
        ``refused``: number slots take the numbers they do not allow instead of those they do."""
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
                yield from self._walk(rest, words, pos + n, slots, refused)
            elif head.words[: len(words) - pos] == words[pos:]:
                yield Status.PREFIX, {}
        elif isinstance(head, WordSlot):
            for spoken, meaning in head.choices:
                n = len(spoken)
                if words[pos:pos + n] == spoken:
                    yield from self._walk(rest, words, pos + n, {**slots, head.name: meaning}, refused)
                elif spoken[: len(words) - pos] == words[pos:]:
                    yield Status.PREFIX, {}
        else:
            for end in range(pos + 1, min(len(words), pos + self._longest_number) + 1):
                number = words[pos:end]
                for choice in head.rejected if refused else head.choices:
                    if end == len(words) and number in choice.prefixes:
                        yield Status.PREFIX, {}
                    if number not in choice.phrases:
                        continue
                    text = format_number(self.number_phrases[number])
                    for spoken, unit in choice.units:
                        n = len(spoken)
                        if words[end:end + n] == spoken:
                            value = f"{text} {unit}".strip()
                            yield from self._walk(rest, words, end + n, {**slots, head.name: value}, refused)
                        elif spoken and spoken[: len(words) - end] == words[end:]:
                            yield Status.PREFIX, {}

    def read(self, words: Sequence[str]) -> tuple[Status, str | None]:
        """Classify recognised words and give the natural command text when they are exactly one command.

        Two different meanings for the same words (a badly written language file) count as not understood.
        """
        phrase = self._without_fillers(words)
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

    def _without_fillers(self, words: Sequence[str]) -> Phrase:
        phrase = tuple(words)
        while phrase and phrase[0] in self.fillers:
            phrase = phrase[1:]
        return phrase

    def why_not(self, words: Sequence[str]) -> str:
        """Why words that :meth:`read` finds no command are none, in one line for the user."""
        phrase = self._without_fillers(words)
        said = " ".join(words)
        if not phrase:
            return "nothing recognised" if not words else f"{said!r} is no command"
        if refusal := self._refusal_of(phrase):
            return f"{said!r}: {refusal}"
        if self._is_number_alone(phrase):
            return f"{said!r} says no command (for example 'go up fifty centimeters')"
        status, _ = self.read(phrase)
        if status is Status.PREFIX:
            return f"{said!r} is only the start of a command (for example 'go up fifty centimeters')"
        return f"{said!r} is no command"

    def _refusal_of(self, phrase: Phrase) -> str | None:
        """Why ``phrase`` is a refused command ("no command goes 'sideways'", "10 meters is more than 500 cm"), or
        None when it is no command at all."""
        if other := [w for w in phrase if w in self.other_directions]:
            return f"no command goes {other[0]!r}"
        for command in self.commands:
            for pattern in command.patterns:
                if not any(isinstance(element, NumberSlot) for element in pattern):
                    continue
                for status, slots in self._walk(pattern, phrase, 0, {}, refused=True):
                    if status is Status.COMPLETE:
                        number = next(v for k, v in slots.items() if k in NUMBER_SLOTS)
                        return self._refusal(command.means.format(**slots), number)
        return None

    def _is_number_alone(self, phrase: Phrase) -> bool:
        for end in range(1, len(phrase) + 1):
            if phrase[:end] in self.number_phrases:
                rest = phrase[end:]
                if not rest or any(rest == spoken for table in self._unit_words for spoken in table):
                    return True
        return False

    def _refusal(self, text: str, number: str) -> str:
        """Why the command ``text`` with the refused ``number`` ("10 meters") is none."""
        try:
            parse_command(text, source="voice")
        except CommandRejected as exc:
            reason = str(exc).split(": ", 1)[-1]
            if found := _RANGE.search(reason):
                low, high, unit, value = found.groups()
                side = f"more than {high} {unit}" if float(value) > float(high) else f"less than {low} {unit}"
                return f"{number} is {side} (the range is {low}-{high} {unit})"
            return reason
        steps = ", ".join(f"{slot} in steps of {format_number(step)}" for slot, step in self.steps.items() if step)
        return f"{number} is not offered ({steps})"

    def command_text(self, words: Sequence[str]) -> str | None:
        """The natural command text for exactly-one-command words, else None."""
        status, text = self.read(words)
        return text if status in (Status.COMPLETE, Status.EXTENDABLE) else None
