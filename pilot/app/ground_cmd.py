"""``edgepilot ground --bus zenoh [--web PORT]``: a fleet ground station in the terminal (and, with ``--web``, in a
browser: :mod:`edgepilot.pilot.app.ground_web`). It shows every vehicle seen on the bus
(mode, battery, height, the vehicle's own link, the age and rate of its telemetry, alive or lost) and takes command
lines: ``land`` or ``stop`` (everyone: "all land", "all stop"), ``NAME COMMAND`` (one vehicle, the script grammar),
``all COMMAND``, ``quit``.

On a terminal the table is redrawn every second under the line being typed; otherwise (a pipe, a script) it prints
one line per change: a vehicle joined or was lost, an event, a command's outcome.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from edgepilot.pilot.app import bus
from edgepilot.pilot.app.web import launch as web_launch
from edgepilot.pilot.core.errors import EdgepilotError, InputError

HELP = "commands: land | stop (everyone), NAME COMMAND (one vehicle, e.g. 'a takeoff'), all COMMAND, quit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bus", choices=("zenoh",), default="zenoh", help="the fleet bus (zenoh)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until quit)")
    web_launch.add_arguments(parser)
    bus.add_arguments(parser, vehicle=False)


def run(args: argparse.Namespace) -> int:
    if not (args.duration >= 0):
        raise InputError(f"--duration must be 0 or more, got {args.duration:g}")
    web_launch.check_arguments(args)
    from edgepilot.pilot.app.fleet_view import FleetView

    session = bus.open_session(bus.config_from_args(args))
    started = time.monotonic()
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    lines = None if interactive else _LinePrinter(started)
    view = FleetView(session, tag="ground", on_change=lines)
    done = threading.Event()
    page = None
    try:
        if args.web is not None:
            page = _open_page(view, args)
        if interactive:
            _interactive(view, done, args.duration, started)
        else:
            print(f"ground station on the bus ({HELP})", flush=True)
            reader = threading.Thread(target=_read_lines, args=(view, done), name="ground-input", daemon=True)
            reader.start()
            done.wait(args.duration or None)
    except KeyboardInterrupt:
        pass
    finally:
        if page is not None:
            page.stop()
        view.close()
        session.close()
    return 0


def _open_page(view, args: argparse.Namespace):
    from edgepilot.pilot.app.ground_web import FleetPage
    from edgepilot.pilot.app.web.access import make_token, parse_bind

    bind = parse_bind(args.web)
    page = FleetPage(view, bind, make_token(args.web_token))
    try:
        urls = page.start()
    except OSError as exc:
        raise InputError(f"--web {args.web}: cannot listen there ({exc.strerror or exc}); pick another port") from None
    print(f"fleet page: open {urls[0]}", file=sys.stderr, flush=True)
    if not bind.loopback:
        print(f"edgepilot: WARNING: the fleet page listens on {bind.host}: anyone on this network with its URL (and "
              f"token) can command every vehicle", file=sys.stderr, flush=True)
    return page


def execute(view, line: str) -> str:
    """One command line; returns what was done (raises InputError for a mistake)."""
    words = line.strip().split(None, 1)
    if not words:
        return ""
    if words[0] in ("land", "stop") and len(words) == 1:
        view.send_all(words[0])
        return f"all: {words[0]}"
    if len(words) < 2:
        raise InputError(f"{line.strip()!r}: {HELP}")
    name, text = words
    if name != bus.ALL:
        bus.check_name(name)
    view.send(name, text)
    known = name == bus.ALL or any(v["name"] == name for v in view.summary())
    return f"{name}: {text}" + ("" if known else f" (no vehicle called {name!r} has been seen)")


def _read_lines(view, done: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() in ("quit", "q", "exit"):
            break
        try:
            said = execute(view, line)
        except EdgepilotError as exc:
            print(f"ground: {exc}", flush=True)
            continue
        if said:
            print(f"sent {said}", flush=True)
    done.set()


class _LinePrinter:
    """One line per change, for pipes and logs."""

    def __init__(self, started: float) -> None:
        self.started = started
        self._lock = threading.Lock()  # called from zenoh's threads: whole lines, never interleaved

    def __call__(self, kind: str, name: str, data: dict) -> None:
        t = time.monotonic() - self.started
        if kind in ("joined", "lost"):
            text = kind
        elif kind == "event":
            text = f"event {data.get('type')}: {data.get('detail', '')}"
        else:
            text = f"command {data.get('command')} [{data.get('source')}] {data.get('result')}"
        with self._lock:
            sys.stdout.write(f"{t:8.2f} s  {name}: {text}\n")
            sys.stdout.flush()


def table(view) -> list[str]:
    """The fleet as text rows (also what the interactive screen shows)."""
    rows = [f"{'vehicle':<12} {'kind':<6} {'mode':<11} {'battery':>7} {'height':>7} {'link':>6} {'age':>6} "
            f"{'rate':>6}  bus"]
    for v in view.summary():
        t = v["telemetry"]
        battery = t.get("battery_pct")
        height = t.get("height_cm")
        link = (t.get("link") or {}).get("state_age_s")
        rows.append(
            f"{v['name']:<12} {t.get('kind', '?'):<6} {t.get('mode', '?'):<11} "
            f"{_num(battery, '%', 0):>7} {_num(height, ' cm', 0):>7} {_num(link, ' s', 1):>6} "
            f"{_num(v['age_s'], ' s', 1):>6} {v['rate_hz']:5.1f}Hz  {'alive' if v['alive'] else 'LOST'}"
            + ("  TWO VEHICLES WITH THIS NAME" if v["clash"] else ""))
    return rows


def _num(value, unit: str, digits: int) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.{digits}f}{unit}"


def _interactive(view, done: threading.Event, duration: float, started: float) -> None:
    """Redraw the table every second; keys build the command line below it (cbreak: no echo, we draw it)."""
    import os
    import select

    from edgepilot.pilot.app.keys import cbreak

    fd = sys.stdin.fileno()
    typed, message = "", ""
    with cbreak(fd):
        next_draw = 0.0
        while not done.is_set() and not (duration and time.monotonic() - started >= duration):
            now = time.monotonic()
            if now >= next_draw:
                next_draw = now + 1.0
                screen = "\x1b[H\x1b[2J" + "\n".join(table(view)) + f"\n\n{HELP}\n{message}\n> {typed}"
                sys.stdout.write(screen)
                sys.stdout.flush()
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            char = os.read(fd, 1).decode(errors="ignore")
            if char in ("\n", "\r"):
                if typed.strip() in ("quit", "q", "exit"):
                    return
                try:
                    message = f"sent {execute(view, typed)}"
                except EdgepilotError as exc:
                    message = f"error: {exc}"
                typed = ""
            elif char in ("\x7f", "\b"):
                typed = typed[:-1]
            elif char.isprintable():
                typed += char
            next_draw = 0.0
