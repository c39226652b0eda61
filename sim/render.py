"""A pinhole camera renderer for the simulated world, and :class:`SimCamera`, the simulator's
:class:`edgepilot.pilot.core.hal.Camera`.

The ground is one top-down texture mapped with ``cv2.warpPerspective`` through the ground-plane homography (a small
texture pyramid keeps the far ground from shimmering); the sky is painted above the horizon; people are billboards
turned to face the camera, clipped at the near plane and drawn far to near. Pixel (u, v) = (column, row), integer
values at pixel centres, so ``image[round(v), round(u)]`` is what :func:`project_point` points at.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import cv2
import numpy as np

from edgepilot.pilot.core.clock import Clock, MonotonicClock
from edgepilot.pilot.core.geometry import CameraModel
from edgepilot.pilot.core.messages import Frame
from edgepilot.sim import textures
from edgepilot.sim.vehicles import Pose
from edgepilot.sim.world import Person, World

log = logging.getLogger(__name__)

NEAR_CM = 1.0
MIN_CAMERA_HEIGHT_CM = 0.5  # a camera lying on the ground still sees it as a (very oblique) plane
TELLO_HFOV_DEG = 82.6
PI_CAMERA_HFOV_DEG = 62.2  # Raspberry Pi Camera Module v2


@dataclass(frozen=True)
class CameraPose:
    """Where a camera is in the world (cm) and where it looks: ``yaw_deg`` CCW from +x, ``pitch_deg`` positive
    looking down (REP-103: a rotation about the left axis). No roll."""

    x_cm: float
    y_cm: float
    z_cm: float
    yaw_deg: float
    pitch_deg: float = 0.0

    def rotation(self) -> np.ndarray:
        """World-to-camera rotation; camera axes as in OpenCV: x right, y down, z along the optical axis."""
        psi, theta = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        forward = np.array([math.cos(psi), math.sin(psi), 0.0])
        left = np.array([-math.sin(psi), math.cos(psi), 0.0])
        up = np.array([0.0, 0.0, 1.0])
        optical = math.cos(theta) * forward - math.sin(theta) * up
        down = -(math.sin(theta) * forward + math.cos(theta) * up)
        return np.stack([-left, down, optical])

    @property
    def position(self) -> np.ndarray:
        return np.array([self.x_cm, self.y_cm, self.z_cm])


@dataclass(frozen=True)
class CameraMount:
    """Where the camera sits on the vehicle: ``height_cm`` above the vehicle's z, pitched down ``pitch_deg``."""

    height_cm: float
    pitch_deg: float
    hfov_deg: float

    def camera_pose(self, pose: Pose) -> CameraPose:
        return CameraPose(pose.x_cm, pose.y_cm, pose.z_cm + self.height_cm, pose.yaw_deg, self.pitch_deg)


#: A Tello's camera looks straight ahead from about 3 cm above the bottom of the drone.
DRONE_MOUNT = CameraMount(height_cm=3.0, pitch_deg=0.0, hfov_deg=TELLO_HFOV_DEG)
#: A toy car's Pi camera, 15 cm above the ground, pitched down to see the lane.
CAR_MOUNT = CameraMount(height_cm=15.0, pitch_deg=15.0, hfov_deg=PI_CAMERA_HFOV_DEG)
MOUNTS = {"drone": DRONE_MOUNT, "car": CAR_MOUNT}


def project_point(camera_pose: CameraPose, intrinsics: CameraModel, point_xyz_cm: tuple[float, float, float] |
                  np.ndarray, require_in_image: bool = False) -> tuple[float, float] | None:
    """Pixel (u, v) where the world point appears, or None when it is behind the near plane (or, with
    ``require_in_image``, outside the image). Without it, points off to the side give coordinates off the image."""
    cam = camera_pose.rotation() @ (np.asarray(point_xyz_cm, dtype=np.float64) - camera_pose.position)
    if cam[2] < NEAR_CM:
        return None
    u = intrinsics.fx * cam[0] / cam[2] + intrinsics.cx
    v = intrinsics.fy * cam[1] / cam[2] + intrinsics.cy
    if require_in_image and not (-0.5 <= u < intrinsics.width - 0.5 and -0.5 <= v < intrinsics.height - 0.5):
        return None
    return float(u), float(v)


