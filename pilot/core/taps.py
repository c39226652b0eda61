"""Several :class:`~edgepilot.pilot.core.runner.RunTap` watching one run (the recorder, spoken feedback, a status
display), called in order."""

from __future__ import annotations

from typing import Any


class Taps:
    def __init__(self, *taps: Any) -> None:
        self.taps = [t for t in taps if t is not None]

    def on_tick(self, *args: Any) -> None:
        for tap in self.taps:
            tap.on_tick(*args)

    def on_command(self, record: Any) -> None:
        for tap in self.taps:
            tap.on_command(record)

    def on_event(self, event: Any) -> None:
        for tap in self.taps:
            tap.on_event(event)


def add_tap(pilot: Any, tap: Any) -> None:
    """Let ``tap`` watch ``pilot``'s run too, after the taps already watching it."""
    current = pilot.tap
    if current is None:
        pilot.tap = tap
    elif isinstance(current, Taps):
        current.taps.append(tap)
    else:
        pilot.tap = Taps(current, tap)
