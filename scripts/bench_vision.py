#!/usr/bin/env python3
"""Vision benchmark: the naive face_recognition loop against our pipeline, on the same 640x480 frames, one core.

    nice python scripts/bench_vision.py [--frames 90] [--json]

Frames: a synthetic camera clip made from a real photo (tests/vision_synth.py: the face moves, zooms from ~30 to
~140 px, turns, with sensor noise and motion blur), obama enrolled from another photo.

1. naive: ``face_recognition.face_locations`` + ``face_encodings`` + ``compare_faces`` on every frame (what hobby
   projects do; needs ``pip install --no-deps face_recognition``);
2. ours: ``edgepilot.vision.pipeline.Perception`` (BlazeFace full range + tracker + dlib identity only when a track needs it);
3. ours on scenes of two people (tests/vision_synth.py): an enrolled person leaves and, ten frames later, a stranger
   shows up in the same place; two enrolled people crossing, each in front once. Reported: time per frame,
   embeddings (at most one per frame), and frames where a face carried someone else's name;
4. the detectors alone at 1 and 2 threads: BlazeFace short / full range, the pedestrian SSDLite (whole frame and with
   2 tiles per row), the BlazePose detector;
5. peak RSS after our pipeline, and at the end.

``--recall`` instead measures person recall on real video: the hand-labelled frames of
tests/data/vision/people_boxes.json (a 1906 street film with pedestrians near and far, and a cyclist close up).

The comparison runs pinned to one core (``sched_setaffinity``); the 2-thread rows get both cores back.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from edgepilot.pilot.core.messages import Frame  # noqa: E402


def stats(times_s: list[float]) -> dict[str, float]:
    ms = np.array(times_s) * 1e3
    return {"median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "mean_ms": round(float(ms.mean()), 2)}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_ours(clip: list[np.ndarray], faces_dir: Path, detect: tuple[str, ...] = ("face",)) -> dict:
    from edgepilot.vision.pipeline import Perception

    perception = Perception(detect=detect, faces_dir=faces_dir, threads=1)
    perception.process(Frame(clip[0], -10.0))  # warm-up: loads dlib, first inference
    perception.reset()
    times, named = [], 0
    for i, image in enumerate(clip):
        t0 = time.perf_counter()
        detections = perception.process(Frame(image, i / 30.0, i))
        times.append(time.perf_counter() - t0)
        named += any(d.name == "obama" for d in detections)
    namer = perception.namer
    return {**stats(times), "frames_named_correctly": named, "frames": len(clip),
            "embeddings": namer.embeddings_computed - 1 if namer else 0}


def bench_people(only_obama: Path, both: Path, background: bool = False) -> dict:
    """Our face pipeline on the two-person scenes: per-frame time, embeddings, wrong-name frames.

    ``background``: embeddings in their own process (live runs), frames fed at a camera's 30 fps (the answer takes
    wall-clock time); the embedding process gets the other core, as it would on a Pi's four."""
    from vision_synth import crossing, replacement, scene_clip, who

    from edgepilot.vision.naming import NamingConfig
    from edgepilot.vision.pipeline import Perception

    scenes = [("replacement", replacement(), only_obama, 3), ("crossing", crossing("biden"), both, 5),
              ("crossing", crossing("obama"), both, 5)]
    times, wrong, unnamed, faces, embeddings, most = [], 0, 0, 0, 0, 0
    for _, people, faces_dir, seed in scenes:
        clip, truth = scene_clip(people, seed=seed)
        names = ["obama" if photo.name.startswith("obama") else "biden" for photo, _ in people]
        enrolled = {"obama"} if faces_dir == only_obama else {"obama", "biden"}
        perception = Perception(detect=("face",), faces_dir=faces_dir, threads=1,
                                naming=NamingConfig(background=background))
        if background:
            pinned = os.sched_getaffinity(0)
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # the process it starts keeps both
        perception.process(Frame(clip[0], -10.0))  # warm-up: loads dlib (or starts its process), first inference
        if background:
            os.sched_setaffinity(0, pinned)
            time.sleep(0.3)  # let the warm-up's embedding come back
            perception.process(Frame(clip[0], -9.0))
        perception.reset()
        done = perception.namer.embeddings_computed
        start = time.monotonic()
        for i, image in enumerate(clip):
            if background:
                time.sleep(max(0.0, start + i / 30.0 - time.monotonic()))
            t0 = time.perf_counter()
            detections = perception.process(Frame(image, i / 30.0, i))
            times.append(time.perf_counter() - t0)
            most = max(most, perception.namer.embeddings_computed - done)
            embeddings += perception.namer.embeddings_computed - done
            done = perception.namer.embeddings_computed
            for d in detections:
                person = who(d.box, truth[i])
                if person is None:
                    continue
                faces += 1
                truth_name = names[person] if names[person] in enrolled else None
                wrong += d.name is not None and d.name != truth_name
                unnamed += d.name is None and truth_name is not None
        perception.close()
    return {**stats(times), "frames": len(times), "faces": faces, "wrong_name": wrong, "unnamed_enrolled": unnamed,
            "embeddings": embeddings, "max_embeddings_per_frame": most}


