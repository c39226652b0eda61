"""Ask instead of guess: a command heard, but not surely enough, is asked about and runs only after "yes".

The conversation travels through the pilot's command queue like any command, so scripts can hold it and recordings
show it::

    ask flip f     the pilot asks "did you say flip forward? say yes"  (event ``asked``)
    yes            within ``timeout_s``: ``flip f`` runs                (event ``confirmed``)
    no             the question is dropped                              (event ``declined``)
    (nothing)      after ``timeout_s`` the question lapses              (event ``ask_expired``)
    pardon         "say again": an utterance was not understood         (event ``not_understood``)

A new question replaces one still open. "yes" with no open question is refused (nothing runs). Who asks (voice) and
how it is said (pilot/app/talk.py) are not this module's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.pilot.core.messages import Command

CONVERSATION_VERBS = ("ask", "yes", "no", "pardon")
#: How long a question waits for its "yes" (a person answers in 1-3 s; longer and the situation has changed).
ASK_TIMEOUT_S = 6.0


@dataclass(frozen=True)
class Question:
    command: Command
    asked_t_s: float


class Conversation:
    def __init__(self, timeout_s: float = ASK_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.open: Question | None = None

    def handle(self, command: Command, t_s: float) -> tuple[Command | None, list[tuple[str, str]]]:
        """One conversation command: the command to run now (after a "yes"), and the events to report.
        :class:`CommandRejected` for a "yes" or "no" with no question open."""
        events = self.expire(t_s)
        if command.verb == "ask":
            asked = parse_command(str(command.arg), command.source)
            if self.open is not None:
                events.append(("ask_replaced", f"{self.open.command.text} replaced by {asked.text}"))
            self.open = Question(asked, t_s)
            events.append(("asked", asked.text))
            return None, events
        if command.verb == "pardon":
            events.append(("not_understood", "asked to say it again"))
            return None, events
        if self.open is None:
            raise CommandRejected(f"{command.verb!r}: no question is open (nothing to confirm)")
        question, self.open = self.open, None
        waited = t_s - question.asked_t_s
        if command.verb == "no":
            events.append(("declined", f"{question.command.text} after {waited:.1f} s"))
            return None, events
        events.append(("confirmed", f"{question.command.text} after {waited:.1f} s"))
        return Command(question.command.verb, question.command.arg, command.source), events

    def expire(self, t_s: float) -> list[tuple[str, str]]:
        """The events of a question that lapsed by ``t_s`` (call every tick)."""
        if self.open is None or t_s - self.open.asked_t_s < self.timeout_s:
            return []
        question, self.open = self.open, None
        return [("ask_expired", f"{question.command.text}: no answer in {self.timeout_s:g} s")]
