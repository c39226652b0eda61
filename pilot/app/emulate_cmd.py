"""``edgepilot emulate-tello``: a Tello emulator for users without a drone (and for CI).

By default it creates a network namespace owning the Tello's address 192.168.10.1 (needs root), so that on the same
machine ``edgepilot fly --vehicle tello`` talks to it exactly as to a real Tello. With ``--bind`` it listens on a
normal address instead: run it on a second computer and fly with ``--host <that computer>``, or on this computer's
loopback (``--bind 127.0.0.1``: another port than 8889, which the client needs for itself). Either way it prints the
fly command that reaches it.

Ctrl-C, SIGTERM and SIGHUP stop it and remove the namespace; after a ``kill -9`` the next start removes what was left.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import signal
import socket
import sys
import threading
import time

from edgepilot.pilot.core.errors import InputError

FAULT_HELP = "seconds after takeoff (0 = off)"
SCRIPT = "takeoff; up 50; cw 90; forward 100; land"
#: The Tello's command port; a client binds it on every address of its machine.
TELLO_PORT = 8889
#: Where the emulator listens on a loopback address (8889 is the client's own on the same machine).
LOOPBACK_PORT = 9889


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", metavar="ADDR",
                        help="listen on this address (e.g. 0.0.0.0 on a second computer, 127.0.0.1 on this one) "
                             "instead of creating the 192.168.10.1 network namespace")
    parser.add_argument("--port", type=int, help=f"command port with --bind (default {TELLO_PORT}; {LOOPBACK_PORT} on "
                                                 f"a loopback address, where the client needs {TELLO_PORT})")
    parser.add_argument("--battery", type=float, default=100.0, help="starting battery %% (default 100)")
    parser.add_argument("--fps", type=int, default=30, help="video frames per second (default 30, like a Tello)")
    parser.add_argument("--auto-land", type=float, default=15.0,
                        help="land after this many seconds without a command (default 15, like a Tello)")
    parser.add_argument("--reply-delay", type=float, default=0.0, help="delay every reply by this many seconds")
    parser.add_argument("--link-loss-after", type=float, default=0.0, help=f"lose the link {FAULT_HELP}")
    parser.add_argument("--link-loss-for", type=float, default=5.0, help="how long the link stays lost (default 5)")
    parser.add_argument("--drop-state-after", type=float, default=0.0, help=f"stop sending state {FAULT_HELP}")
    parser.add_argument("--freeze-video-after", type=float, default=0.0, help=f"freeze the video {FAULT_HELP}")
    faults = parser.add_argument_group("faults (see the README's fault table)")
    faults.add_argument("--state-lag", type=float, default=0.0, metavar="S",
                        help="the state still says 'on the ground' until S seconds after takeoff's ok")
    faults.add_argument("--lose-replies", type=float, default=0.0, metavar="FRACTION",
                        help="lose this fraction of replies (0-1, seeded by --fault-seed)")
    faults.add_argument("--duplicate-replies", type=float, default=0.0, metavar="FRACTION",
                        help="send this fraction of replies twice")
    faults.add_argument("--late-reply", metavar="CMD:S",
                        help="hold back the reply to the first command starting with CMD by S seconds (the replies "
                             "behind it wait), e.g. 'forward:4'")
    faults.add_argument("--error-reply", metavar="CMD=TEXT",
                        help="refuse the first command starting with CMD with TEXT, e.g. 'cw=error No valid imu'")
    faults.add_argument("--garbage-state", type=float, default=0.0, metavar="FRACTION",
                        help="replace this fraction of state packets by garbage")
    faults.add_argument("--corrupt-video", type=float, default=0.0, metavar="FRACTION",
                        help="corrupt this fraction of H.264 datagrams")
    faults.add_argument("--battery-sag", metavar="PCT@S",
                        help="the battery reading sags to PCT %% S seconds after takeoff, e.g. '9@4'")
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of the fault fractions (default 0)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    parser.add_argument("--seed", type=int, default=0, help="the simulated world the drone's camera sees")
    parser.add_argument("--test-pattern", action="store_true",
                        help="send a test pattern instead of the simulated world's view (cheaper)")


def _world_camera(seed: int):
    """The drone's camera sees the simulator's world at the Tello's 960x720, people and all."""
    from edgepilot.sim.render import SimCamera
    from edgepilot.sim.world import World

    world = World.build(seed, "drone")
    return lambda drone, clock: SimCamera(world, drone, clock, width=960, height=720)


