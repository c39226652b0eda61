"""Keyboard teleop in the terminal: a manual override that beats autonomy and voice (safety still beats it).

Keys: w/s forward/back, a/d left/right, arrow up/down climb/descend, arrow left/right turn, t take off, l land,
space stop (hover). A movement key drives for :data:`PULSE_S` seconds; holding it down (key repeat) keeps going,
releasing it stops, since terminals only report presses.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from contextlib import contextmanager

from edgepilot.pilot.core.messages import Command, Velocity

log = logging.getLogger(__name__)

PULSE_S = 0.4
SPEED_CM_S = 40.0
YAW_DEG_S = 45.0

_COMMAND_KEYS = {"t": "takeoff", "l": "land", " ": "stop", "p": "autopilot lane", "m": "autopilot model"}
_VELOCITY_KEYS = {
    "w": Velocity(vx_cm_s=SPEED_CM_S),
    "s": Velocity(vx_cm_s=-SPEED_CM_S),
    "a": Velocity(vy_cm_s=SPEED_CM_S),
    "d": Velocity(vy_cm_s=-SPEED_CM_S),
    "\x1b[A": Velocity(vz_cm_s=SPEED_CM_S),      # arrow up
    "\x1b[B": Velocity(vz_cm_s=-SPEED_CM_S),     # arrow down
    "\x1b[D": Velocity(yaw_rate_deg_s=YAW_DEG_S),   # arrow left: counter-clockwise
    "\x1b[C": Velocity(yaw_rate_deg_s=-YAW_DEG_S),  # arrow right: clockwise
}
HELP = "keys: w/s forward/back, a/d left/right, arrows up/down/turn, t take off, l land, space stop, q quit; car: p lane autopilot, m learned autopilot"


def key_action(key: str) -> Command | Velocity | None:
    """What one key press means: a command, a velocity pulse, or nothing."""
    key = key if key.startswith("\x1b") else key.lower()
    if key in _COMMAND_KEYS:
        verb, _, arg = _COMMAND_KEYS[key].partition(" ")
        return Command(verb, arg or None, "keys")
    return _VELOCITY_KEYS.get(key)


def split_keys(data: str) -> list[str]:
    """Split raw terminal input into keys, keeping arrow escape sequences whole."""
    keys, i = [], 0
    while i < len(data):
        if data.startswith("\x1b[", i) and i + 2 < len(data):
            keys.append(data[i:i + 3])
            i += 3
        else:
            keys.append(data[i])
            i += 1
    return keys


@contextmanager
def cbreak(fd: int):
    """Put a terminal in cbreak mode (keys arrive one by one, no echo) and always restore it."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class KeyboardTeleop:
    """Reads keys from ``fd`` on its own thread and hands commands / velocity pulses to the pilot."""

    def __init__(self, fd: int, on_command: Callable[[Command], None], on_velocity: Callable[[Velocity], None],
                 on_quit: Callable[[], None] | None = None) -> None:
        self.fd = fd
        self.on_command = on_command
        self.on_velocity = on_velocity
        self.on_quit = on_quit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keys", daemon=True)

    def start(self) -> KeyboardTeleop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(self.fd, 64).decode("utf-8", "replace")
            if not data:
                return  # end of input
            for key in split_keys(data):
                if key.lower() == "q" and self.on_quit is not None:
                    self.on_quit()
                    return
                action = key_action(key)
                if isinstance(action, Command):
                    self.on_command(action)
                elif isinstance(action, Velocity):
                    self.on_velocity(action)
