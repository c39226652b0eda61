"""The fleet bus: a vehicle on Eclipse Zenoh (``--bus zenoh --name NAME``). No broker and no protocol of our own:
key expressions and JSON payloads anyone can use with the ``zenoh`` package alone (the README's "A fleet on one bus").

A vehicle publishes under ``edgepilot/<name>/``: ``telemetry`` (the run's state snapshot, JSON, ~15 Hz), ``events``,
``commands`` (what was done with each command), ``heard`` (voice), ``detections`` and ``video`` (JPEG thumbnails,
2 Hz, latest only); it holds the liveliness token ``edgepilot/<name>/alive`` while its process runs, and takes command
text (the script grammar, ``;`` between commands) from ``edgepilot/<name>/command`` and ``edgepilot/all/command``,
with the sender's tag as the sample's attachment. Those commands enter :meth:`Pilot.submit`, the queue voice and the
keyboard use, so the safety supervisor judges them like any other (``emergency`` from the bus is refused: it is
accepted only from a person at the vehicle).

The bus never keeps a vehicle safe; the vehicle does (:class:`BusFailsafe`): when the bus is its only command source
and it is flying (a drone) or moving (a car) with no commander on the bus (a liveliness token under
``edgepilot/all/commander/``) and no command for ``timeout_s``, it hovers / stops, and a drone lands ``land_after_s``
later (the run ends as a failure).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.core.errors import EdgepilotError, InputError
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.messages import Command, Event, Seen, Telemetry, Velocity
from edgepilot.pilot.core.runner import CommandRecord, Mode, Pilot

log = logging.getLogger(__name__)

ROOT = "edgepilot"
#: The pseudo-vehicle every vehicle listens to (``edgepilot/all/command``); no vehicle may be called this.
ALL = "all"
#: Ground stations and fleet runners hold a liveliness token under here while they watch the fleet.
COMMANDER_KEY = f"{ROOT}/{ALL}/commander"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
TELEMETRY_HZ = 20.0  # at most; at the default 30 Hz loop that is every second tick, 15 Hz
VIDEO_HZ = 2.0
VIDEO_WIDTH = 320
DEFAULT_SOURCE = "bus"
LEASE_MS = 3000


def key(name: str, topic: str) -> str:
    return f"{ROOT}/{name}/{topic}"


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name or "") or name == ALL:
        raise InputError(f"--name must be 1-32 lower-case letters, digits, '-' or '_' (starting with a letter or "
                         f"digit) and not {ALL!r}, got {name!r}")
    return name


@dataclass(frozen=True)
class BusConfig:
    """Where the zenoh session finds its peers. Defaults are zenoh's own (peer mode, multicast scouting on the LAN);
    naming endpoints to connect to turns multicast scouting off (you said where the bus is), as does
    ``multicast=False``."""

    connect: tuple[str, ...] = ()
    listen: tuple[str, ...] = ()
    config_file: Path | None = None
    multicast: bool | None = None  # None: off when connecting to named endpoints, else zenoh's default (on)

    def zenoh_config(self):
        import zenoh

        try:
            if self.config_file:
                config = zenoh.Config.from_file(str(self.config_file))
            else:
                config = zenoh.Config()
                # Peers announce this lease: a silent network cut (no connection closed) is noticed after it (zenoh's
                # default is 10 s), a keep-alive every lease / 4.
                config.insert_json5("transport/link/tx/lease", str(LEASE_MS))
            if self.multicast is False or (self.connect and not self.multicast):
                config.insert_json5("scouting/multicast/enabled", "false")
            if self.connect:
                config.insert_json5("connect/endpoints", json.dumps(list(self.connect)))
                # retry soon: vehicles and the ground station may start in any order
                config.insert_json5("connect/retry", json.dumps(
                    {"period_init_ms": 250, "period_max_ms": 1000, "period_increase_factor": 2}))
            if self.listen:
                config.insert_json5("listen/endpoints", json.dumps(list(self.listen)))
        except zenoh.ZError as exc:
            raise InputError(f"bus configuration: {zenoh_message(exc)}") from None
        return config


def zenoh_message(exc: Exception) -> str:
    """A zenoh error without its Rust source locations and JSON5 wrapping: one line a user can read."""
    text = re.sub(r" at /\S+?\.rs:\d+\.?", "", str(exc))
    wrapped = re.search(r'msg: "(.*?)"', text)
    return (wrapped.group(1) if wrapped else text).strip()


def add_arguments(parser: argparse.ArgumentParser, *, vehicle: bool = True) -> None:
    """The bus flags (``vehicle``: also --bus and --name, for fly/drive/demo)."""
    group = parser.add_argument_group("fleet bus (pip install 'edgepilot[fleet]')")
    if vehicle:
        group.add_argument("--bus", choices=("zenoh",), help="join the fleet bus (see the README's Fleet section)")
        group.add_argument("--name", help="this vehicle's name on the bus (lower-case letters, digits, - and _)")
        group.add_argument("--bus-timeout", type=float, default=5.0, metavar="S",
                           help="with the bus as the only command source: hover / stop when no commander has been on "
                                "the bus for S seconds while flying or moving (default 5), a drone lands 3 s later")
    group.add_argument("--bus-connect", action="append", default=[], metavar="ENDPOINT",
                       help="connect to this zenoh endpoint, e.g. tcp/192.168.1.10:7447 (repeatable; turns off "
                            "multicast scouting)")
    group.add_argument("--bus-listen", action="append", default=[], metavar="ENDPOINT",
                       help="listen on this zenoh endpoint, e.g. tcp/0.0.0.0:7447 (repeatable)")
    group.add_argument("--bus-config", type=Path, metavar="FILE", help="a zenoh configuration file (JSON5)")


def config_from_args(args: argparse.Namespace) -> BusConfig:
    if args.bus_config is not None and not args.bus_config.is_file():
        raise InputError(f"--bus-config: no such file {args.bus_config}")
    for flag, endpoints in (("--bus-connect", args.bus_connect), ("--bus-listen", args.bus_listen)):
        for endpoint in endpoints:
            if not re.fullmatch(r"[a-z0-9]+/\S+", endpoint):
                raise InputError(f"{flag} takes a zenoh endpoint PROTOCOL/ADDRESS:PORT, e.g. tcp/192.168.1.10:7447, "
                                 f"not {endpoint!r}")
    return BusConfig(tuple(args.bus_connect), tuple(args.bus_listen), args.bus_config)


def check_vehicle_args(args: argparse.Namespace) -> None:
    """The vehicle's bus flags, checked before anything starts."""
    if args.bus is None:
        if args.name or args.bus_connect or args.bus_listen or args.bus_config:
            raise InputError("--name, --bus-connect, --bus-listen and --bus-config go with --bus zenoh")
        return
    if not args.name:
        raise InputError("--bus zenoh needs --name NAME: the vehicle's name on the bus")
    check_name(args.name)
    if not (0.2 <= args.bus_timeout <= 600):
        raise InputError(f"--bus-timeout must be 0.2-600 s, got {args.bus_timeout:g}")
    if getattr(args, "fast", False):
        raise InputError("--fast runs on a simulated clock; the bus runs in real time: drop --fast")
    if importlib.util.find_spec("zenoh") is None:
        raise InputError("--bus zenoh needs Eclipse Zenoh: pip install 'edgepilot[fleet]'")


