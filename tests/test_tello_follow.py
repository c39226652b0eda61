"""The follow behaviour through the real Tello backend (its UDP link) on the emulator's H.264 video of the simulated
world: how it flies, not only where it ends. Its own module, so the e2e module's long-lived fuzz rig has released the
emulator's port.

The drone turns away from the person before ``follow me``, so the yaw loop has work to do. Each flight checks the yaw
set-points the Tello was sent (never a reversal from one tick to the next outside the dead band, steps within the
slew limit) and, from the emulator's ground truth, that the face ends within 10% of the image width of the centre.
Flights add video latency (frames held back after decoding: "visible" keeps the decode stamp, so the frame's age
shows it; "hidden" stamps the frame when it is released, like a real Tello's glass-to-decode lag that no stamp
shows) and scale the emulated drone's yaw per stick unit (the plant gain).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import replace

import pytest
from test_behaviours import SETTLE_BAND_FRAC, largest_step, sign_flips
from test_tello_e2e import connect, netns, run_log, start_emulator  # noqa: F401 - pytest fixtures

from edgepilot.pilot.core.behaviours import MAX_SLEW_STEP_S, FollowConfig
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.messages import Frame
from edgepilot.pilot.core.runner import Pilot
from edgepilot.pilot.core.safety import Supervisor
from edgepilot.sim import tello_emulator

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tello")]  # fixed Tello ports: one worker

log = logging.getLogger(__name__)

TURN_AWAY_DEG = 25  # before "follow me": the person, 3 m ahead, is then 25 deg right of the centre of the image
FLIGHT_S = 16.0
SETTLED_S = 5.0     # the last seconds of the flight count as settled


class DelayedCamera:
    """The Tello camera with ``delay_s`` more latency: each decoded frame is released ``delay_s`` later, with its
    decode stamp (``hidden=False``) or stamped at its release (``hidden=True``)."""

    def __init__(self, camera, delay_s: float, hidden: bool) -> None:
        self.camera, self.delay_s, self.hidden = camera, delay_s, hidden
        self._frames: deque[tuple[float, Frame]] = deque(maxlen=64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delayed-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = None
        while not self._stop.wait(0.003):
            frame = self.camera.read()
            if frame is not None and frame.index != last:
                last = frame.index
                self._frames.append((time.monotonic(), frame))

    def read(self) -> Frame | None:
        due = time.monotonic() - self.delay_s
        ready = [(t, f) for t, f in list(self._frames) if t <= due]
        if not ready:
            return None
        released_s, frame = ready[-1]
        return replace(frame, t_s=released_s + self.delay_s) if self.hidden else frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


class YawTap:
    """Keeps the yaw set-point sent on each tick, and where the person truly is then (emulator ground truth)."""

    def __init__(self, emulator, person_xy: tuple[float, float], hfov_deg: float) -> None:
        self.emulator, self.person_xy, self.hfov_deg = emulator, person_xy, hfov_deg
        self.ticks: list[tuple[float, float, str]] = []  # (t_s, yaw set-point, mode) of ticks that sent one
        self.offsets: list[tuple[float, float]] = []     # (t_s, face offset from the centre / image width) following

    def on_tick(self, t_s, telemetry, seen, velocity, mode) -> None:
        if mode.value == "following":
            truth = self.emulator.drone_state()
            bearing = math.degrees(math.atan2(self.person_xy[1] - truth["y_cm"], self.person_xy[0] - truth["x_cm"]))
            off_deg = (bearing - truth["yaw_deg"] + 180.0) % 360.0 - 180.0  # + left
            # Pinhole: the offset in the image, as a fraction of its width (+ right).
            self.offsets.append((t_s, -math.tan(math.radians(off_deg)) / (2 * math.tan(math.radians(
                self.hfov_deg / 2)))))
        if velocity is not None and mode.value in ("following", "searching"):
            self.ticks.append((t_s, velocity.yaw_rate_deg_s, mode.value))

    def on_command(self, record) -> None: ...

    def on_event(self, event) -> None: ...

    def metrics(self) -> dict[str, float]:
        rates = [rate for _, rate, _ in self.ticks]
        end = self.offsets[-1][0]
        outside = [t for t, off in self.offsets if abs(off) > SETTLE_BAND_FRAC]
        return {
            "set_points": len(rates), "flips_per_s": sign_flips(rates) / (self.ticks[-1][0] - self.ticks[0][0]),
            "max_step_deg_s": largest_step(rates),
            "settling_s": (outside[-1] - self.offsets[0][0]) if outside else 0.0,
            "max_settled_offset_frac": max(abs(off) for t, off in self.offsets if t >= end - SETTLED_S),
            "initial_offset_frac": self.offsets[0][1],
        }


@pytest.mark.parametrize("delay_s, hidden, gain, observe", [
    (0.0, False, 1.0, False),  # the emulator as it is: 60-140 ms from decode to the behaviour, the true stick scale
    (0.3, False, 2.0, False),  # +300 ms the frame's age shows, the drone turning twice as fast as the stick says
    (0.2, True, 0.5, False),   # +200 ms no stamp shows, the drone turning half as fast
    (0.1, True, 2.0, False),
    (0.3, False, 0.5, True),   # the behaviour also given each tick's telemetry: the turn since a frame is measured
], ids=["as-is", "300ms-gain2", "200ms-hidden-gain0.5", "100ms-hidden-gain2", "300ms-gain0.5-telemetry"])
def test_follow_me_through_the_real_backend_is_smooth(netns, run_log, monkeypatch, delay_s, hidden, gain,  # noqa: F811
                                                      observe):
    """Follow on H.264 video decoded from UDP: the simulated world's person, 3 m ahead, 25 deg right at the start.
    ``observe``: each tick's telemetry goes to the behaviour's ``observe`` first, as a runner that supports it does."""
    from edgepilot.pilot.core.perception import PerceptionWorker
    from edgepilot.sim.render import SimCamera
    from edgepilot.sim.world import World
    from edgepilot.vision.pipeline import Perception

    monkeypatch.setattr(tello_emulator, "FULL_STICK_DEG_S", tello_emulator.FULL_STICK_DEG_S * gain)
    world = World.build(0, "drone", people=1)  # one person standing 3 m straight ahead
    person = world.people_at(0.0)[0]
    emulator = start_emulator(netns, auto_land_s=15.0,
                              camera_factory=lambda drone, clock: SimCamera(world, drone, clock, 960, 720))
    try:
        vehicle = connect(video=True)
        config = FollowConfig()
        tap = YawTap(emulator, (person.x_cm, person.y_cm), config.hfov_deg)
        pilot = Pilot(vehicle, name="tello", hz=30, supervisor=Supervisor("drone"), max_duration_s=FLIGHT_S,
                      can_see=True, follow_config=config, tap=tap)
        perception = Perception(detect=("face", "person"), person_every=2)
        if observe:
            tick = pilot._tick

            def observing_tick(t_s: float, now_s: float) -> bool:
                if pilot.behaviour is not None:
                    pilot.behaviour.observe(vehicle.telemetry())
                return tick(t_s, now_s)

            pilot._tick = observing_tick
        camera = DelayedCamera(vehicle.camera, delay_s, hidden) if delay_s else vehicle.camera
        worker = PerceptionWorker(camera, perception.process, pilot.seen.set, max_fps=15).start()
        try:
            result = pilot.run(parse_script(f"takeoff; up 60; ccw {TURN_AWAY_DEG}; follow me"))
        finally:
            worker.stop()
            if camera is not vehicle.camera:
                camera.close()
        assert worker.error is None
        following = sum(mode == "following" for _, _, mode in tap.ticks)
        assert following > 30 * 6, "the person was seen and followed for seconds"
        m = tap.metrics()
        log.info("follow flight (+%.1f s %s video latency, yaw gain %g%s): %s", delay_s,
                 "hidden" if hidden else "visible", gain, ", telemetry observed" if observe else "",
                 {k: round(v, 3) for k, v in m.items()})
        assert m["initial_offset_frac"] > 0.2, m  # the person started well right of the centre: yaw had work to do
        assert m["flips_per_s"] == 0, m
        # The slew limit: 4 deg/s a tick at 30 Hz; a late tick may take up to MAX_SLEW_STEP_S worth.
        assert m["max_step_deg_s"] <= config.yaw_accel_deg_s2 * MAX_SLEW_STEP_S + 1e-6, m
        assert m["max_settled_offset_frac"] <= 0.10, m
        truth = emulator.drone_state()
        assert truth["flying"] is False and result.failure is None
    finally:
        emulator.stop()
