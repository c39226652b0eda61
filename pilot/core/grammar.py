"""The command grammar shared by scripts, voice, the keyboard and behaviours.

Canonical form is the Tello SDK text (``takeoff``, ``up 50``, ``cw 90``, ``flip l``, ``speed 50``) plus edgepilot's own
verbs (``stop``, ``emergency``, ``follow me``, ``follow <name>``, ``photo``, ``wait <s>``, ``autopilot lane|model|off``)
and the conversation's (``ask <command>``, ``yes``, ``no``, ``pardon``: see pilot/core/confirm.py). The parser also accepts
the natural phrasings voice produces once numbers are digits: "turn right 90", "go up 50 centimeters",
"fly forward 1.5 meters". Every argument is checked against the Tello SDK ranges; anything else is a
:class:`CommandRejected` that names the allowed range, and never reaches a vehicle.
"""

from __future__ import annotations

import math
import re

from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.messages import FLIP_DIRECTIONS, MOVE_VERBS, Command

MOVE_RANGE_CM = (20, 500)
TURN_RANGE_DEG = (1, 360)
SPEED_RANGE_CM_S = (10, 100)
WAIT_RANGE_S = (0.0, 600.0)
#: ``autopilot lane`` (computer vision), ``autopilot model`` (the learned driver), ``autopilot off``.
AUTOPILOT_MODES = ("lane", "model", "off")
#: Said phrasings of the autopilot commands ("stop" ends the autopilot like any other plan).
_AUTOPILOT_PHRASES = {"drive": "lane", "self drive": "lane", "autopilot": "lane",
                      "autopilot on": "lane"}
#: A person's name, as enrolled (``edgepilot enroll``) and as said after "follow": a letter of any script, then letters, digits,
#: spaces, '.', '-', '_' and apostrophes, 1-64 characters. Names compare without regard to case.
NAME_PATTERN = re.compile(r"[^\W\d_][\w .'-]{0,63}")

_BARE = {
    "takeoff": "takeoff",
    "take off": "takeoff",
    "land": "land",
    "stop": "stop",
    "hover": "stop",
    "halt": "stop",
    "emergency": "emergency",
    "photo": "photo",
    "take a photo": "photo",
    "take a picture": "photo",
    "picture": "photo",
    # Answers to a question the pilot asked ("did you say flip forward? say yes"), and its "say again".
    "yes": "yes",
    "confirm": "yes",
    "no": "no",
    "cancel": "no",
    "pardon": "pardon",
    "say again": "pardon",
}
_MOVE_WORDS = {
    "up": "up",
    "down": "down",
    "left": "left",
    "right": "right",
    "forward": "forward",
    "forwards": "forward",
    "ahead": "forward",
    "back": "back",
    "backward": "back",
    "backwards": "back",
}
_TURN_WORDS = {
    "cw": "cw",
    "ccw": "ccw",
    "right": "cw",
    "clockwise": "cw",
    "left": "ccw",
    "counterclockwise": "ccw",
    "anticlockwise": "ccw",
}
_FLIP_WORDS = {
    "l": "l", "left": "l",
    "r": "r", "right": "r",
    "f": "f", "forward": "f", "forwards": "f",
    "b": "b", "back": "b", "backward": "b", "backwards": "b",
}
_LENGTH_UNITS = {
    "": 1.0, "cm": 1.0, "centimeter": 1.0, "centimeters": 1.0, "centimetre": 1.0, "centimetres": 1.0,
    "m": 100.0, "meter": 100.0, "meters": 100.0, "metre": 100.0, "metres": 100.0,
}
_ANGLE_UNITS = {"": 1.0, "deg": 1.0, "degree": 1.0, "degrees": 1.0}
_TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0}
_SPEED_UNITS = {"": 1.0, "cm/s": 1.0, "centimeters per second": 1.0, "centimetres per second": 1.0}
_FILLER_PREFIXES = ("please ", "go ", "fly ", "move ", "drive ", "now ")
_NUMBER = r"(?P<num>[+-]?\d+(?:\.\d+)?)"


def _number(match: re.Match[str], units: dict[str, float], line: str) -> float:
    unit = (match.group("unit") or "").strip()
    if unit not in units:
        raise CommandRejected(f"{line!r}: unknown unit {unit!r}")
    value = float(match.group("num")) * units[unit]
    if not math.isfinite(value):
        raise CommandRejected(f"{line!r}: not a finite number")
    return value