def open_session(config: BusConfig):
    """A zenoh session (InputError, one line, when zenoh is missing or refuses the configuration)."""
    try:
        import zenoh
    except ImportError:
        raise InputError("the fleet bus needs Eclipse Zenoh: pip install 'edgepilot[fleet]'") from None
    try:
        return zenoh.open(config.zenoh_config())
    except zenoh.ZError as exc:
        raise InputError(f"cannot join the zenoh bus: {zenoh_message(exc)}") from None


def parse_bus_command(text: str, tag: str | None) -> list[Command]:
    """A command sample's payload (the script grammar) and attachment (the sender's tag) as commands with source
    ``bus:<tag>`` (``bus`` without a tag). Raises InputError for text the grammar does not accept."""
    tag = (tag or "").strip()
    if tag and not re.fullmatch(r"[\w.-]{1,32}", tag):
        raise InputError(f"bad source tag {tag!r}: 1-32 letters, digits, '.', '-' or '_'")
    return parse_script(text, f"{DEFAULT_SOURCE}:{tag}" if tag else DEFAULT_SOURCE)


class BusFailsafe:
    """What a vehicle does when its only command source, the bus, goes quiet (see the module's docstring). Fed on
    the loop's thread, once a tick; ``heard()`` from any thread whenever a command or a commander arrives."""

    def __init__(self, pilot: Pilot, timeout_s: float, land_after_s: float = 3.0) -> None:
        self.pilot = pilot
        self.timeout_s = timeout_s
        self.land_after_s = land_after_s
        self._commanders: set[str] = set()
        self._lock = threading.Lock()
        self._last_heard_s = pilot.clock.now()
        self._quiet_since_s: float | None = None
        self.tripped: str | None = None  # "hover", then "land", while the bus is quiet

    def commander(self, key_expr: str, present: bool) -> None:
        with self._lock:
            (self._commanders.add if present else self._commanders.discard)(key_expr)
            self._last_heard_s = self.pilot.clock.now()

    def heard(self) -> None:
        with self._lock:
            self._last_heard_s = self.pilot.clock.now()

    def tick(self, telemetry: Telemetry, mode: Mode) -> None:
        now = self.pilot.clock.now()
        with self._lock:
            present = bool(self._commanders) or now - self._last_heard_s < self.timeout_s
        kind = self.pilot.vehicle.kind
        moving = telemetry.flying if kind == "drone" else mode not in (Mode.LANDED, Mode.HOVERING, Mode.BLOCKED)
        if present:
            if self.tripped:
                log.warning("bus: a commander is back")
            self._quiet_since_s, self.tripped = None, None
            return
        if self.tripped is None and moving:
            self._quiet_since_s, self.tripped = now, "hover"
            log.warning("bus: no commander for %.1f s: hovering / stopping", self.timeout_s)
            self.pilot.submit(Command("stop", None, "safety"))
        elif self.tripped == "hover" and kind == "drone" and now - self._quiet_since_s >= self.land_after_s:
            self.tripped = "land"
            self.pilot.abort(f"lost the bus: no commander for {self.timeout_s + self.land_after_s:g} s")


