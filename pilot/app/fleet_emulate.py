"""``edgepilot fleet emulate --tellos N --cars M``: a whole fleet on one machine, each vehicle its own edgepilot
process on the bus, wired as a real one is.

Every real Tello is 192.168.10.1 on its own Wi-Fi, flown by its own companion computer. Here, for Tello i, a network
namespace ``ep-fleet-d<i>`` holds the emulator at 192.168.10.1 and a namespace ``ep-fleet-c<i>`` is its companion
(192.168.10.2 towards the drone, 10.213.<i>.2 towards the ground), where ``edgepilot fly --vehicle tello --bus zenoh``
runs; the host is 10.213.<i>.1 on that second link. The M cars are ``edgepilot drive --vehicle sim`` processes on
the host. This process is the site's zenoh router: it listens on 127.0.0.1 and on each companion link, and every
vehicle connects to it (no multicast), so ``edgepilot ground --bus-connect tcp/127.0.0.1:PORT`` sees them all.

Creating the namespaces needs root. Ctrl-C (SIGTERM, SIGHUP) lands every drone, stops the processes and removes the
namespaces; leftovers of a killed run are removed at the next start.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edgepilot.pilot.core.errors import InputError, VehicleError

log = logging.getLogger(__name__)

MAX_TELLOS = 16
MAX_CARS = 32
DEFAULT_PORT = 7447
#: The companions' link to the ground: 10.213.<i>.0/24, the host at .1.
GROUND_NET = "10.213"
PREFIX = "ep-fleet"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tellos", type=int, default=1, help=f"Tello emulators, each with its own companion "
                        f"process (0-{MAX_TELLOS}, default 1)")
    parser.add_argument("--cars", type=int, default=0, help=f"simulated cars (0-{MAX_CARS}, default 0)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the router's TCP port (default "
                        f"{DEFAULT_PORT})")
    parser.add_argument("--fps", type=int, default=5, help="the emulators' video frames per second (default 5: "
                        "a test pattern; each companion decodes its drone's H.264)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: Ctrl-C)")


@dataclass(frozen=True)
class TelloSite:
    """Tello ``index``'s two namespaces and links."""

    index: int

    @property
    def drone_ns(self) -> str:
        return f"{PREFIX}-d{self.index}"

    @property
    def companion_ns(self) -> str:
        return f"{PREFIX}-c{self.index}"

    @property
    def host_ip(self) -> str:
        return f"{GROUND_NET}.{self.index}.1"

    @property
    def companion_ip(self) -> str:
        return f"{GROUND_NET}.{self.index}.2"

    def setup(self) -> list[str]:
        """The ``ip`` commands building it."""
        i, d, c = self.index, self.drone_ns, self.companion_ns
        return [
            f"netns add {d}", f"netns add {c}",
            f"link add epfd{i}a netns {c} type veth peer name epfd{i}b netns {d}",
            f"-n {c} addr add 192.168.10.2/24 dev epfd{i}a", f"-n {d} addr add 192.168.10.1/24 dev epfd{i}b",
            f"link add epfg{i}h type veth peer name epfg{i}c netns {c}",
            f"addr add {self.host_ip}/24 dev epfg{i}h", f"-n {c} addr add {self.companion_ip}/24 dev epfg{i}c",
            f"link set epfg{i}h up", f"-n {c} link set epfg{i}c up", f"-n {c} link set epfd{i}a up",
            f"-n {d} link set epfd{i}b up", f"-n {c} link set lo up", f"-n {d} link set lo up",
        ]

    def teardown(self) -> list[str]:
        return [f"netns del {self.drone_ns}", f"netns del {self.companion_ns}", f"link del epfg{self.index}h"]


def _ip_all(lines: list[str], check: bool) -> None:
    for line in lines:
        result = subprocess.run(["ip", *line.split()], capture_output=True, text=True, timeout=10)
        if check and result.returncode != 0:
            raise VehicleError(f"could not build the fleet's network namespaces: 'ip {line}': "
                               f"{result.stderr.strip()}")


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.tellos <= MAX_TELLOS:
        raise InputError(f"--tellos must be 0-{MAX_TELLOS}, got {args.tellos}")
    if not 0 <= args.cars <= MAX_CARS:
        raise InputError(f"--cars must be 0-{MAX_CARS}, got {args.cars}")
    if args.tellos + args.cars == 0:
        raise InputError("nothing to emulate: give --tellos N and/or --cars M")
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be 1-65535, got {args.port}")
    if not 1 <= args.fps <= 30:
        raise InputError(f"--fps must be 1-30, got {args.fps}")
    if not (math.isfinite(args.duration) and args.duration >= 0):
        raise InputError(f"--duration must be 0 or more, got {args.duration:g}")
    if args.tellos:
        from edgepilot.sim import tello_netns

        if reason := tello_netns.unavailable_reason():
            raise InputError(f"Tello emulators need network namespaces, but {reason}; or emulate --cars only")


