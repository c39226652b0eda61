"""A Linux network namespace that owns the Tello's address, so the emulator and a real Tello client can run on one
machine.

A Tello client (ours, djitellopy) binds UDP 8889 and 8890 on every address of the machine, so an emulator on the same network stack cannot
also listen on 8889. Here the emulator's sockets live in their own namespace ``edgepilot-tello`` holding 192.168.10.1
(the Tello's address), joined to this machine by a veth pair whose host end is 192.168.10.2 - exactly the network a
laptop sees when it joins the Tello's Wi-Fi. Creating it needs root (``ip netns add``).

Sockets belong to the namespace they were created in, whichever thread uses them later, so
:func:`in_namespace` creates them from a short-lived thread that has entered the namespace with setns(2); the rest of
the process (the Tello client, the pilot) stays in the normal namespace.

An emulator that was killed (``kill -9``, a crash) leaves the namespace, the veth pair and the host's route to
192.168.10.0/24 behind. :func:`create` finds such leftovers - a namespace in which nobody listens on the Tello's
command port, or a host end without its namespace - and removes them before it builds afresh.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from edgepilot.pilot.core.errors import InputError, VehicleError

log = logging.getLogger(__name__)

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
#: The Tello's command port: an emulator in the namespace listens on it.
COMMAND_PORT = 8889


@dataclass(frozen=True)
class TelloNetwork:
    name: str = "edgepilot-tello"
    host_if: str = "ep-tello0"
    drone_if: str = "ep-tello1"
    drone_ip: str = "192.168.10.1"
    client_ip: str = "192.168.10.2"
    prefix: int = 24

    @property
    def path(self) -> str:
        return f"/var/run/netns/{self.name}"


def unavailable_reason() -> str | None:
    """Why a namespace cannot be made here, or None if it can."""
    if not os.path.isdir("/proc/self/ns") or os.uname().sysname != "Linux":
        return "network namespaces need Linux"
    if shutil.which("ip") is None:
        return "the 'ip' command is missing (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "creating a network namespace needs root (run as root, e.g. sudo)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and result.returncode != 0:
        raise VehicleError(f"'ip {' '.join(args)}' failed: {result.stderr.strip()}")
    return result


def _subnet_in_use(net: TelloNetwork) -> str | None:
    subnet = ipaddress.ip_network(f"{net.drone_ip}/{net.prefix}", strict=False)
    for line in _ip("-o", "-4", "addr", "show", check=False).stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] != net.host_if:
            address = ipaddress.ip_interface(fields[3])
            if address.ip in subnet:
                return f"{fields[1]} ({fields[3]})"
    return None


def exists(net: TelloNetwork = TelloNetwork()) -> bool:
    return os.path.exists(net.path)


def _host_link_exists(net: TelloNetwork) -> bool:
    return _ip("link", "show", net.host_if, check=False).returncode == 0


def in_use(net: TelloNetwork = TelloNetwork()) -> bool:
    """True when something (a running emulator) listens on the Tello's command port inside the namespace. A namespace
    that cannot be entered at all (a stale file) is not in use."""
    if not exists(net):
        return False

    def probe() -> bool:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((net.drone_ip, COMMAND_PORT))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
        finally:
            sock.close()
        return False

    try:
        return in_namespace(net, probe)
    except OSError:
        return False


def clean_leftovers(net: TelloNetwork = TelloNetwork()) -> bool:
    """Remove what an emulator that did not shut down left behind (the namespace, the veth pair, the host's route).
    Returns True if there was anything. Raises InputError if an emulator is still running in the namespace."""
    if in_use(net):
        raise InputError(f"another Tello emulator is running (it listens on {net.drone_ip}:{COMMAND_PORT} in network "
                         f"namespace {net.name}); stop it first")
    if not exists(net) and not _host_link_exists(net):
        return False
    log.warning("removing the network namespace %s left behind by an emulator that did not shut down", net.name)
    delete(net)
    return True


def create(net: TelloNetwork = TelloNetwork()) -> bool:
    """Make the namespace and the veth pair, after removing what a killed emulator left behind. Returns True (it was
    made here: :func:`delete` it when done). Raises InputError if an emulator is already running in it."""
    if reason := unavailable_reason():
        raise InputError(f"cannot create the emulator's network namespace: {reason}")
    clean_leftovers(net)
    if clash := _subnet_in_use(net):
        raise InputError(f"this machine already has an address in the Tello's subnet on {clash} (joined a real "
                         f"Tello's Wi-Fi?); leave that network first")
    try:
        _ip("netns", "add", net.name)
        _ip("link", "add", net.host_if, "type", "veth", "peer", "name", net.drone_if)
        _ip("link", "set", net.drone_if, "netns", net.name)
        _ip("addr", "add", f"{net.client_ip}/{net.prefix}", "dev", net.host_if)
        _ip("link", "set", net.host_if, "up")
        _ip("-n", net.name, "addr", "add", f"{net.drone_ip}/{net.prefix}", "dev", net.drone_if)
        _ip("-n", net.name, "link", "set", net.drone_if, "up")
        _ip("-n", net.name, "link", "set", "lo", "up")
    except VehicleError:
        delete(net)
        raise
    return True


def delete(net: TelloNetwork = TelloNetwork()) -> None:
    """Remove the namespace; its end of the veth pair goes with it, and with that the host end and its route.
    Idempotent."""
    _ip("netns", "del", net.name, check=False)
    _ip("link", "del", net.host_if, check=False)
    if os.path.exists(net.path):  # a file no mount is left on ("ip netns del" could not unmount it)
        try:
            os.remove(net.path)
        except OSError as exc:
            log.warning("could not remove %s: %s", net.path, exc)


def in_namespace(net: TelloNetwork, make: Callable[[], T]) -> T:
    """Call ``make`` (which typically creates and binds sockets) inside the namespace and return its result."""
    libc = ctypes.CDLL(None, use_errno=True)
    outcome: dict[str, object] = {}

    def enter_and_make() -> None:
        try:
            fd = os.open(net.path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns({net.path}): {os.strerror(errno)}")
            finally:
                os.close(fd)
            outcome["value"] = make()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc

    # A fresh thread: setns changes only the calling thread, and this one ends right after.
    thread = threading.Thread(target=enter_and_make, name="netns-enter", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
