"""The pilot talks back: what it does ("taking off", "up 50", "following Alice", "landing"), what went wrong ("say
again", "battery 15 percent, landing", "link lost, landing", "I lost Alice, hovering") and its questions ("did you
say flip forward? say yes").

:class:`Talk` is a run tap: it watches the pilot's commands and events, never changes them, and hands each phrase to
``say(text, t_s)`` (a :class:`edgepilot.voice.tts.Speaker`, on its own thread). What it says is added to the run as a
``said`` event, so the recording keeps it. :func:`unsure` turns an utterance the recogniser dropped into the
question or the "say again" that goes through the pilot's command queue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from edgepilot.pilot.core.errors import CommandRejected, InputError
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.pilot.core.messages import Command, Event
from edgepilot.pilot.core.runner import CommandRecord

FLIPS = {"l": "left", "r": "right", "f": "forward", "b": "back"}
#: Drop reasons that mean "heard, but not surely enough" (voice/listener.py), as opposed to no command at all.
UNSURE_REASONS = ("not sure enough", "sounds like speech that is no command")


def spoken(text: str) -> str:
    """A command's canonical text as it is said: "cw 90" -> "turn right 90", "flip f" -> "flip forward"."""
    verb, _, arg = text.partition(" ")
    if verb == "flip":
        return f"flip {FLIPS.get(arg, arg)}"
    if verb in ("cw", "ccw"):
        return f"turn {'right' if verb == 'cw' else 'left'} {arg}"
    if verb == "takeoff":
        return "take off"
    return text


def for_command(record: CommandRecord) -> str | None:
    """What to say when the pilot has dealt with a command (None: nothing)."""
    verb, _, arg = record.command.partition(" ")
    if record.source == "safety":
        return None  # the event that made safety act says it
    if record.result.startswith("rejected"):
        return "nothing to confirm" if verb in ("yes", "no") else f"cannot {spoken(record.command)}"
    if record.result.startswith("error"):
        return f"{spoken(record.command)} failed"
    if record.result != "ok":
        return None
    if verb == "ask":
        return f"did you say {spoken(arg)}? say yes"
    if verb == "pardon":
        return "say again"
    if verb == "follow":
        return "following you" if arg == "me" else f"following {arg}"
    if verb in ("cw", "ccw"):
        return f"turning {'right' if verb == 'cw' else 'left'} {arg}"
    return {"takeoff": "taking off", "land": "landing", "stop": "stopping", "emergency": "emergency stop",
            "photo": "photo", "wait": None, "yes": None, "no": None}.get(verb, spoken(record.command))


def _percent(detail: str) -> str:
    match = re.search(r"battery (\d+)%", detail)
    return f"battery {match.group(1)} percent" if match else "battery low"


def for_event(event: Event) -> str | None:
    """What to say about an event (None: nothing)."""
    detail = event.detail
    if event.type == "battery_low":
        return _percent(detail)
    if event.type == "battery_land":
        return f"{_percent(detail)}, landing"
    if event.type == "link_lost":
        return "link lost, landing" if "landing" in detail else "link lost, stopping"
    if event.type == "target_lost":
        match = re.match(r"cannot see (.+?) for ", detail)
        who = match.group(1) if match else "the target"
        return f"I lost {'you' if who == 'anybody' else who}, {'stopping' if 'stopping' in detail else 'hovering'}"
    if event.type == "fence_breach":
        return "geofence reached, landing" if "landing" in detail else "geofence reached, stopping"
    if event.type == "handover":
        return "waiting for your command"
    if event.type == "handover_timeout":
        return f"nobody answered, {'landing' if 'landing' in detail else 'stopping'}"
    if event.type == "declined":
        return "cancelled"
    if event.type == "ask_expired":
        return "no answer, cancelled"
    if event.type in ("command_failed", "command_timeout"):
        return "command failed"
    if event.type == "video_missing":
        return "camera lost"
    if event.type == "lane_lost":
        return "I lost the lane, stopping"
    return None


class Talk:
    """A run tap that says the pilot's confirmations and problems. ``note(t_s, type, detail)`` adds the ``said``
    event to the run (:meth:`edgepilot.pilot.core.runner.Pilot.note_event`)."""

    def __init__(self, say: Callable[[str, float], None],
                 note: Callable[[float, str, str], None] | None = None) -> None:
        self.say = say
        self.note = note

    def on_tick(self, *args: object) -> None:
        pass

    def on_command(self, record: CommandRecord) -> None:
        text = for_command(record)
        if text:
            self._say(record.t_s, text)

    def on_event(self, event: Event) -> None:
        if event.type == "said":
            return
        text = for_event(event)
        if text:
            self._say(event.t_s, text)

    def _say(self, t_s: float, text: str) -> None:
        self.say(text, t_s)
        if self.note is not None:
            self.note(t_s, "said", text)