class VehicleBus:
    """A vehicle on the bus: a run tap publishing the run's :class:`RunStatus` (attach the status first: taps are
    called in order, so the snapshot is this tick's), and a subscriber feeding bus commands to the pilot."""

    def __init__(self, session, name: str, status: RunStatus, *, failsafe_timeout_s: float | None = None,
                 telemetry_hz: float = TELEMETRY_HZ) -> None:
        import zenoh

        self._zenoh = zenoh
        self.session = session
        self.name = check_name(name)
        self.status = status
        self.failsafe_timeout_s = failsafe_timeout_s
        self.failsafe: BusFailsafe | None = None
        #: Tells this process's telemetry from another's under the same name.
        self.run_id = secrets.token_hex(6)
        self.name_clash = False
        self._period_s = 1.0 / telemetry_hz
        self._last_publish_s = -1e9
        self._last_seen_frame: float | None = None
        self._last_heard: dict | None = None
        self._pilot: Pilot | None = None
        self._stop = threading.Event()
        self._video_thread: threading.Thread | None = None
        self._declared: list[Any] = []
        drop = zenoh.CongestionControl.DROP
        self._pub = {topic: session.declare_publisher(key(name, topic), congestion_control=drop)
                     for topic in ("telemetry", "detections", "video", "heard")}
        block = zenoh.CongestionControl.BLOCK  # events and command outcomes must not be lost to a busy link
        for topic in ("events", "commands"):
            self._pub[topic] = session.declare_publisher(key(name, topic), congestion_control=block)

    # -- wiring -----------------------------------------------------------------------------------------------------
    def attach(self, pilot: Pilot) -> VehicleBus:
        self._pilot = pilot
        pilot.add_tap(self)
        if self.failsafe_timeout_s is not None:
            self.failsafe = BusFailsafe(pilot, self.failsafe_timeout_s)
            self._declared.append(self.session.liveliness().declare_subscriber(
                f"{COMMANDER_KEY}/**", self._on_commander, history=True))
        for name in (self.name, ALL):
            self._declared.append(self.session.declare_subscriber(
                key(name, "command"), lambda sample, everyone=name == ALL: self._on_command(sample, everyone)))
        self._declared.append(self.session.liveliness().declare_token(key(self.name, "alive")))
        # another vehicle publishing under this name would obey this one's commands too: say so loudly
        self._declared.append(self.session.declare_subscriber(key(self.name, "telemetry"), self._on_own_name))
        self._video_thread = threading.Thread(target=self._video_loop, name="bus-video", daemon=True)
        self._video_thread.start()
        return self

    def close(self) -> None:
        """Say how the run ended, then leave the bus (the liveliness token goes with the session). Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        pilot = self._pilot
        if pilot is not None:  # how the run ended, for those watching (the last telemetry was before the landing)
            result = pilot.result
            self._put("events", {"t_s": self._run_time(), "type": "run_ended",
                                 "detail": result.failure or "completed", "final": result.final.final()})
        if self._video_thread is not None:
            self._video_thread.join(timeout=2.0)
        for item in self._declared:
            try:
                item.undeclare()
            except Exception:  # noqa: BLE001
                pass
        self.session.close()

    # -- from the bus -----------------------------------------------------------------------------------------------
    def _on_command(self, sample, everyone: bool = False) -> None:
        pilot = self._pilot
        if pilot is None or self._stop.is_set():
            return
        attachment = sample.attachment
        tag = attachment.to_string() if attachment is not None else None
        text = sample.payload.to_string()
        try:
            commands = parse_bus_command(text, tag)
        except EdgepilotError as exc:
            log.warning("bus: refused %r from %s: %s", text, tag or DEFAULT_SOURCE, exc)
            self._put("events", {"t_s": self._run_time(), "type": "command_rejected",
                                 "detail": f"{text!r} from {tag or DEFAULT_SOURCE}: {exc}"})
            return
        if self.failsafe is not None:
            self.failsafe.heard()
        for command in commands:
            if everyone and command.verb == "land" and pilot.vehicle.kind == "car":
                command = Command("stop", None, command.source)  # "everyone land": a car stands still
            pilot.submit(command)

    def _on_own_name(self, sample) -> None:
        if self.name_clash:
            return
        try:
            run_id = json.loads(sample.payload.to_bytes()).get("run_id")
        except (ValueError, AttributeError):
            return
        if run_id != self.run_id:
            self.name_clash = True
            log.error("bus: another vehicle is on the bus as %r: both obey its commands; give each a unique --name",
                      self.name)
            self._put("events", {"t_s": self._run_time(), "type": "name_clash",
                                 "detail": f"another vehicle is on the bus as {self.name!r}"})

    def _on_commander(self, sample) -> None:
        if self.failsafe is not None:
            self.failsafe.commander(str(sample.key_expr), sample.kind == self._zenoh.SampleKind.PUT)

    # -- the run tap ------------------------------------------------------------------------------------------------
    def on_tick(self, t_s: float, telemetry: Telemetry, seen: Seen | None, velocity: Velocity | None,
                mode: Mode) -> None:
        if self.failsafe is not None:
            self.failsafe.tick(telemetry, mode)
        now = time.monotonic()
        if now - self._last_publish_s >= self._period_s * 0.95:
            self._last_publish_s = now
            telemetry_json = self._telemetry()
            self._put("telemetry", telemetry_json)
            heard = telemetry_json.get("heard")
            if heard and heard != self._last_heard:  # what voice heard, once each (the status keeps the latest)
                self._last_heard = heard
                self._put("heard", heard)
        if seen is not None and seen.frame_t_s != self._last_seen_frame:
            self._last_seen_frame = seen.frame_t_s
            self._put("detections", {"t_s": round(t_s, 3), "frame_t_s": seen.frame_t_s, "width": seen.width,
                                     "height": seen.height, "detections": [d.to_json() for d in seen.detections]})

    def on_command(self, record: CommandRecord) -> None:
        self._put("commands", record.as_dict())

    def on_event(self, event: Event) -> None:
        self._put("events", {"t_s": round(event.t_s, 3), "type": event.type, "detail": event.detail})

    # -- helpers ----------------------------------------------------------------------------------------------------
    def _telemetry(self) -> dict:
        # wall-clock stamp: lets a ground station on a synchronised clock measure the delivery latency
        return {**self.status.snapshot(), "name": self.name, "run_id": self.run_id, "sent_unix_s": time.time()}

    def _run_time(self) -> float | None:
        pilot = self._pilot
        if pilot is None or pilot.start_s is None:
            return None
        return round(pilot.clock.now() - pilot.start_s, 3)

    def _put(self, topic: str, payload: dict) -> None:
        try:
            self._pub[topic].put(json.dumps(payload, default=str), encoding="application/json")
        except self._zenoh.ZError as exc:  # the bus is never what keeps the vehicle safe: log and fly on
            log.debug("bus: could not publish %s: %s", topic, exc)

    def _video_loop(self) -> None:
        """Latest-only JPEG thumbnails, encoded here and not on the loop's thread."""
        import cv2

        last: float | None = None
        while not self._stop.wait(1.0 / VIDEO_HZ):
            pilot = self._pilot
            seen = pilot.seen.get() if pilot is not None else None
            if seen is None or seen.frame is None or seen.frame_t_s == last:
                continue
            last = seen.frame_t_s
            image = seen.frame.image
            scale = VIDEO_WIDTH / image.shape[1]
            thumb = cv2.resize(image, (VIDEO_WIDTH, max(1, round(image.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA) if scale < 1 else image
            ok, jpeg = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 70])
            if ok:
                try:
                    self._pub["video"].put(jpeg.tobytes(), encoding="image/jpeg")
                except self._zenoh.ZError as exc:
                    log.debug("bus: could not publish video: %s", exc)


def join(args: argparse.Namespace, pilot: Pilot, *, exclusive: bool, status: RunStatus | None = None,
         session=None) -> VehicleBus:
    """Put ``pilot`` on the bus the flags describe (or on ``session``, opened earlier with :func:`open_session`),
    publishing ``status`` (one is attached here if the run has none); ``exclusive``: the bus is its only command
    source (the failsafe applies). Call :meth:`VehicleBus.close` when the run is over (it closes the session)."""
    session = session or open_session(config_from_args(args))
    if status is None:
        status = RunStatus().attach(pilot)
    try:
        bus = VehicleBus(session, args.name, status, failsafe_timeout_s=args.bus_timeout if exclusive else None)
        return bus.attach(pilot)
    except BaseException:
        session.close()
        raise
