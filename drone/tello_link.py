"""The UDP link to a Tello: our own small transport under :class:`edgepilot.drone.tello.TelloVehicle`.

One socket bound to UDP 8889 sends commands and ``rc`` and receives the replies; one bound to 8890 receives state. A
single receiver thread waits on both with a selector (and a wake-up socket, so :meth:`TelloLink.close` never waits for
a datagram). Datagrams from any address but the drone's are ignored. Replies go to a bounded queue that the caller
drains; of the state, only the newest packet is kept, parsed (:func:`edgepilot.drone.tello_protocol.parse_state`,
which takes any bytes; a datagram that is not a whole, plausible state line is dropped and counted) and stamped with its arrival time on the caller's clock, with a sequence number so a new packet
is told from the same one read twice.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import threading
from collections import deque
from dataclasses import dataclass

from edgepilot.drone.tello_protocol import CONTROL_PORT, DEFAULT_HOST, STATE_PORT, is_state_line, parse_state
from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.errors import CommandRejected, VehicleError

log = logging.getLogger(__name__)

#: Larger than any datagram the Tello sends on 8889/8890 (a state line is about 150 bytes).
MAX_DATAGRAM = 2048


@dataclass(frozen=True)
class StatePacket:
    """The newest state line: its fields, when it arrived (``clock.now()``), and its number since the link opened."""

    state: dict[str, float]
    t_s: float
    seq: int


@dataclass(frozen=True)
class Received:
    """One reply datagram from the drone and when it arrived."""

    t_s: float
    data: bytes


def bind_udp(port: int, address: str = "") -> socket.socket:
    """A UDP socket bound to ``port``, or a :class:`VehicleError` that says who is in the way."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise VehicleError(
                f"UDP port {port} is already in use by another program: another edgepilot, a Tello app or a Tello "
                f"emulator on this machine's own network is still running; close it and retry") from None
        raise VehicleError(f"cannot use UDP port {port}: {exc.strerror}") from None
    return sock


def check_port_free(port: int) -> None:
    """Raise the same clear :class:`VehicleError` as :func:`bind_udp` if ``port`` is taken; bind nothing."""
    bind_udp(port).close()