def unsure(info: dict, vocab, min_confidence: float, min_fit: float | None,
           is_risky: Callable[[Command], bool]) -> Command | None:
    """The conversation command for an utterance the recogniser dropped (``info``: the listener's drop dict):
    ``ask <command>`` when its words are a risky command that would have been accepted had it not been risky (its
    confidence reaches ``min_confidence`` and its fit ``min_fit``, the thresholds of ordinary commands): heard, but
    not surely enough for what it does. ``pardon`` ("say again") for other words; None for no words at all (saying
    "say again" to every propeller whine helps nobody)."""
    words = tuple(str(info.get("text") or "").split())
    if not words:
        return None
    reason = str(info.get("reason", ""))
    text = vocab.command_text(words)
    if text is not None and reason.startswith(UNSURE_REASONS):
        try:
            command = parse_command(text, source="voice")
        except CommandRejected:
            command = None
        fit = re.search(r"fit (-?[\d.]+) <", reason)
        fit_ok = min_fit is None or fit is None or float(fit.group(1)) >= min_fit
        if (command is not None and is_risky(command) and float(info.get("confidence", 0.0)) >= min_confidence
                and fit_ok):
            return Command("ask", command.text, "voice")
    return Command("pardon", None, "voice")


def add_arguments(parser) -> None:
    """``--speak``, ``--speak-to F.wav``, ``--tts`` for the verbs that run a vehicle."""
    parser.add_argument("--speak", action="store_true", help="say what the pilot does and what goes wrong through "
                        "the loudspeaker (espeak-ng or flite; the microphone is muted while it speaks)")
    parser.add_argument("--speak-to", type=Path, metavar="F.wav", help="write what the pilot says to a WAV, each "
                        "phrase at the run time it was said")
    parser.add_argument("--tts", choices=("espeak-ng", "flite"), help="speech synthesiser (default: espeak-ng if "
                        "installed, else flite)")


def open_speaker(args):
    """The Speaker ``--speak`` / ``--speak-to`` ask for, or None. Before the vehicle: a missing synthesiser moves
    nothing."""
    if not (getattr(args, "speak", False) or getattr(args, "speak_to", None)):
        return None
    from edgepilot.voice.tts import Speaker, make_tts

    if args.speak_to is not None and not args.speak_to.expanduser().parent.is_dir():
        raise InputError(f"--speak-to {args.speak_to}: the folder {args.speak_to.parent} does not exist")
    return Speaker(make_tts(args.tts), play=args.speak, wav=args.speak_to.expanduser() if args.speak_to else None)


def attach(pilot, speaker, listener=None) -> Callable[[dict], Command | None] | None:
    """Let ``speaker`` (if any) say the run (a tap), mute ``listener`` while it plays, and return the listener's
    ``on_drop`` that asks about unsure risky commands and says "say again" (through the pilot's queue)."""
    if speaker is None:
        return None  # nobody would hear the question: unsure utterances are dropped, as the listener decided
    pilot.add_tap(Talk(speaker.say, pilot.note_event))
    if listener is not None and speaker.plays:
        listener.muted = speaker.speaking
    if listener is None:
        return None
    from edgepilot.voice.listener import VoiceConfig, is_risky

    config = listener.config or VoiceConfig()
    recogniser = listener.recogniser
    normal = config.min_confidence if config.min_confidence is not None else recogniser.thresholds[0]
    fit = recogniser.fit_thresholds[0] if recogniser.fit_thresholds is not None else None

    # A language without a spoken "yes" (voice/lang/<lang>.toml) cannot answer a question: never ask, say again.
    answerable = any(spec.means == "yes" for spec in recogniser.vocab.commands)

    def on_drop(info: dict) -> Command | None:
        command = unsure(info, recogniser.vocab, normal, fit, lambda c: answerable and is_risky(c, config))
        if command is not None:
            pilot.submit(command)
        return command

    return on_drop


def on_first_frame(setup: Callable[[object], None], on_frame: Callable[..., None] | None) -> Callable[..., None]:
    """For scenarios that build their pilot inside (``on_frame(frame, seen, pilot)``): ``setup(pilot)`` once, on the
    first frame, then ``on_frame``."""
    done: list[bool] = []

    def hook(frame: object, seen: object, pilot: object, *rest: object) -> None:
        if not done:
            done.append(True)
            setup(pilot)
        if on_frame is not None:
            on_frame(frame, seen, pilot, *rest)

    return hook