def _check_range(value: float, bounds: tuple[float, float], what: str, unit: str, line: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise CommandRejected(f"{line!r}: {what} must be {low:g}-{high:g} {unit} (Tello SDK range), got {value:g}")


def _normalise(text: str) -> str:
    line = " ".join(text.strip().lower().split())
    changed = True
    while changed:
        changed = False
        for prefix in _FILLER_PREFIXES:
            if line.startswith(prefix) and line != prefix.strip():
                line = line[len(prefix):]
                changed = True
    return line


def _unit_pattern(units: dict[str, float]) -> str:
    names = sorted((re.escape(u) for u in units if u), key=len, reverse=True)
    return rf"(?:\s*(?P<unit>{'|'.join(names)}))?"


_MOVE_RE = re.compile(rf"(?P<dir>[a-z]+) {_NUMBER}{_unit_pattern(_LENGTH_UNITS)}")
_TURN_RE = re.compile(rf"(?:turn |rotate |yaw )?(?P<dir>[a-z]+) {_NUMBER}{_unit_pattern(_ANGLE_UNITS)}")
_SPEED_RE = re.compile(rf"(?:set )?speed (?:to )?{_NUMBER}{_unit_pattern(_SPEED_UNITS)}")
_WAIT_RE = re.compile(rf"(?:wait|pause|sleep) (?:for )?{_NUMBER}{_unit_pattern(_TIME_UNITS)}")


def parse_command(text: str, source: str = "script") -> Command:
    """Parse one command; raise :class:`CommandRejected` with a one-line reason if it is not valid."""
    if not isinstance(text, str):
        raise CommandRejected(f"a command must be text, got {type(text).__name__}")
    line = _normalise(text)
    if not line:
        raise CommandRejected("empty command")
    if line in _BARE:
        return Command(_BARE[line], None, source)

    if line in _AUTOPILOT_PHRASES:
        return Command("autopilot", _AUTOPILOT_PHRASES[line], source)
    words = line.split()
    if words[0] == "autopilot":
        if len(words) == 2 and words[1] in AUTOPILOT_MODES:
            return Command("autopilot", words[1], source)
        raise CommandRejected(f"{line!r}: say 'autopilot {' | '.join(AUTOPILOT_MODES)}'")
    if words[0] == "flip":
        if len(words) == 2 and words[1] in _FLIP_WORDS:
            return Command("flip", _FLIP_WORDS[words[1]], source)
        raise CommandRejected(f"{line!r}: flip needs one direction: {' | '.join(FLIP_DIRECTIONS)}")
    if words[0] == "ask":
        # "ask flip f": the pilot asks whether the command was meant and runs it only after "yes" (voice that was
        # heard, but not surely enough, for a risky command).
        if len(words) < 2 or words[1] in ("ask", "yes", "no", "pardon"):
            raise CommandRejected(f"{line!r}: ask needs the command to ask about, e.g. 'ask flip f'")
        return Command("ask", parse_command(" ".join(words[1:]), source).text, source)
    if words[0] == "follow":
        who = " ".join(words[1:])
        if who == "me" or NAME_PATTERN.fullmatch(who):
            return Command("follow", who, source)
        raise CommandRejected(f"{line!r}: say 'follow me' or 'follow <name>' (an enrolled person's name)")

    if match := _SPEED_RE.fullmatch(line):
        value = _number(match, _SPEED_UNITS, line)
        _check_range(value, SPEED_RANGE_CM_S, "speed", "cm/s", line)
        return Command("speed", round(value), source)
    if match := _WAIT_RE.fullmatch(line):
        value = _number(match, _TIME_UNITS, line)
        _check_range(value, WAIT_RANGE_S, "wait", "s", line)
        return Command("wait", value, source)
    is_turn = words[0] in ("turn", "rotate", "yaw") or words[0] in ("cw", "ccw", "clockwise", "counterclockwise",
                                                                      "anticlockwise")
    if is_turn and (match := _TURN_RE.fullmatch(line)) and match.group("dir") in _TURN_WORDS:
        value = _number(match, _ANGLE_UNITS, line)
        _check_range(value, TURN_RANGE_DEG, "rotation", "degrees", line)
        return Command(_TURN_WORDS[match.group("dir")], round(value), source)
    if (match := _MOVE_RE.fullmatch(line)) and match.group("dir") in _MOVE_WORDS:
        value = _number(match, _LENGTH_UNITS, line)
        _check_range(value, MOVE_RANGE_CM, "distance", "cm", line)
        return Command(_MOVE_WORDS[match.group("dir")], round(value), source)
    if words[0] in MOVE_VERBS or words[0] in _MOVE_WORDS or is_turn or words[0] in ("speed", "wait"):
        raise CommandRejected(f"{line!r}: expected '{words[0]} <number>' (for example 'up 50', 'cw 90')")
    raise CommandRejected(
        f"unknown command {line!r}; known: takeoff, land, stop, emergency, up/down/left/right/forward/back <cm>, "
        "cw/ccw <deg>, flip l|r|f|b, speed <cm/s>, follow me|<name>, photo, wait <s>, autopilot lane|model|off, "
        "ask <command>, yes, no"
    )


def parse_script(script: str, source: str = "script") -> list[Command]:
    """Parse ``;``- or newline-separated commands; ``#`` starts a comment. Errors name the failing command."""
    commands: list[Command] = []
    pieces = [p for chunk in script.splitlines() for p in chunk.split("#", 1)[0].split(";")]
    for number, piece in enumerate((p for p in pieces if p.strip()), start=1):
        try:
            commands.append(parse_command(piece, source))
        except CommandRejected as exc:
            raise CommandRejected(f"script command {number}: {exc}") from None
    if not commands:
        raise CommandRejected("the script is empty; give commands separated by ';', e.g. 'takeoff; up 50; land'")
    return commands
