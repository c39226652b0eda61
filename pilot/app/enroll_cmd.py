"""``edgepilot enroll NAME PHOTO... [--faces DIR]``: add a person to the face database.

Every photo must show exactly one clear face; otherwise nothing is written and the error says which photo and why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepilot.pilot.core.errors import InputError

#: A face this much smaller than the biggest one in a photo is background (a poster, a passer-by) and is ignored.
BACKGROUND_FACE_RATIO = 0.25
MIN_FACE_PX = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the person's name (letters, digits, spaces, . - _ ')")
    parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="photos with exactly one clear face")
    parser.add_argument("--faces", type=Path, default=None, metavar="DIR",
                        help="face database folder (default: $EDGEPILOT_FACES or ~/.local/share/edgepilot/faces)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    from edgepilot.vision.detectors import FaceDetector
    from edgepilot.vision.identity import FaceDatabase, FaceEncoder, check_name, default_faces_dir
    from edgepilot.vision.video_io import read_image

    name = check_name(args.name)
    faces_dir = args.faces or default_faces_dir()
    detector = FaceDetector("full")
    found = []
    for photo in args.photos:
        if not photo.is_file():
            raise InputError(f"{photo} does not exist; nothing was enrolled")
        image = read_image(photo)
        faces = detector.detect(image)
        if faces:
            biggest = max(f.area for f in faces)
            faces = [f for f in faces if f.area >= BACKGROUND_FACE_RATIO ** 2 * biggest]
        if not faces:
            raise InputError(f"{photo}: no face found; use a photo with one clear, frontal face. Nothing was enrolled")
        if len(faces) > 1:
            raise InputError(f"{photo}: {len(faces)} faces found; crop it to {name}'s face only. Nothing was enrolled")
        face = faces[0]
        x1, y1, x2, y2 = face.box
        if min(x2 - x1, y2 - y1) < MIN_FACE_PX:
            raise InputError(f"{photo}: the face is only {min(x2 - x1, y2 - y1):.0f} px; use a photo where it is at "
                             f"least {MIN_FACE_PX} px. Nothing was enrolled")
        found.append((image, face))
    encoder = FaceEncoder()
    embeddings = [encoder.encode(image, face.box) for image, face in found]
    database = FaceDatabase(faces_dir)
    path = database.add(name, embeddings, [f"photo:{photo.resolve()}" for photo in args.photos])
    total = len(database.embeddings(name))
    if args.json:
        print(json.dumps({"name": name, "photos": len(found), "embeddings": total, "file": str(path)}))
    else:
        print(f"enrolled {name} from {len(found)} photo(s) ({total} in total) in {path}")
    return 0
