"""Living with djitellopy's process-wide state (the library is used unmodified).

djitellopy keeps module-level sockets and threads: the first ``Tello()`` binds UDP 8889 (``client_socket``, a module
global) and starts two endless receiver threads, one of which binds UDP 8890 into a *local* variable. Nothing ever
closes them, and the state thread dies for good on the first datagram that is not ASCII. This module:

* checks the ports before djitellopy binds them, so "Address already in use" becomes one clear line;
* restarts the state receiver if it died;
* shuts everything down (wakes both blocked ``recvfrom`` calls with ``shutdown(2)``, joins the threads, closes the
  sockets, resets ``threads_initialized``), so a second ``Tello()`` in the same process binds afresh and nothing
  holds the ports after ``close()``.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
import time

from edgepilot.drone.tello_protocol import CONTROL_PORT, STATE_PORT
from edgepilot.pilot.core.errors import VehicleError

log = logging.getLogger(__name__)

RESPONSE_RECEIVER = "udp_response_receiver"
STATE_RECEIVER = "udp_state_receiver"


def quiet_djitellopy_logging() -> None:
    """djitellopy logs every datagram at INFO through its own handler; route it through ours, warnings only."""
    from djitellopy import Tello

    Tello.LOGGER.removeHandler(Tello.HANDLER)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        Tello.LOGGER.setLevel(logging.WARNING)


def sockets_open() -> bool:
    import djitellopy.tello as dt

    return bool(dt.threads_initialized)


def check_ports_free(ports: tuple[int, ...] = (CONTROL_PORT, STATE_PORT)) -> None:
    """Raise a clear :class:`VehicleError` if another program holds one of the Tello client ports."""
    for port in ports:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise VehicleError(
                    f"UDP port {port} is already in use by another program: another edgepilot, a Tello app or a "
                    f"Tello emulator on this machine's own network is still running; close it and retry") from None
            raise VehicleError(f"cannot use UDP port {port}: {exc.strerror}") from None
        finally:
            probe.close()


def receiver_threads() -> dict[str, threading.Thread]:
    """djitellopy's receiver threads, found by the name Python gives a thread after its target function."""
    found: dict[str, threading.Thread] = {}
    for thread in threading.enumerate():
        for name in (RESPONSE_RECEIVER, STATE_RECEIVER):
            if thread.name.endswith(f"({name})"):
                found[name] = thread
    return found


def restart_state_receiver(old_socket: socket.socket | None) -> tuple[threading.Thread, socket.socket | None]:
    """Start a new state receiver in place of a dead one. The dead one's socket may still be referenced (by a log
    record holding its exception's traceback), so close it first or the new one cannot bind 8890."""
    from djitellopy import Tello

    if old_socket is not None:
        old_socket.close()
    thread = threading.Thread(target=Tello.udp_state_receiver, name=f"restarted ({STATE_RECEIVER})", daemon=True)
    thread.start()
    return thread, wait_state_socket(thread)


def wait_state_socket(thread: threading.Thread | None, timeout_s: float = 0.5) -> socket.socket | None:
    """The state receiver's socket, once its thread has bound it."""
    deadline = time.monotonic() + timeout_s
    while thread is not None and thread.is_alive():
        sock = _state_socket(thread)
        if sock is not None or time.monotonic() > deadline:
            return sock
        time.sleep(0.005)
    return None


def _state_socket(thread: threading.Thread | None) -> socket.socket | None:
    """The state receiver's socket lives only in its frame's locals: fetch it from there."""
    if thread is None or thread.ident is None:
        return None
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == STATE_RECEIVER:
            sock = frame.f_locals.get("state_socket")
            return sock if isinstance(sock, socket.socket) else None
        frame = frame.f_back
    return None


def shutdown(join_timeout_s: float = 1.0) -> None:
    """Close djitellopy's sockets and stop its threads. Idempotent; safe if djitellopy was never used."""
    import djitellopy.tello as dt

    if not dt.threads_initialized:
        return
    threads = receiver_threads()
    sockets = [s for s in (getattr(dt, "client_socket", None), _state_socket(threads.get(STATE_RECEIVER)))
               if isinstance(s, socket.socket)]
    logger = dt.Tello.LOGGER
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # the receivers report their wake-up as an error: it is not one
    try:
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recvfrom (Linux answers ENOTCONN, still wakes)
            except OSError:
                pass
        for thread in threads.values():
            thread.join(timeout=join_timeout_s)
            if thread.is_alive():
                log.warning("djitellopy thread %s did not stop", thread.name)
        for sock in sockets:
            sock.close()
    finally:
        logger.setLevel(level)
    dt.threads_initialized = False
    if dt.drones is not None:
        dt.drones.clear()
