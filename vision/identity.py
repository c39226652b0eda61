"""Face identity: dlib's 128-d face embeddings (the face_recognition models) and a face database on disk.

The database is a folder with one ``<name>.npy`` file per person holding a (k, 128) array, one row per enrolled
face, and next to it ``<name>.json`` saying where each row came from (``{"sources": [k strings]}``: a photo's path, or
a run, frame and track for faces labelled from runs). Databases written before the sources existed have no JSON; their
rows read as source ``"unknown"``. Every write goes to a temporary file in the same folder and is renamed over the old
one (``os.replace`` is atomic), so a crash mid-write leaves either the old or the new file, never half of one;
leftover temporary files are ignored when loading. The ``.npy`` is written last, so a crash between the two writes
leaves sources that ``reload`` pads or cuts to the rows.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import InputError, ModelError
from edgepilot.pilot.core.grammar import NAME_PATTERN

log = logging.getLogger(__name__)

EMBEDDING_SIZE = 128
UNKNOWN_SOURCE = "unknown"
#: face_recognition's default tolerance. Measured on its test photos with our BlazeFace boxes: same person
#: 0.29-0.45 (partial faces included), different people 0.77-0.93 (see the vision README section).
DEFAULT_THRESHOLD = 0.6


def default_faces_dir() -> Path:
    """``$EDGEPILOT_FACES``, else ``~/.local/share/edgepilot/faces``."""
    env = os.environ.get("EDGEPILOT_FACES")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "edgepilot" / "faces"


def faces_dir_to_use(given: Path | None) -> Path | None:
    """The face database a run reads: ``--faces`` if given (it must exist), else the default one that
    ``edgepilot enroll`` writes to, if anybody was enrolled; None when there is none."""
    if given is not None:
        given = Path(given).expanduser()
        if not given.is_dir():
            raise InputError(f"face database {given} is not a folder; create it with 'edgepilot enroll NAME PHOTO "
                             f"--faces {given}'")
        return given
    default = default_faces_dir()
    return default if default.is_dir() else None


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(f"invalid name {name!r}: use 1-64 letters, digits, spaces, '.', '-', '_' or an apostrophe")
    return name


def dlib_model_files() -> tuple[Path, Path]:
    """dlib's 5-point landmark model and ResNet face descriptor, from the face-recognition-models package. Found
    without importing it: its ``__init__`` needs ``pkg_resources``, which setuptools 81 removed and which Python 3.12+
    virtual environments do not have."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("face identity needs its models: pip install face-recognition-models")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = (folder / "shape_predictor_5_face_landmarks.dat", folder / "dlib_face_recognition_resnet_model_v1.dat")
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ModelError(f"face-recognition-models lacks {', '.join(missing)}: "
                         "pip install --force-reinstall face-recognition-models")
    return files


