import pytest

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.loop import FixedRateLoop


def test_fake_clock_loop_ticks_on_deadlines_without_drift():
    clock = FakeClock()
    seen = []
    stats = FixedRateLoop(30, clock, max_ticks=300).run(lambda tick, now: seen.append(now) or True)
    assert stats.ticks == 300
    assert stats.overruns == 0
    assert seen[-1] == pytest.approx(299 / 30, abs=1e-6)
    assert stats.achieved_hz == pytest.approx(30, rel=1e-6)
    assert stats.jitter_ms(99) == pytest.approx(0, abs=1e-6)


def test_slow_step_counts_an_overrun_and_skips_missed_ticks():
    clock = FakeClock()
    seen = []

    def step(tick, now):
        seen.append(now)
        if tick == 3:
            clock.advance(0.25)  # 2.5 periods of 0.1 s
        return True

    stats = FixedRateLoop(10, clock, max_ticks=8).run(step)
    assert stats.overruns == 1
    # Ticks stay anchored to the start: after the overrun the next tick is at the next whole period (0.6 s).
    assert seen[:6] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.6, 0.7])


def test_step_returning_false_stops_the_loop():
    stats = FixedRateLoop(50, FakeClock()).run(lambda tick, now: tick < 4)
    assert stats.ticks == 5


def test_invalid_rate_is_refused():
    with pytest.raises(ValueError, match="0.1-1000 Hz"):
        FixedRateLoop(0)


def test_real_clock_loop_keeps_rate():
    stats = FixedRateLoop(100, max_ticks=30).run(lambda tick, now: True)
    assert stats.ticks == 30
    assert 50 < stats.achieved_hz < 110  # a shared machine may be slow, but never faster than asked
