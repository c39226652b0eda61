"""Plug-ins found by name through entry points, the way gpiozero finds pin factories: vehicles
(``edgepilot.vehicles``), camera sources (``edgepilot.cameras``) and the parts a recording describes and replay
rebuilds (``edgepilot.parts``: behaviours, perception). edgepilot's own register in its ``pyproject.toml`` exactly as
another package would; a module is imported only when its name is chosen.

A *part* is a class with ``part_name`` (its name in ``edgepilot.parts``), ``describe() -> dict`` (JSON) and a
classmethod ``rebuild(spec)``; the recorder and replay know parts only through :func:`describe` and :func:`rebuild`.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from edgepilot.pilot.core.errors import InputError

log = logging.getLogger(__name__)

VEHICLES = "edgepilot.vehicles"
CAMERAS = "edgepilot.cameras"
PARTS = "edgepilot.parts"


def _entry_points(group: str) -> dict[str, EntryPoint]:
    found = {ep.name: ep for ep in entry_points(group=group)}
    if not found:
        raise InputError(f"no {group} are registered: edgepilot is not installed properly (pip install -e .)")
    return found


def names(group: str) -> list[str]:
    return sorted(_entry_points(group))


def load(group: str, name: str, what: str) -> Any:
    """The object registered as ``name`` in ``group``, imported now; a clear :class:`InputError` if unknown or if
    the module it needs is not installed."""
    found = _entry_points(group)
    if name not in found:
        raise InputError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(found))}")
    try:
        return found[name].load()
    except ModuleNotFoundError as exc:
        raise InputError(f"{what} {name!r} is not available here: module {exc.name!r} is not installed "
                         f"(pip install 'edgepilot[all]')") from None
    except AttributeError:
        raise InputError(f"{what} {name!r} is not available in this version of edgepilot") from None


def describe(part: Any) -> dict | None:
    """``part`` as JSON, tagged with its registered name; None for None. A part that cannot describe itself is
    recorded by class name, and replay says it cannot rebuild it."""
    if part is None:
        return None
    name = getattr(type(part), "part_name", None)
    if name is None or not hasattr(part, "describe"):
        return {"type": "unknown", "class": f"{type(part).__module__}.{type(part).__qualname__}"}
    return {"type": name, **part.describe()}


def rebuild(spec: dict | None, default_type: str | None = None) -> Any:
    """The part :func:`describe` described (``default_type`` for recordings made before parts were tagged)."""
    if spec is None:
        return None
    kind = spec.get("type", default_type)
    if kind == "unknown" or kind is None:
        raise InputError(f"this recording was driven by {spec.get('class', 'an unnamed part')}, "
                         "which replay cannot rebuild")
    cls = load(PARTS, kind, "recorded part")
    return cls.rebuild({k: v for k, v in spec.items() if k != "type"})
