import json
import threading

import pytest

from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.runner import Pilot
from edgepilot.pilot.record.files import TICKS, read_jsonl
from edgepilot.pilot.record.recorder import Recorder
from edgepilot.sim.vehicles import SimDrone


class Probe:
    """A second tap: snapshots the status at chosen ticks, from the loop's thread."""

    def __init__(self, status: RunStatus, at: set[int]) -> None:
        self.status, self.at, self.ticks, self.seen = status, at, 0, {}

    def on_tick(self, *args) -> None:
        self.ticks += 1
        if self.ticks in self.at:
            self.seen[self.ticks] = self.status.snapshot()

    def on_command(self, record) -> None: ...

    def on_event(self, event) -> None: ...


def test_status_follows_a_flight_and_is_plain_json():
    clock = FakeClock()
    pilot = Pilot(SimDrone(clock), clock=clock)
    status = RunStatus().attach(pilot)
    probe = Probe(status, {1, 150})
    pilot.add_tap(probe)
    result = pilot.run(parse_script("takeoff; up 50; cw 90; land"))
    first, airborne = probe.seen[1], probe.seen[150]
    assert first["mode"] == "taking off" and first["vehicle"] == "drone" and first["kind"] == "drone"
    assert airborne["flying"] is True and airborne["height_cm"] > 50
    assert airborne["loop_hz"] == pytest.approx(30, abs=0.5)
    assert airborne["link"]["lost"] is False and 0 < airborne["link"]["auto_land_in_s"] <= 15
    assert [c["command"] for c in airborne["commands"]][:1] == ["takeoff"]
    final = status.snapshot()
    assert final["flying"] is False and final["mode"] == "landed"
    assert [c["command"] for c in final["commands"]] == [c.command for c in result.commands]
    assert final["pose"]["yaw_deg"] == pytest.approx(result.final.yaw_deg, abs=1)
    assert final["safety"]["state"] == "ok" and final["safety"]["limits"]["land_battery_pct"] == 10
    assert json.loads(json.dumps(final)) == final
    history = status.history()
    assert max(point[3] for point in history) > 100 and history[0][0] < history[-1][0]


def test_status_records_safety_taking_over():
    clock = FakeClock()
    drone = SimDrone(clock, battery_pct=21)
    drone.drain_flying_pct_s = 1.0
    pilot = Pilot(drone, clock=clock, max_duration_s=120)
    status = RunStatus().attach(pilot)
    pilot.run(parse_script("takeoff; wait 100"))
    safety = status.snapshot()["safety"]
    assert safety["state"] == "battery_land" and "battery" in safety["last"]
    assert safety["overrides"] >= 1 and safety["last_command"] == "land (ok)"


def test_status_and_the_recorder_watch_the_same_run(tmp_path):
    clock = FakeClock()
    pilot = Pilot(SimDrone(clock), clock=clock)
    status = RunStatus().attach(pilot)
    recorder = Recorder(tmp_path / "run")
    recorder.attach(pilot)
    pilot.run(parse_script("takeoff; land"))
    recorder.close()
    ticks, _ = read_jsonl(tmp_path / "run" / TICKS)
    assert status.snapshot()["ticks"] == len(ticks) > 30  # both saw every tick


def test_snapshot_is_safe_to_read_from_another_thread_during_the_run():
    clock = FakeClock()
    pilot = Pilot(SimDrone(clock), clock=clock)
    status = RunStatus().attach(pilot)
    status.note_heard("take of", None, "not a command")
    done = threading.Event()
    reads: list[dict] = []

    def read() -> None:
        while not done.is_set():
            reads.append(status.snapshot())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        pilot.run(parse_script("takeoff; up 50; cw 360; land"))
    finally:
        done.set()
        reader.join()
    assert len(reads) > 10
    assert all(r["heard"]["understood"] is False for r in reads)
    assert [r["ticks"] for r in reads] == sorted(r["ticks"] for r in reads)


def test_snapshot_lists_who_can_be_followed_by_name():
    clock = FakeClock()
    pilot = Pilot(SimDrone(clock), clock=clock, names=["Ada", "Grace"], max_ticks=3)
    status = RunStatus().attach(pilot)
    pilot.run()
    assert status.snapshot()["enrolled"] == ["Ada", "Grace"]