def _check(args: argparse.Namespace) -> None:
    checks = {"--battery": (args.battery, 0, 100), "--fps": (args.fps, 1, 60), "--auto-land": (args.auto_land, 1, 600),
              "--reply-delay": (args.reply_delay, 0, 30), "--link-loss-after": (args.link_loss_after, 0, 3600),
              "--link-loss-for": (args.link_loss_for, 0, 3600), "--drop-state-after": (args.drop_state_after, 0, 3600),
              "--freeze-video-after": (args.freeze_video_after, 0, 3600), "--duration": (args.duration, 0, 86400),
              "--state-lag": (args.state_lag, 0, 60), "--lose-replies": (args.lose_replies, 0, 1),
              "--duplicate-replies": (args.duplicate_replies, 0, 1), "--garbage-state": (args.garbage_state, 0, 1),
              "--corrupt-video": (args.corrupt_video, 0, 1)}
    if args.port is not None:
        checks["--port"] = (args.port, 1, 65535)
    for flag, (value, low, high) in checks.items():
        if not (math.isfinite(value) and low <= value <= high):
            raise InputError(f"{flag} must be {low}-{high}, got {value}")
    if args.port is not None and not args.bind:
        raise InputError("--port goes with --bind; in its network namespace the emulator is at 192.168.10.1:8889")


def faults_from_args(args: argparse.Namespace):
    """The :class:`edgepilot.sim.tello_emulator.Faults` the fault flags ask for (InputError for a malformed one)."""
    from edgepilot.sim.tello_emulator import Faults

    faults = Faults(reply_delay_s=args.reply_delay, takeoff_state_lag_s=args.state_lag,
                    lose_replies=args.lose_replies, duplicate_replies=args.duplicate_replies,
                    garbage_state=args.garbage_state, corrupt_video=args.corrupt_video, seed=args.fault_seed)
    if args.late_reply:
        command, sep, seconds = args.late_reply.rpartition(":")
        delay = _number(seconds, "--late-reply", "CMD:S, e.g. 'forward:4'") if sep else math.nan
        if not command.strip() or not 0 < delay <= 600:
            raise InputError(f"--late-reply takes CMD:S with S 0-600 s, e.g. 'forward:4', got {args.late_reply!r}")
        faults.late_reply, faults.late_reply_s = command.strip(), delay
    if args.error_reply:
        command, sep, text = args.error_reply.partition("=")
        if not sep or not command.strip() or not text.strip():
            raise InputError(f"--error-reply takes CMD=TEXT, e.g. 'cw=error No valid imu', got {args.error_reply!r}")
        faults.error_reply, faults.error_text = command.strip(), text.strip()
    if args.battery_sag:
        pct, sep, after = args.battery_sag.partition("@")
        to_pct = _number(pct, "--battery-sag", "PCT@S, e.g. '9@4'")
        after_s = _number(after, "--battery-sag", "PCT@S, e.g. '9@4'") if sep else math.nan
        if not (0 <= to_pct <= 100 and 0 < after_s <= 3600):
            raise InputError(f"--battery-sag takes PCT@S (0-100 %, 0-3600 s), e.g. '9@4', got {args.battery_sag!r}")
        faults.battery_sag_to_pct, faults.battery_sag_after_s = to_pct, after_s
    return faults


