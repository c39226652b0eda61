"""What a recording says about the run, so that replay can rebuild the same pilot: configuration dataclasses as
JSON and back, the perception pipeline and the models it used (with sha256), the behaviour driving the vehicle,
the face database, the software version."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import types
import typing
from pathlib import Path
from typing import Any

from pilot import __version__
from pilot.errors import InputError
from pilot.record_io import jsonable, sha256_of

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


# -- dataclasses <-> JSON -------------------------------------------------------------------------------------------
def to_dict(config: Any) -> dict | None:
    return None if config is None else jsonable(dataclasses.asdict(config))


def from_dict(cls: type, data: dict) -> Any:
    """Rebuild a (frozen, nested) config dataclass from :func:`to_dict`'s output. Fields the recording lacks keep
    their defaults; fields it has that this version lacks are ignored (logged)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(data) - names
    if extra:
        log.info("%s: ignoring recorded fields this version does not have: %s", cls.__name__, sorted(extra))
    return cls(**{name: _convert(hints[name], data[name]) for name in names if name in data})


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if hint is Path:
        return Path(value)
    if origin is tuple:
        return tuple(value)
    return value


# -- perception -----------------------------------------------------------------------------------------------------
def perception_config(perception: Any) -> Any:
    """The PerceptionConfig behind a Perception, its bound ``process`` method, or a config itself (else None)."""
    owner = getattr(perception, "__self__", perception)  # a bound method -> its Perception
    config = getattr(owner, "config", owner)
    return config if type(config).__name__ == "PerceptionConfig" else None


def build_perception(spec: dict | None) -> Any:
    if spec is None:
        return None
    from vision.pipeline import Perception, PerceptionConfig

    return Perception(from_dict(PerceptionConfig, spec))


def model_files(config: Any) -> list[Path]:
    """The model files a perception configuration loads."""
    from vision.blaze import FACE_FULL, FACE_SHORT, POSE_DETECTOR
    from vision.litert import MODELS_DIR
    from vision.pipeline import PERSON_MODEL

    wanted = set(config.detect)
    files: list[Path] = []
    if "face" in wanted:
        files.append(MODELS_DIR / (FACE_FULL if config.face_range == "full" else FACE_SHORT).model)
    if config.model is not None:
        from vision.ssd import read_labels

        files.append(Path(config.model))
        if config.labels is not None:
            files.append(Path(config.labels))
            wanted -= set(read_labels(config.labels))
    if "person" in wanted:
        files.append(MODELS_DIR / (PERSON_MODEL if config.person_detector == "ssd" else POSE_DETECTOR.model))
    if config.faces_dir is not None:
        import face_recognition_models as frm

        files += [Path(frm.pose_predictor_five_point_model_location()), Path(frm.face_recognition_model_location())]
    return files


def fingerprint(paths: list[Path]) -> list[dict]:
    return [{"name": p.name, "path": str(p), "sha256": sha256_of(p) if p.is_file() else None} for p in paths]


def faces_fingerprint(faces_dir: Path | None) -> dict[str, str] | None:
    """sha256 of each enrolled person's file: replay warns when the database changed since the recording."""
    if faces_dir is None or not Path(faces_dir).is_dir():
        return None
    return {p.name: sha256_of(p) for p in sorted(Path(faces_dir).glob("*.npy"))}


# -- behaviours -----------------------------------------------------------------------------------------------------
def describe_behaviour(behaviour: Any) -> dict | None:
    """The behaviour a run starts with (the car's lane following), as JSON; follow behaviours started by a command
    are rebuilt by the command itself."""
    if behaviour is None:
        return None
    name = f"{type(behaviour).__module__}.{type(behaviour).__qualname__}"
    if name == "robot_car.lane.LaneBehaviour":
        b = behaviour
        return {"type": "lane", "camera": to_dict(b.camera), "config": to_dict(b.follower.config),
                "stop_labels": list(b.stop_labels), "stop_distance_cm": b.stop_distance_cm, "clear_s": b.clear_s,
                "stale_s": b.stale_s, "speed_cm_s": b.speed_cm_s, "min_score": b.min_score}
    if name == "pilot.behaviours.FollowTarget":
        return {"type": "follow", "who": behaviour.who, "kind": behaviour.kind, "config": to_dict(behaviour.config),
                "labels": list(behaviour.labels)}
    return {"type": "unknown", "class": name}


def build_behaviour(spec: dict | None) -> Any:
    if spec is None:
        return None
    if spec["type"] == "lane":
        from pilot.geometry import CameraModel
        from robot_car.lane import LaneBehaviour, LaneConfig

        return LaneBehaviour(from_dict(CameraModel, spec["camera"]), from_dict(LaneConfig, spec["config"]),
                             stop_labels=tuple(spec["stop_labels"]), stop_distance_cm=spec["stop_distance_cm"],
                             clear_s=spec["clear_s"], stale_s=spec["stale_s"], speed_cm_s=spec["speed_cm_s"],
                             min_score=spec["min_score"])
    if spec["type"] == "follow":
        from pilot.behaviours import FollowConfig, FollowTarget

        return FollowTarget(spec["who"], spec["kind"], from_dict(FollowConfig, spec["config"]), tuple(spec["labels"]))
    raise InputError(f"this recording was driven by {spec.get('class', spec['type'])}, which replay cannot rebuild")


# -- software -------------------------------------------------------------------------------------------------------
def software() -> dict:
    """edgepilot's version and, in a git checkout, the revision and whether the tree had local changes."""
    info: dict[str, Any] = {"edgepilot": __version__, "git": None}
    try:
        revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=2)
        if revision.returncode == 0:
            status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=2)
            info["git"] = {"revision": revision.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass  # not a checkout, or no git: the version says enough
    return info
