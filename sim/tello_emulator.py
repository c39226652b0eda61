"""A Tello emulator: a UDP server that speaks Tello SDK 2.0 the way the drone does, over a simulated drone.

* Control on UDP 8889: replies ``ok`` / ``error ...`` / values go from the drone's address to the sender's port. A move
  or turn is answered when it has finished (like the drone); ``stop`` answers an interrupted move with
  ``forced stop``. ``rc a b c d`` gets no reply. Out-of-range arguments and low-battery takeoffs or flips are refused.
* State: after ``command``, one line per 0.1 s to the client's port 8890, in the drone's exact format.
* Video: after ``streamon``, a raw H.264 stream (960x720, PyAV/libx264) to the client's port 11111, in datagrams of at
  most 1460 bytes. The frame source is pluggable: any :class:`edgepilot.pilot.core.hal.Camera` made by ``camera_factory(drone,
  clock)`` (the simulator's renderer), else a generated test pattern with a time stamp.
* Physics: :class:`edgepilot.sim.vehicles.SimDrone` (takeoff, smooth moves, battery drain, auto-land after 15 s without a
  command) - the same flight model as ``--vehicle sim``.
* Faults, switchable at any time through :attr:`TelloEmulator.faults` (:class:`Faults`): drop state, drop replies,
  ignore commands (with all three: link loss), delay replies, freeze video; state that still says "on the ground"
  after takeoff's ``ok``; a seeded fraction of replies lost or duplicated; one command's reply held back (the replies
  behind it wait: a congested link keeps its order); an error reply for a chosen command; garbage state packets;
  corrupt H.264 datagrams; battery sag mid-flight. :meth:`TelloEmulator.set_battery` sets the charge. Every fault
  injected is written to :attr:`TelloEmulator.fault_log` with the emulator's clock, the same clock as
  :attr:`TelloEmulator.received`, so the time from a fault to the client's reaction can be measured.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.geometry import wrap_deg
from edgepilot.pilot.core.grammar import MOVE_RANGE_CM, SPEED_RANGE_CM_S, TURN_RANGE_DEG
from edgepilot.pilot.core.hal import Camera
from edgepilot.pilot.core.messages import MOVE_VERBS, Command, Velocity
from edgepilot.sim.vehicles import SimDrone

log = logging.getLogger(__name__)

CameraFactory = Callable[[SimDrone, Clock], Camera]

# The drone's side of the wire format, written here from the Tello SDK 2.0 document and not shared with the client
# (edgepilot.drone.tello_protocol): a mistake in either side's reading of the document then shows up in the tests
# instead of being agreed on by both.
#: The Tello splits its H.264 stream into datagrams of at most this many bytes.
VIDEO_DATAGRAM_BYTES = 1460
#: What full stick (rc +-100) does on the emulated drone. The SDK gives no unit: 100 cm/s and 100 deg/s.
FULL_STICK_CM_S = 100.0
FULL_STICK_DEG_S = 100.0
#: The state string's fields in the SDK's order, with the decimals the drone prints.
STATE_FORMAT = (("pitch", 0), ("roll", 0), ("yaw", 0), ("vgx", 0), ("vgy", 0), ("vgz", 0), ("templ", 0),
                ("temph", 0), ("tof", 0), ("h", 0), ("bat", 0), ("baro", 2), ("time", 0), ("agx", 2), ("agy", 2),
                ("agz", 2))


def state_datagram(values: dict[str, float]) -> bytes:
    """``pitch:0;roll:0;...;agz:-1000.00;\\r\\n`` as the drone sends it (missing values as 0)."""
    text = "".join(f"{key}:{float(values.get(key, 0)):.{decimals}f};" if decimals else
                   f"{key}:{round(values.get(key, 0))};" for key, decimals in STATE_FORMAT)
    return text.encode("ascii") + b"\r\n"


def stick_velocity(left_right: int, forward_back: int, up_down: int, yaw: int) -> Velocity:
    """What the drone does with ``rc a b c d`` (right, forward, up, clockwise positive), in REP-103 terms."""
    return Velocity(vx_cm_s=forward_back / 100.0 * FULL_STICK_CM_S, vy_cm_s=-left_right / 100.0 * FULL_STICK_CM_S,
                    vz_cm_s=up_down / 100.0 * FULL_STICK_CM_S, yaw_rate_deg_s=-yaw / 100.0 * FULL_STICK_DEG_S)


@dataclass
class Faults:
    """What goes wrong. Plain attributes: flip them from a test or the CLI while the emulator runs. Fractions are
    drawn from random generators seeded with :attr:`seed` (one per kind of fault, so one does not shift another)."""

    drop_state: bool = False
    drop_replies: bool = False
    drop_commands: bool = False  # the drone no longer hears us (commands are logged as dropped)
    reply_delay_s: float = 0.0
    freeze_video: bool = False
    #: From takeoff until this long after its ``ok``, the state still says "on the ground" (late, lossy Wi-Fi).
    takeoff_state_lag_s: float = 0.0
    #: This fraction of replies is lost.
    lose_replies: float = 0.0
    #: This fraction of replies is sent twice, the copy ``duplicate_after_s`` after the original.
    duplicate_replies: float = 0.0
    duplicate_after_s: float = 0.02
    #: The reply to the first command that starts with this text comes ``late_reply_s`` late; replies behind it wait.
    late_reply: str = ""
    late_reply_s: float = 0.0
    #: Commands that start with this text are refused with ``error_text``, ``error_count`` times (0: every time).
    error_reply: str = ""
    error_text: str = "error Motor stop"
    error_count: int = 1
    #: This fraction of state packets is replaced by garbage.
    garbage_state: float = 0.0
    #: This fraction of video datagrams gets some of its bytes overwritten.
    corrupt_video: float = 0.0
    #: This long after takeoff (0: never) the battery reading sags to ``battery_sag_to_pct``.
    battery_sag_after_s: float = 0.0
    battery_sag_to_pct: float = 9.0
    seed: int = 0

    def link_down(self) -> None:
        self.drop_state = self.drop_replies = self.drop_commands = True

    def link_up(self) -> None:
        self.drop_state = self.drop_replies = self.drop_commands = False


@dataclass(frozen=True)
class EmulatorConfig:
    state_port: int = 8890
    video_port: int = 11111
    state_hz: float = 10.0
    video_fps: int = 30
    width: int = 960
    height: int = 720
    battery_pct: float = 100.0
    auto_land_s: float = 15.0
    takeoff_min_battery_pct: float = 10.0
    flip_min_battery_pct: float = 50.0


@dataclass(frozen=True)
class Datagram:
    """One datagram the emulator received, with the drone's situation at that moment (for tests and benchmarks)."""

    t_s: float
    text: str
    flying: bool
    busy: bool
    dropped: bool