class FaceEncoder:
    """dlib's 5-point aligner and ResNet face descriptor, run on a face box from any detector."""

    def __init__(self, jitters: int = 1) -> None:
        try:
            import dlib
        except ImportError:
            raise ModelError("face identity needs dlib: pip install dlib-bin") from None
        landmarks, resnet = dlib_model_files()
        try:
            self._shape = dlib.shape_predictor(str(landmarks))
            self._net = dlib.face_recognition_model_v1(str(resnet))
        except RuntimeError as exc:
            raise ModelError(f"cannot load the dlib face models: {exc}") from exc
        self._rectangle = dlib.rectangle
        self.jitters = jitters

    def encode(self, image_bgr: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """The 128-d embedding of the face in ``box`` (x1, y1, x2, y2 pixels) of a BGR image."""
        return self.encode_crop(*face_crop(image_bgr, box))

    def encode_crop(self, crop_rgb: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        """The embedding of the face at ``rect`` (x1, y1, x2, y2) in a contiguous RGB crop from :func:`face_crop`."""
        shape = self._shape(crop_rgb, self._rectangle(*rect))
        return np.asarray(self._net.compute_face_descriptor(crop_rgb, shape, self.jitters), dtype=np.float64)


def face_crop(image_bgr: np.ndarray, box: tuple[float, float, float, float]
              ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The face and a margin as a contiguous RGB array (what dlib needs; cheaper than the whole frame, and small
    enough to hand to another process), and the face box inside it."""
    h, w = image_bgr.shape[:2]
    x1, y1, x2, y2 = box
    margin = 0.5 * max(x2 - x1, y2 - y1)
    cx1, cy1 = int(max(0, x1 - margin)), int(max(0, y1 - margin))
    cx2, cy2 = int(min(w, x2 + margin)), int(min(h, y2 + margin))
    if cx2 - cx1 < 8 or cy2 - cy1 < 8:
        raise InputError("face box is outside the image or too small to identify")
    crop = np.ascontiguousarray(image_bgr[cy1:cy2, cx1:cx2, ::-1])
    return crop, (round(x1 - cx1), round(y1 - cy1), round(x2 - cx1), round(y2 - cy1))


@dataclass(frozen=True)
class Match:
    name: str | None  # None: nobody in the database is close enough
    distance: float  # euclidean distance to the closest enrolled embedding (inf if the database is empty)


class FaceDatabase:
    """Enrolled people, loaded from ``directory`` (created on the first write)."""

    def __init__(self, directory: str | Path, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.directory = Path(directory).expanduser()
        self.threshold = threshold
        self._people: dict[str, np.ndarray] = {}
        self._sources: dict[str, list[str]] = {}
        self._stack = np.zeros((0, EMBEDDING_SIZE))
        self._owners: list[str] = []
        self.reload()

    @property
    def names(self) -> list[str]:
        return sorted(self._people)

    def embeddings(self, name: str) -> np.ndarray:
        return self._people[name].copy()

    def sources(self, name: str) -> list[str]:
        """Where each of ``name``'s embeddings came from, in row order."""
        return list(self._sources[name])

    def find(self, name: str) -> str | None:
        """The enrolled spelling of ``name`` (names match in any case), or None."""
        wanted = name.strip().casefold()
        return next((n for n in self._people if n.casefold() == wanted), None)

    def __len__(self) -> int:
        return len(self._people)

    def reload(self) -> None:
        self._people.clear()
        self._sources.clear()
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.npy")):
                try:
                    data = np.load(path, allow_pickle=False)
                except (OSError, ValueError) as exc:
                    log.warning("ignoring unreadable face file %s: %s", path, exc)
                    continue
                if data.ndim != 2 or data.shape[1] != EMBEDDING_SIZE:
                    log.warning("ignoring %s: not a (k, %d) array", path, EMBEDDING_SIZE)
                    continue
                self._people[path.stem] = data
                self._sources[path.stem] = _read_sources(path.with_suffix(".json"), len(data))
        self._reindex()

    def _reindex(self) -> None:
        rows = [(name, row) for name, data in self._people.items() for row in data]
        self._owners = [name for name, _ in rows]
        self._stack = np.array([row for _, row in rows]).reshape(-1, EMBEDDING_SIZE)

    def add(self, name: str, embeddings: np.ndarray, sources: list[str] | None = None) -> Path:
        """Append ``embeddings`` (k, 128) to ``name``'s file, atomically, with where each came from (``sources``, k
        strings; default ``"unknown"``). Returns the file."""
        name = check_name(name)
        embeddings = np.asarray(embeddings, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
        sources = list(sources) if sources is not None else [UNKNOWN_SOURCE] * len(embeddings)
        if len(sources) != len(embeddings):
            raise ValueError(f"{len(embeddings)} embeddings but {len(sources)} sources")
        combined = np.concatenate([self._people.get(name, np.zeros((0, EMBEDDING_SIZE))), embeddings])
        all_sources = self._sources.get(name, []) + sources
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{name}.npy"
        _write_atomic(target.with_suffix(".json"), lambda f: f.write(json.dumps({"sources": all_sources},
                                                                               indent=1).encode()))
        _write_atomic(target, lambda f: np.save(f, combined, allow_pickle=False))
        self._people[name] = combined
        self._sources[name] = all_sources
        self._reindex()
        return target

    def remove(self, name: str) -> str:
        """Forget ``name`` (any case): deletes their files. Returns the enrolled spelling; InputError if unknown."""
        found = self.find(name)
        if found is None:
            raise InputError(f"nobody called {name!r} is enrolled in {self.directory}"
                             + (f"; enrolled: {', '.join(self.names)}" if self._people else ""))
        (self.directory / f"{found}.npy").unlink(missing_ok=True)
        (self.directory / f"{found}.json").unlink(missing_ok=True)
        del self._people[found], self._sources[found]
        self._reindex()
        return found

    def match(self, embedding: np.ndarray) -> Match:
        """The closest enrolled person, or ``name=None`` when no one is within the threshold."""
        if not len(self._stack):
            return Match(None, float("inf"))
        distances = np.linalg.norm(self._stack - embedding[None, :], axis=1)
        best = int(np.argmin(distances))
        distance = float(distances[best])
        return Match(self._owners[best] if distance <= self.threshold else None, distance)


def _write_atomic(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_sources(path: Path, rows: int) -> list[str]:
    """The sources of a person's ``rows`` embeddings; ``"unknown"`` for rows without one (older databases)."""
    sources: list[str] = []
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            sources = [str(s) for s in data.get("sources", [])] if isinstance(data, dict) else []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("ignoring unreadable face sources %s: %s", path, exc)
    return (sources + [UNKNOWN_SOURCE] * rows)[:rows]
