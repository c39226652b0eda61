"""The hardware abstraction layer: what a vehicle, a camera and an audio source must offer, and the backend registry.

``pilot/`` never imports a backend directly. Backends are looked up by name here and imported only when chosen, so a
laptop never imports picamera2 and the tests never need a drone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pilot.errors import InputError
from pilot.messages import Command, Event, Frame, Telemetry, Velocity


@runtime_checkable
class Vehicle(Protocol):
    """A drone or a car. One thread (the loop's) owns it.

    Discrete commands (``takeoff``, ``up 50``, ``cw 90``...) start with :meth:`execute` and run while :meth:`busy` is
    true; the loop keeps ticking meanwhile. :meth:`send_velocity` is continuous control (Tello ``rc``) and cancels
    nothing that is running unless the backend says so. ``close()`` leaves the vehicle safe (landed / stopped) and may
    be called more than once.
    """

    kind: str  # "drone" or "car"

    def execute(self, command: Command) -> None: ...

    def busy(self) -> bool: ...

    def send_velocity(self, velocity: Velocity) -> None: ...

    def telemetry(self) -> Telemetry: ...

    def poll_events(self) -> list[Event]:
        """Events the vehicle raised on its own since the last call (auto-land, low battery...)."""

    def close(self) -> None: ...


@runtime_checkable
class Camera(Protocol):
    def read(self) -> Frame | None:
        """The newest frame, or None when there is none yet."""

    def close(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    sample_rate: int

    def chunks(self) -> Iterator[np.ndarray]:
        """Mono int16 chunks at ``sample_rate`` until the source ends."""

    def close(self) -> None: ...


#: name -> "module:factory". The factory is called with keyword arguments from the CLI / config.
VEHICLES: dict[str, str] = {
    "sim": "sim.vehicles:make_sim_drone",
    "sim-drone": "sim.vehicles:make_sim_drone",
    "sim-car": "sim.vehicles:make_sim_car",
    "tello": "drone.tello:make_tello",
    "picar": "robot_car.picar:make_picar",
}


def resolve(table: dict[str, str], name: str, what: str) -> Callable[..., Any]:
    """Import and return the factory registered as ``name``; a clear :class:`InputError` if unknown or missing."""
    try:
        target = table[name]
    except KeyError:
        raise InputError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(table))}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InputError(
            f"{what} {name!r} is not available here: module {exc.name!r} is not installed "
            f"(pip install 'edgepilot[all]')"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InputError(f"{what} {name!r} is not available in this version of edgepilot") from None


def open_vehicle(name: str, **kwargs: Any) -> Vehicle:
    return resolve(VEHICLES, name, "vehicle")(**kwargs)
