"""``edgepilot models list|fetch``: optional models for users with a network (edgepilot never downloads at run time).

    edgepilot models list
    edgepilot models fetch vosk-en          # the small English Vosk model -> ~/.local/share/edgepilot/models

A download goes to ``<models home>/.downloads/NAME.part`` with a progress bar on stderr, its sha256 computed as it
arrives; it is checked against the pinned checksum (or ``--sha256``) before anything is unpacked, unpacked into a
temporary folder beside the destination, checked for the files the model needs, and only then moved into place. A
failed or interrupted download leaves the installed model (if any) as it was. ``--url`` fetches from a mirror or a
local copy (``file:///path/model.zip``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgepilot.pilot.core.errors import InputError, ModelError

CHUNK = 1 << 16


@dataclass(frozen=True)
class Entry:
    url: str
    what: str
    use: str
    #: sha256 of the download; None: not pinned (printed, so it can be pinned with --sha256).
    sha256: str | None = None
    size: int | None = None
    #: For zip downloads: member file name -> file name to keep.
    members: dict[str, str] | None = None
    #: For zip downloads that are a whole model folder: the folder inside the archive, kept as a folder.
    folder: str | None = None
    #: Files the folder must hold (checked before it is installed).
    must_contain: tuple[str, ...] = ()
    #: True: goes where edgepilot looks for it (the models home); else models/extra of the repository.
    home: bool = False


MODELS: dict[str, Entry] = {
    "vosk-en": Entry(
        "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
        "Vosk small US English model (41 MB), Apache-2.0: the recommended voice engine; supports command grammars",
        "edgepilot listen / fly --voice (picked automatically once installed), or --engine vosk --model DIR",
        # The archive as published (41,205,931 bytes); the same sha256 is pinned by several independent projects.
        sha256="30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498", size=41_205_931,
        folder="vosk-model-small-en-us-0.15",
        must_contain=("am/final.mdl", "graph/HCLr.fst", "graph/Gr.fst", "conf/mfcc.conf"), home=True),
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


def models_home() -> Path:
    """Where edgepilot looks for downloaded models (voice.engines.MODEL_HOME, under $XDG_DATA_HOME)."""
    from edgepilot.voice.engines import MODEL_HOME

    return MODEL_HOME


def default_dest(entry: Entry) -> Path:
    return models_home() if entry.home else Path(__file__).resolve().parents[2] / "models" / "extra"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the models that can be fetched, and which are installed")
    listing.add_argument("--json", action="store_true")
    fetch = sub.add_parser("fetch", help="download a model, check its sha256, install it where edgepilot looks")
    fetch.add_argument("name", help=", ".join(MODELS))
    fetch.add_argument("--dest", type=Path, default=None, help="install here instead")
    fetch.add_argument("--url", default=None, help="fetch from this URL instead (a mirror, or file:///local.zip)")
    fetch.add_argument("--sha256", default=None, help="expect this sha256 instead of the pinned one")
    fetch.add_argument("--force", action="store_true", help="download again even if it is installed")
    fetch.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    return _list(args) if args.action == "list" else _fetch(args)


def installed(name: str, dest: Path | None = None) -> Path | None:
    entry = MODELS[name]
    folder = (dest or default_dest(entry))
    if entry.folder:
        path = folder / entry.folder
        return path if all((path / f).is_file() for f in entry.must_contain) else None
    names = list((entry.members or {}).values()) or [Path(entry.url).name]
    return folder if all((folder / n).is_file() for n in names) else None


def _list(args: argparse.Namespace) -> int:
    rows = [{"name": name, "what": e.what, "url": e.url, "sha256": e.sha256, "use": e.use,
             "installed": str(installed(name)) if installed(name) else None} for name, e in MODELS.items()]
    if args.json:
        print(json.dumps({"models": rows, "home": str(models_home())}))
        return 0
    for r in rows:
        print(f"{r['name']}: {'installed at ' + r['installed'] if r['installed'] else 'not installed'}\n"
              f"  {r['what']}\n  from {r['url']}\n  use: {r['use']}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    if args.name not in MODELS:
        raise InputError(f"unknown model {args.name!r}; choose one of: {', '.join(MODELS)}")
    entry = MODELS[args.name]
    dest = Path(args.dest).expanduser() if args.dest else default_dest(entry)
    expected = (args.sha256 or entry.sha256 or "").lower() or None
    if expected is not None and (len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected)):
        raise InputError(f"--sha256 must be 64 hex digits, got {args.sha256!r}")
    already = installed(args.name, dest)
    if already is not None and not args.force:
        _done(args, already, None, "already installed")
        return 0
    url = args.url or entry.url
    cache = dest / ".downloads"
    cache.mkdir(parents=True, exist_ok=True)
    part = cache / f"{args.name}.part"
    try:
        digest = download(url, part, entry.size if args.url is None else None)
        if expected is not None and digest != expected:
            raise ModelError(f"{url}: the download's sha256 is {digest}, expected {expected}: it is damaged or not "
                             f"the published file; nothing was installed")
        path = _install(entry, part.read_bytes(), dest)
    finally:
        part.unlink(missing_ok=True)
    _done(args, path, digest, "installed" if expected else f"installed (not pinned: sha256 {digest})")
    return 0


def _done(args: argparse.Namespace, path: Path, digest: str | None, what: str) -> None:
    if args.json:
        print(json.dumps({"name": args.name, "path": str(path), "sha256": digest, "status": what.split(" (")[0]}))
    else:
        print(f"{args.name}: {what} at {path}")


def download(url: str, part: Path, size: int | None = None) -> str:
    """Stream ``url`` into ``part`` with a progress bar on stderr; return its sha256."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0) or size
            with tqdm(total=total, unit="B", unit_scale=True, desc=part.stem, file=sys.stderr, disable=None,
                      leave=False) as progress:
                while block := response.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    progress.update(len(block))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else \
            getattr(exc, "reason", None) or exc
        raise ModelError(f"cannot download {url}: {reason}. On a machine with internet run 'edgepilot models fetch' "
                         f"there and copy the folder, or give --url with a local copy (file:///path.zip)") from None
    return digest.hexdigest()


def _install(entry: Entry, data: bytes, dest: Path) -> Path:
    """Unpack into a temporary folder beside ``dest`` and move into place only what is complete."""
    dest.mkdir(parents=True, exist_ok=True)
    if not entry.folder and not entry.members:
        return _write(dest / Path(entry.url).name, data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ModelError("the download is not a zip archive; nothing was installed") from None
    with archive, tempfile.TemporaryDirectory(dir=dest) as tmp:
        if entry.members:
            for member in archive.namelist():
                target = entry.members.get(Path(member).name)
                if target:
                    _write(dest / target, archive.read(member))
            return dest
        for member in archive.namelist():  # never write outside the folder (a "../" member)
            if Path(member).is_absolute() or ".." in Path(member).parts:
                raise ModelError(f"the archive has an unsafe path {member!r}; nothing was installed")
        archive.extractall(tmp)
        unpacked = Path(tmp) / entry.folder
        missing = [f for f in entry.must_contain if not (unpacked / f).is_file()]
        if missing:
            raise ModelError(f"the archive lacks {', '.join(missing)}; nothing was installed")
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
