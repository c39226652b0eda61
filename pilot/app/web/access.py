"""Who may use the cockpit: the address it binds, the run's token, and the Host / Origin checks.

Secure by default, like Jupyter: it binds 127.0.0.1 unless told otherwise, and every request and WebSocket needs the
run's random token (in the URL printed at start, then a cookie). The Host header must name this machine by address,
``localhost`` or its own host name (a DNS-rebinding page's host name is refused), and a browser's Origin on a
WebSocket or a POST must be the cockpit's own (another site's page cannot drive the vehicle).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass

from edgepilot.pilot.core.errors import InputError

#: A fixed token instead of a random one per run (``--web-token`` wins over it).
TOKEN_ENV = "EDGEPILOT_WEB_TOKEN"
COOKIE = "edgepilot_token"
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Bind:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def parse_bind(text: str) -> Bind:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT``; port 0 picks a free one."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(f"--web takes [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise InputError(f"--web port must be 0-65535, got {port}")
    return Bind(host, port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_token(given: str | None = None) -> str:
    """``given`` (``--web-token``), else $EDGEPILOT_WEB_TOKEN, else a new random token."""
    token = given if given is not None else os.environ.get(TOKEN_ENV)
    if token is None:
        return secrets.token_urlsafe(18)
    token = token.strip()
    if len(token) < 8 or not token.isprintable() or any(c in token for c in " ;&#?/\\\"'"):
        raise InputError("the web token must be at least 8 printable characters without spaces or ;&#?/\\\"'")
    return token


def token_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def host_allowed(host_header: str | None) -> bool:
    """The Host header names this machine: an IP address, ``localhost`` or this computer's own name."""
    if not host_header:
        return False
    name = host_header.strip().lower()
    if name.startswith("["):  # [v6]:port
        name = name[1:name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.split(":")[0]
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    own = socket.gethostname().lower()
    return name in ("localhost", own, f"{own}.local")


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """No Origin (a script, not a browser) or exactly this cockpit's own origin."""
    if origin is None:
        return True
    return host_header is not None and origin.lower() in (f"http://{host_header.lower()}",
                                                          f"https://{host_header.lower()}")


def lan_address() -> str | None:
    """This computer's address on its local network (no packet is sent), for the URL to open on a phone."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.254.254.254", 1))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if is_loopback(address) else address


def page_urls(bind: Bind, port: int, token: str) -> list[str]:
    """The URLs to print: the bound address, or for a wildcard bind this machine's LAN address and loopback."""
    hosts = [bind.host]
    if bind.host in ("0.0.0.0", "::", ""):
        hosts = [h for h in (lan_address(), "127.0.0.1") if h]
    return [f"http://{f'[{h}]' if ':' in h else h}:{port}/?token={token}" for h in hosts]
