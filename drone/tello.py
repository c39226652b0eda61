"""The Tello backend: a :class:`edgepilot.pilot.core.hal.Vehicle` over our UDP link (:mod:`edgepilot.drone.tello_link`).

A command is sent as one datagram and never waited for: a monitor thread (woken by each datagram, at least 200 Hz)
matches the reply to the one command in flight, turns each state packet into telemetry stamped with its arrival time
(``last_state_s``, which the supervisor's link-loss check reads), dead-reckons x/y and expires stale ``rc`` set-points.
The loop never blocks. Video is :class:`edgepilot.drone.tello_video.TelloCamera`.

**Airborne or not** comes from acknowledgements and telemetry together (:class:`Airborne`): after takeoff's ``ok`` the
drone is airborne until a land or emergency is acknowledged, or state newer than that acknowledgement has shown it on
the ground for :data:`CONTRARY_STATE_S`. A takeoff sent and not yet answered, or never answered, counts as airborne:
unknown is airborne. State packets are lossy and late over Wi-Fi; an acknowledgement is not.

**Replies without sequence numbers.** The SDK numbers nothing, so a reply is matched to a command by rules that never
guess in the dangerous direction:

* A command whose reply does not come in time is *owed* a reply: whatever non-value reply arrives next is taken as that
  late answer, never as the answer to a command sent since. A move that timed out is never sent again (a resent
  ``forward 100`` flies 2 m); ``stop`` is sent instead (hover) and the link is *out of step* until a query
  (``battery?``, answered with a number that no move or land can be mistaken for) comes back: everything the drone sent
  before that answer has arrived or is lost. Until then no move, turn, flip or takeoff is sent.
* Only idempotent commands are ever said twice (``command``, ``land``, ``stop``, ``streamon``/``streamoff``,
  ``speed``, queries); a second copy's reply answers the first as well.
* An ``ok`` that comes sooner than the command could have been carried out (a move at the Tello's top speed) is a
  duplicate or a late reply, not this command's answer; and for :data:`SETTLE_S` after a reply nothing new is sent, so
  a duplicate of it finds nothing to answer.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field, replace

from edgepilot.drone.tello_link import TelloLink, check_port_free
from edgepilot.drone.tello_protocol import (
    CONTROL_PORT,
    DEFAULT_HOST,
    STATE_PORT,
    VIDEO_PORT,
    VIDEO_URL,
    Reply,
    body_velocity_cm_s,
    number,
    parse_reply,
    velocity_to_rc,
    yaw_rep103_deg,
)
from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.errors import CommandRejected, InputError, LinkLost, VehicleError
from edgepilot.pilot.core.geometry import wrap_deg
from edgepilot.pilot.core.grammar import MOVE_RANGE_CM, SPEED_RANGE_CM_S, TURN_RANGE_DEG
from edgepilot.pilot.core.messages import FLIP_DIRECTIONS, MOVE_VERBS, Command, Event, Telemetry, Velocity

log = logging.getLogger(__name__)

# From djitellopy (unmodified, still a dependency) we use what its public API gives without opening a socket: the SDK's
# ports, the drone's address and the video address, as class constants (via tello_protocol); it is also the reference
# client our emulator is checked against (tests/test_tello_e2e.py). Everything else is ours, because a ``Tello`` object
# cannot be made here: its constructor binds UDP 8889/8890 in module-level sockets and threads that no public method
# closes (a second connection in one process, or anyone else on those ports, fails until the process exits), and its
# sends, rc and ``get_current_state`` all need that object. Its blocking ``send_control_command`` would not do anyway
# (up to 7 s per try; re-sends a move whose reply was lost; takes the first queued reply as the answer; counts
# "unknown command: look" as success). ``Tello.parse_state`` is documented as internal, logs an error per malformed
# field and keeps unknown values as strings: tello_protocol.parse_state returns finite floats from any bytes. So the
# transport is tello_link (why in detail there), the wire format tello_protocol, the video decoder tello_video.

DRONE_VERBS = ("takeoff", "land", "stop", "emergency", "speed", "flip", "cw", "ccw", *MOVE_VERBS)
#: Commands that may interrupt one in progress (the drone answers the interrupted one "forced stop").
INTERRUPTING = ("stop", "land")
#: Commands that are never sent twice: each copy would be carried out again.
MOTIONS = (*MOVE_VERBS, "cw", "ccw", "flip", "takeoff")
#: Commands that may be said again safely (and queries, ``...?``): twice does what once does.
IDEMPOTENT = ("command", "land", "stop", "streamon", "streamoff", "speed")
#: The query that brings the replies back in step: a number, which no other reply can be taken for.
SYNC_QUERY = "battery?"
#: After a reply, this long before the next command goes out, so that a duplicate of the reply (Wi-Fi duplicates come
#: within milliseconds) finds nothing to answer. Later duplicates meet the earliest-``ok`` rule instead.
SETTLE_S = 0.05
#: State newer than the last acknowledgement must contradict it this long before it is believed over it.
CONTRARY_STATE_S = 1.0
#: A contradiction this long is reported (shorter ones are the ordinary lag of state behind a reply).
DISAGREE_REPORT_S = 0.3
#: The Tello's top speed; no move is answered sooner than at twice this (a reply that is, answers something else).
TOP_SPEED_CM_S = 100.0
WIFI_HINT = ("join this computer to the Tello's Wi-Fi (TELLO-XXXXXX), switch the drone on, and let UDP 8889, 8890 "
             "and 11111 in through the firewall")


@dataclass(frozen=True)
class TelloConfig:
    host: str = DEFAULT_HOST
    #: The drone's command port (an emulator on a plain address may listen elsewhere); replies come back to our 8889.
    port: int = CONTROL_PORT
    video: bool = True
    connect_timeout_s: float = 3.0
    first_state_timeout_s: float = 2.0
    first_frame_timeout_s: float = 5.0
    #: A non-zero rc set-point older than this is replaced by hover, even if the loop hangs (a dead man's switch).
    rc_expire_s: float = 1.0
    #: How long closing keeps saying ``land`` without an acknowledgement before it declares the link lost.
    land_timeout_s: float = 15.0
    #: A command's reply may take its expected duration plus this long before it counts as lost.
    reply_margin_s: float = 10.0
    #: A command the drone answers at once (stop, speed, queries) counts as unanswered after this long.
    quick_reply_s: float = 3.0
    poll_period_s: float = 0.005

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "first_state_timeout_s", "first_frame_timeout_s", "rc_expire_s",
                     "land_timeout_s", "reply_margin_s", "quick_reply_s", "poll_period_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
                raise InputError(f"tello: {name} must be a positive number of seconds, got {value!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise InputError(f"tello: port must be 1-65535, got {self.port!r}")


@dataclass
class _Pending:
    text: str
    verb: str
    sent_s: float
    deadline_s: float
    #: An ``ok`` before this is not this command's: it could not have been carried out yet.
    earliest_ok_s: float = 0.0
    #: Sent by the backend for itself (the query that gets replies back in step), not by the pilot.
    internal: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    reply: Reply | None = None

    @property
    def query(self) -> bool:
        return self.text.endswith("?")


@dataclass
class _Owed:
    """A command we stopped waiting for whose reply may still come (timed out, interrupted, or said once more)."""

    text: str
    since_s: float
    timed_out: bool


@dataclass
class Airborne:
    """What the backend believes: in the air or on the ground, why, and since when."""

    airborne: bool
    why: str
    #: The time of what set the belief; only state that arrived after it may overturn it.
    since_s: float
    #: When state newer than ``since_s`` began to contradict the belief (None: it agrees).
    contrary_since_s: float | None = None
    reported: bool = False


def is_idempotent(text: str) -> bool:
    return text.endswith("?") or text.split()[0] in IDEMPOTENT


class TelloVehicle:
    kind = "drone"

    def __init__(self, config: TelloConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or TelloConfig()
        self.clock = clock or MonotonicClock()
        self.camera = None  # a TelloCamera once video is on
        self._lock = threading.RLock()
        self._events: list[Event] = []
        self._pending: _Pending | None = None
        self._owed: list[_Owed] = []
        self._settle_until = -math.inf
        self._next_probe_s = -math.inf
        self._speed_cm_s = 10.0  # the slowest the drone may be set to, until we know: generous timeouts
        self._last_rc: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._last_rc_s = 0.0
        self._yaw0: float | None = None
        self._x = self._y = 0.0
        self._telemetry: Telemetry | None = None
        self._belief: Airborne | None = None
        self._before_takeoff: Airborne | None = None
        self._state_count = 0
        self._state_seq = 0  # the link's number of the last state packet handled
        self._unreadable_seen = 0
        self._video_errors_seen = 0
        self._reported: dict[str, int] = {}
        self._send_errors = 0
        self._closed = False
        self._stop = threading.Event()
        self._link: TelloLink | None = None
        self._monitor = threading.Thread(target=self._run_monitor, name="tello-monitor", daemon=True)

    # -- connecting -------------------------------------------------------------------------------------------------
    def connect(self) -> TelloVehicle:
        """Bind the ports, enter SDK mode, wait for the first state (and video). Raises a clear LinkLost or
        VehicleError (a port in use, no reply, no state), with every socket closed again."""
        if self._closed or self._link is not None:
            raise VehicleError("a TelloVehicle connects once; make a new one")
        host = self.config.host
        if self.config.video:
            check_port_free(VIDEO_PORT)  # PyAV would only retry quietly on a taken port
        self._link = TelloLink(host, drone_port=self.config.port, clock=self.clock).open()
        try:
            self._monitor.start()
            reply = self._request("command", self.config.connect_timeout_s / 3, tries=3)
            if reply is None:
                raise LinkLost(f"no reply from a Tello at {host} (UDP {self.config.port}) within "
                               f"{self.config.connect_timeout_s:g} s: {WIFI_HINT}")
            if not reply.ok:
                raise VehicleError(f"the Tello at {host} refused SDK mode: {reply.text!r}")
            if not self._wait(lambda: self._telemetry is not None, self.config.first_state_timeout_s):
                raise LinkLost(f"the Tello at {host} answered but sent no state packet to UDP {STATE_PORT} within "
                               f"{self.config.first_state_timeout_s:g} s: a firewall is blocking incoming UDP "
                               f"{STATE_PORT} (and {VIDEO_PORT} for video); allow both, e.g. 'sudo ufw allow "
                               f"{STATE_PORT}/udp' and 'sudo ufw allow {VIDEO_PORT}/udp'")
            self._learn_speed()
            if self.config.video:
                self._start_video()
        except BaseException:
            self._shutdown()
            raise
        log.info("connected to the Tello at %s, battery %.0f%%", host, self.telemetry().battery_pct)
        return self

    def _learn_speed(self) -> None:
        """Ask the drone its move speed, so that a move's reply deadline is its real duration plus the margin."""
        reply = self._request("speed?", min(1.0, self.config.quick_reply_s), tries=2)
        try:
            speed = float(reply.text) if reply is not None and reply.kind == "value" else math.nan
        except ValueError:
            speed = math.nan
        if SPEED_RANGE_CM_S[0] <= speed <= SPEED_RANGE_CM_S[1]:
            self._speed_cm_s = speed

    def _start_video(self) -> None:
        from edgepilot.drone.tello_video import TelloCamera

        # The reader first, so that the stream's first key frame finds it listening (else the picture waits for
        # the next key frame, a second or more later).
        self.camera = TelloCamera(VIDEO_URL, self.clock)
        reply = self._request("streamon", 7.0, tries=2)
        if reply is None or not reply.ok:
            raise VehicleError(f"the Tello did not start its video ({reply.text if reply else 'no reply'}); "
                               f"update its firmware with the Tello app, or fly with video off")
        if not self.camera.wait_first_frame(self.config.first_frame_timeout_s):
            self._event("video_missing", f"no video on UDP {VIDEO_PORT} within {self.config.first_frame_timeout_s:g}"
                                         f" s: a firewall may be blocking it; flying on without pictures")

    # -- Vehicle protocol -------------------------------------------------------------------------------------------
    def execute(self, command: Command) -> None:
        self._check_open()
        verb = command.verb
        if verb not in DRONE_VERBS:
            raise CommandRejected(f"the drone does not understand {command.text!r}")
        text = sdk_text(command)
        with self._lock:
            if verb == "emergency":
                self._begin("emergency", "emergency", self.config.quick_reply_s)
                self._event("emergency", "motors stopped on request")
                return
            pending = self._pending
            if pending is not None and not pending.internal and verb not in INTERRUPTING:
                raise VehicleError(f"busy with {pending.text!r}; wait or say 'stop'")
            if pending is not None and pending.internal and verb not in INTERRUPTING:
                raise VehicleError(f"{command.text!r} not sent: checking the link to the Tello after "
                                   f"{self._owed_text()} got no reply; try again in a moment")
            if verb in MOTIONS and self._owed:
                raise VehicleError(f"{command.text!r} not sent: the Tello's replies are out of step since "
                                   f"{self._owed_text()} got no reply in time; moves wait until a check gets through")
            flying = self._airborne()
            if verb == "takeoff" and flying:
                raise VehicleError("already flying")
            if verb not in ("takeoff", "stop", "speed") and not flying:
                raise VehicleError(f"{command.text!r} needs the drone in the air: take off first")
            now = self.clock.now()
            height = self._telemetry.z_cm if self._telemetry is not None else 0.0
            self._begin(text, verb, self._timeout_s(command), earliest_ok_s=now + _min_duration_s(command, height))
            if verb == "takeoff":
                self._before_takeoff = self._belief
                self._believe(True, "takeoff sent, not yet answered", now)

    def busy(self) -> bool:
        """True while a command runs, while a reply settles, and while the replies are out of step."""
        with self._lock:
            return (self._pending is not None or self.clock.now() < self._settle_until
                    or (bool(self._owed) and not self._closed))

    def send_velocity(self, velocity: Velocity) -> None:
        self._check_open()
        rc = velocity_to_rc(velocity)
        with self._lock:
            self._last_rc, self._last_rc_s = rc, self.clock.now()
        self._send_rc(rc)

    def telemetry(self) -> Telemetry:
        with self._lock:
            latest = self._telemetry
            flying = self._airborne()
        now = self.clock.now()
        if latest is None:
            return Telemetry(t_s=now, last_state_s=-math.inf, flying=flying)
        return replace(latest, t_s=now, flying=flying)

    def airborne(self) -> Airborne | None:
        """What the backend believes and why (None before the first state packet and any takeoff)."""
        with self._lock:
            return None if self._belief is None else replace(self._belief)

    def poll_events(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
        return events

    @property
    def state_packets(self) -> int:
        return self._state_count

    def close(self) -> None:
        """Land if airborne or unknown, saying ``land`` again every 2 s until it is acknowledged (by the reply, or by
        state on the ground for 1 s) or ``land_timeout_s`` passes (the link is then declared lost); stop the video;
        close every socket. Idempotent; never raises for a dead link."""
        if self._closed:
            return
        try:
            if self._link is not None and self.telemetry().flying:
                self._land_for_close()
                packets = self._state_count
                self._wait(lambda: self._state_count > packets, 0.3)  # end with a current state
            if self.camera is not None:
                self.camera.close()  # first, while frames still arrive: its reader then stops at once
                with self._lock:
                    self._owed.append(_Owed("streamoff", self.clock.now(), False))
                self._send("streamoff")
        finally:
            self._shutdown()

    def __enter__(self) -> TelloVehicle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the backend believes ----------------------------------------------------------------------------------
    def _airborne(self) -> bool:
        """Airborne or unknown (called with the lock held)."""
        return self._belief is not None and self._belief.airborne

    def _believe(self, airborne: bool, why: str, since_s: float) -> None:
        previous = self._belief
        self._belief = Airborne(airborne, why, since_s)
        if previous is None or previous.airborne != airborne:
            log.info("tello: %s (%s)", "airborne" if airborne else "on the ground", why)

    def _judge_state(self, state_airborne: bool, t_s: float) -> None:
        """Weigh one state packet (arrived at ``t_s``) against the belief (lock held)."""
        belief = self._belief
        if belief is None:
            self._believe(state_airborne, "state", t_s)
            return
        pending = self._pending
        if pending is not None and pending.verb == "takeoff":
            return  # lifting off: the state may say anything for a while
        if t_s <= belief.since_s or state_airborne == belief.airborne:
            belief.contrary_since_s = None
            belief.reported = False
            return
        if belief.contrary_since_s is None:
            belief.contrary_since_s = t_s
            return
        seen = "on the ground" if not state_airborne else "in the air"
        landing = pending is not None and pending.verb in ("land", "emergency")
        if not belief.reported and not landing and t_s - belief.contrary_since_s >= DISAGREE_REPORT_S:
            belief.reported = True
            self._report_limited("state_disagrees", f"the state has said {seen} for "
                                                    f"{t_s - belief.contrary_since_s:.1f} s since {belief.why}: "
                                                    f"believing that for up to {CONTRARY_STATE_S:g} s")
        if t_s - belief.contrary_since_s < CONTRARY_STATE_S:
            return
        self._believe(state_airborne, f"state has said {seen} for {t_s - belief.contrary_since_s:.1f} s", t_s)
        if not state_airborne:
            if pending is not None and pending.verb == "land":
                self._event("landed_by_state", f"no reply to {pending.text!r} yet, but the state has shown the drone "
                                               f"on the ground for {CONTRARY_STATE_S:g} s: landed")
                self._complete(pending, Reply("ok", "on the ground (from state)"), t_s, settle=False)
            elif pending is None or pending.verb != "emergency":
                self._event("landed", f"the drone is on the ground (state for {CONTRARY_STATE_S:g} s, no land "
                                      f"acknowledged): it landed by itself or was caught")

    # -- commands ---------------------------------------------------------------------------------------------------
    def _timeout_s(self, command: Command) -> float:
        margin = self.config.reply_margin_s
        if command.verb in ("takeoff", "land"):
            return 10.0 + margin
        if command.verb in MOVE_VERBS:
            return float(command.arg) / self._speed_cm_s + margin
        if command.verb in ("cw", "ccw"):
            return float(command.arg) / 30.0 + margin
        if command.verb == "flip":
            return 2.0 + margin
        return self.config.quick_reply_s

    def _begin(self, text: str, verb: str, timeout_s: float, *, earliest_ok_s: float = 0.0,
               internal: bool = False) -> _Pending:
        """Send ``text`` as the one command in flight; whatever was in flight is abandoned (lock taken here)."""
        with self._lock:
            self._abandon()
            now = self.clock.now()
            pending = _Pending(text, verb, now, now + timeout_s, earliest_ok_s, internal)
            self._pending = pending
            self._send(text)
        return pending

    def _abandon(self) -> None:
        """Forget the command in flight (lock held): an interrupt or a resend supersedes it. Its reply ("forced stop",
        or the answer it was going to get) is then owed: it will not be taken for the next command's."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        pending.done.set()
        if not pending.query:
            self._owed.append(_Owed(pending.text, self.clock.now(), False))

    def _request(self, text: str, timeout_s: float, tries: int = 1) -> Reply | None:
        """Send and wait for the reply (connect and close only; the loop never calls this). Only an idempotent
        command may have more than one try."""
        if tries > 1 and not is_idempotent(text):
            raise ValueError(f"{text!r} must never be sent twice")
        for _ in range(tries):
            pending = self._begin(text, text.split()[0], timeout_s)
            pending.done.wait(timeout_s + 0.5)
            if pending.reply is not None:
                return pending.reply
        return None

    def _land_for_close(self) -> None:
        self._event("landing", "closing: landing")
        deadline = self.clock.now() + self.config.land_timeout_s
        next_try = self.clock.now()
        with self._lock:  # at least one land goes out, whatever the state says
            sent = self._pending is not None and self._pending.verb == "land"
        while self.clock.now() < deadline:
            with self._lock:
                if not self._airborne():
                    return
                pending = self._pending
                now = self.clock.now()
                # A land sent less than 2 s ago may still be answered; after that (link down?) say it again, unless
                # fresh state already shows the drone down (the belief follows within a second).
                waiting = pending is not None and pending.verb == "land" and now - pending.sent_s < 2.0
                latest = self._telemetry
                down = (sent and latest is not None and latest.z_cm < 1.0 and now - latest.last_state_s < 0.5)
                if not waiting and not down and now >= next_try:
                    sent = True
                    height = self._telemetry.z_cm if self._telemetry is not None else 0.0
                    self._begin("land", "land", 10.0 + self.config.reply_margin_s,
                                earliest_ok_s=now + _min_duration_s(Command("land"), height))
                    next_try = now + 2.0
            self._stop.wait(0.05)
        self._event("land_unconfirmed", f"no acknowledgement of landing within {self.config.land_timeout_s:g} s: "
                                        f"the link is lost; a Tello lands by itself 15 s after the last command it "
                                        f"heard")

    def _send(self, text: str) -> bool:
        try:
            self._link.send(text)
            return True
        except (OSError, VehicleError, AttributeError) as exc:  # Wi-Fi gone: the link-loss failsafe takes over
            self._send_errors += 1
            if self._send_errors in (1, 10, 100):
                log.warning("cannot send %r to the Tello: %s", text, _reason(exc))
            return False

    def _send_rc(self, rc: tuple[int, int, int, int]) -> None:
        try:
            self._link.send_rc(*rc)
        except (OSError, VehicleError) as exc:
            self._send_errors += 1
            if self._send_errors in (1, 10, 100):
                log.warning("cannot send rc to the Tello: %s", _reason(exc))

    # -- the monitor thread: replies, state, reply deadlines, getting back in step, rc expiry ------------------------
    def _run_monitor(self) -> None:
        link = self._link
        while not self._stop.is_set():
            link.wait(self.config.poll_period_s)  # returns at once when a datagram arrives
            if self._stop.is_set():
                return
            try:
                self._poll_link()
                now = self.clock.now()
                self._check_deadline(now)
                self._check_step(now)
                self._check_rc_expiry(now)
                self._check_garbage()
            except Exception:  # noqa: BLE001 - the monitor must outlive any surprise; it is logged
                log.exception("tello monitor: unexpected error")

    def _poll_link(self) -> None:
        packet = self._link.latest_state()
        if packet is not None and packet.seq != self._state_seq:
            self._state_seq = packet.seq
            self._on_state(packet.state, packet.t_s)
        for received in self._link.take_replies():
            self._on_reply(received.data, received.t_s)

    def _on_state(self, state: dict, now: float) -> None:
        """One state packet that arrived at ``now``: telemetry, dead reckoning, and what it says about being up."""
        if not state:
            return
        with self._lock:
            previous = self._telemetry
            dt = max(0.0, min(0.5, now - previous.last_state_s)) if previous else 0.0
            yaw_abs = yaw_rep103_deg(state)
            if self._yaw0 is None and yaw_abs is not None:
                self._yaw0 = yaw_abs
            yaw = previous.yaw_deg if previous else 0.0
            if yaw_abs is not None:
                yaw = wrap_deg(yaw_abs - (self._yaw0 or 0.0))
            forward, left, up = body_velocity_cm_s(state)
            c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
            vx, vy = c * forward - s * left, s * forward + c * left
            self._x += vx * dt
            self._y += vy * dt
            height = number(state, "h")
            tof = number(state, "tof")
            if height is None:
                height = max(0.0, tof - 10.0) if tof is not None else (previous.z_cm if previous else 0.0)
            battery = number(state, "bat", previous.battery_pct if previous else 100.0)
            self._telemetry = Telemetry(
                t_s=now, x_cm=self._x, y_cm=self._y, z_cm=max(0.0, height), yaw_deg=yaw, flying=height >= 1.0,
                battery_pct=max(0.0, min(100.0, battery)), vx_cm_s=vx, vy_cm_s=vy, vz_cm_s=up, last_state_s=now)
            self._state_count += 1
            self._judge_state(height >= 1.0, now)

    def _on_reply(self, data: bytes, t_s: float | None = None) -> None:
        """One datagram on the control port: the answer to the command in flight, a reply owed to an earlier one, or a
        duplicate. See the module's docstring for the rules."""
        reply = parse_reply(data)
        now = self.clock.now() if t_s is None else t_s
        with self._lock:
            pending = self._pending
            if reply.kind == "value":
                if pending is not None and pending.query:
                    self._complete(pending, reply, now)
                else:
                    self._stray(reply, "no query is waiting")
                return
            if reply.kind == "forced_stop":
                if self._owed:
                    motions = [o for o in self._owed if o.text.split()[0] in MOTIONS]
                    self._settle_owed((motions or self._owed)[0], reply, now)
                else:
                    self._stray(reply, "nothing was interrupted")
                return
            if pending is not None and not pending.query:
                if self._owed and all(o.text == pending.text for o in self._owed) and is_idempotent(pending.text):
                    # Only copies of this same idempotent command are owed: an answer to any copy answers it.
                    self._complete(pending, reply, now)
                    return
                if self._owed:
                    self._settle_owed(self._owed[0], reply, now)
                    return
                if reply.kind == "ok" and now < pending.earliest_ok_s:
                    self._stray(reply, f"too soon to be the answer to {pending.text!r} (sent "
                                       f"{now - pending.sent_s:.2f} s before)")
                    return
                self._complete(pending, reply, now)
                return
            if self._owed:
                self._settle_owed(self._owed[0], reply, now)
            else:
                self._stray(reply, "no command is waiting")

    def _complete(self, pending: _Pending, reply: Reply, t_s: float, settle: bool = True) -> None:
        """``reply`` answers ``pending`` (lock held): act on what it says."""
        if self._pending is pending:
            self._pending = None
        pending.reply = reply
        if settle:
            self._settle_until = max(self._settle_until, t_s + SETTLE_S)
        if pending.internal:
            if self._owed:
                lost = [o.text for o in self._owed if o.timed_out]
                log.info("tello: replies back in step%s", f"; no reply ever came to {lost}" if lost else "")
                self._owed.clear()
        elif reply.ok:
            if pending.verb == "speed":
                self._speed_cm_s = float(pending.text.split()[1])
            elif pending.verb == "takeoff":
                self._believe(True, "takeoff acknowledged", t_s)
            elif pending.verb in ("land", "emergency"):
                self._believe(False, f"{pending.verb} acknowledged", t_s)
        else:
            if pending.verb == "takeoff":
                # Refused: where it was before. Without a state yet that is unknown, so airborne.
                before = self._before_takeoff
                self._believe(before.airborne if before else True, f"takeoff refused ({reply.text})", t_s)
            if pending.verb not in ("command", "streamon") and not pending.query:
                self._event("command_failed", f"the Tello refused {pending.text!r}: {reply.text}",
                            {"command": pending.text, "reply": reply.text})
        pending.done.set()

    def _settle_owed(self, owed: _Owed, reply: Reply, t_s: float) -> None:
        """``reply`` is taken as one of the answers owed to earlier commands (lock held). Which one cannot be known
        (no sequence numbers); what matters is that it answers nothing sent since."""
        timed_out = [o for o in self._owed if o.timed_out]
        candidates = ", ".join(repr(o.text) for o in self._owed)
        self._owed.remove(owed)
        if timed_out:
            first = timed_out[0]
            self._event("late_reply", f"{reply.text!r} arrived {t_s - first.since_s:.1f} s after {first.text!r} timed "
                                      f"out, while answers to {candidates} were owed: taken as one of them, not as the "
                                      f"answer to anything sent since", {"command": first.text, "reply": reply.text})
        else:
            log.debug("tello: %r answers one of the earlier %s", reply.text, candidates)

    def _stray(self, reply: Reply, why: str) -> None:
        self._report_limited("stray_reply", f"ignored a reply {reply.text!r} ({why}): a duplicate or a late reply",
                             {"reply": reply.text})

    def _check_deadline(self, now: float) -> None:
        with self._lock:
            pending = self._pending
            if pending is None or now <= pending.deadline_s:
                return
            self._pending = None
            pending.done.set()
            if pending.query:
                return  # a late number answers nothing but a query: nothing is owed
            self._owed.append(_Owed(pending.text, now, True))
            if pending.verb == "takeoff":
                self._believe(True, "takeoff not answered", now)
            if pending.verb in ("command", "streamon"):
                return  # connecting: the caller reports
            hover = ""
            if pending.verb in MOTIONS:
                # Hover, and never say the move again. The stop's own reply is owed too.
                self._owed.append(_Owed("stop", now, False))
                self._send("stop")
                hover = "; hovering (sent 'stop')"
            self._event("command_timeout", f"no reply to {pending.text!r} within {now - pending.sent_s:.0f} s; "
                                           f"{self._telemetry_text(now)}; not sent again{hover}",
                        {"command": pending.text})

    def _check_step(self, now: float) -> None:
        """While replies are owed and nothing is in flight, ask :data:`SYNC_QUERY` (again every second): its number
        comes after everything the drone sent before it."""
        with self._lock:
            if not self._owed or self._pending is not None or now < self._settle_until or now < self._next_probe_s:
                return
            if self._closed or self._link is None:
                return
            self._next_probe_s = now + 1.0
            self._begin(SYNC_QUERY, SYNC_QUERY, 1.0, internal=True)

    def _check_rc_expiry(self, now: float) -> None:
        with self._lock:
            stale = any(self._last_rc) and now - self._last_rc_s > self.config.rc_expire_s
            if stale:
                self._last_rc = (0, 0, 0, 0)
        if stale:
            self._event("rc_expired", f"no new velocity for {self.config.rc_expire_s:g} s: hovering")
            self._send_rc((0, 0, 0, 0))

    def _check_garbage(self) -> None:
        """Report garbled state packets and video (both dropped without harm) as they start and as they pile up."""
        unreadable = self._link.unreadable_states
        if unreadable != self._unreadable_seen:
            self._unreadable_seen = unreadable
            if _milestone(unreadable):
                self._event("state_garbage", f"{unreadable} unreadable state packet{'s' if unreadable > 1 else ''} "
                                             f"ignored so far", {"count": unreadable})
        errors = getattr(self.camera, "corrupt_packets", 0)
        if errors != self._video_errors_seen:
            self._video_errors_seen = errors
            if _milestone(errors):
                self._event("video_corrupt", f"{errors} corrupt video packet{'s' if errors > 1 else ''} so far: the "
                                             f"picture resumes at the next key frame", {"count": errors})

    # -- helpers ----------------------------------------------------------------------------------------------------
    def _owed_text(self) -> str:
        timed_out = [o.text for o in self._owed if o.timed_out] or [o.text for o in self._owed]
        return repr(timed_out[0]) if timed_out else "a command"

    def _telemetry_text(self, now: float) -> str:
        t = self._telemetry
        if t is None:
            return "no state from the drone yet"
        return (f"the drone reports height {t.z_cm:.0f} cm, speed {math.hypot(t.vx_cm_s, t.vy_cm_s):.0f} cm/s, "
                f"battery {t.battery_pct:.0f}% ({now - t.last_state_s:.1f} s ago)")

    def _wait(self, condition, timeout_s: float) -> bool:
        deadline = self.clock.now() + timeout_s
        while not condition():
            if self.clock.now() >= deadline:
                return False
            self._stop.wait(0.02)
        return True

    def _event(self, type_: str, detail: str, data: dict | None = None) -> None:
        log.warning("tello %s: %s", type_, detail)
        with self._lock:
            self._events.append(Event(self.clock.now(), type_, detail, data or {}))

    def _report_limited(self, type_: str, detail: str, data: dict | None = None) -> None:
        """An event for the first few of a kind, then at 10, 100, 1000... (a flood must not flood the report)."""
        count = self._reported[type_] = self._reported.get(type_, 0) + 1
        if _milestone(count):
            self._event(type_, detail if count == 1 else f"{detail} ({count} so far)", data)
        else:
            log.debug("tello %s: %s", type_, detail)

    def _check_open(self) -> None:
        if self._closed or self._link is None:
            raise VehicleError("the Tello connection is closed")

    def _shutdown(self) -> None:
        self._closed = True
        self._stop.set()
        if self._monitor.is_alive():
            self._monitor.join(timeout=1.0)
        if self.camera is not None:
            self.camera.close()
        if self._link is not None:
            self._link.close()  # frees UDP 8889 and 8890 at once


def _min_duration_s(command: Command, height_cm: float = 0.0) -> float:
    """The least time the drone needs before it can answer ``ok`` (half of it at top speed, to be safe): a move at
    100 cm/s, a turn at 360 deg/s, a landing from ``height_cm`` at 100 cm/s."""
    verb = command.verb
    if verb in MOVE_VERBS:
        return 0.5 * float(command.arg) / TOP_SPEED_CM_S
    if verb in ("cw", "ccw"):
        return 0.5 * float(command.arg) / 360.0
    if verb == "land":
        return max(0.2, 0.5 * max(0.0, height_cm) / TOP_SPEED_CM_S)
    return {"takeoff": 0.5, "flip": 0.3}.get(verb, 0.0)


def _milestone(count: int) -> bool:
    return count <= 3 or (count >= 10 and math.log10(count).is_integer())


def sdk_text(command: Command) -> str:
    """The SDK datagram for a command, with its argument checked once more right before it leaves."""
    verb, arg = command.verb, command.arg
    if verb in ("takeoff", "land", "stop", "emergency"):
        return verb
    if verb == "flip":
        if arg not in FLIP_DIRECTIONS:
            raise CommandRejected(f"flip needs one of {', '.join(FLIP_DIRECTIONS)}, got {arg!r}")
        return f"flip {arg}"
    bounds = {"speed": SPEED_RANGE_CM_S, "cw": TURN_RANGE_DEG, "ccw": TURN_RANGE_DEG}.get(verb, MOVE_RANGE_CM)
    if isinstance(arg, bool) or not isinstance(arg, int | float) or not math.isfinite(arg) or arg != int(arg):
        raise CommandRejected(f"{verb} needs a whole number, got {arg!r}")
    if not bounds[0] <= arg <= bounds[1]:
        raise CommandRejected(f"{verb} {arg:g} is outside the Tello's range {bounds[0]}-{bounds[1]}")
    return f"{verb} {int(arg)}"


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def make_tello(clock: Clock | None = None, host: str = DEFAULT_HOST, video: bool = True, port: int = CONTROL_PORT,
               settings: dict | None = None, **_: object) -> TelloVehicle:
    """Registry factory ("tello"): connect and return a ready vehicle, or raise a clear LinkLost / VehicleError.
    ``settings`` overrides :class:`TelloConfig` fields (the config file's ``[tello]`` table)."""
    return TelloVehicle(TelloConfig(**{**(settings or {}), "host": host, "video": video, "port": port}), clock).connect()
