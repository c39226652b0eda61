"""Behaviours: what the vehicle does on its own between commands.

:class:`FollowTarget` is a visual servo: three PID loops on the target's box in the image (yaw to centre it, climb to
hold its height in the frame, forward/back to hold its apparent size, i.e. the distance). When the target is lost it
holds, then turns slowly towards where it was last seen, then hovers. It never chases a stale detection.

Its set-points are slew-limited (so much per second on each axis; a reversal passes through a tick at zero), and
the frame-age compensation shifts the target by the turn made since its frame was captured: measured by the vehicle's
yaw telemetry where :meth:`FollowTarget.observe` supplies it, predicted from the yaw rates already sent (each for
the time it was in force) for the rest of the frame's age, and bounded. It must never be "the rate just sent times
the frame's age": that puts the controller's own last output into its next input with a gain of
``kp * age * 2 / hfov`` through the proportional term and ``kd * age * 2 / (hfov * tick)`` through the derivative
(above 1 for frames older than about 70 ms at 30 Hz), and the set-point flips between the limits every tick.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from edgepilot.pilot.core.config import from_dict, to_dict
from edgepilot.pilot.core.geometry import wrap_deg
from edgepilot.pilot.core.messages import HOVER, Detection, Seen, Telemetry, Velocity

#: The slew limits are per second; a late tick allows at most the step of one this long (no jump after a stall).
MAX_SLEW_STEP_S = 0.1
#: How much yaw history (telemetry, set-points sent) is kept beyond the oldest frame that may still be used.
HISTORY_MARGIN_S = 1.0


class Behaviour(Protocol):
    """Something that drives the vehicle between commands from what perception sees."""

    @property
    def state(self) -> str:
        """What it is doing, in words (for events and the HUD)."""

    @property
    def mode(self) -> str:
        """The pilot's mode it puts the vehicle in: one of :class:`edgepilot.pilot.core.runner.Mode`'s values."""

    def update(self, seen: Seen | None, now_s: float) -> Velocity:
        """The velocity set-point for this tick."""

    def poll_events(self) -> list[tuple[str, str]]:
        """(type, detail) of what it has to tell since the last call: a target lost, the lane gone..."""


@dataclass(frozen=True)
class PIDGains:
    kp: float
    ki: float = 0.0
    kd: float = 0.0
    out_limit: float = 100.0
    #: Errors smaller than this (in the error's units) count as zero: no hunting around the set-point.
    dead_band: float = 0.0
    #: Inside the dead band the integral decays with this time constant (s; 0: it holds). A held integral keeps the
    #: vehicle creeping across the band and back; a fading one lets it come to rest.
    integral_fade_s: float = 0.0


class PID:
    """PID with output clamping, anti-windup (the integrator stops while the output saturates in its direction),
    derivative on measurement (no kick when the set-point jumps) and a dead band."""

    def __init__(self, gains: PIDGains) -> None:
        self.gains = gains
        self.reset()

    def reset(self) -> None:
        self._integral = 0.0
        self._last_measurement: float | None = None

    def update(self, setpoint: float, measurement: float, dt_s: float) -> float:
        g = self.gains
        error = setpoint - measurement
        if abs(error) <= g.dead_band:
            error = 0.0
            if g.integral_fade_s > 0 and dt_s > 0:
                self._integral *= math.exp(-dt_s / g.integral_fade_s)
        derivative = 0.0
        if self._last_measurement is not None and dt_s > 0:
            derivative = -(measurement - self._last_measurement) / dt_s
        self._last_measurement = measurement
        unclamped = g.kp * error + g.ki * (self._integral + error * dt_s) + g.kd * derivative
        output = max(-g.out_limit, min(g.out_limit, unclamped))
        saturated_same_way = output != unclamped and (error > 0) == (unclamped > 0)
        if not saturated_same_way and dt_s > 0:
            self._integral += error * dt_s
        return output


def slew(previous: float, target: float, max_step: float) -> float:
    """``target``, approached from ``previous`` by at most ``max_step``, and never across zero in one step: a set-point
    that reverses goes through one tick at zero."""
    value = previous + max(-max_step, min(max_step, target - previous))
    if previous * value < 0.0 or abs(value) < 1e-9:
        return 0.0
    return value


class FollowState(StrEnum):
    FOLLOWING = "following"
    CHECKING = "checking"    # following a name: closing in on an unnamed face to see who it is
    HOLDING = "holding"      # target just lost: stay put, it may come back
    SEARCHING = "searching"  # turn slowly towards where it was last seen
    LOST = "lost"            # gave up: hover


@dataclass(frozen=True)
class FollowConfig:
    """Set-points are fractions of the image. Defaults suit a face seen by a Tello (82.6° FOV) at about 1.5 m."""

    hfov_deg: float = 82.6
    target_y_frac: float = 0.40     # keep the face a little above the centre of the image
    target_size_frac: float = 0.08  # face box width / image width: about 1.3 m for an adult face and the Tello
    #: A person's box is held by its height instead: this fraction of the image height, centred (about 2.5 m).
    person_height_frac: float = 0.55
    stale_s: float = 1.0            # a detection older than this is never chased
    hold_s: float = 1.0
    search_s: float = 8.0
    search_yaw_deg_s: float = 20.0
    #: Following a name: a face this wide (fraction of the image) can be recognised (dlib needs about 40 px); one
    #: that stays unnamed that close for ``identify_s`` is somebody else.
    identify_size_frac: float = 0.07
    identify_s: float = 2.5
    #: On the horizontal offset of the target (a fraction of half the image width). No derivative: on a 15 Hz image
    #: error that arrives 0.1-0.3 s late it adds noise and lag, not damping.
    yaw: PIDGains = PIDGains(kp=60.0, ki=8.0, kd=0.0, out_limit=60.0, dead_band=0.03, integral_fade_s=1.0)
    climb: PIDGains = PIDGains(kp=60.0, ki=5.0, kd=4.0, out_limit=40.0, dead_band=0.05)
    #: On the relative size error (1 - size / set-point): 0.5 means twice as far as wanted.
    approach: PIDGains = PIDGains(kp=40.0, ki=3.0, kd=0.0, out_limit=40.0, dead_band=0.08)
    #: How fast each set-point may change, per second: a new detection, a lost target or noise never jerks the
    #: vehicle (at 30 Hz the yaw set-point moves at most 4 deg/s from one tick to the next).
    yaw_accel_deg_s2: float = 120.0
    climb_accel_cm_s2: float = 100.0
    approach_accel_cm_s2: float = 100.0
    #: The frame-age compensation never shifts the target by more than this turn (a bounded prediction).
    max_compensation_deg: float = 15.0


class FollowTarget:
    """Follow ``"me"`` (the largest face, else the largest person) or one enrolled person by name.

    A runner calls :meth:`update` every tick; one that also calls :meth:`observe` with the tick's telemetry first
    gets the frame-age compensation from the measured yaw instead of the predicted one."""

    part_name = "follow"  # in the edgepilot.parts registry: recordings describe it, replay rebuilds it

    def __init__(self, who: str, kind: str = "drone", config: FollowConfig | None = None,
                 labels: tuple[str, ...] = ("face", "person")) -> None:
        self.who = who
        self.kind = kind
        self.config = config or FollowConfig()
        self.labels = labels
        self.state = FollowState.HOLDING
        self._events: list[tuple[str, str]] = []
        self._strangers: set[int] = set()  # tracks of unnamed faces seen close up: not the person to follow
        self._checking: tuple[int | None, float | None] = (None, None)  # (track, since when close enough to tell)
        self.track: int | None = None
        self._yaw, self._climb, self._approach = (PID(g) for g in (self.config.yaw, self.config.climb,
                                                                   self.config.approach))
        self._last_seen_s: float | None = None
        self._last_side = 1.0  # +1: target was last seen left of centre (turn CCW to find it)
        self._last_now_s: float | None = None
        self._output = HOVER  # the set-point of the last tick: the slew limits start from it
        #: (time, yaw rate) of every set-point returned, each in force until the next: the predicted turn.
        self._sent_yaw: deque[tuple[float, float]] = deque()
        #: (arrival time, unwrapped yaw) of each new telemetry packet given to :meth:`observe`: the measured turn.
        self._headings: deque[tuple[float, float]] = deque()
        self._last_yaw_deg: float | None = None
        #: The chosen target's box and its centre error (px), for the demo's tracking statistics.
        self.last_target: Detection | None = None
        self.last_error_px: float | None = None
        #: The turn (deg, CCW +) the last frame-age compensation shifted the target by.
        self.last_compensation_deg = 0.0

    def describe(self) -> dict:
        return {"who": self.who, "kind": self.kind, "config": to_dict(self.config), "labels": list(self.labels)}

    @classmethod
    def rebuild(cls, spec: dict) -> FollowTarget:
        return cls(spec["who"], spec["kind"], from_dict(FollowConfig, spec["config"]), tuple(spec["labels"]))

    @property
    def mode(self) -> str:
        return "following" if self.state == FollowState.FOLLOWING else "searching"

    def poll_events(self) -> list[tuple[str, str]]:
        events, self._events = self._events, []
        return events

    def choose(self, detections: tuple[Detection, ...]) -> Detection | None:
        """The detection to follow: the same track as before if it is still there, else the best candidate."""
        for label in self.labels:
            candidates = [d for d in detections if d.label == label]
            if self.who != "me":
                who = self.who.casefold()
                named = [d for d in candidates if d.name is not None and d.name.casefold() == who]
                # Nobody by that name yet: go closer to the faces not yet named (too far to tell who they are).
                candidates = named or [d for d in candidates if d.name is None and d.track is not None
                                       and d.track not in self._strangers]
            if not candidates:
                continue
            same = [d for d in candidates if self.track is not None and d.track == self.track]
            return same[0] if same else max(candidates, key=lambda d: d.area)
        return None

    def observe(self, telemetry: Telemetry) -> None:
        """The vehicle's state, each tick before :meth:`update` (optional): with its yaw the frame-age compensation
        uses the turn actually made since a frame, whatever the vehicle's real yaw gain, instead of predicting it."""
        arrived_s = telemetry.last_state_s
        if not math.isfinite(arrived_s) or (self._headings and arrived_s <= self._headings[-1][0]):
            return  # nothing new since the last packet
        yaw = telemetry.yaw_deg
        if self._headings and self._last_yaw_deg is not None:
            yaw = self._headings[-1][1] + wrap_deg(telemetry.yaw_deg - self._last_yaw_deg)  # unwrapped
        self._last_yaw_deg = telemetry.yaw_deg
        self._headings.append((arrived_s, yaw))
        _forget_before(self._headings, arrived_s - self.config.stale_s - HISTORY_MARGIN_S)

    def update(self, seen: Seen | None, now_s: float) -> Velocity:
        dt = 0.0 if self._last_now_s is None else max(0.0, now_s - self._last_now_s)
        self._last_now_s = now_s
        output = self._slew(self._decide(seen, now_s, dt), dt)
        self._output = output
        if self._sent_yaw and self._sent_yaw[-1][0] >= now_s:
            self._sent_yaw.pop()
        self._sent_yaw.append((now_s, output.yaw_rate_deg_s))
        _forget_before(self._sent_yaw, now_s - self.config.stale_s - HISTORY_MARGIN_S)
        return output

    def turned_since_deg(self, since_s: float, now_s: float) -> float:
        """The yaw turned (deg, CCW +) from ``since_s`` to ``now_s``: measured by telemetry as far as it reaches,
        predicted from the set-points sent for the rest, bounded by ``max_compensation_deg``."""
        measured, predict_from_s = 0.0, since_s
        headings = self._headings
        if headings and headings[0][0] <= since_s < headings[-1][0]:
            measured = headings[-1][1] - _interpolate(headings, since_s)
            predict_from_s = headings[-1][0]
        predicted = 0.0
        sent = list(self._sent_yaw)
        for i, (t_s, rate) in enumerate(sent):
            until_s = sent[i + 1][0] if i + 1 < len(sent) else now_s
            overlap = min(until_s, now_s) - max(t_s, predict_from_s)
            if overlap > 0:
                predicted += rate * overlap
        limit = self.config.max_compensation_deg
        return max(-limit, min(limit, measured + predicted))

    def _decide(self, seen: Seen | None, now_s: float, dt: float) -> Velocity:
        """The set-point the controllers want this tick, before the slew limits."""
        cfg = self.config
        target = None
        if seen is not None and now_s - seen.frame_t_s <= cfg.stale_s:
            target = self.choose(seen.detections)
        self.last_target = target
        if target is None:
            self.last_error_px = None
            return self._lost(now_s)

        self._check_identity(target, seen.width, now_s)
        self.track = target.track
        self._last_seen_s = now_s
        cx, cy = target.center
        # Frame age compensation: while the frame travelled, we kept turning; the target has moved in the image by
        # the angle we turned since it was captured. Shift it to where it should be now.
        self.last_compensation_deg = self.turned_since_deg(seen.frame_t_s, now_s)
        cx_now = cx + self.last_compensation_deg * seen.width / cfg.hfov_deg
        half_w = seen.width / 2.0
        x_err = (cx_now - half_w) / half_w  # +1: at the right edge
        self.last_error_px = cx - half_w
        self._last_side = -1.0 if x_err > 0 else 1.0
        # Target right of centre (x_err > 0) -> turn clockwise (negative yaw rate in REP-103).
        yaw = self._yaw.update(0.0, x_err, dt)
        if target.label == "face":
            size, size_setpoint, y_setpoint = (target.box[2] - target.box[0]) / seen.width, cfg.target_size_frac, \
                cfg.target_y_frac
        else:  # a whole person: hold their height in the frame, keep them vertically centred
            size, size_setpoint, y_setpoint = (target.box[3] - target.box[1]) / seen.height, cfg.person_height_frac, \
                0.5
        # Apparent size grows as 1/distance: compare in relative terms so the gain suits faces and bodies alike.
        forward = self._approach.update(1.0, size / size_setpoint, dt)
        climb = 0.0
        if self.kind == "drone":
            y_err = cy / seen.height - y_setpoint  # +: target below the set-point -> go down
            climb = self._climb.update(0.0, y_err, dt)
        return Velocity(vx_cm_s=forward, vz_cm_s=climb, yaw_rate_deg_s=yaw)

    def _slew(self, wanted: Velocity, dt: float) -> Velocity:
        cfg, previous, step_s = self.config, self._output, min(dt, MAX_SLEW_STEP_S)
        return Velocity(
            vx_cm_s=slew(previous.vx_cm_s, wanted.vx_cm_s, cfg.approach_accel_cm_s2 * step_s),
            vy_cm_s=slew(previous.vy_cm_s, wanted.vy_cm_s, cfg.approach_accel_cm_s2 * step_s),
            vz_cm_s=slew(previous.vz_cm_s, wanted.vz_cm_s, cfg.climb_accel_cm_s2 * step_s),
            yaw_rate_deg_s=slew(previous.yaw_rate_deg_s, wanted.yaw_rate_deg_s, cfg.yaw_accel_deg_s2 * step_s))

    def _check_identity(self, target: Detection, width: int, now_s: float) -> None:
        """Following a name: an unnamed face is only being checked. Close enough to be recognised and still nameless
        for ``identify_s``, it is somebody else: leave it and look for another."""
        if self.who == "me" or target.name is not None:
            self.state = FollowState.FOLLOWING
            return
        self.state = FollowState.CHECKING
        close = (target.box[2] - target.box[0]) / width >= self.config.identify_size_frac
        if not close or target.track != self._checking[0]:
            self._checking = (target.track, None if not close else now_s)
        elif self._checking[1] is None:
            self._checking = (target.track, now_s)
        elif now_s - self._checking[1] >= self.config.identify_s:
            self._strangers.add(target.track)
            self._events.append(("not_target", f"the face in track {target.track} is not {self.who}: looking on"))

    def _lost(self, now_s: float) -> Velocity:
        cfg = self.config
        for pid in (self._yaw, self._climb, self._approach):
            pid.reset()
        since = math.inf if self._last_seen_s is None else now_s - self._last_seen_s
        if self._last_seen_s is None and self.state == FollowState.HOLDING:
            self._last_seen_s = now_s  # never seen yet: start the clock now
            since = 0.0
        if since < cfg.hold_s:
            self.state = FollowState.HOLDING
            return HOVER
        if since < cfg.hold_s + cfg.search_s:
            self.state = FollowState.SEARCHING
            return Velocity(yaw_rate_deg_s=self._last_side * cfg.search_yaw_deg_s)
        if self.state != FollowState.LOST:
            who = "anybody" if self.who == "me" else self.who
            self._events.append(("target_lost", f"cannot see {who} for {cfg.hold_s + cfg.search_s:g} s: hovering; "
                                                "waiting for a command"))
        self.state = FollowState.LOST
        return HOVER


def _forget_before(history: deque[tuple[float, float]], oldest_s: float) -> None:
    """Drop the entries older than ``oldest_s``, but keep the last of them: it covers the time from ``oldest_s``."""
    while len(history) > 1 and history[1][0] <= oldest_s:
        history.popleft()


def _interpolate(history: deque[tuple[float, float]], t_s: float) -> float:
    """The value at ``t_s`` of a time-ordered (time, value) history, linear between entries (clamped at its ends)."""
    later = next((i for i, (entry_s, _) in enumerate(history) if entry_s > t_s), None)
    if later is None:
        return history[-1][1]
    if later == 0:
        return history[0][1]
    (t0, v0), (t1, v1) = history[later - 1], history[later]
    return v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)