def _number(text: str, flag: str, form: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{flag} takes {form}, got {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{flag} takes {form}, got {text!r}")
    return value


def fly_command(host: str | None, port: int = TELLO_PORT) -> str:
    """The ``edgepilot fly`` command that reaches an emulator at ``host``:``port`` (None: the Tello's own address)."""
    where = "" if host is None else f" --host {host}"
    if port != TELLO_PORT:
        where += f" --port {port}"
    return f'edgepilot fly --vehicle tello{where} --script "{SCRIPT}"'


def _this_computer() -> str:
    """This computer's address on its network (for a fly command given on another computer)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks the outgoing address
        return probe.getsockname()[0]
    except OSError:
        return "<this computer's address>"
    finally:
        probe.close()


class _Stop(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop like Ctrl-C, so that the namespace is removed."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    _check(args)
    faults = faults_from_args(args)
    from edgepilot.sim import tello_netns

    net = tello_netns.TelloNetwork()
    state: dict = {"created": False, "emulator": None}
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        _serve(args, faults, net, state)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the normal way to stop
        pass
    finally:
        if state["emulator"] is not None:
            state["emulator"].stop()
        if state["created"]:
            tello_netns.delete(net)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    emulator = state["emulator"]
    if emulator is None:
        print("emulate-tello: stopped before it started", file=sys.stderr, flush=True)
        return 130
    sticks = sum(1 for d in emulator.received if d.text.startswith("rc "))
    print(f"emulator: {len(emulator.received)} datagrams received ({sticks} rc), {len(emulator.commands())} commands, "
          f"{emulator.video_frames_sent} video frames sent, longest silence while flying "
          f"{emulator.longest_silence_s():.2f} s, {len(emulator.fault_log)} faults injected", flush=True)
    return 0


def _serve(args: argparse.Namespace, faults, net, state: dict) -> None:
    """Bind, start, print how to fly it, and run until ``--duration`` (or a signal). ``state`` tells the caller what
    to clean up, whenever this is interrupted."""
    from edgepilot.sim import tello_netns
    from edgepilot.sim.tello_emulator import EmulatorConfig, TelloEmulator

    config = EmulatorConfig(battery_pct=args.battery, video_fps=args.fps, auto_land_s=args.auto_land)
    camera_factory = None if args.test_pattern else _world_camera(args.seed)
    if args.bind:
        loopback = _is_loopback(args.bind)
        port = args.port or (LOOPBACK_PORT if loopback else TELLO_PORT)
        try:
            emulator = TelloEmulator.bind(args.bind, port, config=config, camera_factory=camera_factory)
        except OSError as exc:
            raise InputError(f"cannot listen on {args.bind}:{port}: {exc.strerror}") from None
        where = f"{args.bind}:{port}"
        if loopback:
            how = f"Fly it from this computer with:\n  {fly_command(args.bind, port)}"
        else:
            host = args.bind if args.bind not in ("0.0.0.0", "") else _this_computer()
            how = (f"Fly it from another computer with:\n  {fly_command(host, port)}\n"
                   f"(on this computer the client needs UDP {TELLO_PORT} for itself: use --bind 127.0.0.1)")
    else:
        if reason := tello_netns.unavailable_reason():
            raise InputError(f"the emulator needs its own network namespace for 192.168.10.1, but {reason}. Or "
                             f"run it with --bind 127.0.0.1 (this computer) or --bind 0.0.0.0 (a second computer)")
        state["created"] = tello_netns.create(net)
        try:
            emulator = tello_netns.in_namespace(net, lambda: TelloEmulator.bind(
                net.drone_ip, TELLO_PORT, config=config, camera_factory=camera_factory))
        except OSError as exc:
            raise InputError(f"cannot listen on {net.drone_ip}:{TELLO_PORT} in namespace {net.name}: "
                             f"{exc.strerror} (is another emulator running?)") from None
        where = f"{net.drone_ip}:{TELLO_PORT} (network namespace {net.name}; this machine is {net.client_ip} there)"
        how = f"Fly it with:\n  {fly_command(None)}"
    state["emulator"] = emulator
    emulator.faults = faults
    emulator.start()
    print(f"Tello emulator listening on {where}. {how}\nCtrl-C stops it.", flush=True)
    started = time.monotonic()
    while not args.duration or time.monotonic() - started < args.duration:
        _apply_faults(emulator, args)
        time.sleep(0.05)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(address)).is_loopback
    except (OSError, ValueError):
        return False


def _apply_faults(emulator, args: argparse.Namespace) -> None:
    if emulator.takeoff_s is None:
        return
    airborne_s = emulator.clock.now() - emulator.takeoff_s
    faults = emulator.faults
    if args.link_loss_after:
        lost = args.link_loss_after <= airborne_s < args.link_loss_after + args.link_loss_for
        if lost and not faults.drop_commands:
            faults.link_down()
            print(f"emulator: link lost ({airborne_s:.1f} s after takeoff)", flush=True)
        elif not lost and faults.drop_commands and airborne_s >= args.link_loss_after + args.link_loss_for:
            faults.link_up()
            print("emulator: link back", flush=True)
    if args.drop_state_after and airborne_s >= args.drop_state_after and not faults.drop_state:
        faults.drop_state = True
        print("emulator: state stream stopped", flush=True)
    if args.freeze_video_after and airborne_s >= args.freeze_video_after and not faults.freeze_video:
        faults.freeze_video = True
        print("emulator: video frozen", flush=True)
