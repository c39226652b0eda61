#!/usr/bin/env python3
"""Clustering purity of the faces learned from runs (``edgepilot faces review``), on clips made from real photos.

    python scripts/bench_faces_cluster.py [--seeds 3] [--json]

Scenes (tests/vision_synth.py, photos from face_recognition's test set, MIT): two strangers walking towards each other,
the two crossing (each passes in front once: tracks break and swap), and a stranger replaced by another in the same
place. For each: the faces sampled (unknown_faces, default ClusterConfig), the clusters found against the people really
in view, purity (share of faces in their cluster's majority person) and the time per embedding.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from vision_synth import crossing, photos, replacement, scene_clip, who  # noqa: E402

from edgepilot.pilot.core.messages import Frame  # noqa: E402
from edgepilot.vision.face_clusters import cluster, purity, unknown_faces  # noqa: E402


def two_strangers(frames: int = 60):
    a = [(60 + 3.5 * i, 220 + 3 * np.sin(i / 6), 100, 3 * np.sin(i / 9)) for i in range(frames)]
    b = [(580 - 3.5 * i, 235 + 3 * np.sin(i / 5), 105, -3 * np.sin(i / 8)) for i in range(frames)]
    return [(photos()["obama2.jpg"], a), (photos()["biden.jpg"], b)]


SCENES = {"two strangers": two_strangers, "crossing": lambda: crossing("biden", 90),
          "replacement": lambda: replacement(10, 60)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for name, make in SCENES.items():
        for seed in range(args.seeds):
            people = make()
            clip, truth = scene_clip(people, seed=seed)
            started = time.perf_counter()
            samples = unknown_faces((Frame(im, i / 30.0, i) for i, im in enumerate(clip)), name)
            elapsed = time.perf_counter() - started
            labels = [who(s.box, truth[s.frame]) for s in samples]
            groups = cluster([s.embedding for s in samples])
            rows.append({"scene": name, "seed": seed, "people": len(people), "faces": len(samples),
                         "clusters": len(groups), "purity": round(purity(groups, labels), 3),
                         "unmatched_faces": sum(label is None for label in labels), "seconds": round(elapsed, 2)})
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'scene':<15}{'seed':>5}{'people':>8}{'faces':>7}{'clusters':>10}{'purity':>8}{'time s':>8}")
    for r in rows:
        print(f"{r['scene']:<15}{r['seed']:>5}{r['people']:>8}{r['faces']:>7}{r['clusters']:>10}{r['purity']:>8.3f}"
              f"{r['seconds']:>8.2f}")
    total = sum(r["faces"] for r in rows)
    weighted = sum(r["purity"] * r["faces"] for r in rows) / max(1, total)
    right = sum(r["clusters"] == r["people"] for r in rows)
    print(f"purity over all {total} faces: {weighted:.3f}; clusters == people in {right} of {len(rows)} clips; "
          f"median clip time {statistics.median(r['seconds'] for r in rows):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