def _router_config(args: argparse.Namespace, sites: list[TelloSite]):
    import zenoh

    config = zenoh.Config()
    config.insert_json5("mode", '"router"')
    config.insert_json5("scouting/multicast/enabled", "false")
    endpoints = [f"tcp/127.0.0.1:{args.port}"] + [f"tcp/{s.host_ip}:{args.port}" for s in sites]
    config.insert_json5("listen/endpoints", json.dumps(endpoints))
    return config


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "edgepilot.pilot.app.cli", *argv]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    _check(args)
    try:
        import zenoh
    except ImportError:
        raise InputError("the fleet needs Eclipse Zenoh: pip install 'edgepilot[fleet]'") from None
    sites = [TelloSite(i) for i in range(args.tellos)]
    emulators: list[subprocess.Popen] = []
    vehicles: list[tuple[str, subprocess.Popen]] = []
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)} \
        if threading.current_thread() is threading.main_thread() else {}
    router = None
    max_duration = str(args.duration + 30 if args.duration else 86400)
    try:
        if sites:
            _ip_all([line for s in sites for line in s.teardown()], check=False)  # leftovers of a killed run
            _ip_all([line for s in sites for line in s.setup()], check=True)
        try:
            router = zenoh.open(_router_config(args, sites))
        except zenoh.ZError as exc:
            raise InputError(f"the fleet's router cannot listen on port {args.port}: {exc}") from None
        logs = Path(tempfile.mkdtemp(prefix="edgepilot-fleet-"))

        def quiet(name: str) -> dict:
            return {"stdout": subprocess.DEVNULL, "stderr": open(logs / f"{name}.log", "w")}  # noqa: SIM115

        for site in sites:
            emulators.append(subprocess.Popen(["ip", "netns", "exec", site.drone_ns, *_cli(
                "emulate-tello", "--bind", "192.168.10.1", "--port", "8889", "--test-pattern",
                "--fps", str(args.fps))], **quiet(f"emulator{site.index + 1}")))
        time.sleep(1.0 if sites else 0.0)  # the emulators bind before the companions say "command"
        for site in sites:
            name = f"tello{site.index + 1}"
            vehicles.append((name, subprocess.Popen(["ip", "netns", "exec", site.companion_ns, *_cli(
                "fly", "--vehicle", "tello", "--bus", "zenoh", "--name", name, "--max-duration", max_duration,
                "--bus-connect", f"tcp/{site.host_ip}:{args.port}")], **quiet(name))))
        for j in range(args.cars):
            name = f"car{j + 1}"
            vehicles.append((name, subprocess.Popen(_cli(
                "drive", "--vehicle", "sim", "--bus", "zenoh", "--name", name, "--max-duration", max_duration,
                "--seed", str(j), "--bus-connect", f"tcp/127.0.0.1:{args.port}"), **quiet(name))))
        names = ", ".join(name for name, _ in vehicles)
        print(f"fleet: {names} on the bus (router tcp/127.0.0.1:{args.port}). Watch and command it with:\n"
              f"  edgepilot ground --bus-connect tcp/127.0.0.1:{args.port}\nCtrl-C lands and stops them all. "
              f"Their logs: {logs}",
              flush=True)
        started = time.monotonic()
        while not args.duration or time.monotonic() - started < args.duration:
            for name, proc in vehicles:
                if proc.poll() is not None:
                    raise VehicleError(f"{name} exited with status {proc.returncode}: "
                                       f"{_last_line((logs / f'{name}.log').read_text())}")
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(vehicles, emulators)
        if router is not None:
            router.close()
        if sites:
            _ip_all([line for s in sites for line in s.teardown()], check=False)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on stderr)"


def _stop(vehicles: list[tuple[str, subprocess.Popen]], emulators: list[subprocess.Popen]) -> None:
    """Vehicles first (SIGTERM: each lands / stops and exits, as for Ctrl-C), then the emulators. Not SIGINT: a
    process started in the background by a shell ignores it."""
    for _, proc in vehicles:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for name, proc in vehicles:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time: killing it", name)
            proc.kill()
            proc.wait()
    for proc in emulators:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