class _Drone(SimDrone):
    def touch(self) -> None:
        """Any command resets the 15 s auto-land timer, as on the real drone."""
        self._advance()
        self._last_command_s = self._t


_QUERIES = ("speed?", "battery?", "time?", "height?", "temp?", "attitude?", "baro?", "tof?", "wifi?", "sdk?", "sn?")


@dataclass
class _Pending:
    address: tuple[str, int]
    text: str
    started_s: float


class TelloEmulator:
    def __init__(self, control_socket: socket.socket, video_socket: socket.socket | None = None,
                 config: EmulatorConfig | None = None, camera_factory: CameraFactory | None = None,
                 clock: Clock | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or MonotonicClock()
        self.faults = Faults()
        self.received: deque[Datagram] = deque(maxlen=50_000)
        self.takeoff_s: float | None = None  # clock time of the last accepted takeoff
        #: (start, end, text) of every SDK command the drone executed (moves, turns, takeoff, land).
        self.command_spans: list[tuple[float, float, str]] = []
        #: (clock time, kind, detail) of every fault injected.
        self.fault_log: list[tuple[float, str, str]] = []
        #: Clock times at which the drone touched down (landed, auto-landed or fell).
        self.touchdowns: list[float] = []
        self._was_flying = False
        self._rngs: dict[str, random.Random] = {}
        self._errors_given = 0
        self._late_given = False
        self._last_due = -math.inf
        self._takeoff_answered_s: float | None = None
        self._ground_state: dict[str, float] | None = None  # what the lagging state keeps saying
        self._sagged = False
        self._sock = control_socket
        self._video_sock = video_socket
        self._drone = _Drone(self.clock, battery_pct=self.config.battery_pct)
        self._drone.auto_land_s = self.config.auto_land_s
        self._camera_factory = camera_factory
        self._lock = threading.RLock()
        self._client_ip: str | None = None
        self._pending: _Pending | None = None
        self._outbox: list[tuple[float, int, tuple[str, int], bytes]] = []
        self._seq = 0
        self._streaming = False
        self._motor_s = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.video_frames_sent = 0

    # -- life cycle -------------------------------------------------------------------------------------------------
    @classmethod
    def bind(cls, host: str = "0.0.0.0", port: int = 8889, **kwargs) -> TelloEmulator:
        control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        control.bind((host, port))
        video = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        return cls(control, video, **kwargs)

    @property
    def address(self) -> tuple[str, int]:
        return self._sock.getsockname()

    def start(self) -> TelloEmulator:
        self._sock.settimeout(0.1)
        for name, target in (("control", self._serve_control), ("physics", self._run_physics),
                             ("video", self._run_video)):
            thread = threading.Thread(target=target, name=f"tello-emulator-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("Tello emulator on %s:%d", *self.address)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()
        for sock in (self._sock, self._video_sock):
            if sock is not None:
                sock.close()

    def __enter__(self) -> TelloEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests look at -----------------------------------------------------------------------------------------
    def set_battery(self, pct: float) -> None:
        with self._lock:
            self._drone.battery = float(pct)

    def drone_state(self) -> dict[str, float | bool]:
        with self._lock:
            t = self._drone.telemetry()
            return {"x_cm": t.x_cm, "y_cm": t.y_cm, "z_cm": t.z_cm, "yaw_deg": t.yaw_deg, "flying": t.flying,
                    "battery_pct": t.battery_pct, "busy": self._drone.busy()}

    def longest_silence_s(self) -> float:
        """The longest time the flying drone heard nothing from the client, not counting time it spent executing an
        SDK command it had been given (during a move the command itself is the proof of life)."""
        times = [d.t_s for d in self.received if d.flying and not d.dropped]
        spans = list(self.command_spans)
        longest = 0.0
        for earlier, later in zip(times, times[1:], strict=False):
            busy = sum(max(0.0, min(later, end) - max(earlier, start)) for start, end, _ in spans)
            longest = max(longest, later - earlier - busy)
        return longest

    def commands(self) -> list[str]:
        """Every datagram received except rc sticks, in order."""
        return [d.text for d in self.received if not d.text.startswith("rc ")]

    def faults_of(self, kind: str) -> list[tuple[float, str]]:
        """(time, detail) of every injected fault of one kind."""
        with self._lock:
            return [(t, detail) for t, k, detail in self.fault_log if k == kind]

    def first_after(self, t_s: float, *texts: str) -> float | None:
        """When the first datagram that is one of ``texts`` arrived after ``t_s`` (None: none did)."""
        return next((d.t_s for d in list(self.received) if d.t_s > t_s and d.text in texts and not d.dropped), None)

    def _note_fault(self, kind: str, detail: str) -> None:
        with self._lock:
            self.fault_log.append((self.clock.now(), kind, detail))
        log.info("emulator fault %s: %s", kind, detail)

    def _rng(self, kind: str) -> random.Random:
        if kind not in self._rngs:
            self._rngs[kind] = random.Random(f"{self.faults.seed}:{kind}")
        return self._rngs[kind]

    def _chance(self, kind: str, fraction: float) -> bool:
        return fraction > 0 and self._rng(kind).random() < fraction

    # -- control ----------------------------------------------------------------------------------------------------
    def _serve_control(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                self._handle(data, address)
            except Exception:  # noqa: BLE001 - one bad datagram must never stop the drone answering
                log.exception("emulator: failed on %r", data[:60])

    def _handle(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace").strip()
        with self._lock:
            state = self._drone.telemetry()
            self.received.append(Datagram(self.clock.now(), text, state.flying, self._pending is not None,
                                          self.faults.drop_commands))
            if self.faults.drop_commands:
                return
            reply = self._dispatch(text, address)
        if reply is not None:
            self._reply(address, reply, text)

    def _dispatch(self, text: str, address: tuple[str, int]) -> str | None:
        words = text.split()
        if not words or "\ufffd" in text:
            return "error"
        verb, args = words[0].lower(), words[1:]
        if verb == "command":
            self._client_ip = address[0]
            return "ok"
        if self._client_ip is None:
            return None  # not in SDK mode yet: the drone ignores everything but "command"
        drone = self._drone
        drone.touch()
        if verb == "rc":
            self._rc(args)
            return None
        faults = self.faults
        if faults.error_reply and text.startswith(faults.error_reply) and (
                faults.error_count <= 0 or self._errors_given < faults.error_count):
            self._errors_given += 1
            self._note_fault("error_reply", f"{text!r} refused with {faults.error_text!r}")
            return faults.error_text
        if text.lower() in _QUERIES:
            return self._query(text.lower())
        if args and verb in ("takeoff", "land", "stop", "emergency", "streamon", "streamoff", "keepalive"):
            return f"unknown command: {text}"
        if verb == "emergency":
            self._pending = None
            drone.execute(Command("emergency"))
            return "ok"
        if verb == "stop":
            self._interrupt()
            drone.execute(Command("stop"))
            return "ok"
        if verb in ("streamon", "streamoff"):
            self._streaming = verb == "streamon"
            return "ok"
        if verb == "keepalive":
            return "ok"
        if verb == "speed":
            value = _int_arg(args)
            if value is None or not SPEED_RANGE_CM_S[0] <= value <= SPEED_RANGE_CM_S[1]:
                return "error Out of range"
            drone.execute(Command("speed", value))
            return "ok"
        if verb == "land":
            if not drone.flying:
                return "error Not flying"
            self._interrupt()
            drone.execute(Command("land"))
            return self._start(address, text)
        if verb == "takeoff":
            if drone.flying or self._pending is not None:
                return "error Already flying"
            if drone.battery < self.config.takeoff_min_battery_pct:
                return f"error Battery low ({drone.battery:.0f}%)"
            if self.faults.takeoff_state_lag_s > 0:
                self._ground_state = self._state_values(drone.telemetry())
            drone.execute(Command("takeoff"))
            self.takeoff_s = self.clock.now()
            self._takeoff_answered_s = None
            self._sagged = False
            return self._start(address, text)
        if verb in MOVE_VERBS or verb in ("cw", "ccw", "flip"):
            return self._motion(verb, args, address, text)
        return f"unknown command: {text}"

    def _motion(self, verb: str, args: list[str], address: tuple[str, int], text: str) -> str | None:
        drone = self._drone
        if verb == "flip":
            if len(args) != 1 or args[0] not in ("l", "r", "f", "b"):
                return "error Invalid flip direction"
            if drone.battery < self.config.flip_min_battery_pct:
                return f"error Battery low for flip ({drone.battery:.0f}%)"
            command = Command("flip", args[0])
        else:
            value = _int_arg(args)
            bounds = TURN_RANGE_DEG if verb in ("cw", "ccw") else MOVE_RANGE_CM
            if value is None or not bounds[0] <= value <= bounds[1]:
                return "error Out of range"
            command = Command(verb, value)
        if not drone.flying:
            return "error Motor stop"
        if self._pending is not None or drone.busy():
            return "error Not joystick: busy"
        drone.execute(command)
        return self._start(address, text)

    def _start(self, address: tuple[str, int], text: str) -> None:
        self._pending = _Pending(address, text, self.clock.now())
        return None  # answered when the motion has finished

    def _interrupt(self) -> None:
        if self._pending is not None:
            self.command_spans.append((self._pending.started_s, self.clock.now(), self._pending.text))
            self._reply(self._pending.address, "forced stop", self._pending.text)
            self._pending = None

    def _rc(self, args: list[str]) -> None:
        values = [_int_arg([a]) for a in args]
        if len(values) != 4 or any(v is None or not -100 <= v <= 100 for v in values):
            log.debug("emulator: ignored malformed rc %s", args)
            return
        if self._drone.flying:
            self._drone.send_velocity(stick_velocity(*values))

    def _query(self, query: str) -> str:
        t = self._drone.telemetry()
        answers = {
            "speed?": f"{self._drone.speed_cm_s:.1f}", "battery?": f"{round(t.battery_pct)}",
            "time?": f"{int(self._motor_s)}s", "height?": f"{int(round(t.z_cm / 10))}dm", "temp?": "60~62C",
            "attitude?": f"pitch:0;roll:0;yaw:{int(round(-t.yaw_deg))};", "baro?": f"{100 + t.z_cm / 100:.2f}",
            "tof?": f"{max(100, int(round(t.z_cm * 10)))}mm", "wifi?": "90", "sdk?": "20", "sn?": "0TQEMULATOR001",
        }
        return answers[query]

    def _reply(self, address: tuple[str, int], text: str, command: str = "") -> None:
        faults = self.faults
        if faults.drop_replies:
            log.debug("emulator: dropped reply %r", text)
            return
        with self._lock:
            if self._chance("lose", faults.lose_replies):
                self._note_fault("reply_lost", f"{text!r} to {command!r}")
                return
            now = self.clock.now()
            # One link, one order: a reply never overtakes the one before it.
            due = max(now + max(0.0, faults.reply_delay_s), self._last_due)
            if faults.late_reply and not self._late_given and command.startswith(faults.late_reply):
                self._late_given = True
                due += faults.late_reply_s
                self._note_fault("reply_late", f"{text!r} to {command!r} held back {faults.late_reply_s:g} s")
            self._last_due = due
            self._seq += 1
            heapq.heappush(self._outbox, (due, self._seq, address, text.encode()))
            if self._chance("duplicate", faults.duplicate_replies):
                self._note_fault("reply_duplicated", f"{text!r} to {command!r}")
                self._seq += 1
                heapq.heappush(self._outbox, (due + faults.duplicate_after_s, self._seq, address, text.encode()))

    # -- physics, replies and state ---------------------------------------------------------------------------------
    def _run_physics(self) -> None:
        period = 0.01
        next_state = self.clock.now()
        while not self._stop.is_set():
            now = self.clock.now()
            with self._lock:
                telemetry = self._drone.telemetry()
                for event in self._drone.poll_events():
                    log.info("emulated Tello: %s: %s", event.type, event.detail)
                if telemetry.flying:
                    self._motor_s += period
                elif self._was_flying:
                    self.touchdowns.append(now)
                self._was_flying = telemetry.flying
                if self._pending is not None and not self._drone.busy():
                    pending, self._pending = self._pending, None
                    self.command_spans.append((pending.started_s, now, pending.text))
                    if pending.text.startswith("takeoff"):
                        self._takeoff_answered_s = now
                        if self.faults.takeoff_state_lag_s > 0:
                            self._note_fault("state_lag", f"the state says on the ground until "
                                                          f"{self.faults.takeoff_state_lag_s:g} s after takeoff's ok")
                    self._reply(pending.address, "ok", pending.text)
                self._sag_battery(now)
                due = []
                while self._outbox and self._outbox[0][0] <= now:
                    due.append(heapq.heappop(self._outbox))
                client = self._client_ip
                state = self._state_values(telemetry) if client and now >= next_state else None
                if state is not None and self._state_lags(now):
                    state = dict(self._ground_state, time=state["time"], bat=state["bat"])
            for _, _, address, payload in due:
                self._send(self._sock, payload, address)
            if state is not None:
                next_state = max(next_state + 1.0 / self.config.state_hz, now)
                if not self.faults.drop_state:
                    self._send(self._sock, self._maybe_garbage(state_datagram(state)), (client, self.config.state_port))
            time.sleep(period)

    def _state_lags(self, now: float) -> bool:
        """Whether the state still says "on the ground" after a takeoff (lock held)."""
        if self._ground_state is None or self.takeoff_s is None or self.faults.takeoff_state_lag_s <= 0:
            return False
        answered = self._takeoff_answered_s
        return answered is None or now < answered + self.faults.takeoff_state_lag_s

    def _sag_battery(self, now: float) -> None:
        faults = self.faults
        if (faults.battery_sag_after_s > 0 and not self._sagged and self.takeoff_s is not None and self._drone.flying
                and now - self.takeoff_s >= faults.battery_sag_after_s):
            self._sagged = True
            before = self._drone.battery
            self._drone.battery = min(before, faults.battery_sag_to_pct)
            self._note_fault("battery_sag", f"battery {before:.0f}% -> {self._drone.battery:.0f}%")

    def _maybe_garbage(self, payload: bytes) -> bytes:
        if not self._chance("garbage", self.faults.garbage_state):
            return payload
        rng = self._rng("garbage-bytes")
        kind = rng.randrange(3)
        if kind == 0:
            garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        elif kind == 1:  # the right field names with nonsense in them
            garbage = b"".join(f"{name}:{rng.choice(['x', '', '-', 'nan', '1e999', '--3'])};".encode()
                               for name, _ in STATE_FORMAT) + b"\r\n"
        else:  # a line from something that is not a Tello
            garbage = b"HTTP/1.1 200 OK\r\n" + bytes(rng.randrange(32, 127) for _ in range(rng.randrange(40)))
        self._note_fault("state_garbage", f"{len(garbage)} bytes instead of a state line")
        return garbage

    def _maybe_corrupt(self, chunk: bytes) -> bytes:
        if not self._chance("corrupt", self.faults.corrupt_video):
            return chunk
        self._note_fault("video_corrupt", f"{len(chunk)}-byte video datagram corrupted")
        return _corrupt(chunk, self._rng("corrupt-bytes"))

    def _state_values(self, t) -> dict[str, float]:
        yaw = math.radians(t.yaw_deg)
        forward = math.cos(yaw) * t.vx_cm_s + math.sin(yaw) * t.vy_cm_s
        left = -math.sin(yaw) * t.vx_cm_s + math.cos(yaw) * t.vy_cm_s
        return {
            "pitch": 0, "roll": 0, "yaw": -round(wrap_deg(t.yaw_deg)),
            "vgx": round(forward / 10), "vgy": round(-left / 10), "vgz": round(-t.vz_cm_s / 10),
            "templ": 60, "temph": 62 + min(20, self._motor_s / 30), "tof": max(10, round(t.z_cm)),
            "h": round(t.z_cm), "bat": round(t.battery_pct), "baro": 100.0 + t.z_cm / 100.0, "time": int(self._motor_s),
            "agx": 0.0, "agy": 0.0, "agz": -1000.0,
        }

    @staticmethod
    def _send(sock: socket.socket, payload: bytes, address: tuple[str, int]) -> None:
        try:
            sock.sendto(payload, address)
        except OSError as exc:  # e.g. the client went away: the drone keeps flying regardless
            log.debug("emulator: send to %s failed: %s", address, exc)

    # -- video ------------------------------------------------------------------------------------------------------
    def _run_video(self) -> None:
        if self._video_sock is None:
            return
        encoder = camera = None
        period = 1.0 / self.config.video_fps
        next_frame = time.monotonic()
        try:
            while not self._stop.is_set():
                if not self._streaming or self._client_ip is None:
                    time.sleep(0.05)
                    next_frame = time.monotonic()
                    continue
                if encoder is None:
                    from edgepilot.sim.tello_video import H264Encoder, TestPatternCamera

                    encoder = H264Encoder(self.config.width, self.config.height, self.config.video_fps)
                    camera = (self._camera_factory(self._drone, self.clock) if self._camera_factory
                              else TestPatternCamera(self.clock, self.config.width, self.config.height))
                if not self.faults.freeze_video:
                    with self._lock:
                        frame = camera.read()
                    if frame is not None:
                        payload = encoder.encode(frame.image)
                        target = (self._client_ip, self.config.video_port)
                        for start in range(0, len(payload), VIDEO_DATAGRAM_BYTES):
                            chunk = self._maybe_corrupt(payload[start:start + VIDEO_DATAGRAM_BYTES])
                            self._send(self._video_sock, chunk, target)
                        self.video_frames_sent += 1
                next_frame += period
                delay = next_frame - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_frame = time.monotonic()  # fell behind: drop frames rather than burst
        finally:
            if camera is not None:
                camera.close()


def _corrupt(chunk: bytes, rng: random.Random) -> bytes:
    """Overwrite a run of bytes in a video datagram (past its first bytes, so that the NAL start codes mostly stay and
    the decoder sees broken slices rather than nothing)."""
    data = bytearray(chunk)
    if len(data) > 8:
        start = rng.randrange(4, len(data))
        for i in range(start, min(len(data), start + rng.randrange(8, 200))):
            data[i] = rng.randrange(256)
    return bytes(data)


def _int_arg(args: list[str]) -> int | None:
    if len(args) != 1:
        return None
    try:
        return int(args[0])
    except ValueError:
        return None
