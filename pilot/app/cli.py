"""The ``edgepilot`` command. Each verb lives in its own module, imported only when that verb runs, so
``edgepilot --help`` is instant and a laptop never imports Pi-only code.

A verb module offers ``add_arguments(parser)`` and ``run(args) -> int``. Errors from the edgepilot tree become one
clear line on stderr and exit status 2 (input / rejected) or 1 (vehicle, model); never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edgepilot.pilot.core import __version__
from edgepilot.pilot.core.errors import CommandRejected, EdgepilotError, InputError

#: verb -> (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("edgepilot.pilot.app.demo_cmd", "run a scripted scenario in the simulator (no hardware, no downloads)"),
    "fly": ("edgepilot.pilot.app.run_cmd", "fly a drone (sim or tello) from a script, voice or keyboard"),
    "drive": ("edgepilot.pilot.app.run_cmd", "drive a car (sim or picar) from a script, voice or keyboard"),
    "listen": ("edgepilot.pilot.app.listen_cmd", "recognise spoken commands from the microphone or WAV files"),
    "enroll": ("edgepilot.pilot.app.enroll_cmd", "add a person's face to the face database"),
    "faces": ("edgepilot.pilot.app.faces_cmd", "review, label, list and remove the faces the pilot knows"),
    "replay": ("edgepilot.pilot.app.replay_cmd", "run perception offline on a video, image, folder or recording"),
    "models": ("edgepilot.pilot.app.models_cmd", "list and fetch optional models (Vosk English) for users with a network"),
    "emulate-tello": ("edgepilot.pilot.app.emulate_cmd", "run a Tello emulator for users without a drone"),
    "ground": ("edgepilot.pilot.app.ground_cmd", "fleet ground station: every vehicle on the bus, all land / stop"),
    "fleet": ("edgepilot.pilot.app.fleet_cmd", "a fleet: 'run SHOW.toml' plays a show, 'emulate' starts one here"),
    "doctor": ("edgepilot.pilot.app.doctor_cmd", "check the installation and hardware, with a fix for each problem"),
    "calibrate": ("edgepilot.pilot.app.calibrate_cmd", "measure the car camera's intrinsics from checkerboard photos"),
    "train": ("edgepilot.pilot.app.train_cmd", "train a learned driver (.tflite) from recorded car runs"),
    "runs": ("edgepilot.pilot.app.runs_cmd", "list, compare and trim recorded runs (run folders)"),
    "export": ("edgepilot.pilot.app.export_cmd", "export a run folder to MCAP (Foxglove), W&B (offline) or MLflow"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgepilot",
        description="Offline voice + vision autopilot for a Tello drone or a Raspberry Pi car.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="verbs:\n" + "\n".join(f"  {name:<14} {help_}" for name, (_, help_) in VERBS.items())
        + "\n\nRun 'edgepilot VERB --help' for a verb's options.",
    )
    parser.add_argument("--version", action="version", version=f"edgepilot {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("verb", choices=list(VERBS), metavar="VERB", help="one of: " + ", ".join(VERBS))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    # Split off global options and the verb; everything after the verb belongs to the verb's parser.
    verb_at = next((i for i, a in enumerate(argv) if a in VERBS), None)
    if verb_at is None:
        top.parse_args(argv)  # prints help / version / the "invalid choice" error and exits
        top.print_help()
        return 2
    top_args = top.parse_args(argv[: verb_at + 1])
    verb = argv[verb_at]
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(top_args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module_name, help_ = VERBS[verb]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            print(f"edgepilot: '{verb}' is not available in this version yet", file=sys.stderr)
            return 2
        print(f"edgepilot: '{verb}' needs the Python module {exc.name!r}, which is not installed "
              f"(pip install 'edgepilot[all]')", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog=f"edgepilot {verb}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(argv[verb_at + 1:])
    args.verb = verb
    try:
        return int(module.run(args) or 0)
    except (InputError, CommandRejected) as exc:
        print(f"edgepilot {verb}: {exc}", file=sys.stderr)
        return 2
    except EdgepilotError as exc:
        print(f"edgepilot {verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"edgepilot {verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
