"""Configuration files: an optional TOML file whose tables fill the components' frozen config dataclasses.

    [safety]
    fence_radius_cm = 500
    fence_ceiling_cm = 200

    [follow]
    target_size_frac = 0.1
    yaw = { kp = 80.0, kd = 6.0 }

The file comes from ``--config`` or ``$EDGEPILOT_CONFIG``; command-line flags win over it. Unknown tables or keys
and values of the wrong type are errors that name the key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from edgepilot.pilot.core.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")


def load(path: Path | None) -> dict[str, dict[str, Any]]:
    """The tables of the config file (``--config`` or ``$EDGEPILOT_CONFIG``), or {} without one."""
    if path is None and os.environ.get("EDGEPILOT_CONFIG"):
        path = Path(os.environ["EDGEPILOT_CONFIG"])
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path} is not valid TOML: {exc}") from None
    for table, values in data.items():
        if not isinstance(values, dict):
            raise InputError(f"config file {path}: {table!r} must be a table like [{table}]")
    return data


def build(cls: type[T], values: dict[str, Any], where: str) -> T:
    """``cls(**values)`` with each key and type checked; nested dataclass fields take inline tables."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise InputError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(fields))}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise InputError(f"{where}.{key} must be a table, e.g. {key} = {{ kp = 1.0 }}")
            value = build(kind, dataclasses.asdict(getattr(cls(), key)) | value, f"{where}.{key}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where}.{key} must be a number, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def section(data: dict[str, dict[str, Any]], name: str, cls: type[T]) -> T:
    return build(cls, data.get(name, {}), f"[{name}]")


# -- dataclasses <-> JSON (recordings, parts describing themselves) --------------------------------------------------
def jsonable(value: Any) -> Any:
    """Paths as strings, tuples as lists, recursively (for dataclasses turned into dicts)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


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
