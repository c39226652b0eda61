"""Spoken numbers: every way a language says the integers 0-999 and one-decimal numbers 0.0-9.9, and nothing else.

The number words come from the language file (``voice/lang/<code>.toml``), so adding a language that counts like
English (teens, tens words) or like Korean/Chinese/Japanese (digit x ten, digit x hundred) is data, not code. The
phrase table is finite and exact: "forty five" is 45, "forty fifty" is not a number at all, so a recogniser that is
restricted to it cannot produce word soup, and reading a number back is a dictionary look-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from edgepilot.pilot.core.errors import InputError

Phrase = tuple[str, ...]
MAX_INTEGER = 999


@dataclass(frozen=True)
class NumberWords:
    """The number vocabulary of one language. English style has ``teens`` and ``tens``; the other style has ``ten``."""

    zero: str
    digits: tuple[str, ...]  # 1..9
    hundred: str
    point: str
    teens: tuple[str, ...] = ()  # 10..19
    tens: tuple[str, ...] = ()  # 20, 30 .. 90
    ten: str = ""  # a multiplier: "이 십" = 2 x 10
    implicit_one: bool = False  # "십" = 10 and "백" = 100 without a leading "one"
    one_hundred_alternatives: tuple[str, ...] = ()  # "a hundred"
    and_word: str = ""  # "one hundred and five"

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> NumberWords:
        try:
            words = cls(
                zero=str(table["zero"]),
                digits=tuple(table["digits"]),
                hundred=str(table["hundred"]),
                point=str(table["point"]),
                teens=tuple(table.get("teens", ())),
                tens=tuple(table.get("tens", ())),
                ten=str(table.get("ten", "")),
                implicit_one=bool(table.get("implicit_one", False)),
                one_hundred_alternatives=tuple(table.get("one_hundred_alternatives", ())),
                and_word=str(table.get("and_word", "")),
            )
        except KeyError as exc:
            raise InputError(f"{where}: [numbers] needs {exc.args[0]!r}") from None
        english_style = len(words.teens) == 10 and len(words.tens) == 8
        if len(words.digits) != 9 or not (english_style or words.ten):
            raise InputError(f"{where}: [numbers] needs 9 digits and either 10 teens + 8 tens words, or a 'ten' word")
        return words

    def _below_hundred(self, n: int) -> list[Phrase]:
        """Ways to say 1..99."""
        if n < 10:
            return [(self.digits[n - 1],)]
        if self.tens:
            if n < 20:
                return [(self.teens[n - 10],)]
            tens_word = self.tens[n // 10 - 2]
            return [(tens_word,)] if n % 10 == 0 else [(tens_word, self.digits[n % 10 - 1])]
        tens, units = divmod(n, 10)
        lead: Phrase = () if tens == 1 and self.implicit_one else (self.digits[tens - 1],)
        tail: Phrase = (self.digits[units - 1],) if units else ()
        return [(*lead, self.ten, *tail)]

    def spell(self, n: int) -> list[Phrase]:
        """Every accepted way to say the integer ``n`` (0..999)."""
        if not 0 <= n <= MAX_INTEGER:
            raise ValueError(f"only 0-{MAX_INTEGER} can be spoken, got {n}")
        if n == 0:
            return [(self.zero,)]
        hundreds, rest = divmod(n, 100)
        if not hundreds:
            return self._below_hundred(n)
        if hundreds == 1:
            leads: list[Phrase] = [(alt,) for alt in self.one_hundred_alternatives]
            leads.append(() if self.implicit_one else (self.digits[0],))
        else:
            leads = [(self.digits[hundreds - 1],)]
        heads = [(*lead, self.hundred) for lead in leads]
        if not rest:
            return heads
        tails = self._below_hundred(rest)
        joined = [(*head, *tail) for head in heads for tail in tails]
        if self.and_word:
            joined += [(*head, self.and_word, *tail) for head in heads for tail in tails]
        return joined

    def phrases(self) -> dict[Phrase, float]:
        """phrase -> value for 0..999 and 0.0..9.9 ("one point five", "영 점 오")."""
        table: dict[Phrase, float] = {}

        def add(phrase: Phrase, value: float) -> None:
            if table.setdefault(phrase, value) != value:
                raise InputError(f"number words are ambiguous: {' '.join(phrase)!r} means two numbers")

        for n in range(MAX_INTEGER + 1):
            for phrase in self.spell(n):
                add(phrase, float(n))
        for whole in range(10):
            for phrase in self.spell(whole):
                for tenth in range(10):
                    digit = self.zero if tenth == 0 else self.digits[tenth - 1]
                    add((*phrase, self.point, digit), whole + tenth / 10)
        return table

    @cached_property
    def words(self) -> frozenset[str]:
        """Every word of a number (computed once: the whole table is spelled out for it)."""
        return frozenset(w for phrase in self.phrases() for w in phrase)


def format_number(value: float) -> str:
    """Digits for pilot.grammar: 50.0 -> "50", 1.5 -> "1.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
