"""The demo scenarios, with the annotated video of what the vehicle saw."""

from __future__ import annotations

import logging
from pathlib import Path

from pilot.hud import draw_hud
from pilot.messages import Frame, Seen
from pilot.runner import Pilot
from sim.scenarios import car_world, run_car

log = logging.getLogger(__name__)

FPS = 30.0


class AnnotatedVideo:
    """Draws detections and the HUD on each frame and writes it (or does nothing without a path)."""

    def __init__(self, path: Path | None, fps: float = FPS) -> None:
        self.path = path
        self.fps = fps
        self._writer = None

    def __call__(self, frame: Frame, seen: Seen, pilot: Pilot, extra: list[str] | None = None) -> None:
        if self.path is None:
            return
        from vision.overlay import draw
        from vision.video_io import VideoWriter

        if self._writer is None:
            self._writer = VideoWriter(self.path, frame.width, frame.height, self.fps)
        image = frame.image.copy()
        draw(image, list(seen.detections))
        telemetry = pilot.vehicle.telemetry()
        lines = [f"t {frame.t_s:5.1f} s  mode: {pilot.mode.value}"]
        if pilot.vehicle.kind == "drone":
            lines.append(f"battery {telemetry.battery_pct:.0f}%  height {telemetry.z_cm:.0f} cm")
        if pilot.behaviour is not None:
            lines.append(f"autonomy: {pilot.behaviour.state}")
        lines.extend(extra or [])
        draw_hud(image, lines)
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def car_demo(seed: int, video: Path | None) -> dict:
    """Laps of the track with two people stepping onto the road."""
    from vision.pipeline import Perception

    perception = Perception(detect=("person",), person_detector="pose")
    writer = AnnotatedVideo(video)
    try:
        report = run_car(car_world(seed, crossings=((0.35, 4.5), (0.85, 17.5))), seconds=36.0, crossings=2,
                         detect=perception.process, on_frame=writer)
    finally:
        writer.close()
    return report.as_dict()
