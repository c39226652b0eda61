"""Face identity: dlib's 128-d face embeddings (the face_recognition models) and a face database on disk.

The database is a folder with one ``<name>.npy`` file per person holding a (k, 128) array, one row per enrolled
photo. Every write goes to a temporary file in the same folder and is renamed over the old one (``os.replace`` is
atomic), so a crash mid-write leaves either the old or the new file, never half of one; leftover temporary files are
ignored when loading.
"""

from __future__ import annotations

import importlib.util
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
        self._stack = np.zeros((0, EMBEDDING_SIZE))
        self._owners: list[str] = []
        self.reload()

    @property
    def names(self) -> list[str]:
        return sorted(self._people)

    def embeddings(self, name: str) -> np.ndarray:
        return self._people[name].copy()

    def __len__(self) -> int:
        return len(self._people)

    def reload(self) -> None:
        self._people.clear()
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
        self._reindex()

    def _reindex(self) -> None:
        rows = [(name, row) for name, data in self._people.items() for row in data]
        self._owners = [name for name, _ in rows]
        self._stack = np.array([row for _, row in rows]).reshape(-1, EMBEDDING_SIZE)

    def add(self, name: str, embeddings: np.ndarray) -> Path:
        """Append ``embeddings`` (k, 128) to ``name``'s file, atomically. Returns the file."""
        name = check_name(name)
        embeddings = np.asarray(embeddings, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
        combined = np.concatenate([self._people.get(name, np.zeros((0, EMBEDDING_SIZE))), embeddings])
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{name}.npy"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, combined, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._people[name] = combined
        self._reindex()
        return target

    def match(self, embedding: np.ndarray) -> Match:
        """The closest enrolled person, or ``name=None`` when no one is within the threshold."""
        if not len(self._stack):
            return Match(None, float("inf"))
        distances = np.linalg.norm(self._stack - embedding[None, :], axis=1)
        best = int(np.argmin(distances))
        distance = float(distances[best])
        return Match(self._owners[best] if distance <= self.threshold else None, distance)
