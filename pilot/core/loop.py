"""The fixed-rate loop: ticks against monotonic deadlines (no drift), counts overruns, keeps period statistics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgepilot.pilot.core.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

#: step(tick_index, now_s) -> True to keep going, False to stop.
Step = Callable[[int, float], bool]


@dataclass
class LoopStats:
    hz: float
    ticks: int = 0
    overruns: int = 0
    periods_s: list[float] = field(default_factory=list)

    @property
    def achieved_hz(self) -> float:
        if not self.periods_s:
            return 0.0
        return 1.0 / float(np.mean(self.periods_s))

    def jitter_ms(self, percentile: float) -> float:
        """Percentile of |period - nominal| in milliseconds."""
        if not self.periods_s:
            return 0.0
        deviation = np.abs(np.asarray(self.periods_s) - 1.0 / self.hz)
        return float(np.percentile(deviation, percentile) * 1000.0)

    def period_ms(self, percentile: float) -> float:
        if not self.periods_s:
            return 0.0
        return float(np.percentile(self.periods_s, percentile) * 1000.0)

    def summary(self) -> dict[str, float | int]:
        return {
            "hz": self.hz,
            "achieved_hz": round(self.achieved_hz, 2),
            "overruns": self.overruns,
            "p99_period_ms": round(self.period_ms(99), 2),
            "p99_jitter_ms": round(self.jitter_ms(99), 2),
        }


class FixedRateLoop:
    """Call ``step`` at ``hz`` until it returns False or ``max_ticks`` is reached.

    Tick *k* is due at ``start + k / hz``. A step that runs past the next deadline is an overrun: the missed ticks are
    skipped (not bunched up) and the schedule stays anchored to the start, so there is no drift.
    """

    def __init__(self, hz: float = 30.0, clock: Clock | None = None, max_ticks: int | None = None) -> None:
        if not 0.1 <= hz <= 1000:
            raise ValueError(f"loop rate must be 0.1-1000 Hz, got {hz:g}")
        self.hz = float(hz)
        self.period_s = 1.0 / self.hz
        self.clock = clock or MonotonicClock()
        self.max_ticks = max_ticks
        self.stats = LoopStats(hz=self.hz)

    def run(self, step: Step) -> LoopStats:
        clock = self.clock
        start = clock.now()
        due_index = 0
        last_tick_s: float | None = None
        while self.max_ticks is None or self.stats.ticks < self.max_ticks:
            now = clock.now()
            if last_tick_s is not None:
                self.stats.periods_s.append(now - last_tick_s)
            last_tick_s = now
            keep_going = step(self.stats.ticks, now)
            self.stats.ticks += 1
            if not keep_going:
                break
            due_index += 1
            after = clock.now()
            behind = int((after - start) / self.period_s) - due_index + 1
            if behind > 0:
                self.stats.overruns += 1
                due_index += behind
                log.debug("loop overrun at tick %d: skipped %d tick(s)", self.stats.ticks, behind)
            clock.sleep(start + due_index * self.period_s - clock.now())
        return self.stats
