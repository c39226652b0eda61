"""The hardware abstraction layer: what a vehicle, a camera and an audio source must offer, and the backend registry.

The core never imports a backend. Backends are looked up by name through entry points (:mod:`.registry`) and
imported only when chosen, so a laptop never imports picamera2 and the tests never need a drone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgepilot.pilot.core import registry
from edgepilot.pilot.core.messages import Command, Event, Frame, Telemetry, Velocity


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


def open_vehicle(name: str, **kwargs: Any) -> Vehicle:
    """The vehicle registered as ``name`` (entry-point group ``edgepilot.vehicles``), made with ``kwargs``."""
    return registry.load(registry.VEHICLES, name, "vehicle")(**kwargs)


def open_camera(source: str | int = "auto", **kwargs: Any) -> Camera:
    """A camera source registered as ``source`` (entry-point group ``edgepilot.cameras``: ``pi``, ``webcam``,
    ``auto``...); anything else, a webcam index or a video file, goes to the ``webcam`` source."""
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source)
    if isinstance(source, str) and source in registry.names(registry.CAMERAS):
        return registry.load(registry.CAMERAS, source, "camera")(**kwargs)
    return registry.load(registry.CAMERAS, "webcam", "camera")(source, **kwargs)
