"""``edgepilot faces review|label|list|remove``: learn the faces a run saw, and look after the face database.

    edgepilot faces review RUN...            # group the unknown faces of runs/videos, write a contact sheet
    edgepilot faces label RUN CLUSTER NAME   # enrol the faces of one group as NAME
    edgepilot faces list                     # who is enrolled, how many faces each, from where
    edgepilot faces remove NAME

RUN is a recording folder (``--record``; its lossless ``frames.mkv`` is read), a video, or a folder of images. A review
is kept next to what it reviewed (``RUN/faces_review.json`` in a folder, ``VIDEO.faces_review.json`` beside a video,
with the embeddings in a ``.npy`` of the same name), so ``label`` needs no second pass over the video. Several runs
reviewed together are clustered together and each keeps the same review.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import InputError

REVIEW = "faces_review"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    review = sub.add_parser("review", help="cluster the unknown faces of runs and write a contact sheet")
    review.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="recording folder, video or image folder")
    review.add_argument("--sheet", type=Path, default=None, metavar="OUT.png",
                        help="contact sheet (default: beside the first run's review)")
    review.add_argument("--threshold", type=float, default=None,
                        help="clustering distance (default 0.5; lower splits more)")
    label = sub.add_parser("label", help="enrol the faces of one cluster of a review under a name")
    label.add_argument("run", type=Path, metavar="RUN")
    label.add_argument("cluster", type=int, metavar="CLUSTER", help="the cluster number on the contact sheet")
    label.add_argument("name", help="the person's name")
    sub.add_parser("list", help="enrolled people, their number of faces and where they came from")
    remove = sub.add_parser("remove", help="forget a person")
    remove.add_argument("name")
    for p in (review, label, sub.choices["list"], remove):
        p.add_argument("--faces", type=Path, default=None, metavar="DIR",
                       help="face database (default: $EDGEPILOT_FACES or ~/.local/share/edgepilot/faces)")
        p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    return {"review": _review, "label": _label, "list": _list, "remove": _remove}[args.action](args)


def _database(args: argparse.Namespace):
    from edgepilot.vision.identity import FaceDatabase, default_faces_dir

    return FaceDatabase(Path(args.faces).expanduser() if args.faces else default_faces_dir())


def review_path(run: Path) -> Path:
    """Where the review of ``run`` is kept (``.json``; the embeddings in the ``.npy`` beside it)."""
    run = run.expanduser()
    return run / f"{REVIEW}.json" if run.is_dir() else run.with_name(f"{run.name}.{REVIEW}.json")


def _frames_of(run: Path):
    from edgepilot.pilot.record.files import LOSSLESS_VIDEO, is_recording
    from edgepilot.vision.video_io import open_source

    run = run.expanduser()
    if is_recording(run):
        if not (run / LOSSLESS_VIDEO).is_file():
            raise InputError(f"{run} was recorded without camera frames ({LOSSLESS_VIDEO}); nothing to review")
        return open_source(run / LOSSLESS_VIDEO).frames
    return open_source(run).frames


def _review(args: argparse.Namespace) -> int:
    import cv2

    from edgepilot.vision.face_clusters import ClusterConfig, cluster, contact_sheet, unknown_faces

    config = ClusterConfig() if args.threshold is None else ClusterConfig(threshold=args.threshold)
    if not config.threshold > 0:
        raise InputError(f"--threshold must be above 0, got {config.threshold:g}")
    database = _database(args)
    samples = []
    for run in args.runs:
        samples += unknown_faces(_frames_of(run), str(run), database if len(database) else None, config)
    groups = cluster([s.embedding for s in samples], config.threshold)
    clusters = [{"cluster": k, "faces": len(members), "runs": sorted({samples[i].source for i in members}),
                 "seconds": [round(samples[i].t_s, 2) for i in members], "name": None,
                 "members": [{"source": samples[i].source, "frame": samples[i].frame, "t_s": round(samples[i].t_s, 3),
                              "track": samples[i].track, "box": [round(v, 1) for v in samples[i].box],
                              "row": i} for i in members]}
                for k, members in enumerate(groups)]
    review = {"runs": [str(r) for r in args.runs], "threshold": config.threshold, "clusters": clusters}
    embeddings = np.array([s.embedding for s in samples]).reshape(-1, 128)
    for run in args.runs:
        path = review_path(run)
        _save(path, review, embeddings)
    titles = [f"cluster {c['cluster']}\n{c['faces']} faces\n{len({(m['source'], m['track']) for m in c['members']})}"
              f" track(s)" for c in clusters]
    sheet_path = args.sheet or review_path(args.runs[0]).with_suffix(".png")
    sheet = contact_sheet([s.thumbnail for s in samples], groups, titles)
    if not cv2.imwrite(str(sheet_path), sheet):
        raise InputError(f"cannot write the contact sheet {sheet_path}")
    if args.json:
        print(json.dumps({"faces": len(samples), "clusters": [{k: c[k] for k in ("cluster", "faces", "runs")}
                                                              for c in clusters],
                          "sheet": str(sheet_path), "review": [str(review_path(r)) for r in args.runs]}))
    else:
        print(f"{len(samples)} unknown face(s) in {len(clusters)} cluster(s); contact sheet: {sheet_path}")
        for c in clusters:
            print(f"  cluster {c['cluster']}: {c['faces']} faces, seen at {_span(c['seconds'])} in "
                  f"{', '.join(c['runs'])}")
        if clusters:
            print(f"name one: edgepilot faces label {args.runs[0]} CLUSTER NAME")
    return 0


def _span(seconds: list[float]) -> str:
    return f"{min(seconds):.1f}-{max(seconds):.1f} s" if seconds else "-"


def _save(path: Path, review: dict, embeddings: np.ndarray) -> None:
    from edgepilot.pilot.record.files import write_json_atomic

    part = path.with_suffix(".npy.part")
    with open(part, "wb") as f:
        np.save(f, embeddings, allow_pickle=False)
    part.replace(path.with_suffix(".npy"))
    write_json_atomic(path, review)


def _load(run: Path) -> tuple[dict, np.ndarray]:
    path = review_path(run)
    if not path.is_file():
        raise InputError(f"{run} has not been reviewed: run 'edgepilot faces review {run}' first")
    try:
        review = json.loads(path.read_text(encoding="utf-8"))
        embeddings = np.load(path.with_suffix(".npy"), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"the review {path} is unreadable ({exc}); run 'edgepilot faces review {run}' again") from None
    return review, embeddings


def _label(args: argparse.Namespace) -> int:
    from edgepilot.vision.identity import check_name

    name = check_name(args.name)
    review, embeddings = _load(args.run)
    clusters = review.get("clusters", [])
    if not 0 <= args.cluster < len(clusters):
        raise InputError(f"{args.run}'s review has clusters 0-{len(clusters) - 1}, not {args.cluster}"
                         if clusters else f"{args.run}'s review found no unknown faces")
    chosen = clusters[args.cluster]
    if chosen.get("name"):
        raise InputError(f"cluster {args.cluster} of {args.run} was already enrolled as {chosen['name']}; nothing "
                         f"was added (review the run again to see who is still unknown)")
    rows = [m["row"] for m in chosen["members"]]
    sources = [f"run:{m['source']}#frame={m['frame']},t={m['t_s']:.2f}s,track={m['track']}" for m in chosen["members"]]
    database = _database(args)
    known = database.find(name)
    path = database.add(known or name, embeddings[rows], sources)
    chosen["name"] = known or name
    _save(review_path(args.run), review, embeddings)
    total = len(database.embeddings(known or name))
    if args.json:
        print(json.dumps({"name": known or name, "faces": len(rows), "embeddings": total, "file": str(path)}))
    else:
        print(f"enrolled {known or name} from {len(rows)} face(s) of cluster {args.cluster} ({total} in total) "
              f"in {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    database = _database(args)
    people = []
    for name in database.names:
        sources = database.sources(name)
        kinds = {"photo": sum(s.startswith("photo:") for s in sources), "run": sum(s.startswith("run:") for s in sources)}
        kinds["unknown"] = len(sources) - kinds["photo"] - kinds["run"]
        people.append({"name": name, "embeddings": len(sources), "from": kinds, "sources": sources})
    if args.json:
        print(json.dumps({"faces": str(database.directory), "people": people}))
    elif not people:
        print(f"nobody is enrolled in {database.directory}")
    else:
        print(f"{len(people)} enrolled in {database.directory}:")
        for p in people:
            where = ", ".join(f"{n} from {k}s" if k != "unknown" else f"{n} of unknown origin"
                              for k, n in p["from"].items() if n)
            print(f"  {p['name']}: {p['embeddings']} face(s) ({where})")
    return 0


def _remove(args: argparse.Namespace) -> int:
    database = _database(args)
    removed = database.remove(args.name)
    if args.json:
        print(json.dumps({"removed": removed, "faces": str(database.directory)}))
    else:
        print(f"removed {removed} from {database.directory}")
    return 0
