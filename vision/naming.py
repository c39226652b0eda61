"""Putting names on face tracks without running the (expensive) face embedding on every frame.

An embedding is computed for a face track when it is new, again every ``retry_s`` while it is still unknown (its first
frames may be blurred or turned away), and every ``reconfirm_s`` once named, to catch a wrong or swapped name. At most
``max_per_frame`` embeddings run per frame, new tracks and larger faces first, so one frame never pays for a crowd.
A name changes only after two disagreeing results in a row, so one bad frame (a profile, motion blur) cannot
rename or un-name a track.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.vision.identity import FaceDatabase, FaceEncoder
from edgepilot.vision.tracker import Track

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamingConfig:
    reconfirm_s: float = 2.0
    retry_s: float = 0.5
    max_per_frame: int = 1
    #: dlib's aligned chip is 150 px; faces much smaller than this give unreliable embeddings.
    min_face_px: float = 40.0
    #: Disagreeing results in a row needed to change a track's name.
    switch_after: int = 2


class TrackNamer:
    def __init__(self, database: FaceDatabase, encoder: FaceEncoder | None = None,
                 config: NamingConfig | None = None) -> None:
        self.database = database
        self.encoder = encoder or FaceEncoder()
        self.config = config or NamingConfig()
        self.embeddings_computed = 0

    def _due(self, track: Track, t_s: float) -> int | None:
        """Priority (lower first) if ``track`` needs an embedding now, else None."""
        if track.label != "face" or track.size < self.config.min_face_px:
            return None
        if track.identified_t_s is None:
            return 0
        waited = t_s - track.identified_t_s
        if track.name is None:
            return 1 if waited >= self.config.retry_s else None
        return 2 if waited >= self.config.reconfirm_s else None

    def update(self, image_bgr: np.ndarray, tracks: list[Track], t_s: float) -> int:
        """Embed the faces that are due (within the budget) and update their names; returns how many ran."""
        if not len(self.database):
            return 0
        due = [(p, -t.size, i) for i, t in enumerate(tracks) if (p := self._due(t, t_s)) is not None]
        ran = 0
        for _, _, i in sorted(due)[: self.config.max_per_frame]:
            track = tracks[i]
            try:
                embedding = self.encoder.encode(image_bgr, tuple(track.box))
            except InputError as exc:
                log.debug("track %d not identified: %s", track.id, exc)
                track.identified_t_s = t_s
                continue
            match = self.database.match(embedding)
            self._apply(track, match.name, t_s)
            track.distance = match.distance
            ran += 1
        self.embeddings_computed += ran
        return ran

    def _apply(self, track: Track, name: str | None, t_s: float) -> None:
        track.identified_t_s = t_s
        track.identity_attempts += 1
        if track.name is None and track.identity_attempts == 1:
            track.name = name
        elif name == track.name:
            track.disagreements = 0
        elif track.name is None:
            track.name = name  # an unknown track that is now recognised
        else:
            track.disagreements += 1
            if track.disagreements >= self.config.switch_after:
                log.info("track %d: %s -> %s", track.id, track.name, name)
                track.name, track.disagreements = name, 0
