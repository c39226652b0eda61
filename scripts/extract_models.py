#!/usr/bin/env python3
"""Re-extract the bundled detection models from the mediapipe 0.10.21 wheel on PyPI and verify their sha256.

The files in models/ were made this way; run this to check them or to restore them:
``python scripts/extract_models.py [--models DIR] [--check]``. ``--check`` only verifies what is there.
Source, licence and checksums are listed in models/MODELS.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_test_data import Asset, FetchError, install_assets, sha256_of  # noqa: E402

_MP = "mediapipe==0.10.21"
MODELS: tuple[Asset, ...] = (
    Asset("face_detection_short_range.tflite", _MP, "mediapipe/modules/face_detection/face_detection_short_range.tflite",
          "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    Asset("face_detection_full_range_sparse.tflite", _MP,
          "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
          "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
    Asset("pose_detection.tflite", _MP, "mediapipe/modules/pose_detection/pose_detection.tflite",
          "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[1] / "models")
    parser.add_argument("--check", action="store_true", help="only verify the files, download nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        bad = [m.name for m in MODELS if not (args.models / m.name).is_file()
               or sha256_of(args.models / m.name) != m.sha256]
        for name in bad:
            print(f"extract_models: {name} is missing or differs from models/MODELS.md", file=sys.stderr)
        if not bad:
            print(f"all {len(MODELS)} models verified in {args.models}")
        return 1 if bad else 0
    try:
        paths = install_assets(MODELS, args.models)
    except FetchError as exc:
        print(f"extract_models: {exc}", file=sys.stderr)
        return 1
    for path in paths.values():
        print(f"{path}  ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