def face_box_px(camera_pose: CameraPose, intrinsics: CameraModel, person: Any) -> tuple[float, float, float, float] | None:
    """Ground-truth face box (x1, y1, x2, y2) of a :class:`edgepilot.sim.world.PersonAt` as the camera sees it (the billboard
    faces the camera), or None when the face centre is behind the camera."""
    x, y, z = person.face_center_cm
    center = project_point(camera_pose, intrinsics, (x, y, z))
    if center is None:
        return None
    cam = camera_pose.rotation() @ (np.array([x, y, z]) - camera_pose.position)
    half = 0.5 * person.face_size_cm * intrinsics.fx / float(cam[2])
    return center[0] - half, center[1] - half, center[0] + half, center[1] + half


# ---- the renderer ---------------------------------------------------------------------------------------------------
class Renderer:
    """Renders a :class:`World` at a given :class:`CameraModel`; holds what is worth precomputing (sky, pyramid)."""

    max_mip_levels = 4

    def __init__(self, world: World, intrinsics: CameraModel) -> None:
        self.world = world
        self.intrinsics = intrinsics
        self.sky = textures.sky_gradient(intrinsics.width, intrinsics.height)
        self._k = intrinsics.matrix
        self._k_inv = np.linalg.inv(self._k)

    @cached_property
    def _pyramid(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(texture, texel-of-this-level -> world matrix) per level; level L averages 2^L x 2^L texels."""
        ground = self.world.ground
        image, levels = ground.image, []
        for level in range(self.max_mip_levels):
            k = 2.0**level
            # Texel i of level L covers level-0 texels [k*i, k*i + k), whose centre is level-0 texel k*i + (k-1)/2.
            to_level0 = np.array([[k, 0.0, (k - 1) / 2.0], [0.0, k, (k - 1) / 2.0], [0.0, 0.0, 1.0]])
            levels.append((image, ground.texel_to_world() @ to_level0))
            if min(image.shape[:2]) < 64:
                break
            image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
        return levels

    def render(self, pose: CameraPose, t_s: float, out: np.ndarray | None = None) -> np.ndarray:
        """The BGR image the camera at ``pose`` sees at world time ``t_s``."""
        w, h = self.intrinsics.width, self.intrinsics.height
        if out is None:
            out = np.empty((h, w, 3), np.uint8)
        if pose.z_cm < MIN_CAMERA_HEIGHT_CM:
            pose = CameraPose(pose.x_cm, pose.y_cm, MIN_CAMERA_HEIGHT_CM, pose.yaw_deg, pose.pitch_deg)
        rotation = pose.rotation()
        first_ground_row = self._draw_ground(out, pose, rotation)
        if first_ground_row > 0:
            out[:first_ground_row] = self.sky[:first_ground_row]
        self._draw_people(out, pose, rotation, t_s)
        return out

    def _draw_ground(self, out: np.ndarray, pose: CameraPose, rotation: np.ndarray) -> int:
        """Warp the ground into the rows below the horizon, one band per pyramid level; return the first row."""
        w, h = self.intrinsics.width, self.intrinsics.height
        # Vertical component of each row's viewing ray (camera z = 1). No roll, so it does not depend on the column.
        rows = np.arange(h, dtype=np.float64)
        to_world = rotation.T @ self._k_inv
        ray_z = to_world[2, 0] * self.intrinsics.cx + to_world[2, 1] * rows + to_world[2, 2]
        sees_ground = ray_z < -1e-9
        if not sees_ground.any():
            return h
        first = int(np.argmax(sees_ground))
        # Ground plane (x, y, 0) -> camera: x*R[:,0] + y*R[:,1] - R C. Rows above `first` look at the sky, where the
        # homography would show the ground behind the camera; they are painted over with the sky.
        plane = self._k @ np.column_stack([rotation[:, 0], rotation[:, 1], -rotation @ pose.position])
        # Pixel footprint on the ground (cm) across the image for each row: depth / fx. Choose the pyramid level
        # whose texels are about that size.
        depth = np.full(h, np.inf)
        depth[first:] = pose.z_cm / -ray_z[first:]
        texels = depth / self.intrinsics.fx / self.world.ground.cm_per_px
        levels = np.clip(np.round(np.log2(np.maximum(texels, 1e-9))), 0, len(self._pyramid) - 1).astype(int)
        border = self.world.ground.border_bgr
        row = first
        while row < h:
            level = levels[row]
            end = row + 1
            while end < h and levels[end] == level:
                end += 1
            image, to_world_level = self._pyramid[level]
            band = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -row], [0.0, 0.0, 1.0]]) @ plane @ to_world_level
            out[row:end] = cv2.warpPerspective(image, band, (w, end - row), flags=cv2.INTER_LINEAR,
                                               borderMode=cv2.BORDER_CONSTANT, borderValue=border)
            row = end
        return first

    def _draw_people(self, out: np.ndarray, pose: CameraPose, rotation: np.ndarray, t_s: float) -> None:
        position = pose.position
        visible = []
        for person in self.world.people_at(t_s):
            distance = math.hypot(person.x_cm - pose.x_cm, person.y_cm - pose.y_cm)
            if distance > 1e-6:
                visible.append((distance, person))
        # Painter's algorithm: far to near.
        for _, placed in sorted(visible, key=lambda item: -item[0]):
            self._draw_billboard(out, placed.person, placed.x_cm, placed.y_cm, pose, rotation, position)

    def _draw_billboard(self, out: np.ndarray, person: Person, x: float, y: float, pose: CameraPose,
                        rotation: np.ndarray, position: np.ndarray) -> None:
        w, h = self.intrinsics.width, self.intrinsics.height
        tex = person.texture
        th, tw = tex.shape[:2]
        # The billboard turns about its vertical axis to face the camera; its texture's +u runs to the camera's right.
        dx, dy = x - pose.x_cm, y - pose.y_cm
        norm = math.hypot(dx, dy)
        right = np.array([dy / norm, -dx / norm, 0.0])
        up = np.array([0.0, 0.0, 1.0])
        top_left = np.array([x, y, 0.0]) - right * person.width_cm / 2.0 + up * person.height_cm
        e_u, e_v = right * person.width_cm / tw, -up * person.height_cm / th  # world cm per texel
        # Texel (u, v, 1) -> camera coordinates; texel centres are half a texel in from the billboard's edges.
        first_texel = top_left + 0.5 * (e_u + e_v)
        tex_to_cam = np.column_stack([rotation @ e_u, rotation @ e_v, rotation @ (first_texel - position)])
        corners_tex = np.array([[-0.5, -0.5, 1.0], [tw - 0.5, -0.5, 1.0], [tw - 0.5, th - 0.5, 1.0],
                                [-0.5, th - 0.5, 1.0]])
        corners_cam = corners_tex @ tex_to_cam.T
        depth = corners_cam[:, 2]
        if (depth < NEAR_CM).all():
            return
        clipped = depth < NEAR_CM
        polygon = _clip_near(corners_cam) if clipped.any() else corners_cam
        projected = polygon[:, :2] / polygon[:, 2:3] * [self.intrinsics.fx, self.intrinsics.fy] + \
            [self.intrinsics.cx, self.intrinsics.cy]
        x0, y0 = np.floor(projected.min(axis=0)).astype(int)
        x1, y1 = np.ceil(projected.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x0 >= x1 or y0 >= y1:
            return
        shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
        homography = shift @ self._k @ tex_to_cam
        patch = cv2.warpPerspective(tex, homography, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        mask = patch[:, :, 3] >= 128
        if clipped.any():
            # Only pixels inside the clipped polygon see the billboard in front of the camera; outside it the
            # homography would map rays that meet the billboard's plane behind the camera.
            inside = np.zeros(mask.shape, np.uint8)
            cv2.fillConvexPoly(inside, np.round((projected - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
            mask &= inside.astype(bool)
        np.copyto(out[y0:y1, x0:x1], patch[:, :, :3], where=mask[:, :, None])


def _clip_near(polygon: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of a convex polygon (camera coordinates) with z >= NEAR_CM."""
    result = []
    n = len(polygon)
    for i in range(n):
        a, b = polygon[i], polygon[(i + 1) % n]
        a_in, b_in = a[2] >= NEAR_CM, b[2] >= NEAR_CM
        if a_in:
            result.append(a)
        if a_in != b_in:
            t = (NEAR_CM - a[2]) / (b[2] - a[2])
            result.append(a + t * (b - a))
    return np.array(result)


# ---- the camera -----------------------------------------------------------------------------------------------------
class PoseSource(Protocol):
    kind: str

    def world_pose(self) -> Pose: ...


class SimCamera:
    """:class:`edgepilot.pilot.core.hal.Camera` for the simulator: renders what ``vehicle`` sees from ``vehicle.world_pose()``.

    World time (for walking people) is ``clock.now() - start_s``; ``start_s`` defaults to the clock's time when the
    camera is made. ``Frame.t_s`` is the clock's time. ``noise_std`` adds seeded Gaussian-like sensor noise.
    """

    def __init__(self, world: World, vehicle: PoseSource, clock: Clock | None = None, width: int = 640,
                 height: int = 480, hfov_deg: float | None = None, mount: CameraMount | None = None,
                 noise_std: float = 0.0, seed: int = 0, start_s: float | None = None) -> None:
        self.world = world
        self.vehicle = vehicle
        self.clock = clock or MonotonicClock()
        kind = getattr(vehicle, "kind", "drone")
        base = mount or MOUNTS.get(kind, DRONE_MOUNT)
        self.mount = CameraMount(base.height_cm, base.pitch_deg, hfov_deg or base.hfov_deg)
        self.intrinsics = CameraModel(width, height, self.mount.hfov_deg, self.mount.height_cm, self.mount.pitch_deg)
        self.renderer = Renderer(world, self.intrinsics)
        self.start_s = self.clock.now() if start_s is None else float(start_s)
        self.source = f"sim-{kind}"
        self._index = 0
        self._closed = False
        self._rng = np.random.default_rng([seed, 6])
        self._noise = _noise_frames(self._rng, height, width, noise_std) if noise_std > 0 else None

    def camera_pose(self) -> CameraPose:
        """Where the camera is now (for ground truth: pass it to :func:`project_point`)."""
        return self.mount.camera_pose(self.vehicle.world_pose())

    def world_time_s(self) -> float:
        return self.clock.now() - self.start_s

    def read(self) -> Frame | None:
        if self._closed:
            return None
        t_s = self.clock.now()
        image = self.renderer.render(self.camera_pose(), t_s - self.start_s)
        if self._noise is not None:
            plus, minus = self._noise[int(self._rng.integers(len(self._noise)))]
            cv2.add(image, plus, dst=image)
            cv2.subtract(image, minus, dst=image)
        frame = Frame(image, t_s, self._index, self.source)
        self._index += 1
        return frame

    def close(self) -> None:
        self._closed = True


def _noise_frames(rng: np.random.Generator, height: int, width: int, std: float, count: int = 4
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few precomputed noise frames, split into positive and negative parts so adding one is two saturating
    uint8 operations (drawing fresh Gaussian noise for every frame would cost more than rendering it)."""
    frames = []
    for _ in range(count):
        noise = np.clip(np.round(rng.normal(0.0, std, (height, width, 3))), -255, 255)
        frames.append((np.maximum(noise, 0).astype(np.uint8), np.maximum(-noise, 0).astype(np.uint8)))
    return frames


def make_sim_camera(world: World | None = None, vehicle: PoseSource | None = None, clock: Clock | None = None,
                    width: int = 640, height: int = 480, seed: int = 0, **kwargs: Any) -> SimCamera:
    """Registry-style factory. Without a world, builds the default seeded world for the vehicle's kind."""
    if vehicle is None:
        raise TypeError("make_sim_camera needs the vehicle whose view it renders")
    world = world or World.build(seed, getattr(vehicle, "kind", "drone"))
    return SimCamera(world, vehicle, clock, width=width, height=height, seed=seed, **kwargs)


# ---- benchmark ------------------------------------------------------------------------------------------------------
class _TrackDriver:
    """A car that follows the track's centre line at a steady speed (for the benchmark)."""

    kind = "car"

    def __init__(self, world: World, clock: Clock, speed_cm_s: float = 60.0) -> None:
        self.world, self.clock, self.speed_cm_s = world, clock, speed_cm_s

    def world_pose(self) -> Pose:
        assert self.world.track is not None
        return self.world.track.pose_at(self.clock.now() * self.speed_cm_s)


def benchmark(kind: str = "drone", width: int = 640, height: int = 480, frames: int = 300, seed: int = 0,
              threads: int | None = 1) -> dict[str, float | int | str]:
    """Render ``frames`` frames of a moving vehicle's view and time each ``read()``.

    The drone takes off and turns slowly in place (people come and go through the view); the car drives the lane.
    ``threads`` sets OpenCV's thread count for the run (1 = the one-core figure; None leaves it) and is restored.
    Returns wall-clock median/p95/mean milliseconds per frame, the fps the median allows, and the median CPU time
    of the rendering thread (``cpu_median_ms``: what one core spends, whatever else the machine is doing).
    """
    from edgepilot.pilot.core.clock import FakeClock
    from edgepilot.pilot.core.messages import Command, Velocity
    from edgepilot.sim.vehicles import SimDrone

    clock = FakeClock()
    world = World.build(seed, kind)
    if kind == "drone":
        vehicle: Any = SimDrone(clock)
        vehicle.execute(Command("takeoff"))
        clock.advance(2.0)
        vehicle.send_velocity(Velocity(yaw_rate_deg_s=24.0))
    else:
        vehicle = _TrackDriver(world, clock)
    camera = SimCamera(world, vehicle, clock, width=width, height=height, start_s=0.0)
    previous_threads = cv2.getNumThreads()
    if threads is not None:
        cv2.setNumThreads(threads)
    try:
        camera.read()  # warm-up: builds the texture pyramid
        times, cpu_times = [], []
        for _ in range(frames):
            clock.advance(1.0 / 30.0)
            if kind == "drone":
                vehicle.send_velocity(Velocity(yaw_rate_deg_s=24.0))  # keep the auto-land timer quiet
            start, cpu_start = time.perf_counter(), time.thread_time()
            camera.read()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.thread_time() - cpu_start)
    finally:
        cv2.setNumThreads(previous_threads)
        camera.close()
        vehicle_close = getattr(vehicle, "close", None)
        if vehicle_close:
            vehicle_close()
    ms, cpu_ms = np.array(times) * 1000.0, np.array(cpu_times) * 1000.0
    median = float(np.median(ms))
    return {"kind": kind, "width": width, "height": height, "frames": frames, "threads": threads or 0,
            "median_ms": round(median, 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3), "fps": round(1000.0 / median, 1),
            "cpu_median_ms": round(float(np.median(cpu_ms)), 3)}
