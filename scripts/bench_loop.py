#!/usr/bin/env python3
"""Benchmark the control loop in real time: a 30 Hz loop driving the simulated drone with its camera rendered every
tick (and, with --full, face detection + tracking + the follow behaviour on every frame), for --seconds.

Prints achieved rate, overruns, period jitter (median / p99 of |period - 1/hz|), per-tick work time, peak RSS, and
the renderer's own fps for both vehicles at 640x480, all measured in this one run.

    python scripts/bench_loop.py                 # 60 s render-only loop + renderer fps
    python scripts/bench_loop.py --full          # + perception and follow (the demo's loop)
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pilot.grammar import parse_script  # noqa: E402
from pilot.messages import Seen  # noqa: E402
from pilot.runner import Pilot  # noqa: E402
from sim.render import SimCamera, benchmark  # noqa: E402
from sim.vehicles import SimDrone  # noqa: E402
from sim.world import Person, World  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def loop_run(seconds: float, hz: float, full: bool) -> dict:
    world = World.build(0, "drone", people=0).with_people(
        Person.create("alice", [(200, 0), (200, 200), (500, 200), (500, -200), (200, -200)], speed_cm_s=40.0,
                      start_s=3.0, mode="loop", seed=1))
    drone = SimDrone()
    camera = SimCamera(world, drone)
    perception = None
    if full:
        from vision.pipeline import Perception

        perception = Perception(detect=("face",))
    work_ms: list[float] = []

    def perceive(now_s: float) -> Seen:
        t0 = time.perf_counter()
        frame = camera.read()
        detections = tuple(perception.process(frame)) if perception else ()
        work_ms.append((time.perf_counter() - t0) * 1e3)
        return Seen(frame.t_s, frame.width, frame.height, detections, frame)

    script = "takeoff; up 80; follow me" if full else "takeoff; up 80; " + "; ".join(["cw 90", "ccw 90"] * 20)
    pilot = Pilot(drone, hz=hz, perceive=perceive, max_duration_s=seconds)
    result = pilot.run(parse_script(script))
    stats = result.loop
    return {
        "mode": "full (render + face detect/track + follow)" if full else "render only",
        "ticks": stats.ticks,
        "achieved_hz": round(stats.achieved_hz, 3),
        "overruns": stats.overruns,
        "jitter_p50_ms": round(stats.jitter_ms(50), 3),
        "jitter_p99_ms": round(stats.jitter_ms(99), 3),
        "p99_period_ms": round(stats.period_ms(99), 3),
        "work_p50_ms": round(float(np.median(work_ms)), 2),
        "work_p99_ms": round(float(np.percentile(work_ms, 99)), 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--full", action="store_true", help="also run perception and follow in the loop")
    args = parser.parse_args()

    print("renderer, one OpenCV thread, 640x480, 300 frames:")
    for kind in ("drone", "car"):
        r = benchmark(kind, 640, 480, frames=300)
        print(f"  {kind:5}: median {r['median_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  -> {r['fps']:.0f} fps "
              f"({r['fps'] / args.hz:.1f}x the {args.hz:g} Hz loop)")
    runs = [loop_run(args.seconds, args.hz, full=False)]
    if args.full:
        runs.append(loop_run(args.seconds, args.hz, full=True))
    for r in runs:
        print(f"loop {args.hz:g} Hz for {args.seconds:g} s, {r['mode']}:")
        print(f"  achieved {r['achieved_hz']} Hz over {r['ticks']} ticks, {r['overruns']} overruns")
        print(f"  jitter |period - {1000 / args.hz:.2f} ms|: median {r['jitter_p50_ms']} ms, p99 {r['jitter_p99_ms']} ms"
              f" (target < 5 ms); p99 period {r['p99_period_ms']} ms")
        print(f"  work per tick: median {r['work_p50_ms']} ms, p99 {r['work_p99_ms']} ms; "
              f"peak RSS so far {r['peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
