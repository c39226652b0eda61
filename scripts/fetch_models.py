#!/usr/bin/env python3
"""Download optional models for users with internet (edgepilot itself never downloads at run time).

    python scripts/fetch_models.py --list
    python scripts/fetch_models.py NAME [--dest models/extra] [--sha256 HEX]
    python scripts/fetch_models.py vosk-en      # the small English Vosk model -> ~/.local/share/edgepilot/models

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
    #: For zip downloads that are a whole model folder: the folder inside the archive, kept as a folder.
    folder: str | None = None
    #: Files the folder must hold (checked before it is installed).
    must_contain: tuple[str, ...] = ()
    #: Where the model goes when --dest is not given (the place edgepilot looks for it).
    default_dest: Path | None = None


def _edgepilot_models() -> Path:
    """~/.local/share/edgepilot/models (or under $XDG_DATA_HOME): where voice.engines looks for Vosk models."""
    from edgepilot.voice.engines import MODEL_HOME

    return MODEL_HOME


MODELS: dict[str, Entry] = {
    "ssd-mobilenet-v1-coco": Entry(
        "https://storage.googleapis.com/download.tensorflow.org/models/tflite/"
        "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip",
        "SSD MobileNet v1, COCO (90 ids, 80 classes), uint8 300x300, Apache-2.0 (TensorFlow Lite example model)",
        "edgepilot replay VIDEO --model models/extra/detect.tflite --labels models/extra/labelmap.txt "
        "--detect person,car",
        members={"detect.tflite": "detect.tflite", "labelmap.txt": "labelmap.txt"}),
    "vosk-en": Entry(
        "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
        "Vosk small US English model (~40 MB), Apache-2.0: the recommended voice engine; supports command grammars",
        "edgepilot listen (picked automatically once installed), or --engine vosk --model DIR",
        folder="vosk-model-small-en-us-0.15",
        must_contain=("am/final.mdl", "graph/HCLr.fst", "graph/Gr.fst", "conf/mfcc.conf"),
        default_dest=_edgepilot_models()),
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
    if entry.folder:
        written.append(_install_folder(entry, data, dest))
    elif entry.members:
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


def _install_folder(entry: Entry, data: bytes, dest: Path) -> Path:
    """Unpack a zipped model folder and move it into ``dest`` only when it holds what it must."""
    assert entry.folder is not None
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(tmp)
        unpacked = Path(tmp) / entry.folder
        missing = [f for f in entry.must_contain if not (unpacked / f).is_file()]
        if missing:
            raise SystemExit(f"fetch_models: the archive lacks {', '.join(missing)}; nothing installed")
        target = dest / entry.folder
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(unpacked), target)
    return target


def _write(path: Path, data: bytes) -> Path:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    shutil.move(tmp.name, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", choices=sorted(MODELS))
    parser.add_argument("--list", action="store_true", help="show the table")
    parser.add_argument("--dest", type=Path, default=None,
                        help="where to put it (default: models/extra, or where edgepilot looks for that model)")
    parser.add_argument("--sha256", default=None, help="refuse the download unless it has this sha256")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        for name, entry in MODELS.items():
            print(f"{name}\n  {entry.what}\n  from {entry.url}\n  use: {entry.use}")
        return 0
    dest = args.dest or MODELS[args.name].default_dest or Path(__file__).resolve().parents[1] / "models" / "extra"
    try:
        for path in fetch(args.name, dest, args.sha256):
            print(path)
    except OSError as exc:
        print(f"fetch_models: cannot download {args.name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