def bench_naive(clip: list[np.ndarray], known: np.ndarray) -> dict:
    import face_recognition

    times, named = [], 0
    for image in clip:
        t0 = time.perf_counter()
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        locations = face_recognition.face_locations(rgb)
        encodings = face_recognition.face_encodings(rgb, locations)
        matches = [face_recognition.compare_faces([known], e)[0] for e in encodings]
        times.append(time.perf_counter() - t0)
        named += any(matches)
    return {**stats(times), "frames_named_correctly": named, "frames": len(clip)}


def bench_detector(make, image: np.ndarray, repeats: int) -> dict:
    detector = make()
    detector.detect(image)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        detector.detect(image)
        times.append(time.perf_counter() - t0)
    return stats(times)


def person_recall() -> int:
    """Recall (IoU >= 0.3 with a hand-labelled box) of each person-detector setting on the labelled frames."""
    from vision_synth import video

    from edgepilot.models import model_path
    from edgepilot.vision.detectors import PoseDetector
    from edgepilot.vision.nms import iou_matrix
    from edgepilot.vision.pipeline import PERSON_MODEL
    from edgepilot.vision.ssd import SsdDetector
    from edgepilot.vision.tiling import TiledDetector

    labels = json.loads((ROOT / "tests" / "data" / "vision" / "people_boxes.json").read_text())["videos"]
    frames = []
    for name, by_frame in labels.items():
        capture = cv2.VideoCapture(str(video(name)))
        for index, boxes in by_frame.items():
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, image = capture.read()
            if not ok:
                raise SystemExit(f"cannot read frame {index} of {name}")
            frames.append((f"{name}#{index}", image, np.array(boxes, float)))
        capture.release()

    def ssd(score: float):
        return SsdDetector(model_path(PERSON_MODEL), ["person"], 1, score)

    settings = {
        "ssdlite score>=0.3": ssd(0.3), "ssdlite score>=0.2 (default)": ssd(0.2),
        "ssdlite 0.2 + 2 tiles": TiledDetector(ssd(0.2), 2), "ssdlite 0.15 + 2 tiles": TiledDetector(ssd(0.15), 2),
        "blazepose": PoseDetector(), "blazepose + 2 tiles": PoseDetector(tiles=2),
    }
    total = sum(len(b) for _, _, b in frames)
    print(f"person recall on {len(frames)} labelled frames, {total} people (IoU >= 0.3)")
    print("  setting                        recall    unmatched detections   ms/frame")
    for name, detector in settings.items():
        hits = unmatched = 0
        t0 = time.perf_counter()
        for _, image, truth in frames:
            found = np.array([d.box for d in detector.detect(image)]).reshape(-1, 4)
            if len(found):
                iou = iou_matrix(truth, found)
                hits += int((iou.max(axis=1) >= 0.3).sum())
                unmatched += int((iou.max(axis=0) < 0.3).sum())
        ms = (time.perf_counter() - t0) / len(frames) * 1e3
        print(f"  {name:<30} {hits:>2}/{total} {hits / total:4.0%}   {unmatched:>10}            {ms:6.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=30, help="runs per detector latency row")
    parser.add_argument("--json", action="store_true", help="also print all numbers as one JSON line")
    parser.add_argument("--recall", action="store_true", help="measure person recall on labelled real video instead")
    args = parser.parse_args(argv)
    if args.recall:
        return person_recall()

    from vision_synth import face_clip, photos

    from edgepilot.models import model_path
    from edgepilot.vision.detectors import FaceDetector, PoseDetector
    from edgepilot.vision.identity import FaceDatabase, FaceEncoder
    from edgepilot.vision.pipeline import PERSON_MODEL
    from edgepilot.vision.ssd import SsdDetector
    from edgepilot.vision.tiling import TiledDetector

    paths = photos()
    clip = face_clip(paths["obama2.jpg"], frames=args.frames, seed=1)
    enrolment = cv2.imread(str(paths["obama.jpg"]))
    known = FaceEncoder().encode(enrolment, FaceDetector().detect(enrolment)[0].box)
    all_cores = os.sched_getaffinity(0)
    results: dict = {"frames": args.frames, "size": "640x480", "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        FaceDatabase(tmp).add("obama", [known])
        os.sched_setaffinity(0, {min(all_cores)})
        results["ours"] = bench_ours(clip, Path(tmp))
        results["peak_rss_mb_after_ours"] = peak_rss_mb()
        results["ours_face_and_person"] = bench_ours(clip, Path(tmp), ("face", "person"))
        with tempfile.TemporaryDirectory() as both:
            biden = cv2.imread(str(paths["biden.jpg"]))
            FaceDatabase(both).add("obama", [known])
            FaceDatabase(both).add("biden", [FaceEncoder().encode(biden, FaceDetector().detect(biden)[0].box)])
            results["ours_two_people"] = bench_people(Path(tmp), Path(both))
            results["ours_two_people_background"] = bench_people(Path(tmp), Path(both), background=True)
        try:
            results["naive"] = bench_naive(clip, known)
        except ImportError:
            results["naive"] = None
            print("naive loop skipped: pip install --no-deps face_recognition", file=sys.stderr)
    os.sched_setaffinity(0, all_cores)
    if results["naive"]:
        results["ratio_median"] = round(results["naive"]["median_ms"] / results["ours"]["median_ms"], 1)
        results["ratio_mean"] = round(results["naive"]["mean_ms"] / results["ours"]["mean_ms"], 1)
        results["ratio_p95"] = round(results["naive"]["p95_ms"] / results["ours"]["p95_ms"], 1)

    street = cv2.resize(clip[len(clip) // 2], (640, 480))
    detectors = {
        "blazeface_short": lambda t: FaceDetector("short", t),
        "blazeface_full": lambda t: FaceDetector("full", t),
        "person_ssdlite": lambda t: SsdDetector(model_path(PERSON_MODEL), ["person"], t),
        "person_ssdlite_tiles2": lambda t: TiledDetector(SsdDetector(model_path(PERSON_MODEL), ["person"], t), 2),
        "person_blazepose": lambda t: PoseDetector(t),
    }
    results["detectors"] = {}
    for name, make in detectors.items():
        results["detectors"][name] = {f"threads_{t}": bench_detector(lambda m=make, t=t: m(t), street, args.repeats)
                                      for t in (1, 2)}
    results["peak_rss_mb"] = peak_rss_mb()

    print(f"{args.frames} frames 640x480, one core      median ms   p95 ms   mean ms   named   embeddings")
    for key in ("naive", "ours", "ours_face_and_person"):
        r = results.get(key)
        if r:
            print(f"  {key:<34} {r['median_ms']:9.1f} {r['p95_ms']:8.1f} {r['mean_ms']:9.1f}"
                  f"   {r['frames_named_correctly']:>3}/{r['frames']}   {r.get('embeddings', r['frames'])}")
    for key, title in (("ours_two_people", "ours, two people, offline"),
                       ("ours_two_people_background", "ours, two people, live (bg embed)")):
        people = results[key]
        print(f"  {title:<34} {people['median_ms']:9.1f} {people['p95_ms']:8.1f} "
              f"{people['mean_ms']:9.1f}   {people['frames']} frames, {people['faces']} faces: "
              f"{people['wrong_name']} with a wrong name, {people['unnamed_enrolled']} enrolled unnamed; "
              f"{people['embeddings']} embeddings, at most {people['max_embeddings_per_frame']} a frame")
    if results.get("ratio_median"):
        print(f"  speed-up naive/ours: median {results['ratio_median']}x, mean {results['ratio_mean']}x, "
              f"p95 {results['ratio_p95']}x")
    print("detector latency (640x480)           1 thread med/p95     2 threads med/p95")
    for name, rows in results["detectors"].items():
        one, two = rows["threads_1"], rows["threads_2"]
        print(f"  {name:<34} {one['median_ms']:7.1f} / {one['p95_ms']:<7.1f}    {two['median_ms']:7.1f} / "
              f"{two['p95_ms']:.1f}")
    print(f"peak RSS: {results['peak_rss_mb_after_ours']} MB after our pipeline, {results['peak_rss_mb']} MB at the end")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
