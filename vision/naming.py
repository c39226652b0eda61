"""Putting names on face tracks without running the expensive face embedding on every frame (measured: about 100 ms
on one core with the prebuilt dlib-bin wheel, which is built without BLAS).

Identity is earned, not inherited: a track id only says "probably the same face", so a name holds only as long as
fresh embeddings keep agreeing with it. An embedding is computed for a face track

* when the track is new;
* at once when the tracker doubts it is still the same face (:attr:`Track.recheck`): it was re-acquired after its
  detector missed it (someone else may have stepped into the place), or its box jumped; until that check has run the
  track reports no name;
* every ``crowded_s`` while another track overlaps it (two crossing faces may swap tracks);
* every ``reconfirm_s`` once named, to catch what the tracker cannot see;
* while it is unknown: ``first_retry_s`` after the check that found no name (a blurred or turned face, a face half
  hidden by another can fail once; a name just taken away gets a quick second look), then at doubling intervals up
  to every ``retry_s``.

Each check decides on its own: a name that the embedding does not confirm is dropped at once (or replaced by the other
enrolled name it matches), and only a later embedding that matches it again brings it back; there is no vote to fall
back on. At most ``max_per_frame`` embeddings run per frame, most urgent first and, among equals, the longest-unchecked
first, so periodic checks of many tracks spread over frames and one frame never pays for a crowd.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.vision.identity import FaceDatabase, FaceEncoder, Match, face_crop
from edgepilot.vision.tracker import CROWDED, Track

if TYPE_CHECKING:
    from edgepilot.vision.embed_worker import EmbeddingWorker

log = logging.getLogger(__name__)

# Check priorities, most urgent first.
_DOUBTED, _NEW, _CROWDED, _RECONFIRM, _RETRY = range(5)


@dataclass(frozen=True)
class NamingConfig:
    #: A named track is checked again this often (the checks of several tracks are spread over frames).
    reconfirm_s: float = 1.0
    #: An unknown track is tried again ``first_retry_s`` after a check found no name, then at doubling intervals up
    #: to every ``retry_s``: a stranger who stays in view costs about what a named face does.
    first_retry_s: float = 0.1
    retry_s: float = 1.0
    #: A track that another one overlaps (see :data:`~edgepilot.vision.tracker.CROWDED`) is checked this often.
    crowded_s: float = 0.2
    #: Embeddings per frame at most (each costs about 100 ms on one core with dlib-bin).
    max_per_frame: int = 1
    #: dlib's aligned chip is 150 px; faces much smaller than this give unreliable embeddings.
    min_face_px: float = 40.0
    #: Embed in a process of its own (live cameras): frames never wait for dlib, a name arrives a few frames later.
    #: Off for offline replays, which wait for every embedding and so give the same names on every run.
    background: bool = False


def _is_doubted(track: Track) -> bool:
    return track.recheck is not None and track.recheck != CROWDED


class TrackNamer:
    def __init__(self, database: FaceDatabase, encoder: FaceEncoder | None = None,
                 config: NamingConfig | None = None) -> None:
        self.database = database
        self.encoder = encoder  # loaded on first use, unless embeddings run in the background
        self.config = config or NamingConfig()
        self.embeddings_computed = 0
        self.worker: EmbeddingWorker | None = None
        if self.config.background:
            from edgepilot.vision.embed_worker import EmbeddingWorker

            self.worker = EmbeddingWorker()
        #: (track id, whether the tracker doubted it) of the face the worker is embedding.
        self._in_flight: tuple[int, bool] | None = None

    def _due(self, track: Track, t_s: float) -> int | None:
        """Priority (lower first) if ``track`` needs an embedding now, else None."""
        cfg = self.config
        if track.label != "face" or track.size < cfg.min_face_px:
            return None
        if track.recheck is not None and track.recheck != CROWDED:
            return _DOUBTED
        if track.identified_t_s is None:
            return _NEW
        waited = t_s - track.identified_t_s
        if track.recheck == CROWDED and waited >= cfg.crowded_s:
            return _CROWDED
        if track.name is not None:
            return _RECONFIRM if waited >= cfg.reconfirm_s else None
        interval = min(cfg.retry_s, cfg.first_retry_s * 2 ** max(0, track.unknown_streak - 1))
        return _RETRY if waited >= interval else None

    def update(self, image_bgr: np.ndarray, tracks: list[Track], t_s: float) -> int:
        """Embed the faces that are due (within the budget) and update their names; returns how many ran.

        ``tracks``: the tracks seen in this frame. A track the tracker doubts and that could not be checked in this
        frame (no budget left, face too small) reports no name until it is checked."""
        if not len(self.database):
            return 0
        ran = self._collect(tracks, t_s) if self.worker is not None else 0
        due = sorted((p, t.identified_t_s if t.identified_t_s is not None else -np.inf, -t.size, i)
                     for i, t in enumerate(tracks) if (p := self._due(t, t_s)) is not None)
        if self.worker is not None:
            if due and not self.worker.busy:
                track = tracks[due[0][-1]]
                try:
                    self.worker.submit(track.id, *face_crop(image_bgr, tuple(track.box)))
                    self._in_flight = (track.id, _is_doubted(track))
                except InputError as exc:
                    log.debug("track %d not identified: %s", track.id, exc)
                    track.identified_t_s = t_s
        else:
            if self.encoder is None:
                self.encoder = FaceEncoder()
            for *_, i in due[: self.config.max_per_frame]:
                track = tracks[i]
                try:
                    embedding = self.encoder.encode(image_bgr, tuple(track.box))
                except InputError as exc:
                    log.debug("track %d not identified: %s", track.id, exc)
                    track.identified_t_s = t_s
                    continue
                ran += 1
                self._apply(track, self.database.match(embedding), t_s)
        for track in tracks:
            if track.recheck is not None and track.recheck != CROWDED and track.name is not None:
                log.debug("track %d: name %s withheld until checked (%s)", track.id, track.name, track.recheck)
                track.name = None
        self.embeddings_computed += ran
        return ran

    def _collect(self, tracks: list[Track], t_s: float) -> int:
        """Apply the worker's answer if it is back; 1 if an embedding was used."""
        answer = self.worker.poll()
        if answer is None:
            return 0
        (track_id, doubted_then), (_, result) = self._in_flight, answer
        self._in_flight = None
        track = next((t for t in tracks if t.id == track_id), None)
        if track is None:
            return 0  # not seen in this frame: it is checked again when it is
        if isinstance(result, InputError):
            log.debug("track %d not identified: %s", track.id, result)
            track.identified_t_s = t_s
            return 0
        if _is_doubted(track) and not doubted_then:
            return 0  # the tracker doubted it after the crop was taken: that face may not be this one any more
        self._apply(track, self.database.match(result), t_s)
        return 1

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def _apply(self, track: Track, match: Match, t_s: float) -> None:
        held = track.name
        if match.name != held and (held is not None or track.recheck is not None):
            log.info("track %d: %s -> %s (distance %.2f%s)", track.id, held, match.name, match.distance,
                     f", {track.recheck}" if track.recheck else "")
        track.unknown_streak = track.unknown_streak + 1 if match.name is None else 0
        track.name, track.distance = match.name, match.distance
        track.identified_t_s = t_s
        track.identity_attempts += 1
        track.recheck = None
