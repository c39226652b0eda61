"""The Tello backend: a :class:`edgepilot.pilot.core.hal.Vehicle` over our UDP link (:mod:`edgepilot.drone.tello_link`).

A command is sent as one datagram and never waited for: a monitor thread (woken by each datagram, at least 200 Hz)
matches the reply to the one command in flight, turns each state packet into telemetry stamped with its arrival time
(``last_state_s``, which the supervisor's link-loss check reads), dead-reckons x/y and expires stale ``rc`` set-points.
The loop never blocks. Video is :class:`edgepilot.drone.tello_video.TelloCamera`.
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
from edgepilot.pilot.core.errors import CommandRejected, LinkLost, VehicleError
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
    land_timeout_s: float = 15.0
    #: A command's reply may take its expected duration plus this long before it counts as lost.
    reply_margin_s: float = 10.0
    poll_period_s: float = 0.005


@dataclass
class _Pending:
    text: str
    verb: str
    sent_s: float
    deadline_s: float
    done: threading.Event = field(default_factory=threading.Event)
    reply: Reply | None = None


class TelloVehicle:
    kind = "drone"

    def __init__(self, config: TelloConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or TelloConfig()
        self.clock = clock or MonotonicClock()
        self.camera = None  # a TelloCamera once video is on
        self._lock = threading.RLock()
        self._events: list[Event] = []
        self._pending: _Pending | None = None
        self._abandoned = 0  # interrupted motions whose "forced stop" is still to come
        self._speed_cm_s = 10.0  # the slowest the drone may be set to, until we set it: generous timeouts
        self._last_rc: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._last_rc_s = 0.0
        self._yaw0: float | None = None
        self._x = self._y = 0.0
        self._telemetry: Telemetry | None = None
        self._landed_by_reply = False  # the drone said "ok" to land: down, even if no state confirms it
        self._state_count = 0
        self._state_seq = 0  # the link's number of the last state packet handled
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
                raise LinkLost(f"no reply from a Tello at {host} (UDP 8889) within "
                               f"{self.config.connect_timeout_s:g} s: {WIFI_HINT}")
            if not reply.ok:
                raise VehicleError(f"the Tello at {host} refused SDK mode: {reply.text!r}")
            if not self._wait(lambda: self._telemetry is not None, self.config.first_state_timeout_s):
                raise LinkLost(f"the Tello at {host} answered but sent no state packet to UDP {STATE_PORT} within "
                               f"{self.config.first_state_timeout_s:g} s: a firewall is blocking incoming UDP "
                               f"{STATE_PORT} (and {VIDEO_PORT} for video); allow both, e.g. 'sudo ufw allow "
                               f"{STATE_PORT}/udp' and 'sudo ufw allow {VIDEO_PORT}/udp'")
            if self.config.video:
                self._start_video()
        except BaseException:
            self._shutdown()
            raise
        log.info("connected to the Tello at %s, battery %.0f%%", host, self.telemetry().battery_pct)
        return self

    def _start_video(self) -> None:
        from edgepilot.drone.tello_video import TelloCamera

        reply = self._request("streamon", 7.0, tries=2)
        if reply is None or not reply.ok:
            raise VehicleError(f"the Tello did not start its video ({reply.text if reply else 'no reply'}); "
                               f"update its firmware with the Tello app, or fly with video off")
        self.camera = TelloCamera(VIDEO_URL, self.clock)
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
        if verb == "emergency":
            with self._lock:
                self._abandon()
            self._send("emergency")
            self._event("emergency", "motors stopped on request")
            return
        flying = self.telemetry().flying
        with self._lock:
            if self._pending is not None:
                if verb not in INTERRUPTING:
                    raise VehicleError(f"busy with {self._pending.text!r}; wait or say 'stop'")
                self._abandon()
            if verb == "takeoff" and flying:
                raise VehicleError("already flying")
            if verb not in ("takeoff", "stop", "speed") and not flying:
                raise VehicleError(f"{command.text!r} needs the drone in the air: take off first")
            self._begin(text, verb, self._timeout_s(command))

    def busy(self) -> bool:
        with self._lock:
            return self._pending is not None

    def send_velocity(self, velocity: Velocity) -> None:
        self._check_open()
        rc = velocity_to_rc(velocity)
        with self._lock:
            self._last_rc, self._last_rc_s = rc, self.clock.now()
        self._send_rc(rc)

    def telemetry(self) -> Telemetry:
        with self._lock:
            latest = self._telemetry
            pending_takeoff = self._pending is not None and self._pending.verb == "takeoff"
            landed_by_reply = self._landed_by_reply
        now = self.clock.now()
        if latest is None:
            return Telemetry(t_s=now, last_state_s=-math.inf)
        return replace(latest, t_s=now, flying=(latest.flying and not landed_by_reply) or pending_takeoff)

    def poll_events(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
        return events

    @property
    def state_packets(self) -> int:
        return self._state_count

    def close(self) -> None:
        """Land (waiting up to ``land_timeout_s`` for the drone to be down), stop the video, close every socket.
        Idempotent; never raises for a dead link."""
        if self._closed:
            return
        try:
            if self._link is not None and self.telemetry().flying:
                self._land_for_close()
                packets = self._state_count
                self._wait(lambda: self._state_count > packets, 0.3)  # end with a current state
            if self.camera is not None:
                self._send("streamoff")
        finally:
            self._shutdown()

    def __enter__(self) -> TelloVehicle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ---------------------------------------------------------------------------------------------------
    def _timeout_s(self, command: Command) -> float:
        margin = self.config.reply_margin_s
        if command.verb in ("takeoff", "land"):
            return 10.0 + margin
        if command.verb in MOVE_VERBS:
            return float(command.arg) / self._speed_cm_s + margin
        if command.verb in ("cw", "ccw"):
            return float(command.arg) / 30.0 + margin
        return margin

    def _begin(self, text: str, verb: str, timeout_s: float) -> _Pending:
        now = self.clock.now()
        pending = _Pending(text, verb, now, now + timeout_s)
        with self._lock:
            self._pending = pending
        self._send(text)
        return pending

    def _abandon(self) -> None:
        """Forget the command in progress (called with the lock held): an interrupt supersedes it."""
        pending = self._pending
        if pending is None:
            return
        if pending.verb in (*MOVE_VERBS, "cw", "ccw", "flip", "takeoff", "land"):
            self._abandoned += 1
        pending.done.set()
        self._pending = None

    def _request(self, text: str, timeout_s: float, tries: int = 1) -> Reply | None:
        """Send and wait for the reply (connect and close only; the loop never calls this)."""
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
        while self.clock.now() < deadline:
            telemetry = self.telemetry()
            if not telemetry.flying:
                return
            with self._lock:
                pending = self._pending
                # A land sent less than 2 s ago may still be answered; after that (link down?) say it again.
                waiting = pending is not None and pending.verb == "land" and self.clock.now() - pending.sent_s < 2.0
                if not waiting and self.clock.now() >= next_try:
                    self._abandon()
                    self._begin("land", "land", 20.0)
                    next_try = self.clock.now() + 2.0
            self._stop.wait(0.05)
        self._event("land_unconfirmed", f"no confirmation of landing within {self.config.land_timeout_s:g} s (link "
                                        f"down?); a Tello lands by itself 15 s after the last command it heard")

    def _send(self, text: str) -> bool:
        try:
            self._link.send(text)
            return True
        except (OSError, VehicleError) as exc:  # Wi-Fi gone: the link-loss failsafe takes over, the loop goes on
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

    # -- the monitor thread: replies, state, reply deadlines, rc expiry --------------------------------------------
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
                self._check_rc_expiry(now)
            except Exception:  # noqa: BLE001 - the monitor must outlive any surprise; it is logged
                log.exception("tello monitor: unexpected error")

    def _poll_link(self) -> None:
        packet = self._link.latest_state()
        if packet is not None and packet.seq != self._state_seq:
            self._state_seq = packet.seq
            self._on_state(packet.state, packet.t_s)
        for received in self._link.take_replies():
            self._on_reply(received.data)

    def _on_state(self, state: dict, now: float) -> None:
        """One state packet that arrived at ``now``: telemetry, dead reckoning, and a land confirmed from the ground."""
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
            if height >= 1.0:
                self._landed_by_reply = False  # state knows better than an old reply
            pending = self._pending
            if pending is not None and pending.verb == "land" and height < 1.0 and now - pending.sent_s > 0.3:
                # On the ground: the land is done even if its reply was lost (or the drone landed by itself).
                self._pending = None
                pending.reply = Reply("ok", "on the ground (from state)")
                pending.done.set()

    def _on_reply(self, data: bytes) -> None:
        """One datagram on the control port: the answer to the command in flight, or an expected "forced stop"."""
        reply = parse_reply(data)
        with self._lock:
            if reply.kind == "forced_stop" and self._abandoned > 0:
                self._abandoned -= 1
                return
            pending = self._pending
            if pending is None:
                log.debug("tello: reply %r with no command waiting (late or duplicate)", reply.text)
                return
            self._pending = None
            pending.reply = reply
            if reply.ok and pending.verb == "speed":
                self._speed_cm_s = float(pending.text.split()[1])
            if reply.ok and pending.verb == "land":
                self._landed_by_reply = True
            if pending.verb == "takeoff":
                self._landed_by_reply = False
            if not reply.ok and pending.verb not in ("command", "streamon"):
                self._event("command_failed", f"the Tello refused {pending.text!r}: {reply.text}",
                            {"command": pending.text, "reply": reply.text})
            pending.done.set()

    def _check_deadline(self, now: float) -> None:
        with self._lock:
            pending = self._pending
            if pending is not None and now > pending.deadline_s:
                self._pending = None
                pending.done.set()
                if pending.verb not in ("command", "streamon"):
                    self._event("command_timeout", f"no reply to {pending.text!r} within "
                                                   f"{pending.deadline_s - pending.sent_s:.0f} s",
                                {"command": pending.text})

    def _check_rc_expiry(self, now: float) -> None:
        with self._lock:
            stale = any(self._last_rc) and now - self._last_rc_s > self.config.rc_expire_s
            if stale:
                self._last_rc = (0, 0, 0, 0)
        if stale:
            self._event("rc_expired", f"no new velocity for {self.config.rc_expire_s:g} s: hovering")
            self._send_rc((0, 0, 0, 0))

    # -- helpers ----------------------------------------------------------------------------------------------------
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


def make_tello(clock: Clock | None = None, host: str = DEFAULT_HOST, video: bool = True, **_: object) -> TelloVehicle:
    """Registry factory ("tello"): connect and return a ready vehicle, or raise a clear LinkLost / VehicleError."""
    return TelloVehicle(TelloConfig(host=host, video=video), clock).connect()