# Why our own transport and not djitellopy's: constructing a ``djitellopy.Tello`` binds UDP 8889 into a module global
# and starts two receiver threads (one binds 8890 into a local variable) that no public method ever stops or closes;
# its only non-blocking send leaves the replies in an internal per-host list; its state slot has no arrival time; and
# its state thread dies for good on the first non-ASCII datagram. So non-blocking commands with replies matched later,
# a clean close that frees 8889/8890 (a second connection in one process) and a stamped state cannot come from its
# public API, and this module does them with two sockets and one thread.
class TelloLink:
    """Commands, ``rc``, replies and state over UDP. :meth:`open` binds, :meth:`close` frees both ports (idempotent)."""

    def __init__(self, host: str = DEFAULT_HOST, *, drone_port: int = CONTROL_PORT, control_port: int = CONTROL_PORT,
                 state_port: int = STATE_PORT, clock: Clock | None = None, max_replies: int = 64) -> None:
        self.host = host
        self.drone_port = drone_port
        self.control_port = control_port
        self.state_port = state_port
        self.clock = clock or MonotonicClock()
        #: Datagrams that came from another address than the drone's (dropped).
        self.foreign_datagrams = 0
        #: Datagrams on 8890 from the drone that are not a whole, plausible state line (dropped whole).
        self.unreadable_states = 0
        #: Replies pushed out of the full queue, oldest first.
        self.dropped_replies = 0
        self._target: tuple[str, int] | None = None
        self._replies: deque[Received] = deque(maxlen=max_replies)
        self._latest: StatePacket | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self._news = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self._control: socket.socket | None = None
        self._state: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def open(self) -> TelloLink:
        if self._closed or self._thread is not None:
            raise VehicleError("a TelloLink opens once; make a new one")
        try:
            ip = socket.gethostbyname(self.host)
        except OSError as exc:
            raise VehicleError(f"cannot resolve the Tello's address {self.host!r}: {exc}") from None
        self._target = (ip, self.drone_port)
        try:
            self._control = bind_udp(self.control_port)
            self._state = bind_udp(self.state_port)
            self._wake_r, self._wake_w = socket.socketpair()
            self._selector = selectors.DefaultSelector()
            for sock, kind in ((self._control, "reply"), (self._state, "state"), (self._wake_r, "wake")):
                sock.setblocking(False)
                self._selector.register(sock, selectors.EVENT_READ, kind)
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, name="tello-link", daemon=True)
        self._thread.start()
        return self

    def close(self, join_timeout_s: float = 1.0) -> None:
        """Stop the receiver and close every socket, so 8889 and 8890 can be bound again at once. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=join_timeout_s)
            if self._thread.is_alive():
                log.warning("the Tello link's receiver did not stop within %.1f s", join_timeout_s)
        if self._selector is not None:
            self._selector.close()
        for sock in (self._control, self._state, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._news.set()  # anyone in wait() returns

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def receiving(self) -> bool:
        """True while the receiver thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> TelloLink:
        return self if self._thread is not None else self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending (any thread; raises OSError when the network is gone) -----------------------------------------------
    def send(self, text: str) -> None:
        """One SDK command as one datagram; its reply, if any, shows up in :meth:`take_replies`."""
        if self._control is None or self._target is None or self._closed:
            raise VehicleError("the Tello link is closed")
        self._control.sendto(text.encode("utf-8"), self._target)

    def send_rc(self, left_right: int, forward_back: int, up_down: int, yaw: int) -> None:
        """``rc a b c d``, each a whole number in -100..100 (anything else is refused, never sent)."""
        sticks = (left_right, forward_back, up_down, yaw)
        if not all(isinstance(v, int) and not isinstance(v, bool) and -100 <= v <= 100 for v in sticks):
            raise CommandRejected(f"rc needs four whole numbers in -100..100, got {sticks!r}")
        self.send("rc {} {} {} {}".format(*sticks))

    # -- receiving --------------------------------------------------------------------------------------------------
    def take_replies(self) -> list[Received]:
        """Every reply received since the last call, oldest first."""
        with self._lock:
            replies = list(self._replies)
            self._replies.clear()
        return replies

    def latest_state(self) -> StatePacket | None:
        """The newest state packet (None before the first one)."""
        return self._latest

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a datagram from the drone; True if one arrived since the last call."""
        arrived = self._news.wait(timeout_s)
        self._news.clear()
        return arrived

    def _run(self) -> None:
        assert self._selector is not None
        while not self._closing.is_set():
            try:
                for key, _ in self._selector.select():
                    if key.data == "wake":
                        return
                    self._drain(key.fileobj, key.data)
            except Exception:  # noqa: BLE001 - the receiver must outlive any surprise; it is logged
                if self._closing.is_set():
                    return
                log.exception("tello link: unexpected error in the receiver")
                self._closing.wait(0.05)

    def _drain(self, sock: socket.socket, kind: str, batch: int = 64) -> None:
        for _ in range(batch):  # a flood on one socket must not starve the other, nor close()
            try:
                data, address = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error reported on the socket: nothing to read, carry on
                log.debug("tello link: %s socket: %s", kind, exc)
                return
            now = self.clock.now()
            if self._target is None or address[0] != self._target[0]:
                self.foreign_datagrams += 1
                continue
            if kind == "reply":
                with self._lock:
                    if len(self._replies) == self._replies.maxlen:
                        self.dropped_replies += 1
                        if self.dropped_replies == 1:
                            log.warning("tello link: reply queue full (nobody reading?); dropping the oldest")
                    self._replies.append(Received(now, data))
            else:
                state = parse_state(data)
                if not is_state_line(state):
                    self.unreadable_states += 1
                    continue
                with self._lock:
                    self._seq += 1
                    self._latest = StatePacket(state, now, self._seq)
            self._news.set()
