#!/usr/bin/env python3
"""Download optional models for users with internet (edgepilot itself never downloads at run time).

    python scripts/fetch_models.py --list
    python scripts/fetch_models.py NAME [--dest models/extra] [--sha256 HEX]

Each entry says where the file comes from and how to use it. Files that embed a label map (TFLite metadata is a zip
appended to the model) get it extracted next to them. No checksum is pinned for these third-party files (they could
not be fetched when this table was written): the script prints the sha256 so you can pin it with ``--sha256``.
Add rows to ``MODELS`` for more models (other areas add theirs here too).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    url: str
    what: str
    use: str
    #: For zip downloads: member -> file name to keep.
    members: dict[str, str] | None = None


MODELS: dict[str, Entry] = {
    "ssd-mobilenet-v1-coco": Entry(
        "https://storage.googleapis.com/download.tensorflow.org/models/tflite/"
        "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip",
        "SSD MobileNet v1, COCO (90 ids, 80 classes), uint8 300x300, Apache-2.0 (TensorFlow Lite example model)",
        "edgepilot replay VIDEO --model models/extra/detect.tflite --labels models/extra/labelmap.txt "
        "--detect person,car",
        members={"detect.tflite": "detect.tflite", "labelmap.txt": "labelmap.txt"}),
    "efficientdet-lite0": Entry(
        "https://storage.googleapis.com/mediapipe-models/object_detector/efficientdet_lite0/float32/latest/"
        "efficientdet_lite0.tflite",
        "EfficientDet-Lite0, COCO, 320x320, Apache-2.0 (MediaPipe object detector model; labels embedded)",
        "edgepilot replay VIDEO --model models/extra/efficientdet_lite0.tflite "
        "--labels models/extra/efficientdet_lite0.labels.txt --detect objects"),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(name: str, dest: Path, expected_sha256: str | None = None) -> list[Path]:
    entry = MODELS[name]
    with urllib.request.urlopen(entry.url, timeout=60) as response:  # noqa: S310 (fixed https URLs)
        data = response.read()
    digest = sha256(data)
    if expected_sha256 and digest != expected_sha256.lower():
        raise SystemExit(f"fetch_models: {name}: sha256 {digest} does not match {expected_sha256}")
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if entry.members:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                target = entry.members.get(Path(member).name)
                if target:
                    written.append(_write(dest / target, archive.read(member)))
    else:
        model = _write(dest / Path(entry.url).name, data)
        written.append(model)
        try:  # metadata-carrying .tflite files are also zip archives holding the label map
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    if member.endswith(".txt"):
                        written.append(_write(model.with_suffix(".labels.txt"), archive.read(member)))
                        break
        except zipfile.BadZipFile:
            pass
    print(f"{name}: sha256 {digest}")
    return written


def _write(path: Path, data: bytes) -> Path:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    shutil.move(tmp.name, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", choices=sorted(MODELS))
    parser.add_argument("--list", action="store_true", help="show the table")
    parser.add_argument("--dest", type=Path, default=Path(__file__).resolve().parents[1] / "models" / "extra")
    parser.add_argument("--sha256", default=None, help="refuse the download unless it has this sha256")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        for name, entry in MODELS.items():
            print(f"{name}\n  {entry.what}\n  from {entry.url}\n  use: {entry.use}")
        return 0
    try:
        for path in fetch(args.name, args.dest, args.sha256):
            print(path)
    except OSError as exc:
        print(f"fetch_models: cannot download {args.name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
