#!/usr/bin/env python3
"""The learned driver beside the computer-vision autopilot in the simulator: laps in 60 s, largest lane offset,
collisions and stops for the people who step onto the road (the same person stop guards both), per world seed, and
the median time each driver spends per frame.

Usage: ``python scripts/bench_car_drivers.py driver.tflite [--seeds 1 2 3] [--seconds 60] [--no-people]
[--drivers lane learned]``. The model card says which worlds taught the model (the world seed of each training run):
a row in one of them is marked "seen", the others "held out".
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from edgepilot.pilot.app.driver_model import card_path, load_driver
from edgepilot.pilot.app.scenarios import car_world, run_car
from edgepilot.robot_car.lane import LaneBehaviour, LaneConfig
from edgepilot.robot_car.learned import LearnedDriver


def timed(behaviour, times: list[float]):
    update = behaviour.update

    def wrapped(seen, now_s):
        start = time.perf_counter()
        try:
            return update(seen, now_s)
        finally:
            times.append(time.perf_counter() - start)

    behaviour.update = wrapped
    return behaviour


def training_worlds(model: Path) -> set[int]:
    """The simulator worlds the model card says its training runs were driven in."""
    card = card_path(model)
    runs = json.loads(card.read_text()).get("runs", []) if card.is_file() else []
    return {run["world_seed"] for run in runs if run.get("world_seed") is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-people", action="store_true", help="no one crosses the road (and no detector runs)")
    parser.add_argument("--drivers", nargs="+", choices=("lane", "learned"), default=["lane", "learned"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    infer = load_driver(args.model)
    def detector():
        """A fresh one per run: a tracker carried from one run into the next (whose clock starts at 0 again) could
        keep a person of the last run in view."""
        if args.no_people:
            return None
        from edgepilot.vision.pipeline import Perception

        return Perception(detect=("person",), person_detector="pose", person_every=3).process

    drivers = {
        "lane": lambda camera, times: timed(LaneBehaviour(camera, LaneConfig(half_width_cm=17.5),
                                                          speed_cm_s=30.0), times),
        "learned": lambda camera, times: timed(LearnedDriver(infer, camera, half_width_cm=17.5), times),
    }
    drivers = {name: drivers[name] for name in args.drivers}
    taught = training_worlds(args.model)
    rows = []
    for seed in args.seeds:
        for name, make in drivers.items():
            times: list[float] = []
            crossings = () if args.no_people else (0.35, 0.85)
            report = run_car(car_world(seed, crossings=crossings), seconds=args.seconds, detect=detector(),
                             crossings=len(crossings), driver=lambda camera, make=make, times=times: make(camera, times))
            rows.append({"driver": name, "seed": seed, "world": "seen" if seed in taught else "held out",
                         "laps": round(report.laps, 2),
                         "max_offset_cm": round(report.max_offset_cm, 1),
                         "mean_offset_cm": round(report.mean_offset_cm, 1),
                         "left_lane": report.max_offset_cm > report.half_width_cm,
                         "collisions": report.collisions, "stops_for_person": report.stops_for_person,
                         "crossings": len(crossings), "false_stops": report.false_stops,
                         "ms_per_frame_median": round(statistics.median(times) * 1000.0, 2)})
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'driver':<10} {'seed':>4} {'world':>9} {'laps':>5} {'max off':>8} {'mean off':>8} {'left lane':>9} {'coll':>4} "
          f"{'stops':>7} {'false':>5} {'ms/frame':>8}")
    for r in rows:
        print(f"{r['driver']:<10} {r['seed']:>4} {r['world']:>9} {r['laps']:>5} {r['max_offset_cm']:>8} {r['mean_offset_cm']:>8} "
              f"{r['left_lane']!s:>9} {r['collisions']:>4} {r['stops_for_person']:>3}/{r['crossings']:<3} "
              f"{r['false_stops']:>5} {r['ms_per_frame_median']:>8}")
    print("(lane half-width 17.5 cm: an offset above it means a wheel of the car's centre left the lane)")


if __name__ == "__main__":
    main()
