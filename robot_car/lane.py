"""Classical lane following: bird's-eye view, lane-line mask, centre-line fit, pure-pursuit steering, and a stop
for anything standing in the lane ahead.

The camera model (mount height and pitch) gives the ground homography, so the bird's-eye image is in centimetres:
one pixel is :attr:`LaneConfig.cm_per_px` on the ground, rows are distance ahead, columns lateral offset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edgepilot.pilot.core.config import from_dict, to_dict
from edgepilot.pilot.core.geometry import CameraModel
from edgepilot.pilot.core.messages import Detection, Seen, Velocity

#: Wider than a line in the bird's-eye view (1 cm per pixel: a 2.5 cm line), narrower than a lane.
LINE_KERNEL_PX = 9
#: A line is at least this much brighter than the ground around it (0.4 = 40%).
MIN_LINE_CONTRAST = 0.4
#: Something differs from the road when its grey level is this many times brighter or darker, or its colour this
#: much more saturated (0-255), than the road's median in view, beyond the road's own spread.
FOREIGN_RATIO = 1.8
FOREIGN_SATURATION = 60.0


@dataclass(frozen=True)
class LaneConfig:
    near_cm: float = 25.0          # closest ground distance in the bird's-eye view
    far_cm: float = 110.0          # furthest
    side_cm: float = 60.0          # half the width of the view
    cm_per_px: float = 1.0
    half_width_cm: float = 17.5    # from the lane centre to the middle of each line
    lookahead_cm: float = 55.0
    cruise_cm_s: float = 30.0
    #: Speed control: slow down in curves, to this fraction of the cruise speed in the tightest ones.
    curve_slowdown: float = 15.0   # speed factor = 1 - curve_slowdown * |curvature (1/cm)|
    min_speed_frac: float = 0.5
    max_yaw_deg_s: float = 90.0
    min_line_px: int = 20          # line pixels a row band needs to count
    obstacle_zone_cm: tuple[float, float] = (25.0, 60.0)  # stop for anything standing in the lane this close
    obstacle_fraction: float = 0.12
    corridor_margin_cm: float = 5.0  # watch this much beyond each line: someone at the kerb is about to step in


@dataclass(frozen=True)
class LaneEstimate:
    found: bool
    offset_cm: float = 0.0      # lane centre relative to the car at the lookahead: + is left
    heading_deg: float = 0.0    # lane direction relative to the car: + is turning left
    obstacle: bool = False
    confidence: float = 0.0     # 0-1: fraction of row bands where a line was seen x how well they agree
    #: The lane centre: lateral offset (cm, + left) as a function of the distance ahead (cm); straight if not found.
    centre: Callable[[float], float] = lambda ahead_cm: 0.0


class LaneDetector:
    def __init__(self, camera: CameraModel, config: LaneConfig | None = None) -> None:
        self.camera = camera
        self.config = config or LaneConfig()
        cfg = self.config
        self.view_w = int(round(2 * cfg.side_cm / cfg.cm_per_px))
        self.view_h = int(round((cfg.far_cm - cfg.near_cm) / cfg.cm_per_px))
        # Bird's-eye pixel (col, row) -> ground (x ahead, y left): row 0 is far, col 0 is the left edge.
        view_to_ground = np.array([
            [0.0, -cfg.cm_per_px, cfg.far_cm],
            [-cfg.cm_per_px, 0.0, cfg.side_cm],
            [0.0, 0.0, 1.0],
        ])
        self.view_to_image = camera.ground_to_image() @ view_to_ground

    def birds_eye(self, image: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(image, self.view_to_image, (self.view_w, self.view_h),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)

    @staticmethod
    def line_mask(view: np.ndarray) -> np.ndarray:
        """Painted lines (or rails): narrow stripes brighter than the ground around them, whatever the light.

        No colour or brightness threshold: a line is where the grey level stands out of a morphological opening
        (the ground with every stripe narrower than ``LINE_KERNEL_PX`` removed) by a *ratio* (Weber contrast), so
        shadows and exposure, which scale both, change nothing; the ratio needed is a fraction of the strongest
        stripes in view (a glare patch lowers the contrast of the lines under it, not the others'), never below
        ``MIN_LINE_CONTRAST`` (texture and sensor noise)."""
        grey = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY).astype(np.float32)
        inside = view.max(axis=2) > 0  # not the black border of the warp
        if not inside.any():
            return np.zeros(grey.shape, bool)
        # The border counts as lit ground for the opening: as black, a strip of lit ground between it and a shadow
        # would be a narrow bright stripe, i.e. a line, on the wrong side of the lane (as white, a line along it would
        # vanish). Lines are a few percent of the view and shadows less than most of it: the upper quartile is road.
        grey[~inside] = float(np.percentile(grey[inside], 75))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (LINE_KERNEL_PX, LINE_KERNEL_PX))
        ground = cv2.morphologyEx(grey, cv2.MORPH_OPEN, kernel)
        contrast = (grey - ground) / (ground + 8.0)
        strongest = float(np.percentile(contrast[inside], 99.5))
        return inside & (contrast > max(MIN_LINE_CONTRAST, 0.3 * strongest))

    def estimate(self, image: np.ndarray) -> LaneEstimate:
        cfg = self.config
        view = self.birds_eye(image)
        mask = self.line_mask(view)
        centre_col = self.view_w / 2.0
        half_lane_px = cfg.half_width_cm / cfg.cm_per_px
        band = max(1, int(5 / cfg.cm_per_px))
        # Each band's painted lines, from near (bottom) to far (top); a line crosses the whole band, a speck of glare
        # or texture does not.
        bands = [(top + band / 2.0, _runs(mask[top:top + band].sum(axis=0) >= max(1, (band + 1) // 2)))
                 for top in range(self.view_h - band, -1, -band)]
        rows, centres, contradicted, paired = _follow_centre(bands, centre_col, half_lane_px)
        total_bands = self.view_h // band
        if len(rows) < 3:
            return LaneEstimate(found=False, obstacle=self._obstacle(view, mask, lambda ahead: 0.0 * ahead))
        ahead = cfg.far_cm - np.asarray(rows) * cfg.cm_per_px
        lateral = (centre_col - np.asarray(centres)) * cfg.cm_per_px  # + is left
        # A parabola follows the curves of a small track; too few points for one and a line must do.
        coeffs = np.polyfit(ahead, lateral, 2 if len(rows) >= 6 else 1)
        lane = np.poly1d(coeffs)
        # Sure when lines were seen along most of the view and the bands agree on one smooth centre line.
        # (a cubic: a tight curve is not a parabola, and it is no reason to doubt the lines)
        smooth = np.poly1d(np.polyfit(ahead, lateral, 3)) if len(rows) >= 8 else lane
        scatter_cm = float(np.sqrt(np.mean((smooth(ahead) - lateral) ** 2)))
        agreement = max(0.0, 1.0 - scatter_cm / (0.5 * cfg.half_width_cm))
        return LaneEstimate(
            found=True,
            offset_cm=float(lane(cfg.lookahead_cm)),
            heading_deg=math.degrees(math.atan(float(lane.deriv()(cfg.near_cm)))),
            obstacle=self._obstacle(view, mask, lane),
            confidence=min(1.0, len(rows) / max(1, total_bands)) * agreement * (1.0 - contradicted / max(1, paired)),
            centre=lambda ahead_cm: float(lane(ahead_cm)),
        )

    @staticmethod
    def _road(view: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Pixels that look like the road: the road is what most of the corridor is (its median grey level and
        saturation, and their spread), so no fixed colour says what asphalt looks like."""
        hsv = cv2.cvtColor(view, cv2.COLOR_BGR2HSV)
        grey = hsv[..., 2].astype(np.float32) + 8.0
        saturation = hsv[..., 1].astype(np.float32)
        if sample.sum() < 50:
            return np.ones(grey.shape, bool)  # nothing to compare with: the lane check decides
        level, spread = _road_stats(np.log(grey[sample]))
        sat, sat_spread = _road_stats(saturation[sample])
        ratio = max(math.log(FOREIGN_RATIO), 3.0 * spread)
        return (np.abs(np.log(grey) - level) <= ratio) & (saturation <= sat + max(FOREIGN_SATURATION, 3 * sat_spread))

    def _obstacle(self, view: np.ndarray, mask: np.ndarray, lane: Callable[[np.ndarray], np.ndarray]) -> bool:
        """Something that is neither asphalt nor paint standing in the lane just ahead: a person, a box.

        A thing standing on the ground shows in the bird's-eye view as a streak starting where it touches the ground
        and stretching away; the nearest row of that streak is its distance. The corridor searched follows the lane
        (``lane(ahead_cm) -> lateral_cm``), so people beside a curve are not in the way."""
        cfg = self.config
        half_cols = (cfg.half_width_cm + cfg.corridor_margin_cm) / cfg.cm_per_px
        ahead = cfg.far_cm - (np.arange(self.view_h) + 0.5) * cfg.cm_per_px
        centre_cols = self.view_w / 2.0 - np.asarray(lane(ahead), dtype=np.float64) / cfg.cm_per_px
        cols = np.arange(self.view_w)[None, :]
        corridor = np.abs(cols - centre_cols[:, None]) <= half_cols
        outside_view = view.max(axis=2) == 0  # the black border of the warp
        foreign = corridor & ~(self._road(view, corridor & ~mask & ~outside_view) | mask | outside_view)
        occupied = foreign.sum(axis=1) >= max(2, int(cfg.obstacle_fraction * 2 * half_cols))
        near, far = cfg.obstacle_zone_cm
        first = int((cfg.far_cm - far) / cfg.cm_per_px)
        last = int((cfg.far_cm - near) / cfg.cm_per_px)
        streak = int(5 / cfg.cm_per_px)  # 5 cm of occupied rows: not a speck of noise
        rows = occupied[max(0, first - streak):last].astype(np.int32)
        if rows.size < streak:
            return False
        runs = np.convolve(rows, np.ones(streak, dtype=np.int32), mode="valid")
        return bool((runs >= streak).any())


def _road_stats(values: np.ndarray) -> tuple[float, float]:
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def feet_in_lane(camera: CameraModel, detection: Detection, half_width_cm: float, within_cm: float,
                 centre: Callable[[float], float] = lambda ahead_cm: 0.0) -> bool:
    """Do the feet of a detected person (the box's bottom centre, on the ground) stand in the lane (centre line
    ``centre(ahead_cm) -> lateral_cm``, straight ahead by default) less than ``within_cm`` ahead?"""
    x1, _, x2, y2 = detection.box
    ground = camera.image_to_ground((x1 + x2) / 2.0, y2)
    if ground is None:
        return False
    ahead, left = ground
    return ahead <= within_cm and abs(left - centre(ahead)) <= half_width_cm


def _pairs(lines: list[float], half_lane_px: float) -> list[float]:
    """Centres of the two-line pairs a lane's width apart in one band."""
    return [(a + b) / 2.0 for i, a in enumerate(lines) for b in lines[i + 1:]
            if abs((b - a) - 2 * half_lane_px) < 0.5 * half_lane_px]


def _follow_centre(bands: list[tuple[float, list[float]]], centre_col: float, half_lane_px: float
                   ) -> tuple[list[float], list[float], int, int]:
    """The lane centre band by band, near to far, each searched around the previous band's: (rows, centres, bands
    whose pair of lines contradicts the centre followed, bands with a pair).

    Two lines a lane apart say where the lane is; one line alone says it only with a guess at its side. So the
    search starts from the nearest pair (not from the image centre: a lone near line, or a shadow's edge, would set
    it off a whole lane to one side, and every band after would follow), takes a pair over a lone line, and counts
    the pairs it could not follow: where they disagree with the centre followed, the lane is in doubt."""
    found = [_pairs(lines, half_lane_px) for _, lines in bands]
    # A pair counts when the next band or the one before sees it too: two lines run on, a speck beside one does not.
    def confirmed(i: int, centre: float) -> bool:
        return any(abs(centre - other) <= 0.5 * half_lane_px
                   for j in (i - 1, i + 1) if 0 <= j < len(found) for other in found[j])

    band_pairs = [[c for c in pairs if confirmed(i, c)] for i, pairs in enumerate(found)]
    seeds = [p for p in band_pairs if p]
    previous = min(seeds[0], key=lambda c: abs(c - centre_col)) if seeds else centre_col
    rows: list[float] = []
    centres: list[float] = []
    contradicted = 0
    for (row, lines), pairs in zip(bands, band_pairs, strict=True):
        if not lines:
            continue
        near_pairs = [c for c in pairs if abs(c - previous) <= half_lane_px]
        if near_pairs:
            centre = min(near_pairs, key=lambda c: abs(c - previous))
        else:
            contradicted += bool(pairs)
            nearest = min(lines, key=lambda c: abs(c - previous))
            centre = nearest + half_lane_px if nearest < previous else nearest - half_lane_px
            if abs(centre - previous) > half_lane_px and rows:
                continue  # a jump of half a lane between bands is a misread, not a curve
        previous = centre
        rows.append(row)
        centres.append(centre)
    return rows, centres, contradicted, len(seeds)


def _runs(columns: np.ndarray) -> list[float]:
    """Centres of the runs of True in a 1-D mask: one per painted line crossing the band."""
    padded = np.concatenate([[False], columns, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    return [(s + e - 1) / 2.0 for s, e in zip(starts, ends, strict=True)]


class LaneFollower:
    """Pure pursuit on the lane centre at the lookahead distance; zero velocity when the lane is lost or blocked."""

    def __init__(self, camera: CameraModel, config: LaneConfig | None = None) -> None:
        self.detector = LaneDetector(camera, config)
        self.config = self.detector.config
        self.last = LaneEstimate(found=False)

    def update(self, image: np.ndarray, speed_cm_s: float | None = None) -> Velocity:
        cfg = self.config
        self.last = estimate = self.detector.estimate(image)
        if not estimate.found or estimate.obstacle:
            return Velocity()
        cruise = cfg.cruise_cm_s if speed_cm_s is None else speed_cm_s
        # Pure pursuit: the arc through the look-ahead point has curvature 2*y/L^2.
        lookahead = math.hypot(cfg.lookahead_cm, estimate.offset_cm)
        curvature = 2.0 * estimate.offset_cm / (lookahead * lookahead)
        speed = cruise * max(cfg.min_speed_frac, 1.0 - cfg.curve_slowdown * abs(curvature))
        yaw = math.degrees(speed * curvature)
        yaw = max(-cfg.max_yaw_deg_s, min(cfg.max_yaw_deg_s, yaw))
        return Velocity(vx_cm_s=speed, yaw_rate_deg_s=yaw)


class PathStop:
    """The stop for what stands in the path ahead, the same under every autopilot: held while a person or an obstacle
    is there, released once the path has been clear for ``clear_s``. A stop in which a person was seen counts once in
    ``stops_for_person``, whichever sensor saw the block first. Its events go to ``events`` (the behaviour's)."""

    def __init__(self, clear_s: float, events: list[tuple[str, str]]) -> None:
        self.clear_s = clear_s
        self.events = events
        self.stops_for_person = 0
        self.state = ""  # why the car stands, while it does
        self._blocked = False
        self._clear_since: float | None = None
        self._person_this_stop = False

    def holds(self, person: bool, obstacle: bool, now_s: float) -> bool:
        """Must the car stand still now?"""
        if person or obstacle:
            if not self._blocked:
                self._blocked = True
                self._person_this_stop = False
            if person and not self._person_this_stop:
                self._person_this_stop = True
                self.stops_for_person += 1
                self.events.append(("person_stop", "stopped: a person stands in the lane ahead"))
            self._clear_since = None
            self.state = "stopped: person in the path" if person else "stopped: obstacle"
            return True
        if not self._blocked:
            return False
        self._clear_since = now_s if self._clear_since is None else self._clear_since
        if now_s - self._clear_since < self.clear_s:
            return True
        self._blocked, self._clear_since = False, None
        self.events.append(("path_clear", f"the lane ahead has been clear for {self.clear_s:g} s: driving on"))
        return False


class LaneBehaviour:
    """The self-driving car: follow the lane; stop while a person (or anything) stands in the path ahead, and drive
    on once it has been clear for ``clear_s``. A stale or missing camera frame stops the car."""

    part_name = "lane"  # in the edgepilot.parts registry: recordings describe it, replay rebuilds it

    def __init__(self, camera: CameraModel, config: LaneConfig | None = None, *, stop_labels: tuple[str, ...] =
                 ("person", "face"), stop_distance_cm: float = 90.0, clear_s: float = 1.0, stale_s: float = 0.5,
                 speed_cm_s: float | None = None, min_score: float = 0.85, distortion: tuple[float, ...] = (),
                 unsure_below: float = 0.5, stop_below: float = 0.25, teach_noise_deg_s: float = 0.0,
                 seed: int = 0) -> None:
        self.follower = LaneFollower(camera, config)
        self.camera = camera
        #: Lens distortion (OpenCV's k1 k2 p1 p2 k3) from ``edgepilot calibrate camera``: removed before looking.
        self.distortion = tuple(distortion)
        #: Below ``unsure_below`` the car slows in proportion; below ``stop_below`` it stops and says why.
        self.unsure_below = unsure_below
        self.stop_below = stop_below
        self._events: list[tuple[str, str]] = []
        self._unsure = False
        self._undistort_maps: tuple[np.ndarray, np.ndarray] | None = None
        #: Collecting examples for the learned driver: a slowly wandering steering error (an Ornstein-Uhlenbeck
        #: process, this standard deviation, 0.5 s correlation) is added to what is sent, so the recording shows
        #: the car off the centre line and the lane follower's way back (without it a cloned driver never sees a
        #: recovery and drifts off at its first error). The noise is zero-mean: the mean label stays the correction.
        self.teach_noise_deg_s = teach_noise_deg_s
        self.seed = seed
        self._rng = np.random.default_rng([seed, 16])
        self._noise = 0.0
        self._noise_t_s: float | None = None
        self.stop_labels = stop_labels
        self.stop_distance_cm = stop_distance_cm
        self.clear_s = clear_s
        self.stale_s = stale_s
        self.speed_cm_s = speed_cm_s
        self.min_score = min_score  # a car stops for what it is sure of; the lane corridor catches the rest
        self.state = "starting"
        self._path = PathStop(clear_s, self._events)

    @property
    def stops_for_person(self) -> int:
        return self._path.stops_for_person

    def describe(self) -> dict:
        return {"camera": to_dict(self.camera), "config": to_dict(self.follower.config),
                "stop_labels": list(self.stop_labels), "stop_distance_cm": self.stop_distance_cm,
                "clear_s": self.clear_s, "stale_s": self.stale_s, "speed_cm_s": self.speed_cm_s,
                "min_score": self.min_score, "distortion": list(self.distortion), "unsure_below": self.unsure_below,
                "stop_below": self.stop_below, "teach_noise_deg_s": self.teach_noise_deg_s, "seed": self.seed}

    @classmethod
    def rebuild(cls, spec: dict) -> LaneBehaviour:
        camera = spec["camera"]
        if "cx_px" not in camera:  # recorded before edgepilot 0.2, whose lane geometry put the centre at w/2, h/2
            camera = {**camera, "cx_px": camera["width"] / 2.0, "cy_px": camera["height"] / 2.0}
        return cls(from_dict(CameraModel, camera), from_dict(LaneConfig, spec["config"]),
                   stop_labels=tuple(spec["stop_labels"]), stop_distance_cm=spec["stop_distance_cm"],
                   clear_s=spec["clear_s"], stale_s=spec["stale_s"], speed_cm_s=spec["speed_cm_s"],
                   min_score=spec["min_score"], distortion=tuple(spec.get("distortion", ())),
                   # recorded before the confidence gate: it never slowed or stopped for an unsure lane
                   unsure_below=spec.get("unsure_below", 0.0), stop_below=spec.get("stop_below", 0.0),
                   teach_noise_deg_s=spec.get("teach_noise_deg_s", 0.0), seed=spec.get("seed", 0))

    @property
    def mode(self) -> str:
        return "driving" if self.state == "driving" else "blocked"

    def in_path(self, detection: Detection) -> bool:
        """Does this person stand in the lane ahead? Their feet (the box's bottom centre) on the ground tell."""
        # The corridor bends with the lane, as in the obstacle check. Detector boxes are loose around the feet, so a
        # detection must be in the lane proper; the bird's-eye obstacle check, which sees the feet themselves,
        # watches the kerb margin.
        return feet_in_lane(self.camera, detection, self.follower.config.half_width_cm, self.stop_distance_cm,
                            self.follower.last.centre)

    def poll_events(self) -> list[tuple[str, str]]:
        events = list(self._events)
        self._events.clear()  # the same list PathStop appends to
        return events

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The frame as the camera model describes it: scaled to its size, lens distortion removed."""
        cam = self.camera
        if image.shape[1] != cam.width or image.shape[0] != cam.height:
            image = cv2.resize(image, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
        if any(self.distortion):
            if self._undistort_maps is None:
                self._undistort_maps = cv2.initUndistortRectifyMap(
                    cam.matrix, np.asarray(self.distortion), None, cam.matrix, (cam.width, cam.height), cv2.CV_16SC2)
            image = cv2.remap(image, *self._undistort_maps, cv2.INTER_LINEAR)
        return image

    def person_in_path(self, seen: Seen) -> bool:
        """A confident person detection whose feet stand in the lane ahead (boxes in the frame's own pixels)."""
        sx, sy = self.camera.width / seen.width, self.camera.height / seen.height
        return any(d.label in self.stop_labels and d.score >= self.min_score
                   and self.in_path(Detection(d.label, d.score, (d.box[0] * sx, d.box[1] * sy, d.box[2] * sx,
                                                                   d.box[3] * sy)))
                   for d in seen.detections)

    def update(self, seen: Seen | None, now_s: float) -> Velocity:
        if seen is None or seen.frame is None or now_s - seen.frame_t_s > self.stale_s:
            self.state = "no camera frame"
            return Velocity()
        velocity = self.follower.update(self.prepare(seen.frame.image), self.speed_cm_s)
        estimate = self.follower.last
        person = self.person_in_path(seen)
        if self._path.holds(person, estimate.obstacle, now_s):
            self.state = self._path.state
            return Velocity()
        return self._wander(self._gate(velocity, estimate), now_s)

    def _wander(self, velocity: Velocity, now_s: float) -> Velocity:
        if not self.teach_noise_deg_s or velocity.vx_cm_s <= 0:
            return velocity
        tau = 0.5
        dt = 0.0 if self._noise_t_s is None else min(0.2, max(0.0, now_s - self._noise_t_s))
        self._noise_t_s = now_s
        self._noise += -self._noise * dt / tau + self.teach_noise_deg_s * math.sqrt(2.0 * dt / tau) * \
            float(self._rng.standard_normal())
        return Velocity(vx_cm_s=velocity.vx_cm_s, yaw_rate_deg_s=velocity.yaw_rate_deg_s + self._noise)

    def _gate(self, velocity: Velocity, estimate: LaneEstimate) -> Velocity:
        """Unsure of the lane: slower the less sure, and stopped (saying why) below ``stop_below``."""
        confidence = estimate.confidence if estimate.found else 0.0
        if confidence < self.stop_below or not estimate.found:
            why = "no lane lines seen" if not estimate.found else \
                f"lane confidence {confidence:.2f} below {self.stop_below:g}"
            self.state = f"stopped: unsure of the lane ({why})"
            if not self._unsure:
                self._unsure = True
                self._events.append(("lane_lost", f"{why}: stopped until the lane is clear again"))
            return Velocity()
        if self._unsure:
            self._unsure = False
            self._events.append(("lane_found", f"lane confidence {confidence:.2f}: driving on"))
        if confidence < self.unsure_below:
            self.state = f"slow: unsure of the lane (confidence {confidence:.2f})"
            scale = max(0.3, confidence / self.unsure_below)
            return Velocity(vx_cm_s=velocity.vx_cm_s * scale, yaw_rate_deg_s=velocity.yaw_rate_deg_s * scale)
        self.state = "driving"
        return velocity
