"""The run in the terminal: one status line that updates in place (mode, height, battery, link, what was heard, who
is followed, the last key), with command results and safety events printed above it as they happen.

Only on an interactive terminal (a pipe or ``--json`` gets the plain lines of before). Everything printed while the
line is shown goes through :meth:`StatusLine.print`, which clears the line first and redraws it after.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from edgepilot.pilot.app.status import SAFETY_TAKEOVERS, SAFETY_WARNINGS, RunStatus
from edgepilot.pilot.core.messages import Event, Velocity

REFRESH_S = 0.25
CLEAR = "\r\x1b[K"
#: Events printed the moment they happen (the rest are listed after the run, as before).
LIVE_EVENTS = (*SAFETY_TAKEOVERS, *SAFETY_WARNINGS, "command_rejected", "command_failed", "link_restored")


def describe_velocity(velocity: Velocity) -> str:
    """What a key's velocity pulse does, in words: ``forward``, ``up + turn left``..."""
    parts = []
    for value, positive, negative in ((velocity.vx_cm_s, "forward", "back"), (velocity.vy_cm_s, "left", "right"),
                                      (velocity.vz_cm_s, "up", "down"),
                                      (velocity.yaw_rate_deg_s, "turn left", "turn right")):
        if value:
            parts.append(positive if value > 0 else negative)
    return " + ".join(parts) or "stop"


def format_status(snapshot: dict, key: str | None = None, total_s: float | None = None) -> str:
    """The one line: ``t 12.3 s  hovering  h 80 cm  bat 97%  link ok  heard "take off"  following me``."""
    if not snapshot["ticks"]:
        return "starting (loading models, opening the vehicle)..."
    t = f"t {snapshot['t_s']:5.1f}" + (f"/{total_s:g}" if total_s else "") + " s"
    parts = [t, snapshot["mode"]]
    if snapshot["kind"] == "drone":
        parts.append(f"h {snapshot['height_cm']:.0f} cm")
        parts.append(f"bat {snapshot['battery_pct']:.0f}%")
    link = snapshot["link"]
    parts.append("LINK LOST" if link["lost"] else "link ok")
    if snapshot["safety"]["state"] != "ok":
        parts.append(f"safety: {snapshot['safety']['state']}")
    heard = snapshot["heard"]
    if heard:
        parts.append(f"heard \"{heard['text']}\"" + ("" if heard["understood"] else " (not understood)"))
    if snapshot["following"]:
        parts.append(f"following {snapshot['following']['who']} ({snapshot['following']['state']})")
    if key:
        parts.append(f"keys: {key}")
    if snapshot.get("viewers"):
        parts.append(f"{snapshot['viewers']} web viewer(s)")
    return "  ".join(parts)


class StatusLine:
    """Redraws ``status`` on ``stream`` every :data:`REFRESH_S` on its own thread; a tap for live events too."""

    def __init__(self, status: RunStatus, stream: TextIO | None = None, total_s: float | None = None) -> None:
        self.status = status
        self.stream = stream or sys.stderr
        self.total_s = total_s
        self.key: str | None = None
        self._lock = threading.Lock()
        self._shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-line", daemon=True)

    def start(self) -> StatusLine:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        with self._lock:
            if self._shown:
                self.stream.write(CLEAR)
                self.stream.flush()
                self._shown = False

    def print(self, text: str, stream: TextIO | None = None) -> None:
        """Print a line above the status line (which is redrawn at the next refresh)."""
        with self._lock:
            if self._shown:
                self.stream.write(CLEAR)
                self.stream.flush()
                self._shown = False
            out = stream or sys.stdout
            out.write(text + "\n")
            out.flush()

    def note_key(self, velocity: Velocity) -> None:
        self.key = describe_velocity(velocity)

    # RunTap: only events matter here (the line itself reads the status).
    def on_tick(self, *args: object) -> None: ...

    def on_command(self, record: object) -> None: ...

    def on_event(self, event: Event) -> None:
        if event.type in LIVE_EVENTS:
            self.print(f"{event.t_s:7.2f} s  {event.type}: {event.detail}")

    def _run(self) -> None:
        while not self._stop.wait(REFRESH_S):
            line = format_status(self.status.snapshot(), self.key, self.total_s)
            with self._lock:
                self.stream.write(CLEAR + line[:_width()])
                self.stream.flush()
                self._shown = True


def _width() -> int:
    import shutil

    return max(20, shutil.get_terminal_size((120, 20)).columns - 1)
