"""The pilot: one thread owns the vehicle and, at a fixed rate, turns commands (script, voice, keyboard, safety) into
vehicle actions through the safety supervisor. It always ends with the vehicle safe (``finally: vehicle.close()``):
whatever ends the run - the script done or aborted, a command refused, Ctrl-C or SIGTERM (:class:`Terminated`), an
exception anywhere in the loop, :meth:`Pilot.abort` from another thread (a remote controller gone) - the drone lands
(the backend repeats ``land`` until it is acknowledged) and the car stops. :attr:`RunResult.failure` says why a run did
not complete, so the exit status can."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from edgepilot.pilot.core.behaviours import Behaviour, FollowConfig, FollowTarget
from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.confirm import CONVERSATION_VERBS, Conversation
from edgepilot.pilot.core.errors import CommandRejected, LinkLost, VehicleError
from edgepilot.pilot.core.hal import Vehicle
from edgepilot.pilot.core.handover import HandOver
from edgepilot.pilot.core.loop import FixedRateLoop, LoopStats
from edgepilot.pilot.core.messages import HOVER, Command, Event, Seen, Telemetry, Velocity
from edgepilot.pilot.core.safety import Supervisor

log = logging.getLogger(__name__)

#: Commands that interrupt whatever the vehicle is doing, whoever says them.
URGENT_VERBS = ("stop", "land", "emergency")
#: Vehicle events that mean a command it had accepted failed after all (the Tello replies asynchronously).
ASYNC_FAILURES = ("command_failed", "command_timeout")
#: Safety events after which the run cannot complete as planned (the vehicle is brought down or stopped).
SAFETY_ENDINGS = ("battery_land", "fence_breach")
#: Vehicle events that mean it may not have come down: the run did not end safely.
UNSAFE_ENDINGS = ("land_unconfirmed",)
#: How often a flying drone / a car gets a velocity set-point when nothing else is sent (proof of life).
SETPOINT_PERIOD_S = 0.2


class Mode(StrEnum):
    """What the vehicle is doing, derived each tick from the vehicle's state and the pilot's plan."""

    LANDED = "landed"        # drone on the ground / car standing with nothing to do
    TAKING_OFF = "taking off"
    HOVERING = "hovering"    # drone in the air holding position / car stopped, waiting for a command
    MOVING = "moving"        # executing a discrete command
    FOLLOWING = "following"
    SEARCHING = "searching"  # following, target lost
    DRIVING = "driving"      # car: following the lane
    BLOCKED = "blocked"      # car: stopped for a person or an obstacle in its path
    LANDING = "landing"
    EMERGENCY = "emergency"


class Terminated(KeyboardInterrupt):
    """Raised in the loop's thread by a signal handler (SIGTERM, SIGHUP): end the run like Ctrl-C, landing first."""

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class LatestValue:
    """A one-slot mailbox: writers replace, readers get the newest. Perception publishes here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Seen | None = None

    def set(self, value: Seen | None) -> None:
        with self._lock:
            self._value = value

    def get(self) -> Seen | None:
        with self._lock:
            return self._value


@dataclass(frozen=True)
class CommandRecord:
    t_s: float
    command: str
    source: str
    result: str

    def as_dict(self) -> dict:
        return {"t_s": round(self.t_s, 3), "command": self.command, "source": self.source, "result": self.result}


class RunTap(Protocol):
    """Watches a run without changing it (the flight recorder). Called on the loop's thread; keep it quick."""

    def on_tick(self, t_s: float, telemetry: Telemetry, seen: Seen | None, velocity: Velocity | None,
                mode: Mode) -> None:
        """Once per tick, after the decisions: ``velocity`` is the set-point sent this tick (after safety), if any."""

    def on_command(self, record: CommandRecord) -> None: ...

    def on_event(self, event: Event) -> None: ...


class Taps:
    """Several taps watching one run (the recorder, the status the web cockpit and the fleet read), called in the
    order they were added."""

    def __init__(self, *taps: RunTap) -> None:
        self.taps = list(taps)

    def on_tick(self, t_s: float, telemetry: Telemetry, seen: Seen | None, velocity: Velocity | None,
                mode: Mode) -> None:
        for tap in self.taps:
            tap.on_tick(t_s, telemetry, seen, velocity, mode)

    def on_command(self, record: CommandRecord) -> None:
        for tap in self.taps:
            tap.on_command(record)

    def on_event(self, event: Event) -> None:
        for tap in self.taps:
            tap.on_event(event)


