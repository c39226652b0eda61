"""``edgepilot calibrate camera PHOTO...``: measure the car camera's intrinsics from checkerboard photos and store
them where ``drive --vehicle picar`` finds them (``[car].intrinsics`` or the default file)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepilot.pilot.core.errors import InputError


def _board(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--board takes COLSxROWS of inner corners, e.g. 9x6, not {text!r}") from None
    if cols < 2 or rows < 2:
        raise argparse.ArgumentTypeError(f"--board needs at least 2x2 inner corners, got {text!r}")
    return cols, rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("camera",), help="what to calibrate (camera)")
    parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="checkerboard photos taken with the "
                        "car's camera at its driving resolution")
    parser.add_argument("--board", type=_board, default=(9, 6), help="inner corners COLSxROWS (default 9x6: a board "
                        "of 10x7 squares)")
    parser.add_argument("--square-mm", type=float, default=25.0, help="side of one square (default 25 mm)")
    parser.add_argument("--out", type=Path, help="where to store the result (default $EDGEPILOT_CAMERA or "
                        "~/.local/share/edgepilot/camera.json)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    from edgepilot.robot_car.calibrate import calibrate
    from edgepilot.robot_car.mount import default_intrinsics_path, save_intrinsics

    if not args.square_mm > 0:
        raise InputError(f"--square-mm must be positive, got {args.square_mm:g}")
    missing = [str(p) for p in args.photos if not p.is_file()]
    if missing:
        raise InputError(f"no such photo: {', '.join(missing)}")
    intrinsics, report = calibrate(args.photos, args.board, args.square_mm)
    out = args.out or default_intrinsics_path()
    save_intrinsics(intrinsics, out, report)
    result = {**intrinsics.to_json(), "saved": str(out), "photos_used": len(report["photos_used"]),
              "photos_skipped": report["photos_skipped"]}
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        print(f"camera {intrinsics.width}x{intrinsics.height}: fx {intrinsics.fx_px:.1f} fy {intrinsics.fy_px:.1f} "
              f"cx {intrinsics.cx_px:.1f} cy {intrinsics.cy_px:.1f} px, reprojection error {intrinsics.rms_px:.2f} px "
              f"from {len(report['photos_used'])} photos ({len(report['photos_skipped'])} without the whole board)")
        print(f"saved to {out}")
    return 0
