"""The learned driver (behaviour cloning, DonkeyCar's "linear" model): a small CNN maps one camera frame to steering
and throttle, trained by ``edgepilot train`` on recorded drives and run here on LiteRT.

One definition of what the network sees and says, shared by training and driving: :func:`preprocess` (the frame
resized to 160x120, lens distortion removed first, scaled to [0, 1]) and the label scales (steering = yaw rate /
:data:`STEER_DEG_S`, throttle = forward speed / :data:`THROTTLE_CM_S`, both in [-1, 1]).

The stop for people stays a separate safety layer over the learned steering, the same as the lane autopilot's: a
confident person whose feet stand in the corridor ahead (the lane where the lane detector sees one, else the arc
being driven), or anything the lane detector's bird's-eye view sees standing in the lane just ahead where it sees a
lane (a person the detector missed, a box), stops the car whatever the network says, and it drives on after
``clear_s`` clear.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from edgepilot.pilot.core.config import to_dict
from edgepilot.pilot.core.geometry import CameraModel
from edgepilot.pilot.core.messages import Detection, Seen, Velocity
from edgepilot.robot_car.lane import LaneConfig, LaneDetector, LaneEstimate, PathStop, feet_in_lane

INPUT_W, INPUT_H = 160, 120
STEER_DEG_S = 90.0
THROTTLE_CM_S = 60.0
#: The bird's-eye obstacle check stops the car only where the lane detector is this sure of a lane (the lane
#: autopilot's full-speed confidence).
LANE_SURE = 0.5

#: frame (HxWx3 float32 in [0, 1], 120x160) -> (steering, throttle), each in [-1, 1]
Infer = Callable[[np.ndarray], tuple[float, float]]


def preprocess(image: np.ndarray) -> np.ndarray:
    """A BGR frame as the network sees it: 120x160x3 float32 in [0, 1]."""
    small = cv2.resize(image, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def labels_of(vx_cm_s: float, yaw_rate_deg_s: float) -> tuple[float, float]:
    """(steering, throttle) the network learns for a velocity set-point."""
    return (max(-1.0, min(1.0, yaw_rate_deg_s / STEER_DEG_S)), max(-1.0, min(1.0, vx_cm_s / THROTTLE_CM_S)))


def velocity_of(steering: float, throttle: float) -> Velocity:
    steering = 0.0 if not math.isfinite(steering) else max(-1.0, min(1.0, steering))
    throttle = 0.0 if not math.isfinite(throttle) else max(0.0, min(1.0, throttle))  # it never learns to reverse
    return Velocity(vx_cm_s=throttle * THROTTLE_CM_S, yaw_rate_deg_s=steering * STEER_DEG_S)


class LearnedDriver:
    """``autopilot model``: the network's steering and throttle every frame, under the stop for people."""

    part_name = "learned"

    def __init__(self, infer: Infer, camera: CameraModel, *, half_width_cm: float = 17.5,
                 stop_distance_cm: float = 90.0, clear_s: float = 1.0, stale_s: float = 0.5, min_score: float = 0.85,
                 stop_labels: tuple[str, ...] = ("person", "face"), distortion: tuple[float, ...] = ()) -> None:
        self.infer = infer
        self.camera = camera
        self.half_width_cm = half_width_cm
        self.stop_distance_cm = stop_distance_cm
        self.clear_s = clear_s
        self.stale_s = stale_s
        self.min_score = min_score
        self.stop_labels = stop_labels
        self.distortion = tuple(distortion)
        self.state = "starting"
        self.last: tuple[float, float] | None = None  # (steering, throttle) of the last frame
        self._events: list[tuple[str, str]] = []
        self._path = PathStop(clear_s, self._events)
        self._maps: tuple[np.ndarray, np.ndarray] | None = None
        self._frame_t_s: float | None = None
        self._velocity = Velocity()
        self._lane = LaneDetector(camera, LaneConfig(half_width_cm=half_width_cm))
        self._lane_frame_t_s: float | None = None
        self._lane_estimate = LaneEstimate(found=False)

    @property
    def stops_for_person(self) -> int:
        return self._path.stops_for_person

    def describe(self) -> dict:
        return {"camera": to_dict(self.camera), "half_width_cm": self.half_width_cm,
                "stop_distance_cm": self.stop_distance_cm, "clear_s": self.clear_s, "min_score": self.min_score}

    @property
    def mode(self) -> str:
        return "driving" if self.state == "driving" else "blocked"

    def poll_events(self) -> list[tuple[str, str]]:
        events = list(self._events)
        self._events.clear()  # the same list PathStop appends to
        return events

    def _lane_ahead(self, seen: Seen) -> LaneEstimate:
        """The lane detector's view of this frame (once per frame): where the lane runs, and whether something
        stands in it."""
        assert seen.frame is not None
        if self._lane_frame_t_s != seen.frame_t_s:
            self._lane_frame_t_s = seen.frame_t_s
            self._lane_estimate = self._lane.estimate(self._undistort(seen.frame.image, resize=True))
        return self._lane_estimate

    def _person_in_path(self, seen: Seen, lane: LaneEstimate) -> bool:
        people = [d for d in seen.detections if d.label in self.stop_labels and d.score >= self.min_score]
        if not people:
            return False
        sx, sy = self.camera.width / seen.width, self.camera.height / seen.height
        # The corridor follows the lane where the lane detector sees one (as the lane autopilot's does: in a curve,
        # a person beside the road straight ahead is not in the way, one on the road round the bend is), else the
        # arc the car is driving (its last set-point's curvature).
        v = self._velocity
        curvature = math.radians(v.yaw_rate_deg_s) / v.vx_cm_s if v.vx_cm_s > 1.0 else 0.0
        centre = lane.centre if lane.found else (lambda ahead_cm: 0.5 * curvature * ahead_cm * ahead_cm)
        return any(feet_in_lane(self.camera, Detection(d.label, d.score, (d.box[0] * sx, d.box[1] * sy,
                                                                          d.box[2] * sx, d.box[3] * sy)),
                                self.half_width_cm, self.stop_distance_cm, centre)
                   for d in people)

    def update(self, seen: Seen | None, now_s: float) -> Velocity:
        if seen is None or seen.frame is None or now_s - seen.frame_t_s > self.stale_s:
            self.state = "no camera frame"
            return Velocity()
        lane = self._lane_ahead(seen)
        person = self._person_in_path(seen, lane)
        # The bird's-eye check knows the road by the lane corridor: where no lane is sure (a floor without lines, a
        # street), it has no road to tell things from, and the detector's stop alone stands.
        if self._path.holds(person, lane.found and lane.confidence >= LANE_SURE and lane.obstacle, now_s):
            self.state = self._path.state
            return Velocity()
        if seen.frame_t_s != self._frame_t_s:  # one inference per new frame; ticks in between keep its answer
            self._frame_t_s = seen.frame_t_s
            self.last = self.infer(preprocess(self._undistort(seen.frame.image)))
            self._velocity = velocity_of(*self.last)
        self.state = "driving"
        return self._velocity

    def _undistort(self, image: np.ndarray, resize: bool = False) -> np.ndarray:
        cam = self.camera
        if not any(self.distortion) and not resize:
            return image
        if image.shape[1] != cam.width or image.shape[0] != cam.height:
            image = cv2.resize(image, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
        if not any(self.distortion):
            return image
        if self._maps is None:
            self._maps = cv2.initUndistortRectifyMap(cam.matrix, np.asarray(self.distortion), None, cam.matrix,
                                                     (cam.width, cam.height), cv2.CV_16SC2)
        return cv2.remap(image, *self._maps, cv2.INTER_LINEAR)