@dataclass
class RunResult:
    vehicle: str
    final: Telemetry
    commands: list[CommandRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    loop: LoopStats | None = None
    #: Why the run failed (link lost, a script command refused...), or None when it went as planned.
    failure: str | None = None
    #: The signal that ended the run ("SIGINT" for Ctrl-C, "SIGTERM"...), if one did.
    interrupted: str | None = None

    def as_dict(self) -> dict:
        return {
            "vehicle": self.vehicle,
            "completed": self.failure is None,
            "failure": self.failure,
            "final": self.final.final(),
            "commands": [c.as_dict() for c in self.commands],
            "events": [{"t_s": round(e.t_s, 3), "type": e.type, "detail": e.detail} for e in self.events],
            "loop": self.loop.summary() if self.loop else {},
        }


def check_follow_name(who: str, names: Sequence[str] | None) -> None:
    """Refuse to follow a name nobody is enrolled under (names compare without regard to case)."""
    if who == "me" or names is None or who.casefold() in {n.casefold() for n in names}:
        return
    if not names:
        raise CommandRejected(f"cannot follow {who!r}: nobody is enrolled; add them with "
                              f"'edgepilot enroll {who} PHOTO.jpg'")
    raise CommandRejected(f"cannot follow {who!r}: not enrolled (enrolled: {', '.join(names)}); add them with "
                          f"'edgepilot enroll {who} PHOTO.jpg'")


class Pilot:
    """Runs a vehicle from a script and from commands submitted by other threads (voice, keyboard)."""

    def __init__(
        self,
        vehicle: Vehicle,
        *,
        name: str = "",
        clock: Clock | None = None,
        hz: float = 30.0,
        supervisor: Supervisor | None = None,
        max_ticks: int | None = None,
        max_duration_s: float | None = None,
        on_record: Callable[[CommandRecord], None] | None = None,
        perceive: Callable[[float], Seen | None] | None = None,
        follow_config: FollowConfig | None = None,
        behaviour: Behaviour | None = None,
        out_dir: Path | None = None,
        tap: RunTap | None = None,
        can_see: bool | None = None,
        names: Sequence[str] | None = None,
        autopilots: Mapping[str, Callable[[], Behaviour]] | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.name = name or vehicle.kind
        self.clock = clock or MonotonicClock()
        self.loop = FixedRateLoop(hz, self.clock, max_ticks)
        self.supervisor = supervisor or Supervisor(vehicle.kind)
        self.max_duration_s = max_duration_s
        self.on_record = on_record
        self.perceive = perceive
        self.follow_config = follow_config
        self.out_dir = out_dir
        self.tap = tap
        #: Whether perception runs (inline through ``perceive`` or on a thread publishing to :attr:`seen`).
        self.can_see = perceive is not None if can_see is None else can_see
        #: The people perception can name (``follow NAME`` is refused for anybody else); None: not checked.
        self.names = None if names is None else tuple(names)
        #: What ``autopilot MODE`` starts (mode -> a new behaviour); a mode missing here is refused with the reason.
        self.autopilots = dict(autopilots or {})
        #: The clock's time when :meth:`run` started; ticks' ``t_s`` count from it (the recorder needs it exactly).
        self.start_s: float | None = None
        self._sent: Velocity | None = None  # the set-point sent this tick, for the tap
        self.seen = LatestValue()
        self._manual: tuple[Velocity, float] | None = None  # (velocity, until monotonic s) from the keyboard
        self._manual_lock = threading.Lock()
        self._last_seen_frame_s: float | None = None
        #: What drives the vehicle between commands (follow a person, follow the lane), if anything.
        self.behaviour: Behaviour | None = behaviour
        self.mode = Mode.LANDED
        self._emergency = False
        self._last_verb = ""
        self.inbox: queue.Queue[Command] = queue.Queue(maxsize=64)
        self._pending: deque[Command] = deque()
        self._script: deque[Command] = deque()
        self._wait_until: float | None = None
        self._last_setpoint_s = -1e9
        self._stay_alive: Callable[[], bool] = lambda: False
        self._abort_reason: str | None = None
        self._abort_lock = threading.Lock()
        self._last_executed: Command | None = None
        #: True from the moment the run starts bringing the vehicle down at the end (signal handlers must let it).
        self.closing = False
        self.result = RunResult(vehicle=self.name, final=Telemetry(t_s=0.0))
        #: "ask X" / "yes" / "no" (pilot/core/confirm.py).
        self.conversation = Conversation()
        #: Set to hand over to a person when autonomy is lost (pilot/core/handover.py); None: carry on as before.
        self.handover: HandOver | None = None

    def add_tap(self, tap: RunTap) -> None:
        """Let ``tap`` watch the run too (before it starts, or from the loop's own thread)."""
        if self.tap is None:
            self.tap = tap
        elif isinstance(self.tap, Taps):
            self.tap.taps.append(tap)
        else:
            self.tap = Taps(self.tap, tap)

    # -- called from other threads --------------------------------------------------------------------------------
    def submit(self, command: Command) -> None:
        """Queue a command from another thread (voice, keyboard). Never blocks; a full inbox drops the command."""
        try:
            self.inbox.put_nowait(command)
        except queue.Full:
            log.warning("command inbox full: dropped %s from %s", command.text, command.source)

    def abort(self, reason: str) -> None:
        """End the run from any thread (the web cockpit's controller disconnected, a part failed): plans are
        dropped, the drone lands / the car stops, and the run fails with ``reason``. Never blocks."""
        with self._abort_lock:
            if self._abort_reason is None:
                self._abort_reason = reason

    def note_event(self, t_s: float, type_: str, detail: str) -> None:
        """Add an event to the run from the loop's thread (a tap reporting what it did, e.g. what was said)."""
        self._event(t_s, type_, detail)

    def manual_velocity(self, velocity: Velocity, pulse_s: float = 0.4) -> None:
        """A velocity pulse from the keyboard (thread-safe). It overrides autonomy and ends any behaviour."""
        with self._manual_lock:
            self._manual = (velocity, self.clock.now() + pulse_s)

    def _take_manual(self, now_s: float) -> Velocity | None:
        with self._manual_lock:
            if self._manual is None:
                return None
            velocity, until = self._manual
            if now_s > until:
                self._manual = None
                return HOVER  # the key was released: stop once, then back to normal
            return velocity

    # -- the loop ---------------------------------------------------------------------------------------------------
    def run(self, script: Iterable[Command] = (), stay_alive: Callable[[], bool] | None = None) -> RunResult:
        """Run until the script is done and the vehicle idle, and ``stay_alive()`` (e.g. a microphone is
        still listening) is false. Lands / stops the vehicle at the end whatever happens."""
        self._script.extend(script)
        if stay_alive is not None:
            self._stay_alive = stay_alive
        start_s = self.start_s = self.clock.now()
        try:
            self.result.loop = self.loop.run(lambda tick, now: self._tick(now - start_s, now))
        except LinkLost as exc:
            self._fail(self.clock.now() - start_s, "link_lost", str(exc))
        except Terminated as exc:
            self._event(self.clock.now() - start_s, "interrupted", f"{exc.signal_name}: landing / stopping")
            self.result.failure = f"terminated by {exc.signal_name}"
            self.result.interrupted = exc.signal_name
        except KeyboardInterrupt:
            self._event(self.clock.now() - start_s, "interrupted", "Ctrl-C: landing / stopping")
            self.result.failure = "interrupted by Ctrl-C"
            self.result.interrupted = "SIGINT"
        except Exception as exc:  # noqa: BLE001 - a bug must still end with the vehicle safe, and be reported
            log.error("the pilot's loop failed: %s: %s (landing / stopping)", type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            self._fail(self.clock.now() - start_s, "crashed", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.closing = True
            if self.result.loop is None:
                self.result.loop = self.loop.stats
            self._close(start_s)
        return self.result

    def _tick(self, t_s: float, now_s: float) -> bool:
        vehicle, supervisor = self.vehicle, self.supervisor
        if self.perceive is not None:
            seen = self.perceive(now_s)
            if seen is not None:
                self.seen.set(seen)
        telemetry = vehicle.telemetry()
        if self._abort_reason is not None:
            return self._abort(t_s, telemetry)
        for event in vehicle.poll_events():
            self._event(t_s, event.type, event.detail)
            source = self._last_executed.source if self._last_executed is not None else "script"
            if event.type in ASYNC_FAILURES and (self._script or source in ("script", "safety")):
                # A real vehicle answers later than we dispatch: a refusal then still ends the script (the vehicle
                # hovers; the run ends, and ending lands it).
                self._fail(t_s, "script_aborted", f"{event.detail}; the rest of the script is cancelled")
                self._script.clear()
                self._pending.clear()
                self._wait_until = None
                self.behaviour = None
        seen = self.seen.get()
        if seen is not None and seen.frame_t_s != self._last_seen_frame_s:
            self._last_seen_frame_s = seen.frame_t_s
            supervisor.note_input(now_s)  # perception is alive: the watchdog stays quiet
        forced = supervisor.tick(now_s, telemetry)
        for event in supervisor.drain_events():
            self._event(t_s, event.type, event.detail)
            if event.type in SAFETY_ENDINGS and self.result.failure is None:
                self.result.failure = f"safety took over: {event.detail}"
        if supervisor.failure and self.result.failure is None:
            self.result.failure = supervisor.failure
        for command in forced:
            self._dispatch(command, telemetry, t_s)
        while True:
            try:
                command = self.inbox.get_nowait()
            except queue.Empty:
                break
            if command.verb in URGENT_VERBS:
                self._cancel_plans(t_s, command)
                self._dispatch(command, telemetry, t_s)
            else:
                self._pending.append(command)

        for type_, detail in self.conversation.expire(t_s):
            self._event(t_s, type_, detail)
        self._check_handover(t_s, telemetry)
        if self._wait_until is not None and t_s >= self._wait_until:
            self._wait_until = None
        if self._wait_until is None and not vehicle.busy():
            held = self.handover is not None and self.handover.waiting is not None
            source = self._pending or (self._script if not held else None)
            if source:
                command = source.popleft()
                if command.verb == "wait":
                    self._wait_until = t_s + float(command.arg)
                    self._record(t_s, command, "ok")
                elif (error := self._dispatch(command, telemetry, t_s)) and source is self._script:
                    self._fail(t_s, "script_aborted", f"{command.text!r} {error}; the rest of the script is cancelled")
                    self._script.clear()

        manual = self._take_manual(now_s)
        if manual is not None:
            supervisor.note_input(now_s)
            taken = self.handover.person("keys", "manual control", t_s) if self.handover is not None else None
            if taken is not None:
                self._event(t_s, "taken_over", taken)
        if manual is not None and not vehicle.busy():
            if self.behaviour is not None:
                self._event(t_s, "manual_override", f"keyboard took over: {self.behaviour.state} ended")
                self.behaviour = None
            self.send_velocity(manual, telemetry, now_s)
        elif self.behaviour is not None and not vehicle.busy():
            observe = getattr(self.behaviour, "observe", None)  # the turn it actually made, for frame-age compensation
            if observe is not None:
                observe(telemetry)
            self.send_velocity(self.behaviour.update(self.seen.get(), now_s), telemetry, now_s)
            for kind, detail in getattr(self.behaviour, "poll_events", list)():
                self._event(t_s, kind, detail)
        self._keep_setpoint(telemetry, now_s)
        self.mode = self._derive_mode(telemetry)
        if self.tap is not None:
            self.tap.on_tick(t_s, telemetry, self.seen.get(), self._sent, self.mode)
        self._sent = None

        if self.max_duration_s is not None and t_s >= self.max_duration_s:
            self._event(t_s, "timeout", f"run longer than {self.max_duration_s:g} s: ending")
            return False
        if self.result.failure and ("link" in self.result.failure or not self._stay_alive()):
            return False  # the run cannot complete: end it now (ending lands the drone / stops the car)
        idle = not (self._script or self._pending or self._wait_until is not None or vehicle.busy()
                    or self.behaviour is not None or self._manual is not None
                    or (self.handover is not None and self.handover.waiting is not None))
        return not idle or self._stay_alive()

    def _keep_setpoint(self, telemetry: Telemetry, now_s: float) -> None:
        """While a drone flies (or a car runs) and no discrete command is running, keep a fresh velocity set-point
        going: hover / stand still. This is the proof of life a Tello needs to not auto-land after 15 s."""
        if self.vehicle.kind == "drone" and not telemetry.flying:
            return
        if self.vehicle.busy() or now_s - self._last_setpoint_s < SETPOINT_PERIOD_S:
            return
        self.send_velocity(HOVER, telemetry, now_s)

    def send_velocity(self, velocity: Velocity, telemetry: Telemetry, now_s: float) -> None:
        safe = self.supervisor.limit_velocity(velocity, telemetry, now_s)
        self.vehicle.send_velocity(safe)
        self._last_setpoint_s = now_s
        self._sent = safe

    def _dispatch(self, command: Command, telemetry: Telemetry, t_s: float) -> str | None:
        """Send one command through safety to the vehicle and record the outcome: None when the vehicle accepted
        it, else why not."""
        if self.handover is not None and command.verb not in ("ask", "pardon"):
            taken = self.handover.person(command.source, command.text, t_s)
            if taken is not None:
                self._event(t_s, "taken_over", taken)
        if command.verb in CONVERSATION_VERBS:
            return self._converse(command, telemetry, t_s)
        try:
            checked = self.supervisor.admit(command, telemetry)
            if self.behaviour is not None and checked.verb not in ("photo", "speed"):
                self.behaviour = None  # any other command, whoever says it, ends autonomy: voice wins
            if checked.verb == "follow":
                self._start_follow(checked, telemetry)
            elif checked.verb == "autopilot":
                self._start_autopilot(checked)
            elif checked.verb == "photo":
                self._photo(t_s)
            else:
                self.vehicle.execute(checked)
                self._last_verb = checked.verb
                self._last_executed = checked
                if checked.verb == "emergency":
                    self._emergency = True
        except CommandRejected as exc:
            self._record(t_s, command, f"rejected: {exc}")
            self._event(t_s, "command_rejected", str(exc))
            return f"rejected: {exc}"
        except LinkLost:
            raise
        except VehicleError as exc:
            self._record(t_s, command, f"error: {exc}")
            self._event(t_s, "command_failed", str(exc))
            return f"failed: {exc}"
        self._record(t_s, command, "ok")
        return None

    def _converse(self, command: Command, telemetry: Telemetry, t_s: float) -> str | None:
        try:
            run, events = self.conversation.handle(command, t_s)
        except CommandRejected as exc:
            self._record(t_s, command, f"rejected: {exc}")
            return f"rejected: {exc}"
        self._record(t_s, command, "ok")
        for type_, detail in events:
            self._event(t_s, type_, detail)
        return self._dispatch(run, telemetry, t_s) if run is not None else None

    def _check_handover(self, t_s: float, telemetry: Telemetry) -> None:
        """Nobody took over in time: land (drone) / stop (car), and the run did not go as planned."""
        lapsed = self.handover.timed_out(t_s) if self.handover is not None else None
        if lapsed is None:
            return
        urgent = Command("land" if self.vehicle.kind == "drone" and telemetry.flying else "stop", None, "safety")
        self._cancel_plans(t_s, urgent)
        self._fail(t_s, "handover_timeout", f"{lapsed}: {'landing' if urgent.verb == 'land' else 'stopping'}")
        self._dispatch(urgent, telemetry, t_s)

    def _start_follow(self, command: Command, telemetry: Telemetry) -> None:
        if self.vehicle.kind == "drone" and not telemetry.flying:
            raise CommandRejected(f"{command.text!r} needs the drone in the air: take off first")
        if not self.can_see:
            raise CommandRejected(f"{command.text!r} needs a camera and perception (not available in this run)")
        check_follow_name(str(command.arg), self.names)
        if self.vehicle.busy():
            self.vehicle.execute(Command("stop", None, command.source))
        self.behaviour = FollowTarget(str(command.arg), self.vehicle.kind, self.follow_config)

    def _start_autopilot(self, command: Command) -> None:
        """``autopilot off`` stops the car; ``autopilot lane|model`` starts that driver (any other command, a key
        or ``stop`` ends it again)."""
        if self.vehicle.kind != "car":
            raise CommandRejected(f"{command.text!r}: the autopilot drives a car, not a {self.vehicle.kind}")
        if command.arg == "off":
            self.vehicle.execute(Command("stop", None, command.source))
            return
        make = self.autopilots.get(str(command.arg))
        if make is None:
            why = ("give the learned driver with --autopilot model FILE.tflite" if command.arg == "model" else
                   "it needs a camera and perception (not available in this run)")
            raise CommandRejected(f"{command.text!r}: {why}")
        if self.vehicle.busy():
            self.vehicle.execute(Command("stop", None, command.source))
        self.behaviour = make()

    def _photo(self, t_s: float) -> None:
        seen = self.seen.get()
        if seen is None or seen.frame is None:
            raise VehicleError("no camera frame to save")
        import cv2  # only runs do photos; keep it out of the import path of plain script runs

        folder = self.out_dir or Path(".")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"photo-{t_s:08.2f}s.jpg"
        if not cv2.imwrite(str(path), seen.frame.image):
            raise VehicleError(f"could not write {path}")
        self._event(t_s, "photo", str(path))

    def _derive_mode(self, telemetry: Telemetry) -> Mode:
        if self._emergency:
            return Mode.EMERGENCY
        if self.vehicle.busy():
            return {"takeoff": Mode.TAKING_OFF, "land": Mode.LANDING}.get(self._last_verb, Mode.MOVING)
        if self.behaviour is not None:
            return Mode(self.behaviour.mode)
        if self.vehicle.kind == "drone" and not telemetry.flying:
            return Mode.LANDED
        return Mode.HOVERING

    def _cancel_plans(self, t_s: float, command: Command) -> None:
        if self._script or self._pending or self._wait_until is not None:
            self._event(t_s, "plan_cancelled", f"{command.text!r} from {command.source}: pending commands dropped")
        self._script.clear()
        self._pending.clear()
        self._wait_until = None
        self.behaviour = None

    def _abort(self, t_s: float, telemetry: Telemetry) -> bool:
        """:meth:`abort` was called: drop every plan, start landing / stop now, end the run (closing finishes it)."""
        reason = self._abort_reason or "aborted"
        self._cancel_plans(t_s, Command("stop", None, "safety"))
        self._fail(t_s, "aborted", f"{reason}: landing / stopping")
        urgent = "land" if self.vehicle.kind == "drone" and telemetry.flying else "stop"
        try:
            self.vehicle.execute(Command(urgent, None, "safety"))
            self._record(t_s, Command(urgent, None, "safety"), "ok")
        except (VehicleError, CommandRejected) as exc:
            self._record(t_s, Command(urgent, None, "safety"), f"error: {exc}")
        return False

    def _close(self, start_s: float) -> None:
        try:
            self.vehicle.close()
        except Exception as exc:  # noqa: BLE001 - reported as the run's failure; closing must not raise
            self._fail(self.clock.now() - start_s, "close_failed", f"{type(exc).__name__}: {exc}")
        try:
            self.result.final = self.vehicle.telemetry()
        except Exception:  # noqa: BLE001 - keep the last telemetry the run saw
            pass
        try:
            events = self.vehicle.poll_events()
        except Exception:  # noqa: BLE001
            events = []
        for event in events:
            self._event(self.clock.now() - start_s, event.type, event.detail)
            if event.type in UNSAFE_ENDINGS:
                self._fail(self.clock.now() - start_s, "unsafe_end", event.detail)
        if self.vehicle.kind == "drone" and self.result.final.flying and self.result.failure is None:
            self._fail(self.clock.now() - start_s, "unsafe_end", "the drone may still be in the air: landing was "
                                                                 "not acknowledged")

    # -- bookkeeping ------------------------------------------------------------------------------------------------
    def _record(self, t_s: float, command: Command, result: str) -> None:
        record = CommandRecord(t_s, command.text, command.source, result)
        self.result.commands.append(record)
        log.info("t=%.2fs %s (%s): %s", t_s, command.text, command.source, result)
        if self.on_record is not None:
            self.on_record(record)
        if self.tap is not None:
            self.tap.on_command(record)

    def _event(self, t_s: float, type_: str, detail: str) -> None:
        event = Event(t_s, type_, detail)
        self.result.events.append(event)
        if self.tap is not None:
            self.tap.on_event(event)
        handover = self.handover.trigger(type_, detail, t_s) if self.handover is not None and not self.closing \
            else None
        if handover is not None:
            self.behaviour = None  # the keep-alive set-point now holds a hover / a stop; the script waits
            self._event(t_s, "handover", handover)
            if self.vehicle.busy() and self._last_verb not in ("takeoff", "land", "emergency"):
                # A move under way stops now (a takeoff or a landing is let finish).
                self._dispatch(Command("stop", None, "safety"), self.vehicle.telemetry(), t_s)

    def _fail(self, t_s: float, type_: str, detail: str) -> None:
        self._event(t_s, type_, detail)
        if self.result.failure is None:
            self.result.failure = detail if type_ != "link_lost" else f"link lost: {detail}"
