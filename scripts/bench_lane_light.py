#!/usr/bin/env python3
"""How the lane detector's confidence and offset error behave under shadows, glare, motion blur, exposure and
noise: simulator frames of the car at known offsets and headings on the straight and in the curve, each augmented
(``edgepilot.sim.augment``), medians over the frames. "sure+wrong" counts the frames the car would drive on at full
speed (confidence >= 0.5) with the lane centre more than 10 cm off: the detector must not be confidently wrong.

Usage: ``python scripts/bench_lane_light.py [--seeds 3]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.robot_car.lane import LaneConfig, LaneDetector
from edgepilot.sim.augment import AUGMENTS
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import Pose, SimCar
from edgepilot.sim.world import World

SURE = 0.5       # at or above it the car drives at full speed
WRONG_CM = 10.0  # a lane centre this far off puts a wheel on a line


def views(seed: int) -> list[tuple[np.ndarray, float]]:
    """(frame, true offset of the lane centre at the look-ahead, cm) on the straight, at offsets and headings."""
    world = World.build(seed, "car", people=0)
    track = world.track
    out = []
    for s_cm in (-70.0, -50.0):  # the straight, the next curve beyond the bird's-eye view
        for lateral in (-8.0, 0.0, 8.0):
            for yaw in (-8.0, 0.0, 8.0):
                x, y, heading = track.point_at(s_cm, lateral)
                clock = FakeClock()
                camera = SimCamera(world, SimCar(clock, origin=Pose(x, y, 0.0, heading + yaw)), clock)
                look = LaneConfig().lookahead_cm
                # On the straight the centre line, seen from a car `lateral` to its left and turned `yaw`: at
                # `look` ahead it is at -lateral - look * tan(yaw) (+ left).
                out.append((camera.read().image, -lateral - look * np.tan(np.radians(yaw))))
    return out


def measure(seeds: int) -> dict[str, dict[str, float]]:
    detector = None
    results: dict[str, dict[str, list[float]]] = {name: {"confidence": [], "error": [], "found": [],
                                                          "sure_error": []}
                                                   for name in AUGMENTS}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for image, truth in views(seed):
            if detector is None:
                from edgepilot.pilot.core.geometry import CameraModel
                from edgepilot.sim.render import CAR_MOUNT

                detector = LaneDetector(CameraModel(640, 480, CAR_MOUNT.hfov_deg, CAR_MOUNT.height_cm,
                                                    CAR_MOUNT.pitch_deg), LaneConfig(half_width_cm=17.5))
            for name, augment in AUGMENTS.items():
                estimate = detector.estimate(augment(image, rng))
                row = results[name]
                row["found"].append(float(estimate.found))
                row["confidence"].append(estimate.confidence if estimate.found else 0.0)
                if estimate.found:
                    row["error"].append(abs(estimate.offset_cm - truth))
                    if estimate.confidence >= SURE:
                        row["sure_error"].append(abs(estimate.offset_cm - truth))
    return {name: {"found": float(np.mean(r["found"])), "confidence_median": float(np.median(r["confidence"])),
                   "confidence_p10": float(np.percentile(r["confidence"], 10)),
                   "error_median_cm": float(np.median(r["error"])) if r["error"] else float("nan"),
                   "error_p90_cm": float(np.percentile(r["error"], 90)) if r["error"] else float("nan"),
                   "error_max_cm": float(np.max(r["error"])) if r["error"] else float("nan"),
                   "sure_and_wrong": int(np.sum(np.asarray(r["sure_error"]) > WRONG_CM)),
                   "frames": len(r["found"])}
            for name, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    table = measure(args.seeds)
    print(f"{'frames':<18} {'found':>6} {'conf median':>11} {'conf p10':>8} {'|err| median':>12} {'|err| p90':>9} "
          f"{'|err| max':>9} {'sure+wrong':>10}")
    for name, row in table.items():
        print(f"{name:<18} {row['found']:>6.0%} {row['confidence_median']:>11.2f} {row['confidence_p10']:>8.2f} "
              f"{row['error_median_cm']:>10.1f} cm {row['error_p90_cm']:>6.1f} cm {row['error_max_cm']:>6.1f} cm "
              f"{row['sure_and_wrong']:>4}/{row['frames']}")


if __name__ == "__main__":
    main()
