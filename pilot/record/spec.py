"""What a recording says about the run besides its parts (which describe themselves, see
:mod:`edgepilot.pilot.core.registry`): the files they loaded (models, face database) by sha256, the software version."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from edgepilot.pilot.core import __version__
from edgepilot.pilot.record.files import sha256_of

log = logging.getLogger(__name__)

#: The checkout this code runs from (for the git revision a recording names); not used to find any file.
REPO = Path(__file__).resolve().parents[2]


def fingerprint(paths: list[Path]) -> list[dict]:
    return [{"name": p.name, "path": str(p), "sha256": sha256_of(p) if p.is_file() else None} for p in paths]


def faces_fingerprint(faces_dir: Path | None) -> dict[str, str] | None:
    """sha256 of each enrolled person's file: replay warns when the database changed since the recording."""
    if faces_dir is None or not Path(faces_dir).is_dir():
        return None
    return {p.name: sha256_of(p) for p in sorted(Path(faces_dir).glob("*.npy"))}


# -- software -------------------------------------------------------------------------------------------------------
def software() -> dict:
    """edgepilot's version and, in a git checkout, the revision and whether the tree had local changes."""
    info: dict[str, Any] = {"edgepilot": __version__, "git": None}
    try:
        revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=2)
        if revision.returncode == 0:
            status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=2)
            info["git"] = {"revision": revision.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass  # not a checkout, or no git: the version says enough
    return info
