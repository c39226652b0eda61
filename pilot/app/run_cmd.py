"""``edgepilot fly`` and ``edgepilot drive``: run a vehicle from a script, the voice, the keyboard, or all three,
with perception on its own thread when anything needs to see (follow, photos).

Every exit brings the vehicle down safely (the runner's ``finally``): Ctrl-C, SIGTERM and SIGHUP end the run like an
aborted script, and once landing has begun further signals are reported and ignored, so that a second Ctrl-C cannot
leave a drone in the air. Exit status: 0 the run completed, 1 it did not (a refusal, a fault, a safety landing), 2 bad
input, 128 + the signal's number when a signal ended it (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from edgepilot.pilot.app import bus, car_run, talk
from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.app.terminal import StatusLine
from edgepilot.pilot.app.web import launch as web_launch
from edgepilot.pilot.core import config
from edgepilot.pilot.core.behaviours import FollowConfig
from edgepilot.pilot.core.clock import Clock, FakeClock, MonotonicClock
from edgepilot.pilot.core.errors import EdgepilotError, InputError, VehicleError
from edgepilot.pilot.core.grammar import NAME_PATTERN, parse_script
from edgepilot.pilot.core.hal import Camera, open_vehicle
from edgepilot.pilot.core.messages import Command
from edgepilot.pilot.core.perception import PerceptionWorker, perceive_once
from edgepilot.pilot.core.runner import CommandRecord, Pilot, RunResult, Terminated, check_follow_name
from edgepilot.pilot.core.safety import SafetyConfig, Supervisor
from edgepilot.voice.engines import ENGINES

log = logging.getLogger(__name__)

#: The verb decides the kind of vehicle; "sim" means the simulated one of that kind.
SIM_NAMES = {"fly": "sim-drone", "drive": "sim-car"}
HARDWARE = {"fly": ("tello",), "drive": ("picar",)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vehicle", default="sim", help="sim (default), or tello for fly / picar for drive")
    parser.add_argument("--script", default="",
                        help="commands separated by ';', e.g. \"takeoff; up 50; cw 90; forward 100; land\"")
    parser.add_argument("--voice", metavar="SOURCE", help="take spoken commands from 'mic', 'mic:DEVICE' or a WAV file")
    parser.add_argument("--engine", choices=ENGINES, help="speech engine (default: vosk if its English model is "
                        "installed, else whisper if installed, else pocketsphinx)")
    parser.add_argument("--lang", default="en", help="spoken language (en, ko)")
    parser.add_argument("--keys", action="store_true", help="keyboard teleop in this terminal (overrides autonomy)")
    parser.add_argument("--follow", metavar="NAME", help="after the script, follow NAME ('me' = the nearest face)")
    parser.add_argument("--faces", type=Path, help="face database folder (see 'edgepilot enroll')")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for photos (default out/)")
    parser.add_argument("--json", action="store_true", help="end stdout with one JSON object describing the run")
    parser.add_argument("--hz", type=float, default=30.0, help="control loop rate (default 30)")
    parser.add_argument("--fast", action="store_true",
                        help="simulator only: run faster than real time on a simulated clock")
    parser.add_argument("--host", default="192.168.10.1", help="tello only: the drone's address")
    parser.add_argument("--port", type=int, default=8889, help="tello only: the drone's command port (default 8889; "
                        "an emulator on this computer's loopback listens on another)")
    parser.add_argument("--battery", type=float, default=100.0, help="simulator only: starting battery %%")
    parser.add_argument("--seed", type=int, default=0, help="simulator only: world seed")
    parser.add_argument("--max-duration", type=float, default=600.0, help="end the run after this many seconds")
    parser.add_argument("--config", type=Path, help="TOML file with [safety] and [follow] settings "
                        "(default $EDGEPILOT_CONFIG)")
    parser.add_argument("--record", type=Path, metavar="DIR", help="record the run into the new folder DIR (camera "
                        "video, telemetry, commands, detections, events) for 'edgepilot replay DIR'")
    web_launch.add_arguments(parser)
    car_run.add_arguments(parser)
    parser.add_argument("--handover-timeout", type=float, metavar="S", help="when autonomy is lost (target lost, "
                        "battery low...) hover / stop and wait this long for a person's command, then land / stop "
                        "(default 30 with --voice or --keys; without them only when given)")
    talk.add_arguments(parser)
    bus.add_arguments(parser)


def _check_args(args: argparse.Namespace) -> None:
    if not (math.isfinite(args.hz) and 1 <= args.hz <= 200):
        raise InputError(f"--hz must be 1-200, got {args.hz:g}")
    if not (math.isfinite(args.battery) and 0 <= args.battery <= 100):
        raise InputError(f"--battery must be 0-100, got {args.battery:g}")
    if not (math.isfinite(args.max_duration) and args.max_duration > 0):
        raise InputError(f"--max-duration must be positive, got {args.max_duration:g}")
    if args.handover_timeout is not None and not (math.isfinite(args.handover_timeout) and args.handover_timeout > 0):
        raise InputError(f"--handover-timeout must be a positive number of seconds, got {args.handover_timeout:g}")
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be 1-65535, got {args.port}")
    if args.vehicle == SIM_NAMES[args.verb]:
        args.vehicle = "sim"  # the registry's name of the simulated vehicle of this kind
    allowed = ("sim", *HARDWARE[args.verb])
    if args.vehicle not in allowed:
        raise InputError(f"'{args.verb}' takes --vehicle {' or '.join(allowed)}, not {args.vehicle!r}")
    if args.fast and args.vehicle != "sim":
        raise InputError("--fast only works with the simulator: real vehicles run in real time")
    if args.fast and (args.voice or args.keys):
        raise InputError("--fast runs on a simulated clock; voice and keys need real time: drop --fast")
    if args.follow is not None and not (args.follow == "me" or NAME_PATTERN.fullmatch(args.follow)):
        raise InputError(f"--follow takes 'me' or an enrolled person's name, not {args.follow!r}")
    if args.fast and args.web:
        raise InputError("--fast runs on a simulated clock; the web cockpit needs real time: drop --fast")
    web_launch.check_arguments(args)
    car_run.check_args(args)
    bus.check_vehicle_args(args)
    if not (args.script.strip() or args.voice or args.keys or args.follow or args.web or args.autopilot or args.bus):
        raise InputError("nothing to do: give --script, --voice, --keys, --follow, --autopilot, --web or --bus")
    if args.keys:
        try:
            import termios  # noqa: F401 - POSIX only
        except ImportError:
            raise InputError("--keys needs a POSIX terminal (Linux, macOS, Raspberry Pi OS); on Windows run edgepilot "
                             "in WSL, or drive with --script / --voice") from None
    if args.keys and not sys.stdin.isatty():
        raise InputError("--keys needs an interactive terminal (stdin is not a TTY)")


def _plan(args: argparse.Namespace, kind: str, names: list[str]) -> list[Command]:
    script = parse_script(args.script) if args.script.strip() else []
    for command in script:
        if command.verb == "follow":
            check_follow_name(str(command.arg), names)  # before takeoff, not in the air
    if args.follow is not None:
        check_follow_name(args.follow, names)
        if kind == "drone" and not any(c.verb == "takeoff" for c in script):
            script.insert(0, Command("takeoff"))
        script.append(Command("follow", args.follow))
    car_run.plan_autopilot(args, script)
    return script


def _sim_camera(vehicle, clock: Clock, seed: int) -> Camera:
    from edgepilot.sim.render import SimCamera
    from edgepilot.sim.world import World

    return SimCamera(World.build(seed, vehicle.kind), vehicle, clock)


def _detector(args: argparse.Namespace, script: list[Command], faces_dir: Path | None, stack: ExitStack):
    """Perception runs when something must see: following (in the plan, or possibly said), or a face database.

    Live, faces are embedded in a process of their own (frames never wait ~100 ms for dlib); ``--fast`` runs step by
    step on a fake clock and waits for each embedding instead."""
    needs = args.voice or args.keys or args.web or args.faces or any(c.verb == "follow" for c in script)
    if not needs:
        return None
    from edgepilot.vision.naming import NamingConfig
    from edgepilot.vision.pipeline import Perception

    perception = stack.enter_context(Perception(detect=("face", "person"), faces_dir=faces_dir, person_every=2,
                                                naming=NamingConfig(background=not args.fast)))
    return perception.process


def _faces(args: argparse.Namespace) -> tuple[Path | None, list[str]]:
    """The face database (``--faces``, else the one ``edgepilot enroll`` writes to) and who is in it."""
    from edgepilot.vision.identity import FaceDatabase, faces_dir_to_use

    faces_dir = faces_dir_to_use(args.faces)
    return faces_dir, (FaceDatabase(faces_dir).names if faces_dir is not None else [])


class ExitSignals:
    """SIGINT, SIGTERM and SIGHUP end the run once (raised in the main thread, where the loop runs); while the vehicle
    is being brought down (``shielded()``) and after, they are reported and ignored. Installed only in the main
    thread (Python delivers signals there); the previous handlers come back on exit."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.received: str | None = None
        self.shielded = lambda: False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> ExitSignals:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name, None)
                if number is not None:
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    @property
    def exit_status(self) -> int | None:
        return None if self.received is None else 128 + int(getattr(signal, self.received))

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.received is None and not self.shielded():
            self.received = name
            raise KeyboardInterrupt() if name == "SIGINT" else Terminated(name)
        self.received = self.received or name
        print(f"edgepilot: {name}: still bringing the vehicle down safely; it exits when that is done",
              file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    with ExitSignals() as signals:
        try:
            return _run(args, signals)
        except KeyboardInterrupt:
            print(f"edgepilot {args.verb}: {signals.received or 'SIGINT'}: stopped before the run began",
                  file=sys.stderr, flush=True)
            return signals.exit_status or 130
        except (EdgepilotError, SystemExit):
            raise
        except Exception as exc:  # a bug: one line, the traceback with -v (the vehicle was closed on the way out)
            log.info("internal error", exc_info=True)
            raise VehicleError(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)") from None


def _run(args: argparse.Namespace, signals: ExitSignals) -> int:
    simulated = args.vehicle == "sim"
    kind = "drone" if args.verb == "fly" else "car"
    faces_dir, names = _faces(args)
    script = _plan(args, kind, names)  # before touching any vehicle: a bad script moves nothing
    settings = config.load(args.config)
    unknown = set(settings) - {"safety", "follow", "tello", "car"}
    if unknown:
        raise InputError(f"config: unknown table(s) {', '.join(sorted(unknown))}; known: [safety], [follow], [tello], "
                         "[car]")
    safety = config.section(settings, "safety", SafetyConfig)
    follow = config.section(settings, "follow", FollowConfig)
    clock: Clock = FakeClock() if args.fast else MonotonicClock()
    options: dict = {"clock": clock}
    if simulated:
        options["battery_pct"] = args.battery
    else:
        options["host"] = args.host
    if args.vehicle == "tello":
        options["port"] = args.port
        options["settings"] = _tello_settings(settings)
    with ExitStack() as stack:
        recorder = _recorder(args, stack)
        cockpit = web_launch.open_cockpit(args, stack, out_dir=args.out)  # before the vehicle: a port in use moves nothing
        speaker = talk.open_speaker(args)
        if speaker is not None:
            stack.callback(speaker.close)
        session = bus.open_session(bus.config_from_args(args)) if args.bus else None  # the same, for the bus
        if session is not None:
            stack.callback(session.close)
        listener = None
        if args.voice:  # load the speech model and open the source first: a missing model moves nothing
            from edgepilot.voice.listener import VoiceListener

            listener = VoiceListener(args.voice, engine=args.engine, lang=args.lang, process=True)
            stack.callback(listener.stop)
        detect = _detector(args, script, faces_dir, stack)
        autopilot = car_run.wants_autopilot(args, script)
        if detect is None and autopilot:
            detect = car_run.car_detector(simulated)
        pilot: Pilot | None = None
        signals.shielded = lambda: pilot is not None and pilot.closing
        setup = None
        if args.vehicle == "picar":
            vehicle, setup = car_run.open_picar(args, settings, clock, needs_camera=detect is not None)
        else:
            vehicle = open_vehicle(SIM_NAMES[args.verb] if simulated else args.vehicle, **options)
        stack.callback(vehicle.close)
        sees = detect is not None or any(c.verb == "photo" for c in script)
        camera = getattr(vehicle, "camera", None) or (_sim_camera(vehicle, clock, args.seed)
                                                      if simulated and sees else None)
        if camera is None and detect is not None:
            raise VehicleError(f"{args.vehicle} has no camera: following, the autopilot and photos need one")
        model = car_run.model_file(args)
        line = _status_line(args, cockpit, stack)
        say = line.print if line is not None else _print
        printer = None if args.json else (lambda record: say(_record_text(record)))
        pilot = Pilot(vehicle, name=SIM_NAMES[args.verb] if simulated else args.vehicle, clock=clock, hz=args.hz,
                      supervisor=Supervisor(vehicle.kind, safety), max_duration_s=args.max_duration,
                      on_record=printer, follow_config=follow,
                      perceive=(lambda now: perceive_once(camera, detect)) if args.fast and camera else None,
                      out_dir=args.out, can_see=detect is not None, names=names,
                      autopilots=car_run.autopilots(vehicle, camera, setup or car_run.car_setup(settings), model,
                                                    args.seed) if detect is not None else None)
        pilot.handover = _handover(args)
        if recorder is not None:  # before the perception worker and the keyboard take pilot.seen / pilot.submit
            recorder.attach(pilot, script=script, perception=detect)
            car_run.note_model(recorder, model)
        on_unsure = talk.attach(pilot, speaker, listener)
        alive = []
        if cockpit is not None:
            cockpit.attach(pilot)
            cockpit.status.set(recording=str(args.record) if args.record else None)
            alive.append(cockpit.stay_alive)
        if line is not None:
            if cockpit is None:
                line.status.attach(pilot)
            pilot.add_tap(line)
        if camera is not None and not args.fast:
            worker = PerceptionWorker(camera, _guarded(detect, pilot), pilot.seen.set).start()
            stack.callback(worker.stop)
        status = line.status if line is not None else cockpit.status if cockpit is not None else None
        if args.bus:  # after the recorder and the cockpit (one status for both); alone, it waits for bus commands
            exclusive = not (script or args.voice or args.keys or args.web)
            fleet = bus.join(args, pilot, exclusive=exclusive, status=status, session=session)
            stack.callback(fleet.close)
            status = fleet.status
            if exclusive:
                alive.append(lambda: True)
        if listener is not None:
            alive.append(lambda: listener.running)
            listener.start(*_voice_callbacks(pilot, status, None if args.json else say, on_unsure))
        if args.keys:
            alive.append(_start_keys(stack, pilot, line))
        result = pilot.run(script, stay_alive=lambda: any(check() for check in alive))
        if cockpit is not None:
            cockpit.status.end(result.failure or "completed", result.final)
    _report(result, args.json)
    if signals.received is not None:
        print(f"edgepilot {args.verb}: {signals.received}: {result.failure or 'interrupted'}; "
              f"{_ending(result, kind)}", file=sys.stderr, flush=True)
        return signals.exit_status or 130
    if result.failure:
        raise VehicleError(f"{result.failure}; {_ending(result, kind)}")
    return 0


def _ending(result: RunResult, kind: str) -> str:
    if kind == "car":
        return "the car is stopped"
    return "the drone may still be in the air" if result.final.flying else "the drone is on the ground"


def _tello_settings(settings: dict) -> dict:
    """The config file's ``[tello]`` table, checked against the backend's settings (host and port are flags)."""
    values = dict(settings.get("tello", {}))
    if not values:
        return {}
    from edgepilot.drone.tello import TelloConfig

    for key in ("host", "port", "video"):
        if key in values:
            raise InputError(f"[tello].{key} is not a config setting; use the --{key} flag")
    config.build(TelloConfig, values, "[tello]")  # names and types checked, one clear line on a mistake
    return values


def _guarded(detect, pilot: Pilot):
    """Perception that fails ends the run (landing): flying on without eyes while following would be blind."""
    if detect is None:
        return None

    def run_detect(frame):
        try:
            return detect(frame)
        except Exception as exc:
            pilot.abort(f"perception failed: {type(exc).__name__}: {exc}")
            raise

    return run_detect


def _recorder(args: argparse.Namespace, stack: ExitStack):
    if args.record is None:
        return None
    from edgepilot.pilot.record.recorder import Recorder

    recorder = Recorder(args.record, argv=sys.argv, config=vars(args), seeds={"world": args.seed})
    stack.callback(recorder.close)  # registered first: closes last, after perception and the vehicle have stopped
    return recorder


def _status_line(args: argparse.Namespace, cockpit, stack: ExitStack) -> StatusLine | None:
    """The in-place status line, on an interactive terminal and without --json."""
    if args.json or not sys.stderr.isatty():
        return None
    line = StatusLine(cockpit.status if cockpit is not None else RunStatus()).start()
    stack.callback(line.stop)
    return line


def _start_keys(stack: ExitStack, pilot: Pilot, line: StatusLine | None):
    import threading

    from edgepilot.pilot.app.keys import HELP, KeyboardTeleop, cbreak

    quit_event = threading.Event()
    fd = sys.stdin.fileno()
    stack.enter_context(cbreak(fd))

    def on_velocity(velocity) -> None:
        if line is not None:
            line.note_key(velocity)  # the move, echoed in the status line
        pilot.manual_velocity(velocity)

    teleop = KeyboardTeleop(fd, pilot.submit, on_velocity, quit_event.set).start()
    stack.callback(teleop.stop)
    print(HELP, file=sys.stderr)
    return lambda: not quit_event.is_set()


def _voice_callbacks(pilot: Pilot, status: RunStatus | None, say, on_unsure=None):
    """What the listener calls: commands go to the pilot; what was heard also to the run's status (the status line,
    the cockpit, the bus); what was not understood is said with ``say`` (None: not at all) and handed to ``on_unsure``
    (the spoken "say again")."""

    def on_command(command: Command, info: dict) -> None:
        if status is not None:
            status.note_heard(info.get("text", ""), command.text)
        pilot.submit(command)

    def on_drop(info: dict) -> None:
        if status is not None:
            status.note_heard(info.get("text", ""), None, info.get("reason", ""))
        if say is not None:
            say(f"          not understood: {info.get('text') or '(noise)'} ({info.get('reason', '')})")
        if on_unsure is not None:
            on_unsure(info)

    return on_command, on_drop


def _print(text: str) -> None:
    print(text, flush=True)




def _record_text(record: CommandRecord) -> str:
    return f"{record.t_s:7.2f} s  {record.command:<14} [{record.source}] {record.result}"


def _handover(args: argparse.Namespace):
    """Hand-over to a person when autonomy is lost: on with a person at hand (voice, keys, web, bus) or when asked."""
    from edgepilot.pilot.core.handover import HANDOVER_TIMEOUT_S, HandOver

    timeout = args.handover_timeout
    if timeout is None and not (args.voice or args.keys or args.web or args.bus):
        return None
    return HandOver(timeout if timeout is not None else HANDOVER_TIMEOUT_S)


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
