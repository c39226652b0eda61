"""``edgepilot demo``: a scripted scenario in the simulator, with no hardware and no downloads.

``--vehicle drone`` (default): spoken commands from bundled audio, fed through the real recogniser, make the drone
take off, follow a walking person (a real face photo on a billboard) and land. ``--vehicle car``: laps of the track
by lane following, stopping for people who step onto the road. Both write an annotated video of what the vehicle
saw to ``--out`` and, with ``--json``, end stdout with one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from edgepilot.pilot.app import bus, talk
from edgepilot.pilot.app.web import launch as web_launch
from edgepilot.pilot.core.errors import InputError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vehicle", choices=("drone", "car"), default="drone", help="which scenario (default drone)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the annotated video (default out/)")
    parser.add_argument("--no-video", action="store_true", help="do not write the annotated video (faster)")
    parser.add_argument("--seed", type=int, default=1, help="world seed (default 1)")
    parser.add_argument("--json", action="store_true", help="end stdout with one JSON object of the results")
    parser.add_argument("--record", type=Path, metavar="DIR", help="also record the run into the new folder DIR "
                        "for 'edgepilot replay DIR'")
    web_launch.add_arguments(parser)
    parser.add_argument("--autopilot", nargs="+", metavar=("MODE", "FILE"), help="car only: 'lane' (default) or "
                        "'model FILE.tflite' (a learned driver from 'edgepilot train') drives the lap")
    talk.add_arguments(parser)
    bus.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise InputError(f"--seed must be 0 or more, got {args.seed}")
    web_launch.check_arguments(args)
    model = _model(args)
    bus.check_vehicle_args(args)
    video = None if args.no_video else args.out / f"demo-{args.vehicle}.mp4"
    recorder = None
    if args.record is not None:
        from edgepilot.pilot.record.recorder import Recorder

        recorder = Recorder(args.record, argv=sys.argv, config=vars(args), seeds={"world": args.seed})
    started = time.monotonic()
    with ExitStack() as stack:
        speaker = talk.open_speaker(args)
        if speaker is not None:
            stack.callback(speaker.close)
        if recorder is not None:
            stack.callback(recorder.close)
        from edgepilot.pilot.app.demo import CAR_DEMO_S, DRONE_DEMO_S, car_demo, drone_demo
        from edgepilot.pilot.app.status import RunStatus
        from edgepilot.pilot.app.terminal import StatusLine

        cockpit = web_launch.open_cockpit(args, stack, out_dir=args.out)
        status = cockpit.status if cockpit is not None else RunStatus()
        line = None
        if not args.json and sys.stderr.isatty():  # progress in place: the demo takes a while
            line = StatusLine(status, total_s=CAR_DEMO_S if args.vehicle == "car" else DRONE_DEMO_S).start()
            stack.callback(line.stop)

        def watch(pilot) -> None:
            if cockpit is not None:
                cockpit.attach(pilot)
            else:
                status.attach(pilot)
            if line is not None:
                pilot.add_tap(line)
            if args.bus:  # the same status on the bus
                fleet = bus.join(args, pilot, exclusive=False, status=status)
                stack.callback(fleet.close)

        if args.vehicle == "car":
            summary = car_demo(args.seed, video, recorder, watch=watch, model=model, speaker=speaker)
        else:
            summary = drone_demo(args.seed, video, recorder=recorder, watch=watch, status=status, speaker=speaker)
        status.end("demo finished")
    wall_s = time.monotonic() - started
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        _print_summary(args.vehicle, summary, video, wall_s)
    return 0


def _model(args: argparse.Namespace) -> Path | None:
    autopilot = args.autopilot or ["lane"]
    if autopilot == ["lane"]:
        return None
    if autopilot[0] != "model" or len(autopilot) != 2 or args.vehicle != "car":
        raise InputError(f"--autopilot takes 'lane' or 'model FILE.tflite' with --vehicle car, not "
                         f"{' '.join(autopilot)!r}")
    model = Path(autopilot[1])
    if not model.is_file():
        raise InputError(f"--autopilot model: no such file {model}; train one with 'edgepilot train RUN_DIR --out "
                         "driver.tflite'")
    return model


def _print_summary(vehicle: str, summary: dict, video: Path | None, wall_s: float) -> None:
    final = summary["final"]
    if vehicle == "car":
        lane = summary["lane"]
        print(f"car demo: {summary['laps']:.2f} laps, lane offset max {lane['max_offset_cm']} cm / mean "
              f"{lane['mean_offset_cm']} cm (lane half-width {lane['half_width_cm']} cm), "
              f"{summary['stops_for_person']} stop(s) for a person, {summary['collisions']} collision(s)")
    else:
        tracking = summary["tracking"]
        said = ", ".join(f"{c['command']} ({c['source']}, {c['t_s']:.1f} s)" for c in summary["commands"])
        print(f"drone demo: {said}")
        print(f"tracking: target centred in {tracking['centered_fraction']:.0%} of following frames, mean error "
              f"{tracking['mean_error_px']} px")
    print(f"final: x={final['x_cm']} y={final['y_cm']} z={final['z_cm']} cm, yaw {final['yaw_deg']} deg, "
          f"{'flying' if final['flying'] else 'on the ground'}, battery {final['battery_pct']}%")
    if video is not None:
        print(f"annotated video: {video}")
    print(f"took {wall_s:.1f} s")
