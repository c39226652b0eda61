"""The perception pipeline the loop, the demo and ``edgepilot replay`` share: detect, track, name.

    perception = Perception(detect=("face", "person"), faces_dir="~/faces", threads=1)
    detections = perception.process(frame)   # list[pilot.messages.Detection] with track ids and names

Faces come from BlazeFace, people from the bundled pedestrian SSDLite (or the BlazePose detector), other objects from
any SSD model given as ``model``. Face names come from the face database, computed only when a track needs one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from edgepilot.models import model_path
from edgepilot.pilot.core.config import from_dict, to_dict
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.messages import Detection, Frame
from edgepilot.vision.blaze import FACE_FULL, FACE_SHORT, POSE_DETECTOR
from edgepilot.vision.detectors import Detector, FaceDetector, PoseDetector
from edgepilot.vision.identity import DEFAULT_THRESHOLD, FaceDatabase, dlib_model_files
from edgepilot.vision.naming import NamingConfig, TrackNamer
from edgepilot.vision.ssd import SsdDetector, read_labels
from edgepilot.vision.tracker import Track, Tracker, TrackerConfig

log = logging.getLogger(__name__)

PERSON_MODEL = "pedestrian_ssdlite.tflite"


@dataclass(frozen=True)
class PerceptionConfig:
    #: What to report: "face", "person", and/or class names of ``model`` ("objects" = all of its classes).
    detect: tuple[str, ...] = ("face",)
    #: Face database folder; None: no identities (names stay None, no embedding is ever computed).
    faces_dir: Path | None = None
    threads: int = 1
    face_range: str = "full"  # "full" (faces up to ~5 m) or "short" (~2 m, faster)
    #: "ssd" (bundled pedestrian SSDLite) or "pose" (BlazePose detector, near people only).
    person_detector: str = "ssd"
    #: Run the person detector every n-th frame (tracks coast in between): it costs 2-4x the face detector.
    person_every: int = 1
    #: Extra overlapping tiles per row for the person detector (finds smaller, farther people; costs per tile).
    person_tiles: int = 0
    person_score: float = 0.2
    model: Path | None = None  # any TF OD API SSD .tflite
    labels: Path | None = None
    model_score: float = 0.4
    identity_threshold: float = DEFAULT_THRESHOLD
    naming: NamingConfig = field(default_factory=NamingConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)


class Perception:
    """Detect + track + identify, one frame at a time. Not thread-safe: one thread owns it."""

    part_name = "perception"  # in the edgepilot.parts registry: recordings describe it, replay rebuilds it

    def __init__(self, config: PerceptionConfig | None = None, **overrides: object) -> None:
        names = {f.name for f in fields(PerceptionConfig)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown Perception option(s): {', '.join(sorted(unknown))}")
        if isinstance(overrides.get("detect"), str):
            overrides["detect"] = tuple(s.strip() for s in str(overrides["detect"]).split(",") if s.strip())
        if overrides.get("faces_dir") is not None:
            overrides["faces_dir"] = Path(str(overrides["faces_dir"])).expanduser()
        self.config = cfg = replace(config or PerceptionConfig(), **overrides)
        self.detectors: list[tuple[Detector, int]] = []  # (detector, run every n-th frame)
        wanted = set(cfg.detect)
        if "face" in wanted:
            self.detectors.append((FaceDetector(cfg.face_range, cfg.threads), 1))
            wanted.discard("face")
        if cfg.model is not None:
            keep = None if "objects" in wanted else tuple(wanted)
            custom = SsdDetector(cfg.model, read_labels(cfg.labels), cfg.threads, cfg.model_score, keep)
            self.detectors.append((custom, 1))
            wanted -= set(custom.labels) | {"objects"}
        if "person" in wanted:
            self.detectors.append((self._person_detector(), max(1, cfg.person_every)))
            wanted.discard("person")
        if wanted:
            raise InputError(f"cannot detect {', '.join(sorted(wanted))}: choose face, person, or a class of --model")
        self.database = FaceDatabase(cfg.faces_dir, cfg.identity_threshold) if cfg.faces_dir else None
        self._namer: TrackNamer | None = None
        self.tracker = Tracker(cfg.tracker)
        self.frames = 0
        self._last_run_s: dict[str, float] = {}  # label -> time of the frame its detector last ran on
        #: Milliseconds spent in the last :meth:`process`: detect, track, identify.
        self.last_timings: dict[str, float] = {}

    def describe(self) -> dict:
        return to_dict(self.config)

    @classmethod
    def rebuild(cls, spec: dict) -> Perception:
        """Offline: embeddings are waited for (a live run's background names depended on its timing)."""
        config = from_dict(PerceptionConfig, spec)
        return cls(replace(config, naming=replace(config.naming, background=False)))

    @property
    def faces_dir(self) -> Path | None:
        return self.config.faces_dir

    def model_files(self) -> list[Path]:
        """The model files this pipeline loads (the recorder keeps their sha256)."""
        cfg = self.config
        wanted = set(cfg.detect)
        files: list[Path] = []
        if "face" in wanted:
            files.append(model_path((FACE_FULL if cfg.face_range == "full" else FACE_SHORT).model))
        if cfg.model is not None:
            files.append(Path(cfg.model))
            if cfg.labels is not None:
                files.append(Path(cfg.labels))
                wanted -= set(read_labels(cfg.labels))
        if "person" in wanted:
            files.append(model_path(PERSON_MODEL if cfg.person_detector == "ssd" else POSE_DETECTOR.model))
        if cfg.faces_dir is not None:
            files += dlib_model_files()
        return files

    def _person_detector(self) -> Detector:
        cfg = self.config
        if cfg.person_detector == "pose":
            return PoseDetector(cfg.threads, cfg.person_tiles)
        if cfg.person_detector != "ssd":
            raise InputError(f"person detector must be 'ssd' or 'pose', not {cfg.person_detector!r}")
        from edgepilot.vision.tiling import TiledDetector

        ssd = SsdDetector(model_path(PERSON_MODEL), ["person"], cfg.threads, cfg.person_score, ("person",))
        return TiledDetector(ssd, cfg.person_tiles) if cfg.person_tiles > 1 else ssd

    @property
    def namer(self) -> TrackNamer | None:
        """Loaded on first use: dlib's models take a second to load and are not needed without enrolled faces."""
        if self._namer is None and self.database is not None and len(self.database):
            self._namer = TrackNamer(self.database, config=self.config.naming)
        return self._namer

    def process(self, frame: Frame) -> list[Detection]:
        """Detections of ``frame`` with track ids, and names on recognised faces."""
        image = frame.image
        t0 = time.perf_counter()
        found: list[Detection] = []
        skipped: tuple[str, ...] = ()
        ran: tuple[str, ...] = ()
        for detector, every in self.detectors:
            if self.frames % every == 0:
                found.extend(detector.detect(image))
                self._last_run_s.update(dict.fromkeys(detector.labels, frame.t_s))
                ran += tuple(detector.labels)
            else:
                skipped += tuple(detector.labels)
        t1 = time.perf_counter()
        boxes = np.array([d.box for d in found], dtype=np.float64).reshape(-1, 4)
        # Tracks whose detector ran and missed them count a miss: found again later, their name is checked again.
        tracks = self.tracker.update(frame.t_s, [d.label for d in found], boxes,
                                     np.array([d.score for d in found]), [np.array(d.keypoints) for d in found], ran)
        t2 = time.perf_counter()
        namer = self.namer
        if namer is not None:
            namer.update(image, tracks, frame.t_s)
        t3 = time.perf_counter()
        self.frames += 1
        self.last_timings = {"detect_ms": (t1 - t0) * 1e3, "track_ms": (t2 - t1) * 1e3, "identify_ms": (t3 - t2) * 1e3}
        out = [self._detection(d, t) for d, t in zip(found, tracks, strict=True)]
        # Objects whose detector skipped this frame are reported where their motion model puts them.
        for track in self.tracker.coasting(frame.t_s, skipped):
            if track.t_s < self._last_run_s.get(track.label, -np.inf):
                continue  # its detector ran since and did not find it: lost, not coasting
            box = tuple(round(float(v), 1) for v in track.predict(frame.t_s))
            out.append(Detection(track.label, round(track.score, 4), box, track.id, track.name))
        return out

    @staticmethod
    def _detection(found: Detection, track: Track) -> Detection:
        box = tuple(round(float(v), 1) for v in track.box)
        return Detection(found.label, found.score, box, track.id, track.name, found.keypoints)

    def reset(self) -> None:
        """Forget all tracks (a cut in the video, an unrelated image); new tracks keep getting new ids."""
        self.tracker.tracks.clear()

    def close(self) -> None:
        """Stops the background embedding process, if any (interpreters free themselves)."""
        if self._namer is not None:
            self._namer.close()
            self._namer = None

    def __enter__(self) -> Perception:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
