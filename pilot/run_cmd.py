"""``edgepilot fly`` and ``edgepilot drive``: run a vehicle from a script (voice and keyboard join later)."""

from __future__ import annotations

import argparse
import json
import math

from pilot.clock import Clock, FakeClock, MonotonicClock
from pilot.errors import InputError, VehicleError
from pilot.grammar import parse_script
from pilot.hal import open_vehicle
from pilot.runner import CommandRecord, Pilot, RunResult
from pilot.safety import Supervisor

#: The verb decides the kind of vehicle; "sim" means the simulated one of that kind.
SIM_NAMES = {"fly": "sim-drone", "drive": "sim-car"}
HARDWARE = {"fly": ("tello",), "drive": ("picar",)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vehicle", default="sim", help="sim (default), or tello for fly / picar for drive")
    parser.add_argument("--script", required=True,
                        help="commands separated by ';', e.g. \"takeoff; up 50; cw 90; forward 100; land\"")
    parser.add_argument("--json", action="store_true", help="end stdout with one JSON object describing the run")
    parser.add_argument("--hz", type=float, default=30.0, help="control loop rate (default 30)")
    parser.add_argument("--fast", action="store_true",
                        help="simulator only: run faster than real time on a simulated clock")
    parser.add_argument("--host", default="192.168.10.1", help="tello only: the drone's address")
    parser.add_argument("--battery", type=float, default=100.0, help="simulator only: starting battery %%")
    parser.add_argument("--max-duration", type=float, default=600.0, help="end the run after this many seconds")


def _check_args(args: argparse.Namespace) -> None:
    if not (math.isfinite(args.hz) and 1 <= args.hz <= 200):
        raise InputError(f"--hz must be 1-200, got {args.hz:g}")
    if not (math.isfinite(args.battery) and 0 <= args.battery <= 100):
        raise InputError(f"--battery must be 0-100, got {args.battery:g}")
    if not (math.isfinite(args.max_duration) and args.max_duration > 0):
        raise InputError(f"--max-duration must be positive, got {args.max_duration:g}")
    allowed = ("sim", *HARDWARE[args.verb])
    if args.vehicle not in allowed:
        raise InputError(f"'{args.verb}' takes --vehicle {' or '.join(allowed)}, not {args.vehicle!r}")
    if args.fast and args.vehicle != "sim":
        raise InputError("--fast only works with the simulator: real vehicles run in real time")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    script = parse_script(args.script)  # before touching any vehicle: a bad script moves nothing
    simulated = args.vehicle == "sim"
    clock: Clock = FakeClock() if args.fast else MonotonicClock()
    registry_name = SIM_NAMES[args.verb] if simulated else args.vehicle
    options: dict = {"clock": clock}
    if simulated:
        options["battery_pct"] = args.battery
    else:
        options["host"] = args.host
    vehicle = open_vehicle(registry_name, **options)
    printer = None if args.json else _print_record
    pilot = Pilot(vehicle, name=args.vehicle if not simulated else registry_name, clock=clock, hz=args.hz,
                  supervisor=Supervisor(vehicle.kind), max_duration_s=args.max_duration, on_record=printer)
    result = pilot.run(script)
    _report(result, args.json)
    if result.failure:
        raise VehicleError(result.failure)
    return 0


def _print_record(record: CommandRecord) -> None:
    print(f"{record.t_s:7.2f} s  {record.command:<14} [{record.source}] {record.result}", flush=True)


def _report(result: RunResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict()), flush=True)
        return
    for event in result.events:
        print(f"{event.t_s:7.2f} s  event {event.type}: {event.detail}")
    final = result.final.final()
    loop = result.loop.summary() if result.loop else {}
    print(f"final: x={final['x_cm']} cm y={final['y_cm']} cm z={final['z_cm']} cm yaw={final['yaw_deg']} deg "
          f"{'flying' if final['flying'] else 'on the ground'}, battery {final['battery_pct']}%")
    if loop:
        print(f"loop: {loop['achieved_hz']} Hz of {loop['hz']:g}, {loop['overruns']} overruns, "
              f"p99 period {loop['p99_period_ms']} ms")
