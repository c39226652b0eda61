"""The demo scenarios, with the annotated video of what the vehicle saw."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgepilot.pilot.app import talk
from edgepilot.pilot.app.hud import draw_hud
from edgepilot.pilot.app.report import handovers
from edgepilot.pilot.app.scenarios import car_world, run_car
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.handover import HandOver
from edgepilot.pilot.core.messages import Frame, Seen
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import SimDrone
from edgepilot.sim.world import Person, World

if TYPE_CHECKING:
    from edgepilot.pilot.app.status import RunStatus
    from edgepilot.pilot.record.recorder import Recorder
    from edgepilot.voice.tts import Speaker

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
        from edgepilot.vision.overlay import draw
        from edgepilot.vision.video_io import VideoWriter

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


CAR_DEMO_S = 40.0


def car_demo(seed: int, video: Path | None, recorder: Recorder | None = None, watch=None,
             model: Path | None = None, speaker: Speaker | None = None) -> dict:
    """Laps of the track with two people stepping onto the road (recorded into ``recorder`` if given;
    ``watch(pilot)``, if given, is called once the pilot exists: the web cockpit, the status line; said through
    ``speaker`` if given), driven by the lane follower or, given ``model``, by that learned driver (under the same
    stop for people)."""
    from edgepilot.vision.pipeline import Perception

    driver = None
    if model is not None:
        from edgepilot.pilot.app.driver_model import load_driver, model_identity
        from edgepilot.robot_car.learned import LearnedDriver

        infer = load_driver(model)
        driver = lambda camera: LearnedDriver(infer, camera)  # noqa: E731
        if recorder is not None:
            recorder.manifest["driver_model"] = model_identity(model)

    perception = Perception(detect=("person",), person_detector="pose", person_every=3)
    writer = AnnotatedVideo(video)

    def first_tick(pilot: Pilot) -> None:
        if watch is not None:
            watch(pilot)
        talk.attach(pilot, speaker)

    on_frame = talk.on_first_frame(first_tick, writer)
    on_frame = recorder.attach_on_first_frame(on_frame, perception) if recorder else on_frame
    try:
        report = run_car(car_world(seed, crossings=(0.35, 0.85)), seconds=CAR_DEMO_S, crossings=2,
                         detect=perception.process, driver=driver, on_frame=on_frame)
    finally:
        writer.close()
    return report.as_dict()


DEMO_AUDIO = Path(str(resources.files("edgepilot.voice") / "demo"))
#: (seconds of silence before, recording) of what the user says in the drone demo.
DEMO_SPEECH = ((0.5, "take_off_kal16.wav"), (4.0, "follow_me_kal16.wav"), (20.0, "land_kal16.wav"))
DRONE_DEMO_S = 32.0
#: The person the drone follows walks this loop (cm), starting 3 m in front of the drone.
WALK_CM = ((300, 0), (300, 150), (450, 150), (450, -150), (300, -150))


def demo_speech() -> tuple[np.ndarray, int]:
    """The demo's spoken commands as one 16 kHz stream: the bundled recordings with pauses between them."""
    from edgepilot.voice.audio import RATE, WavSource

    pieces = []
    for pause_s, name in DEMO_SPEECH:
        pieces.append(np.zeros(int(pause_s * RATE), dtype=np.int16))
        source = WavSource(DEMO_AUDIO / name)
        pieces.extend(source.chunks())
        source.close()
    pieces.append(np.zeros(RATE, dtype=np.int16))
    return np.concatenate(pieces), RATE


def hear_demo_speech(engine: str | None = None) -> list[dict]:
    """Run the real recogniser over the demo's speech; each emitted command with its audio time."""
    from edgepilot.voice.listener import Transcriber, make_recogniser
    from edgepilot.voice.vocabulary import Vocabulary

    audio, rate = demo_speech()
    chunk = rate // 50
    recogniser = make_recogniser(engine, Vocabulary.load("en"), None)
    heard = Transcriber(recogniser).run(audio[i:i + chunk] for i in range(0, len(audio), chunk))
    return [{**h.to_json(), "command_obj": h.command} for h in heard if h.command is not None]


def drone_demo(seed: int, video: Path | None, engine: str | None = None, recorder: Recorder | None = None,
               watch=None, status: RunStatus | None = None, speaker: Speaker | None = None) -> dict:
    """Spoken commands take the drone up, make it follow a walking person, and land it (recorded into ``recorder``
    if given; ``watch(pilot)``, if given, is called before the run: the web cockpit, the status line; what the
    recogniser heard goes to ``status``)."""
    from edgepilot.vision.pipeline import Perception

    said = hear_demo_speech(engine)
    pending = sorted(said, key=lambda h: h["t_emit"])
    world = World.build(seed, "drone", people=0).with_people(
        Person.create(None, WALK_CM, speed_cm_s=35.0, start_s=6.0, mode="loop", seed=seed),
        Person.create(None, [(500, 250)], seed=seed + 1))
    clock = FakeClock()
    drone = SimDrone(clock)
    camera = SimCamera(world, drone, clock)
    # Faces name and centre the target up close; the person detector keeps it beyond the face detector's range.
    perception = Perception(detect=("face", "person"), person_every=2)
    writer = AnnotatedVideo(video)
    transcript: list[str] = []
    errors_px: list[float] = []
    following = {"frames": 0, "centred": 0}
    pilot_ref: list[Pilot] = []

    def perceive(now_s: float) -> Seen:
        pilot = pilot_ref[0]
        while pending and pending[0]["t_emit"] <= now_s:
            heard = pending.pop(0)
            pilot.submit(heard["command_obj"])  # source "voice", as the recogniser made it
            transcript.append(f'"{heard["text"]}" -> {heard["command"]}')
            if status is not None:
                status.note_heard(heard["text"], heard["command"])
        frame = camera.read()
        seen = Seen(frame.t_s, frame.width, frame.height, tuple(perception.process(frame)), frame)
        behaviour = pilot.behaviour
        if pilot.mode.value == "following" and behaviour is not None:
            following["frames"] += 1
            error = getattr(behaviour, "last_error_px", None)
            if error is not None:
                errors_px.append(abs(error))
                following["centred"] += abs(error) <= 0.15 * frame.width
        writer(frame, seen, pilot, [f"heard: {transcript[-1]}"] if transcript else None)
        return seen

    pilot = Pilot(drone, clock=clock, perceive=perceive, max_duration_s=DRONE_DEMO_S)
    pilot_ref.append(pilot)
    pilot.handover = HandOver()  # as fly does with a person at hand (voice): autonomy lost -> hover, wait for them
    if recorder is not None:
        recorder.attach(pilot, perception=perception)
    if watch is not None:
        watch(pilot)
    talk.attach(pilot, speaker)
    try:
        result = pilot.run(stay_alive=lambda: bool(pending) or drone.telemetry().flying)
    finally:
        writer.close()
    frames = following["frames"]
    return {
        "commands": [{"t_s": round(c.t_s, 2), "command": c.command, "source": c.source} for c in result.commands],
        "heard": [{k: v for k, v in h.items() if k != "command_obj"} for h in said],
        "tracking": {
            "following_frames": frames,
            "centered_fraction": round(following["centred"] / frames, 3) if frames else 0.0,
            "mean_error_px": round(float(np.mean(errors_px)), 1) if errors_px else None,
        },
        "final": result.final.final(),
        "events": [{"t_s": round(e.t_s, 2), "type": e.type, "detail": e.detail} for e in result.events],
        "handovers": handovers([{"t_s": e.t_s, "type": e.type, "detail": e.detail} for e in result.events]),
    }
