"""The Tello backend: :class:`edgepilot.pilot.core.hal.Vehicle` over djitellopy (unmodified).

djitellopy provides the UDP transport, its receiver threads, the state parser, ``rc`` and the video URL. Commands do
not go through its blocking ``send_control_command``: that blocks the caller for up to 7 s per try, re-sends a move
whose reply was lost (the drone would move twice), takes the first reply in the queue as the answer (a late reply
answers the wrong command) and counts "unknown command: look" as success because it contains "ok". Instead a command
is sent as one datagram and a monitor thread (200 Hz) matches the reply, stamps state packets (``last_state_s``),
dead-reckons x/y, expires stale ``rc`` set-points and keeps djitellopy's state thread alive. The loop never blocks.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field, replace

from edgepilot.drone import djitellopy_link as link
from edgepilot.drone.tello_protocol import (
    DEFAULT_HOST,
    STATE_PORT,
    VIDEO_PORT,
    Reply,
    body_velocity_cm_s,
    number,
    parse_reply,
    velocity_to_rc,
    yaw_rep103_deg,
)
from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.errors import CommandRejected, LinkLost, VehicleError
from edgepilot.pilot.core.grammar import MOVE_RANGE_CM, SPEED_RANGE_CM_S, TURN_RANGE_DEG
from edgepilot.pilot.core.messages import FLIP_DIRECTIONS, MOVE_VERBS, Command, Event, Telemetry, Velocity

log = logging.getLogger(__name__)

DRONE_VERBS = ("takeoff", "land", "stop", "emergency", "speed", "flip", "cw", "ccw", *MOVE_VERBS)
#: Commands that may interrupt one in progress (the drone answers the interrupted one "forced stop").
INTERRUPTING = ("stop", "land")
WIFI_HINT = ("join this computer to the Tello's Wi-Fi (TELLO-XXXXXX), switch the drone on, and let UDP 8889, 8890 "
             "and 11111 in through the firewall")


@dataclass(frozen=True)
class TelloConfig:
    host: str = DEFAULT_HOST
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
        self._state_obj: object = None
        self._yaw0: float | None = None
        self._x = self._y = 0.0
        self._telemetry: Telemetry | None = None
        self._landed_by_reply = False  # the drone said "ok" to land: down, even if no state confirms it
        self._state_count = 0
        self._send_errors = 0
        self._closed = False
        self._stop = threading.Event()
        self._tello = None
        self._udp: dict = {}
        self._state_thread: threading.Thread | None = None
        self._state_socket = None  # djitellopy's state socket, kept to close it if its thread dies
        self._monitor = threading.Thread(target=self._run_monitor, name="tello-monitor", daemon=True)

    # -- connecting -------------------------------------------------------------------------------------------------
    def connect(self) -> TelloVehicle:
        from djitellopy import Tello

        host = self.config.host
        link.quiet_djitellopy_logging()
        if not link.sockets_open():
            link.check_ports_free((8889, STATE_PORT, VIDEO_PORT) if self.config.video else (8889, STATE_PORT))
        try:
            self._tello = Tello(host=host, retry_count=1)
        except OSError as exc:
            raise VehicleError(f"cannot open the Tello's UDP ports: {exc.strerror}") from None
        try:
            self._udp = self._tello.get_own_udp_object()
            self._state_thread = link.receiver_threads().get(link.STATE_RECEIVER)
            self._state_socket = link.wait_state_socket(self._state_thread)
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
        self.camera = TelloCamera(self._tello.get_udp_video_address(), self.clock)
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
            if self._tello is not None and self.telemetry().flying:
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
            self._tello.send_command_without_return(text)
            return True
        except OSError as exc:  # Wi-Fi gone: the link-loss failsafe takes it from here, the loop goes on
            self._send_errors += 1
            if self._send_errors in (1, 10, 100):
                log.warning("cannot send %r to the Tello: %s", text, exc.strerror)
            return False

    def _send_rc(self, rc: tuple[int, int, int, int]) -> None:
        try:
            self._tello.send_rc_control(*rc)
        except OSError as exc:
            self._send_errors += 1
            if self._send_errors in (1, 10, 100):
                log.warning("cannot send rc to the Tello: %s", exc.strerror)

    # -- the monitor thread: replies, state, rc expiry, djitellopy's health -----------------------------------------
    def _run_monitor(self) -> None:
        checks = 0
        while not self._stop.wait(self.config.poll_period_s):
            try:
                now = self.clock.now()
                self._poll_state(now)
                self._poll_replies(now)
                self._check_rc_expiry(now)
                checks += 1
                if checks % 20 == 0:
                    self._check_state_receiver()
            except Exception:  # noqa: BLE001 - the monitor must outlive any surprise; it is logged
                log.exception("tello monitor: unexpected error")

    def _poll_state(self, now: float) -> None:
        state = self._udp.get("state")
        if state is self._state_obj or not state:
            return  # djitellopy replaces the dict on every packet, so identity tells a new packet
        self._state_obj = state
        with self._lock:
            previous = self._telemetry
            dt = min(0.5, now - previous.last_state_s) if previous else 0.0
            yaw_abs = yaw_rep103_deg(state)
            if self._yaw0 is None and yaw_abs is not None:
                self._yaw0 = yaw_abs
            yaw = previous.yaw_deg if previous else 0.0
            if yaw_abs is not None:
                yaw = _wrap(yaw_abs - (self._yaw0 or 0.0))
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

    def _poll_replies(self, now: float) -> None:
        responses = self._udp.get("responses")
        while responses:
            reply = parse_reply(responses.pop(0))
            with self._lock:
                if reply.kind == "forced_stop" and self._abandoned > 0:
                    self._abandoned -= 1
                    continue
                pending = self._pending
                if pending is None:
                    log.debug("tello: reply %r with no command waiting (late or duplicate)", reply.text)
                    continue
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

    def _check_state_receiver(self) -> None:
        thread = self._state_thread
        if thread is not None and not thread.is_alive() and not self._stop.is_set():
            self._event("state_receiver_restarted",
                        "djitellopy's state thread died (an undecodable datagram on UDP 8890); restarted it")
            self._state_thread, self._state_socket = link.restart_state_receiver(self._state_socket)

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
        if self._closed or self._tello is None:
            raise VehicleError("the Tello connection is closed")

    def _shutdown(self) -> None:
        self._closed = True
        self._stop.set()
        if self._monitor.is_alive():
            self._monitor.join(timeout=1.0)
        if self.camera is not None:
            self.camera.close()
        if self._tello is not None:
            # djitellopy's __del__ lands a drone it thinks is flying and stops a stream it thinks is on; we did both.
            self._tello.is_flying = False
            self._tello.stream_on = False
        link.shutdown()


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


def _wrap(angle: float) -> float:
    wrapped = math.fmod(angle + 180.0, 360.0)
    if wrapped <= 0:
        wrapped += 360.0
    return wrapped - 180.0


def make_tello(clock: Clock | None = None, host: str = DEFAULT_HOST, video: bool = True, **_: object) -> TelloVehicle:
    """Registry factory ("tello"): connect and return a ready vehicle, or raise a clear LinkLost / VehicleError."""
    return TelloVehicle(TelloConfig(host=host, video=video), clock).connect()
