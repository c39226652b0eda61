"""A fleet show (``edgepilot fleet run show.toml``): one script per vehicle, played in lockstep over the bus.

Every vehicle must be on the bus first; then all start together (``start_in_s`` after the last one is seen) and the
show goes step by step: step k of every script is sent at the same moment, and step k+1 only when every vehicle has
finished step k (its command was accepted and the vehicle is idle again: hovering, landed or stopped). ``wait S`` is
kept here (the vehicle just holds). A vehicle with fewer steps holds. Should any vehicle have an emergency (safety took
over, its run ended, a step was refused or timed out) or leave the bus, every vehicle lands (``on_emergency`` /
``on_lost = "continue"`` instead drops only that vehicle from the show).

```toml
start_in_s = 2          # shared start, seconds after every vehicle is on the bus
step_timeout_s = 30     # a step not finished by then is an emergency
on_emergency = "land_all"
on_lost = "land_all"

[vehicles]
t1 = "takeoff; up 50; cw 90; land"
t2 = "takeoff; wait 2; land"
```
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgepilot.pilot.app.bus import check_name
from edgepilot.pilot.app.fleet_view import FleetView
from edgepilot.pilot.core.errors import EdgepilotError, InputError
from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.messages import Command

log = logging.getLogger(__name__)

POLICIES = ("land_all", "continue")
#: Modes in which a vehicle has finished what it was told.
IDLE_MODES = ("hovering", "landed", "blocked")
#: Events after which a vehicle is in trouble (the status's safety take-overs, and its run ending).
EMERGENCY_EVENTS = ("battery_land", "fence_breach", "link_lost", "link_land", "aborted", "run_ended", "crashed")
TAG = "fleet"


@dataclass(frozen=True)
class Show:
    vehicles: dict[str, tuple[Command, ...]]
    start_in_s: float = 2.0
    step_timeout_s: float = 30.0
    on_emergency: str = "land_all"
    on_lost: str = "land_all"
    join_timeout_s: float = 30.0

    @classmethod
    def load(cls, path: Path) -> Show:
        try:
            with open(path, "rb") as handle:
                settings = tomllib.load(handle)
        except FileNotFoundError:
            raise InputError(f"no such show file: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path} is not valid TOML: {exc}") from None
        vehicles = settings.pop("vehicles", None)
        if not isinstance(vehicles, dict) or not vehicles:
            raise InputError(f"{path}: needs a [vehicles] table, one 'name = \"script\"' line per vehicle")
        scripts: dict[str, tuple[Command, ...]] = {}
        for name, script in vehicles.items():
            check_name(name)
            if not isinstance(script, str):
                raise InputError(f"{path}: vehicles.{name} must be a script string, e.g. \"takeoff; up 50; land\"")
            try:
                scripts[name] = tuple(parse_script(script, TAG))
            except EdgepilotError as exc:
                raise InputError(f"{path}: vehicles.{name}: {exc}") from None
        known = {f.name for f in dataclasses.fields(cls)} - {"vehicles"}
        for key, value in settings.items():
            if key not in known:
                raise InputError(f"{path}: unknown setting {key!r}; known: {', '.join(sorted(known))}, [vehicles]")
            if key.startswith("on_") and value not in POLICIES:
                raise InputError(f"{path}: {key} must be one of {', '.join(POLICIES)}, got {value!r}")
            if key.endswith("_s") and not (isinstance(value, int | float) and not isinstance(value, bool)
                                           and math.isfinite(value) and 0 <= value <= 3600):
                raise InputError(f"{path}: {key} must be 0-3600 s, got {value!r}")
        return cls(vehicles=scripts, **settings)


@dataclass
class _Step:
    command: Command
    sent_s: float
    accepted_t_s: float | None = None  # the vehicle's run time when it took the command
    done_s: float | None = None


@dataclass
class ShowResult:
    completed: bool
    failure: str | None = None
    steps: list[dict] = field(default_factory=list)  # {step, vehicle, command, sent_s, done_s} from the start

    def as_dict(self) -> dict:
        return {"completed": self.completed, "failure": self.failure, "steps": self.steps}


class ShowRunner:
    def __init__(self, view: FleetView, show: Show, say: Callable[[str], None] = print) -> None:
        self.view = view
        self.show = show
        self.say = say
        self.dropped: set[str] = set()

    def run(self) -> ShowResult:
        names = list(self.show.vehicles)
        if not self.view.wait_for(lambda v: all(v.get(n).alive and v.get(n).telemetry for n in names),
                                  self.show.join_timeout_s):
            missing = [n for n in names if not (self.view.get(n).alive and self.view.get(n).telemetry)]
            raise InputError(f"not on the bus after {self.show.join_timeout_s:g} s: {', '.join(missing)} (start "
                             f"them with 'edgepilot fly --bus zenoh --name NAME')")
        self.say(f"all {len(names)} vehicles on the bus; starting in {self.show.start_in_s:g} s")
        time.sleep(self.show.start_in_s)
        start = time.monotonic()
        result = ShowResult(completed=False)
        for k in range(max(len(s) for s in self.show.vehicles.values())):
            steps = {name: _Step(script[k], time.monotonic()) for name, script in self.show.vehicles.items()
                     if k < len(script) and name not in self.dropped}
            for name, step in steps.items():
                if step.command.verb != "wait":
                    self.view.send(name, step.command.text)
            self.say(f"step {k + 1}: " + ", ".join(f"{n} {s.command.text}" for n, s in steps.items()))
            failure = self._wait_step(steps, start)
            for name, step in steps.items():
                result.steps.append({"step": k + 1, "vehicle": name, "command": step.command.text,
                                     "sent_s": round(step.sent_s - start, 3),
                                     "done_s": None if step.done_s is None else round(step.done_s - start, 3)})
            if failure is not None:
                result.failure = failure
                self.say(f"show stopped: {failure}; all land")
                self.view.send_all("land")
                self._wait_landed(names)
                return result
        result.completed = True
        self.say("show complete")
        return result

    def _wait_step(self, steps: dict[str, _Step], start: float) -> str | None:
        while True:
            for name in list(self.show.vehicles):
                trouble = self._trouble(name, start)
                if trouble is None or name in self.dropped:
                    continue
                policy = self.show.on_lost if trouble.startswith("lost") else self.show.on_emergency
                if policy == "land_all":
                    return f"{name}: {trouble}"
                self.say(f"{name}: {trouble}; it leaves the show")
                self.dropped.add(name)
                steps.pop(name, None)
            now = time.monotonic()
            for name, step in steps.items():
                if step.done_s is None and (error := self._progress(name, step, now)) is not None:
                    if self.show.on_emergency == "land_all":
                        return f"{name}: {error}"
                    self.dropped.add(name)
                    step.done_s = now
            if all(step.done_s is not None for step in steps.values()):
                return None
            time.sleep(0.05)

    def _progress(self, name: str, step: _Step, now: float) -> str | None:
        """Advance ``step``; an error text when it failed."""
        if now - step.sent_s > self.show.step_timeout_s:
            return f"{step.command.text!r} not finished after {self.show.step_timeout_s:g} s"
        if step.command.verb == "wait":
            if now - step.sent_s >= float(step.command.arg):
                step.done_s = now
            return None
        vehicle = self.view.get(name)
        if step.accepted_t_s is None:
            for record in list(vehicle.commands):
                if (record.get("received_s", 0) >= step.sent_s and record.get("command") == step.command.text
                        and record.get("source") == f"bus:{TAG}"):
                    if record.get("result") != "ok":
                        return f"{step.command.text!r} {record.get('result')}"
                    step.accepted_t_s = float(record.get("t_s", 0.0))
                    break
            return None
        telemetry = vehicle.telemetry
        if telemetry.get("t_s", -1) > step.accepted_t_s and telemetry.get("mode") in IDLE_MODES:
            step.done_s = now
        return None

    def _trouble(self, name: str, start: float) -> str | None:
        vehicle = self.view.get(name)
        if not vehicle.alive:
            return "lost (left the bus)"
        if vehicle.telemetry.get("mode") == "emergency":
            return "emergency"
        for event in list(vehicle.events):
            if event.get("received_s", 0) >= start and event.get("type") in EMERGENCY_EVENTS:
                return f"{event.get('type')}: {event.get('detail', '')}"
        return None

    def _wait_landed(self, names: list[str], timeout_s: float = 20.0) -> None:
        def down(view: FleetView) -> bool:
            return all(not view.get(n).alive or not view.get(n).telemetry.get("flying") for n in names)

        if not self.view.wait_for(down, timeout_s):
            flying = [n for n in names if self.view.get(n).telemetry.get("flying")]
            self.say(f"still flying after {timeout_s:g} s: {', '.join(flying)}")
