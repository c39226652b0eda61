"""``edgepilot emulate-tello``: a Tello emulator for users without a drone (and for CI).

By default it creates a network namespace owning the Tello's address 192.168.10.1 (needs root), so that on the same
machine ``edgepilot fly --vehicle tello`` talks to it exactly as to a real Tello. With ``--bind`` it listens on a
normal address instead: run it on a second computer and fly with ``--host <that computer>``.
"""

from __future__ import annotations

import argparse
import math
import time

from edgepilot.pilot.core.errors import InputError

FAULT_HELP = "seconds after takeoff (0 = off)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", metavar="ADDR",
                        help="listen on this address (e.g. 0.0.0.0 on a second computer) instead of creating the "
                             "192.168.10.1 network namespace")
    parser.add_argument("--battery", type=float, default=100.0, help="starting battery %% (default 100)")
    parser.add_argument("--fps", type=int, default=30, help="video frames per second (default 30, like a Tello)")
    parser.add_argument("--auto-land", type=float, default=15.0,
                        help="land after this many seconds without a command (default 15, like a Tello)")
    parser.add_argument("--reply-delay", type=float, default=0.0, help="delay every reply by this many seconds")
    parser.add_argument("--link-loss-after", type=float, default=0.0, help=f"lose the link {FAULT_HELP}")
    parser.add_argument("--link-loss-for", type=float, default=5.0, help="how long the link stays lost (default 5)")
    parser.add_argument("--drop-state-after", type=float, default=0.0, help=f"stop sending state {FAULT_HELP}")
    parser.add_argument("--freeze-video-after", type=float, default=0.0, help=f"freeze the video {FAULT_HELP}")
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
              "--freeze-video-after": (args.freeze_video_after, 0, 3600), "--duration": (args.duration, 0, 86400)}
    for flag, (value, low, high) in checks.items():
        if not (math.isfinite(value) and low <= value <= high):
            raise InputError(f"{flag} must be {low}-{high}, got {value}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from edgepilot.sim import tello_netns
    from edgepilot.sim.tello_emulator import EmulatorConfig, TelloEmulator

    config = EmulatorConfig(battery_pct=args.battery, video_fps=args.fps, auto_land_s=args.auto_land)
    camera_factory = None if args.test_pattern else _world_camera(args.seed)
    net = tello_netns.TelloNetwork()
    created = False
    if args.bind:
        try:
            emulator = TelloEmulator.bind(args.bind, 8889, config=config, camera_factory=camera_factory)
        except OSError as exc:
            raise InputError(f"cannot listen on {args.bind}:8889: {exc.strerror}") from None
        where = f"{args.bind}:8889"
    else:
        if reason := tello_netns.unavailable_reason():
            raise InputError(f"the emulator needs its own network namespace for 192.168.10.1, but {reason}. "
                             f"Or run it on a second computer with --bind 0.0.0.0 and fly with --host <its address>")
        created = tello_netns.create(net)
        try:
            emulator = tello_netns.in_namespace(net, lambda: TelloEmulator.bind(net.drone_ip, 8889, config=config,
                                                                                camera_factory=camera_factory))
        except OSError as exc:
            if created:
                tello_netns.delete(net)
            raise InputError(f"cannot listen on {net.drone_ip}:8889 in namespace {net.name}: {exc.strerror} "
                             f"(is another emulator running?)") from None
        where = f"{net.drone_ip}:8889 (network namespace {net.name}; this machine is {net.client_ip} there)"
    emulator.faults.reply_delay_s = args.reply_delay
    emulator.start()
    print(f"Tello emulator listening on {where}. Fly it with:\n"
          f"  edgepilot fly --vehicle tello --script \"takeoff; up 50; cw 90; forward 100; land\"\n"
          f"Ctrl-C stops it.", flush=True)
    started = time.monotonic()
    try:
        while not args.duration or time.monotonic() - started < args.duration:
            _apply_faults(emulator, args)
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        if created:
            tello_netns.delete(net)
    sticks = sum(1 for d in emulator.received if d.text.startswith("rc "))
    print(f"emulator: {len(emulator.received)} datagrams received ({sticks} rc), {len(emulator.commands())} commands, "
          f"{emulator.video_frames_sent} video frames sent, longest silence while flying "
          f"{emulator.longest_silence_s():.2f} s", flush=True)
    return 0


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
