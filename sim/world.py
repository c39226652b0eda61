"""The simulated world: a textured ground plane, a closed lane track for the car, and people (billboards with face
photos) who stand or walk. Everything is seeded and frozen: the same seed builds the same world.

World coordinates follow REP-103 (x forward from the vehicle's start, y left, z up), in centimetres. A drone world
is a tiled hall; a car world is a table-top mat with a stadium-shaped lane loop through the origin, driven
counter-clockwise, and people there are figures at toy scale so the low car camera sees them whole.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from edgepilot.pilot.core.errors import InputError
from edgepilot.sim import textures
from edgepilot.sim.textures import FaceSource
from edgepilot.sim.vehicles import Pose

log = logging.getLogger(__name__)

KINDS = ("drone", "car")
#: People in a car world are figures this fraction of an adult (170 cm -> 25.5 cm) so a camera 15 cm up sees them.
CAR_PERSON_SCALE = 0.15


# ---- the track --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackPoint:
    """Where a point is relative to the track: distance along the centre line from its start, signed lateral
    offset (positive to the left of the driving direction), and the driving direction there."""

    s_cm: float
    lateral_cm: float
    heading_deg: float


@dataclass(frozen=True, eq=False)
class Track:
    """A closed lane. ``centerline`` is an Nx2 array (cm) run counter-clockwise, the first point not repeated at the
    end; the lane lines are centred at +-``half_width_cm`` from it."""

    centerline: np.ndarray
    half_width_cm: float

    def __post_init__(self) -> None:
        line = np.array(self.centerline, dtype=np.float64)
        if line.ndim != 2 or line.shape[1] != 2 or len(line) < 3:
            raise InputError(f"a track centre line must be an Nx2 array with N >= 3, got shape {line.shape}")
        line.setflags(write=False)
        object.__setattr__(self, "centerline", line)

    @classmethod
    def stadium(cls, straight_cm: float = 200.0, radius_cm: float = 80.0, lane_width_cm: float = 35.0,
                step_cm: float = 2.0) -> Track:
        """Two straights joined by half circles; starts at the origin heading +x, the loop on the left (+y)."""
        half = straight_cm / 2.0
        parts = [
            _segment((0.0, 0.0), (half, 0.0), step_cm),
            _arc((half, radius_cm), radius_cm, -90.0, 90.0, step_cm),
            _segment((half, 2 * radius_cm), (-half, 2 * radius_cm), step_cm),
            _arc((-half, radius_cm), radius_cm, 90.0, 270.0, step_cm),
            _segment((-half, 0.0), (0.0, 0.0), step_cm),
        ]
        return cls(np.concatenate(parts), lane_width_cm / 2.0)

    # Segment i runs from centerline[i] to centerline[i + 1] (the last one closes the loop).
    @cached_property
    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        starts = self.centerline
        deltas = np.roll(starts, -1, axis=0) - starts
        lengths = np.hypot(deltas[:, 0], deltas[:, 1])
        cumulative = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
        return starts, deltas, lengths, cumulative

    @property
    def length_cm(self) -> float:
        _, _, lengths, _ = self._segments
        return float(lengths.sum())

    def project(self, x_cm: float, y_cm: float) -> TrackPoint:
        """The nearest point of the centre line to (x, y): arc length, signed lateral offset, heading."""
        starts, deltas, lengths, cumulative = self._segments
        p = np.array([x_cm, y_cm], dtype=np.float64)
        rel = p - starts
        t = np.clip((rel * deltas).sum(axis=1) / np.maximum(lengths**2, 1e-12), 0.0, 1.0)
        gap = rel - t[:, None] * deltas
        i = int(np.argmin((gap**2).sum(axis=1)))
        cross = deltas[i, 0] * rel[i, 1] - deltas[i, 1] * rel[i, 0]
        distance = float(np.hypot(*gap[i]))
        return TrackPoint(
            s_cm=float(cumulative[i] + t[i] * lengths[i]),
            lateral_cm=math.copysign(distance, cross) if distance > 0 else 0.0,
            heading_deg=math.degrees(math.atan2(deltas[i, 1], deltas[i, 0])),
        )

    def lateral_offset_cm(self, x_cm: float, y_cm: float) -> float:
        """Signed distance from the centre line: positive left of the driving direction (inside the loop)."""
        return self.project(x_cm, y_cm).lateral_cm

    def point_at(self, s_cm: float, lateral_cm: float = 0.0) -> tuple[float, float, float]:
        """(x_cm, y_cm, heading_deg) at arc length ``s_cm`` (wrapped), moved ``lateral_cm`` to the left."""
        starts, deltas, lengths, cumulative = self._segments
        s = s_cm % self.length_cm
        i = int(np.clip(np.searchsorted(cumulative, s, side="right") - 1, 0, len(starts) - 1))
        t = (s - cumulative[i]) / max(lengths[i], 1e-12)
        x, y = starts[i] + t * deltas[i]
        heading = math.atan2(deltas[i, 1], deltas[i, 0])
        return float(x - lateral_cm * math.sin(heading)), float(y + lateral_cm * math.cos(heading)), \
            math.degrees(heading)

    def pose_at(self, s_cm: float, lateral_cm: float = 0.0) -> Pose:
        x, y, heading = self.point_at(s_cm, lateral_cm)
        return Pose(x, y, 0.0, heading)

    def offset_polyline(self, lateral_cm: float) -> np.ndarray:
        """The centre line moved ``lateral_cm`` to the left everywhere (vertex normals from both neighbours)."""
        line = self.centerline
        tangent = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
        tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-12)[:, None]
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        return line + lateral_cm * normal

    def bounds_cm(self) -> tuple[float, float, float, float]:
        """x_min, y_min, x_max, y_max of the centre line."""
        return (*self.centerline.min(axis=0), *self.centerline.max(axis=0))


def _segment(a: tuple[float, float], b: tuple[float, float], step_cm: float) -> np.ndarray:
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    n = max(1, int(math.ceil(length / step_cm)))
    t = np.arange(n) / n  # b itself is the first point of the next part
    return np.stack([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])], axis=1)


def _arc(center: tuple[float, float], radius: float, start_deg: float, end_deg: float, step_cm: float) -> np.ndarray:
    sweep = math.radians(end_deg - start_deg)
    n = max(1, int(math.ceil(abs(sweep) * radius / step_cm)))
    angles = math.radians(start_deg) + sweep * np.arange(n) / n
    return np.stack([center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles)], axis=1)


# ---- people ---------------------------------------------------------------------------------------------------------
MODES = ("stop", "loop", "pingpong")


@dataclass(frozen=True, eq=False)
class Person:
    """A person billboard: a BGRA picture ``width_cm`` x ``height_cm`` standing on the ground, turned to face the
    camera, with the face at ``face_box_cm`` (left, top, right, bottom in cm from the billboard's top-left corner).

    The person stands at ``waypoints_cm[0]`` until ``start_s`` (world time), then walks the waypoints at
    ``speed_cm_s``; at the end it stops (``mode="stop"``), walks back to the first point and round again
    (``"loop"``) or turns back (``"pingpong"``). Build one with :meth:`create`.
    """

    name: str
    texture: np.ndarray
    waypoints_cm: tuple[tuple[float, float], ...]
    speed_cm_s: float = 0.0
    start_s: float = 0.0
    mode: str = "stop"
    width_cm: float = textures.ADULT_WIDTH_CM
    height_cm: float = textures.ADULT_HEIGHT_CM
    face_box_cm: tuple[float, float, float, float] = textures.FACE_BOX_CM

    @classmethod
    def create(cls, name: str | None, waypoints_cm: Sequence[tuple[float, float]], *, face: FaceSource | None = None,
               seed: int = 0, scale: float = 1.0, speed_cm_s: float = 0.0, start_s: float = 0.0, mode: str = "stop",
               shirt_bgr: tuple[int, int, int] | None = None,
               trousers_bgr: tuple[int, int, int] | None = None, skin_bgr: tuple[int, int, int] | None = None
               ) -> Person:
        """A person with the face photo ``face`` (path, ndarray or :class:`edgepilot.sim.textures.FaceImage`; a generated face
        when None), ``scale`` times adult size (170 cm x 45 cm, face 18 cm)."""
        if mode not in MODES:
            raise InputError(f"unknown walking mode {mode!r}; choose one of: {', '.join(MODES)}")
        if not waypoints_cm:
            raise InputError("a person needs at least one waypoint")
        if scale <= 0 or speed_cm_s < 0:
            raise InputError(f"scale must be > 0 and speed >= 0 (got scale={scale}, speed={speed_cm_s})")
        rng = np.random.default_rng([seed, 3])
        shirts = [(60, 60, 200), (180, 90, 40), (50, 150, 60), (40, 170, 220), (150, 60, 140), (200, 200, 200)]
        trousers = [(60, 40, 30), (40, 40, 40), (110, 90, 60), (30, 30, 90)]
        shirt = shirt_bgr or shirts[int(rng.integers(len(shirts)))]
        trouser = trousers_bgr or trousers[int(rng.integers(len(trousers)))]
        face_image = textures.load_face(face) if face is not None else textures.generated_face(seed)
        picture = textures.person_texture(face_image, shirt, trouser, skin_bgr=skin_bgr)
        picture.image.setflags(write=False)
        return cls(
            name=name or face_image.name, texture=picture.image,
            waypoints_cm=tuple((float(x), float(y)) for x, y in waypoints_cm),
            speed_cm_s=float(speed_cm_s), start_s=float(start_s), mode=mode,
            width_cm=textures.ADULT_WIDTH_CM * scale, height_cm=textures.ADULT_HEIGHT_CM * scale,
            face_box_cm=tuple(v * scale for v in picture.face_box_cm),
        )

    def position(self, t_s: float) -> tuple[float, float]:
        """Where the person stands at world time ``t_s`` (x_cm, y_cm)."""
        points = self.waypoints_cm
        if len(points) == 1 or self.speed_cm_s <= 0 or t_s <= self.start_s:
            return points[0]
        path = list(points) + ([points[0]] if self.mode == "loop" else [])
        legs = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(path, path[1:], strict=False)]
        total = sum(legs)
        if total <= 0:
            return points[0]
        walked = (t_s - self.start_s) * self.speed_cm_s
        if self.mode == "loop":
            walked %= total
        elif self.mode == "pingpong":
            walked %= 2 * total
            walked = walked if walked <= total else 2 * total - walked
        else:
            walked = min(walked, total)
        for a, b, leg in zip(path, path[1:], legs, strict=False):
            if walked <= leg and leg > 0:
                f = walked / leg
                return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
            walked -= leg
        return path[-1]

    @property
    def face_height_cm(self) -> float:
        """Height of the face centre above the ground."""
        return self.height_cm - (self.face_box_cm[1] + self.face_box_cm[3]) / 2.0

    @property
    def face_size_cm(self) -> float:
        return self.face_box_cm[3] - self.face_box_cm[1]


@dataclass(frozen=True)
class PersonAt:
    """A person at one instant: where they stand and where their face centre is (world cm)."""

    name: str
    x_cm: float
    y_cm: float
    width_cm: float
    height_cm: float
    face_center_cm: tuple[float, float, float]
    face_size_cm: float
    person: Person = field(compare=False, repr=False)


# ---- the ground -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Ground:
    """A top-down picture of the ground: texel (col, row) has its centre at world
    (x_min_cm + (col + 0.5) * cm_per_px, y_max_cm - (row + 0.5) * cm_per_px). Beyond it the ground is ``border_bgr``."""

    image: np.ndarray
    x_min_cm: float
    y_max_cm: float
    cm_per_px: float
    border_bgr: tuple[int, int, int]

    def texel_to_world(self) -> np.ndarray:
        """3x3 matrix from homogeneous texel (col, row, 1) to world ground (x_cm, y_cm, 1)."""
        r = self.cm_per_px
        return np.array([[r, 0.0, self.x_min_cm + 0.5 * r], [0.0, -r, self.y_max_cm - 0.5 * r], [0.0, 0.0, 1.0]])

    def world_to_texel(self, x_cm: float, y_cm: float) -> tuple[float, float]:
        return (x_cm - self.x_min_cm) / self.cm_per_px - 0.5, (self.y_max_cm - y_cm) / self.cm_per_px - 0.5


def _make_ground(image: np.ndarray, x_min: float, y_max: float, cm_per_px: float, border: tuple[int, ...] | None
                 ) -> Ground:
    image.setflags(write=False)
    border = border or tuple(int(c) for c in image.reshape(-1, 3).mean(axis=0))
    return Ground(image, x_min, y_max, cm_per_px, tuple(int(c) for c in border))


# ---- the world ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class World:
    """Ground, optional track, people. Build with :meth:`build`; derive variants with :meth:`with_people` and
    :meth:`with_person_crossing` (worlds are frozen)."""

    kind: str
    seed: int
    ground: Ground
    people: tuple[Person, ...] = ()
    track: Track | None = None
    start_pose: Pose = Pose()

    @classmethod
    def build(cls, seed: int = 0, kind: str = "drone", *, people: int | None = None,
              faces: Sequence[FaceSource] | None = None, person_scale: float | None = None,
              walking: bool = True) -> World:
        """A seeded world for a ``"drone"`` or a ``"car"``.

        Drone: a 22 m x 20 m tiled hall; ``people`` (default 3) adults, the first standing 3 m straight ahead of the
        start, the others (walking back and forth along x when ``walking``) at least 1.5 m to either side.
        Car: a 6.6 m x 4.6 m asphalt mat with :meth:`Track.stadium` (9 m loop, 35 cm lane) through the origin;
        ``people`` (default 2) figures (``CAR_PERSON_SCALE``) standing beside the road.
        ``faces``: photos for the people in order (default: the cached test photos, else generated faces).
        """
        if kind not in KINDS:
            raise InputError(f"unknown world kind {kind!r}; choose one of: {', '.join(KINDS)}")
        if faces is None:
            faces = textures.find_face_photos()
            if not faces:
                log.info("no face photos in %s (run scripts/fetch_test_data.py): using generated faces",
                         textures.cache_dir())
        if kind == "drone":
            return cls._build_drone(seed, 3 if people is None else people, faces, person_scale or 1.0, walking)
        return cls._build_car(seed, 2 if people is None else people, faces, person_scale or CAR_PERSON_SCALE)

    @classmethod
    def _build_drone(cls, seed: int, n_people: int, faces: Sequence[FaceSource], scale: float, walking: bool
                     ) -> World:
        cm_per_px, x_min, x_max, y_min, y_max = 1.0, -600.0, 1600.0, -1000.0, 1000.0
        image = textures.tiled_floor(seed, int((x_max - x_min) / cm_per_px), int((y_max - y_min) / cm_per_px),
                                     cm_per_px)
        rng = np.random.default_rng([seed, 4])
        people: list[Person] = []
        for i in range(n_people):
            face = faces[i % len(faces)] if faces else None
            if i == 0:
                people.append(Person.create(None, [(300.0, 0.0)], face=face, seed=seed * 100 + i, scale=scale))
                continue
            x = float(rng.uniform(250.0, 900.0))
            y = float(rng.choice([-1.0, 1.0]) * rng.uniform(150.0, 450.0))
            waypoints = [(x, y)]
            speed = 0.0
            if walking:
                waypoints.append((x + float(rng.choice([-1.0, 1.0]) * rng.uniform(150.0, 300.0)), y))
                speed = float(rng.uniform(30.0, 70.0))
            people.append(Person.create(None, waypoints, face=face, seed=seed * 100 + i, scale=scale,
                                        speed_cm_s=speed, mode="pingpong"))
        return cls("drone", seed, _make_ground(image, x_min, y_max, cm_per_px, None), tuple(people), None, Pose())

    @classmethod
    def _build_car(cls, seed: int, n_people: int, faces: Sequence[FaceSource], scale: float) -> World:
        track = Track.stadium()
        bx0, by0, bx1, by1 = track.bounds_cm()
        margin, cm_per_px = 150.0, 0.5
        x_min, x_max, y_min, y_max = bx0 - margin, bx1 + margin, by0 - margin, by1 + margin
        w, h = int(round((x_max - x_min) / cm_per_px)), int(round((y_max - y_min) / cm_per_px))
        image = textures.track_mat(track.offset_polyline(-track.half_width_cm),
                                   track.offset_polyline(track.half_width_cm), seed, x_min, y_max, w, h, cm_per_px)
        rng = np.random.default_rng([seed, 5])
        people = []
        for i in range(n_people):
            face = faces[i % len(faces)] if faces else None
            s = float(rng.uniform(0.15, 0.95) * track.length_cm)
            side = float(rng.choice([-1.0, 1.0]))
            x, y, _ = track.point_at(s, side * (track.half_width_cm + 20.0))
            people.append(Person.create(None, [(x, y)], face=face, seed=seed * 100 + i, scale=scale))
        ground = _make_ground(image, x_min, y_max, cm_per_px, (70, 105, 140))  # a wooden floor beyond the mat
        return cls("car", seed, ground, tuple(people), track, track.pose_at(0.0))

    def people_at(self, t_s: float) -> list[PersonAt]:
        """Every person at world time ``t_s`` (seconds since the simulation started)."""
        out = []
        for p in self.people:
            x, y = p.position(t_s)
            out.append(PersonAt(p.name, x, y, p.width_cm, p.height_cm, (x, y, p.face_height_cm), p.face_size_cm, p))
        return out

    def with_people(self, *people: Person, replace: bool = False) -> World:
        """This world with ``people`` added (or instead of the current ones when ``replace``)."""
        return dataclasses.replace(self, people=tuple(people) if replace else self.people + tuple(people))

    def with_person_crossing(self, s_cm: float, t_s: float, *, speed_cm_s: float = 40.0, from_left: bool = False,
                             stop_lateral_cm: float = 0.0, name: str = "pedestrian", face: FaceSource | None = None,
                             scale: float | None = None) -> World:
        """Add a person who waits beside the road at arc length ``s_cm`` and, at world time ``t_s``, steps onto it,
        walking across to ``stop_lateral_cm`` (the centre line by default) and stopping there."""
        if self.track is None:
            raise InputError("this world has no road: build it with kind='car'")
        scale = CAR_PERSON_SCALE if scale is None else scale
        side = 1.0 if from_left else -1.0
        start = self.track.point_at(s_cm, side * (self.track.half_width_cm + textures.ADULT_WIDTH_CM * scale + 10.0))
        stop = self.track.point_at(s_cm, stop_lateral_cm)
        person = Person.create(name, [start[:2], stop[:2]], face=face, seed=self.seed * 100 + 99, scale=scale,
                               speed_cm_s=speed_cm_s, start_s=t_s, mode="stop")
        return self.with_people(person)
