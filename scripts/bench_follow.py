#!/usr/bin/env python3
"""Benchmark the follow controller's yaw loop on the Tello's terms, the old controller against the new, side by side.

Each flight is tests/test_behaviours.py's closed loop (``fly_yaw``): a yaw-only drone whose yaw rate is ``gain`` x the
set-point (rounded to the rc stick's 1 deg/s), 10 Hz telemetry in whole degrees, 15 fps frames reaching the behaviour
``latency`` after capture, a person starting 20-30 deg to one side; 30 Hz ticks, 8 s, no rendering. Over the grid
latency {0.1, 0.2, 0.3 s} x gain {0.5, 1, 2} it prints the medians over seeds of: sign flips per second (consecutive
set-points of opposite signs, both above 1 deg/s), the largest tick-to-tick step (deg/s), the settling time (s, from
then on within 5% of the image width of the centre; inf: never) and the final error (mean |offset| over the last
second, % of the image width).

"old" is the controller before the fix (kept below as the baseline): PID kp 90 / ki 10 / kd 8 on the image error,
shifted by (the yaw rate just sent) x (the frame's age), no slew limit. "new" is
:class:`edgepilot.pilot.core.behaviours.FollowTarget` as the runner uses it today (turn since the frame predicted
from the set-points sent) and, with ``--telemetry``, also given each tick's telemetry (turn measured).

    python scripts/bench_follow.py                 # 10 seeds
    python scripts/bench_follow.py --seeds 30 --hidden 0.1 --walk 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_behaviours import flight_metrics, fly_yaw  # noqa: E402

from edgepilot.pilot.core.behaviours import PID, FollowConfig, FollowState, FollowTarget, PIDGains  # noqa: E402
from edgepilot.pilot.core.messages import HOVER, Seen, Telemetry, Velocity  # noqa: E402

LATENCIES_S = (0.1, 0.2, 0.3)
GAINS = (0.5, 1.0, 2.0)
OLD_GAINS = {"yaw": PIDGains(kp=90.0, ki=10.0, kd=8.0, out_limit=60.0, dead_band=0.03),
             "climb": PIDGains(kp=60.0, ki=5.0, kd=4.0, out_limit=40.0, dead_band=0.05),
             "approach": PIDGains(kp=40.0, ki=3.0, kd=0.0, out_limit=40.0, dead_band=0.08)}


class OldFollow:
    """The follow controller before the fix, as it was (name checks and searching left out: the bench follows "me"
    and never loses the target). Its frame-age compensation is the rate just sent times the frame's age."""

    def __init__(self) -> None:
        self.config = FollowConfig()
        self._yaw, self._climb, self._approach = (PID(OLD_GAINS[axis]) for axis in ("yaw", "climb", "approach"))
        self._last_now_s: float | None = None
        self._yaw_cmd_deg_s = 0.0
        self.state = FollowState.HOLDING

    def observe(self, telemetry: Telemetry) -> None:
        """It had no use for telemetry."""

    def update(self, seen: Seen | None, now_s: float) -> Velocity:
        cfg = self.config
        dt = 0.0 if self._last_now_s is None else max(0.0, now_s - self._last_now_s)
        self._last_now_s = now_s
        if seen is None or now_s - seen.frame_t_s > cfg.stale_s or not seen.detections:
            for pid in (self._yaw, self._climb, self._approach):
                pid.reset()
            self._yaw_cmd_deg_s = 0.0
            return HOVER
        self.state = FollowState.FOLLOWING
        target = max(seen.detections, key=lambda d: d.area)
        cx, cy = target.center
        age_s = max(0.0, now_s - seen.frame_t_s)
        cx_now = cx + self._yaw_cmd_deg_s * age_s * seen.width / cfg.hfov_deg  # <- the command just sent x age
        half_w = seen.width / 2.0
        yaw = self._yaw.update(0.0, (cx_now - half_w) / half_w, dt)
        forward = self._approach.update(1.0, (target.box[2] - target.box[0]) / seen.width / cfg.target_size_frac, dt)
        climb = self._climb.update(0.0, cy / seen.height - cfg.target_y_frac, dt)
        self._yaw_cmd_deg_s = yaw
        return Velocity(vx_cm_s=forward, vz_cm_s=climb, yaw_rate_deg_s=yaw)


def medians(make, latency_s: float, gain: float, seeds: int, **flight) -> dict[str, float]:
    runs = [flight_metrics(fly_yaw(make, latency_s=latency_s, gain=gain, seed=seed, **flight)) for seed in range(seeds)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def cell(m: dict[str, float]) -> str:
    settle = "inf" if m["settling_s"] == float("inf") else f"{m['settling_s']:.1f}"
    return (f"{m['flips_per_s']:5.1f} {m['max_step_deg_s']:5.1f} {settle:>5} "
            f"{100 * m['final_error_frac']:5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--hidden", type=float, default=0.0,
                        help="seconds of the latency the frame stamps do not show (a real Tello's glass-to-decode)")
    parser.add_argument("--walk", type=float, default=0.0, help="the person walks around the drone at this deg/s")
    args = parser.parse_args()
    controllers = {"old": (OldFollow, False), "new": (lambda: FollowTarget("me"), False),
                   "new+telemetry": (lambda: FollowTarget("me"), True)}
    flight = {"seconds": args.seconds, "hidden_s": args.hidden, "walk_deg_s": args.walk}
    print(f"{args.seeds} seeds, {args.seconds:g} s flights, hidden latency {args.hidden:g} s, walk {args.walk:g} deg/s; "
          "medians. Columns per controller: flips/s, largest step (deg/s), settling (s), final error (% width)")
    header = "".join(f" | {name:^23}" for name in controllers)
    print(f"{'latency':>7} {'gain':>4}{header}")
    started = time.perf_counter()
    for latency_s in LATENCIES_S:
        for gain in GAINS:
            row = "".join(f" | {cell(medians(make, latency_s, gain, args.seeds, telemetry=telemetry, **flight))}"
                          for make, telemetry in controllers.values())
            print(f"{latency_s:7.1f} {gain:4.1f}{row}", flush=True)
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
