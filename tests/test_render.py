"""The camera renderer: billboards and ground lines appear where the pinhole model says, clipping, the horizon,
and SimCamera as a pilot.hal.Camera on a simulated drone and car."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.geometry import CameraModel
from edgepilot.pilot.core.hal import Camera
from edgepilot.pilot.core.messages import Command
from edgepilot.sim import textures
from edgepilot.sim.render import (
    CAR_MOUNT,
    CameraPose,
    Renderer,
    SimCamera,
    benchmark,
    face_box_px,
    make_sim_camera,
    project_point,
)
from edgepilot.sim.vehicles import Pose, SimCar, SimDrone
from edgepilot.sim.world import Person, World

MAGENTA = (255, 0, 255)
CYAN_SHIRT = (255, 255, 0)
BLUE_TROUSERS = (255, 0, 0)
TELLO = CameraModel(640, 480, 82.6)


def marker_person(x: float, y: float, scale: float = 1.0, **kwargs) -> Person:
    """A person with a solid magenta head, a cyan shirt and blue trousers: colours nothing else in the world has."""
    head = np.zeros((100, 100, 3), np.uint8)
    head[:] = MAGENTA
    face = textures.FaceImage(head, (25.0, 25.0, 50.0, 50.0), "marker")
    return Person.create("marker", [(x, y)], face=face, scale=scale, shirt_bgr=CYAN_SHIRT,
                         trousers_bgr=BLUE_TROUSERS, skin_bgr=(90, 140, 200), **kwargs)


def colour_mask(image: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return (np.abs(image.astype(np.int16) - np.array(bgr, np.int16)) <= tolerance).all(axis=2)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return float(cols.mean()), float(rows.mean())


@pytest.fixture(scope="module")
def empty_drone_world() -> World:
    return World.build(0, "drone", people=0)


@pytest.fixture(scope="module")
def car_world() -> World:
    return World.build(0, "car", people=0)


# ---- projection -----------------------------------------------------------------------------------------------------
def test_project_point_follows_rep103_and_the_pinhole_model():
    pose = CameraPose(0.0, 0.0, 100.0, 0.0)
    assert project_point(pose, TELLO, (500.0, 0.0, 100.0)) == pytest.approx((TELLO.cx, TELLO.cy))
    u, v = project_point(pose, TELLO, (200.0, 50.0, 150.0))  # left and up
    assert u == pytest.approx(TELLO.cx - TELLO.fx * 50.0 / 200.0)
    assert v == pytest.approx(TELLO.cy - TELLO.fy * 50.0 / 200.0)
    assert project_point(pose, TELLO, (-100.0, 0.0, 100.0)) is None  # behind
    assert project_point(pose, TELLO, (100.0, 500.0, 100.0)) is not None  # far off to the side...
    assert project_point(pose, TELLO, (100.0, 500.0, 100.0), require_in_image=True) is None  # ...not in the image
    turned = CameraPose(0.0, 0.0, 100.0, 90.0)  # yaw CCW: now looking along +y
    assert project_point(turned, TELLO, (0.0, 300.0, 100.0)) == pytest.approx((TELLO.cx, TELLO.cy))
    pitched = CameraPose(0.0, 0.0, 100.0, 0.0, pitch_deg=45.0)  # looking down at 45 degrees
    assert project_point(pitched, TELLO, (100.0, 0.0, 0.0)) == pytest.approx((TELLO.cx, TELLO.cy))


def test_intrinsics_from_the_tello_field_of_view():
    assert TELLO.fx == pytest.approx(320.0 / math.tan(math.radians(41.3)))
    assert (TELLO.cx, TELLO.cy) == (319.5, 239.5)


# ---- billboards -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("pose", "person_xy", "size"), [
    (CameraPose(0.0, 0.0, 83.0, 0.0), (300.0, 0.0), (640, 480)),  # straight ahead
    (CameraPose(0.0, 0.0, 150.0, 0.0), (250.0, 80.0), (640, 480)),  # up and to the left
    (CameraPose(40.0, -30.0, 120.0, 30.0), (260.0, 60.0), (640, 480)),  # turned, off to the right of centre
    (CameraPose(0.0, 0.0, 100.0, 0.0, pitch_deg=12.0), (400.0, -100.0), (960, 720)),  # pitched, Tello resolution
])
def test_billboard_appears_where_the_pinhole_model_says(empty_drone_world, pose, person_xy, size):
    world = empty_drone_world.with_people(marker_person(*person_xy))
    intrinsics = CameraModel(*size, 82.6)
    image = Renderer(world, intrinsics).render(pose, 0.0)
    mask = colour_mask(image, MAGENTA)
    assert mask.sum() > 100
    (placed,) = world.people_at(0.0)
    expected = project_point(pose, intrinsics, placed.face_center_cm, require_in_image=True)
    assert expected is not None
    assert centroid(mask) == pytest.approx(expected, abs=1.5)
    # Its size too: the magenta head is HEAD_BOX_CM tall.
    depth = (pose.rotation() @ (np.array(placed.face_center_cm) - pose.position))[2]
    head_cm = textures.HEAD_BOX_CM[3] - textures.HEAD_BOX_CM[1]
    rows = np.nonzero(mask.any(axis=1))[0]
    assert rows.max() - rows.min() + 1 == pytest.approx(intrinsics.fy * head_cm / depth, rel=0.08, abs=2)
    box = face_box_px(pose, intrinsics, placed)
    assert ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) == pytest.approx(expected)


def test_figure_stands_on_the_ground_in_the_car_view(car_world):
    track = car_world.track
    x, y, _ = track.point_at(120.0)
    world = car_world.with_people(marker_person(x, y, scale=0.15))
    pose = CAR_MOUNT.camera_pose(world.start_pose)
    intrinsics = CameraModel(640, 480, CAR_MOUNT.hfov_deg)
    image = Renderer(world, intrinsics).render(pose, 0.0)
    (placed,) = world.people_at(0.0)
    expected = project_point(pose, intrinsics, placed.face_center_cm, require_in_image=True)
    head = colour_mask(image, MAGENTA)
    assert head.sum() > 10
    assert centroid(head) == pytest.approx(expected, abs=1.5)
    # The trousers end where the shoes begin, 5 cm above the ground at adult size.
    ankles = project_point(pose, intrinsics, (x, y, 5.0 * 0.15))
    trouser_rows = np.nonzero(colour_mask(image, BLUE_TROUSERS).any(axis=1))[0]
    assert trouser_rows.max() == pytest.approx(ankles[1], abs=1.5)


def test_billboard_behind_the_camera_is_not_drawn(empty_drone_world):
    world = empty_drone_world.with_people(marker_person(-250.0, 0.0))
    renderer = Renderer(world, TELLO)
    ahead = renderer.render(CameraPose(0.0, 0.0, 100.0, 0.0), 0.0)
    assert not colour_mask(ahead, MAGENTA).any() and not colour_mask(ahead, CYAN_SHIRT).any()
    behind = renderer.render(CameraPose(0.0, 0.0, 100.0, 180.0), 0.0)
    assert colour_mask(behind, MAGENTA).sum() > 100


def test_billboard_cut_by_the_near_plane_draws_only_its_front_part(empty_drone_world):
    # A person 20 cm away, 60 degrees to the left: the billboard (turned to the camera) is 45 cm wide, so one edge
    # is behind the camera and the other in front of it, inside the field of view.
    person_xy = (20.0 * math.cos(math.radians(60.0)), 20.0 * math.sin(math.radians(60.0)))
    world = empty_drone_world.with_people(marker_person(*person_xy))
    intrinsics = TELLO
    pose = CameraPose(0.0, 0.0, 100.0, 0.0)
    (placed,) = world.people_at(0.0)
    right_x = person_xy[1] / math.hypot(*person_xy)  # x component of the billboard's right axis
    near_edge, far_edge = person_xy[0] - right_x * placed.width_cm / 2, person_xy[0] + right_x * placed.width_cm / 2
    assert near_edge < 0.0 < far_edge  # the premise: one edge behind the camera, one in front
    image = Renderer(world, intrinsics).render(pose, 0.0)
    shirt = colour_mask(image, CYAN_SHIRT)
    assert shirt.sum() > 1000  # the front part fills the left of the view...
    assert not shirt[:, int(intrinsics.cx) + 1:].any()  # ...and nothing mirrored appears on the right


def test_nearer_people_hide_farther_ones(empty_drone_world):
    near = marker_person(200.0, 0.0)
    far = Person.create("far", [(600.0, 0.0)], face=textures.generated_face(3), shirt_bgr=(0, 0, 255))
    world = empty_drone_world.with_people(far, near)  # far one listed last: drawing order must not depend on it
    image = Renderer(world, TELLO).render(CameraPose(0.0, 0.0, 100.0, 0.0), 0.0)
    u, v = project_point(CameraPose(0.0, 0.0, 100.0, 0.0), TELLO, (600.0, 0.0, 100.0))
    assert colour_mask(image[int(v):int(v) + 1, int(u):int(u) + 1], CYAN_SHIRT).all()


def test_walking_person_moves_across_the_view(empty_drone_world):
    walker = Person.create("marker", [(300.0, 100.0), (300.0, -100.0)], face=textures.FaceImage(
        np.full((50, 50, 3), MAGENTA, np.uint8), (10.0, 10.0, 30.0, 30.0)), shirt_bgr=CYAN_SHIRT, speed_cm_s=50.0)
    world = empty_drone_world.with_people(walker)
    renderer, pose = Renderer(world, TELLO), CameraPose(0.0, 0.0, 100.0, 0.0)
    xs = [centroid(colour_mask(renderer.render(pose, t), MAGENTA))[0] for t in (0.0, 2.0, 4.0)]
    assert xs[0] < xs[1] < xs[2]  # from the left (+y) to the right
    assert xs[1] == pytest.approx(TELLO.cx, abs=1.5)


# ---- ground and sky -------------------------------------------------------------------------------------------------
def test_lane_lines_appear_where_projected(car_world):
    pose = CAR_MOUNT.camera_pose(car_world.start_pose)
    intrinsics = CameraModel(640, 480, CAR_MOUNT.hfov_deg)
    image = Renderer(car_world, intrinsics).render(pose, 0.0)
    half = car_world.track.half_width_cm
    for x in (40.0, 60.0, 90.0):  # the straight runs to x = 100
        u, v = project_point(pose, intrinsics, (x, -half, 0.0), require_in_image=True)
        b, g, r = image[round(v), round(u)].astype(int)
        assert min(b, g, r) > 170, f"white line at x={x}: {b, g, r}"
        u, v = project_point(pose, intrinsics, (x, half, 0.0), require_in_image=True)
        b, g, r = image[round(v), round(u)].astype(int)
        assert r > 170 and g > 150 and b < 110, f"yellow line at x={x}: {b, g, r}"
        u, v = project_point(pose, intrinsics, (x, 0.0, 0.0), require_in_image=True)
        assert image[round(v), round(u)].max() < 110  # asphalt between the lines
        u, v = project_point(pose, intrinsics, (x, -half - 4.0, 0.0), require_in_image=True)
        assert image[round(v), round(u)].max() < 110  # and just outside the white line


def test_floor_tile_joints_appear_where_projected(empty_drone_world):
    pose = CameraPose(0.0, 0.0, 120.0, 0.0, pitch_deg=30.0)
    image = Renderer(empty_drone_world, TELLO).render(pose, 0.0).astype(float).mean(axis=2)

    def brightness(x: float, y: float) -> float:
        u, v = project_point(pose, TELLO, (x, y, 0.0), require_in_image=True)
        return float(image[round(v), round(u)])

    # Tiles are 50 cm, joints at multiples of 50 cm (1 cm wide): darker than the middle of the tiles beside them.
    for x in (150.0, 200.0):
        joint = np.mean([brightness(x + 0.5, y) for y in (-60.0, -35.0, 15.0, 35.0)])
        tiles = np.mean([brightness(x + 25.0, y) for y in (-60.0, -35.0, 15.0, 35.0)])
        assert joint < 0.8 * tiles


def test_sky_above_the_horizon_ground_below(empty_drone_world):
    renderer = Renderer(empty_drone_world, TELLO)
    level = renderer.render(CameraPose(0.0, 0.0, 80.0, 0.0), 0.0)
    assert np.array_equal(level[:240], renderer.sky[:240])  # horizon at the optical centre (row 239.5)
    assert not np.array_equal(level[241:], renderer.sky[241:])
    pitched = renderer.render(CameraPose(0.0, 0.0, 80.0, 0.0, pitch_deg=20.0), 0.0)
    horizon_row = TELLO.cy - TELLO.fy * math.tan(math.radians(20.0))
    sky_rows = int(math.floor(horizon_row)) + 1
    assert np.array_equal(pitched[:sky_rows], renderer.sky[:sky_rows])
    assert not np.array_equal(pitched[sky_rows + 1], renderer.sky[sky_rows + 1])
    down = renderer.render(CameraPose(0.0, 0.0, 80.0, 0.0, pitch_deg=89.0), 0.0)
    assert not np.array_equal(down[0], renderer.sky[0])  # looking at the floor: no sky


def test_camera_on_the_ground_still_renders(empty_drone_world):
    world = empty_drone_world.with_people(marker_person(300.0, 0.0))
    renderer = Renderer(world, TELLO)
    image = renderer.render(CameraPose(0.0, 0.0, 0.0, 0.0), 0.0)
    assert np.array_equal(image[:200, :100], renderer.sky[:200, :100])
    assert not np.array_equal(image[-1], renderer.sky[-1])
    assert colour_mask(image, MAGENTA).sum() > 100  # a person 3 m away towers over a camera on the floor
    below_ground = renderer.render(CameraPose(0.0, 0.0, -5.0, 0.0), 0.0)
    assert np.array_equal(image, below_ground)  # clamped, not mirrored


# ---- SimCamera ------------------------------------------------------------------------------------------------------
def test_sim_camera_on_a_drone_is_a_hal_camera(empty_drone_world):
    world = empty_drone_world.with_people(marker_person(300.0, 0.0))
    clock = FakeClock(100.0)
    drone = SimDrone(clock)
    camera = SimCamera(world, drone, clock)
    assert isinstance(camera, Camera)
    drone.execute(Command("takeoff"))
    clock.advance(3.0)
    frame = camera.read()
    assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
    assert frame.t_s == 103.0 and frame.index == 0 and frame.source == "sim-drone"
    assert camera.world_time_s() == pytest.approx(3.0)
    pose = camera.camera_pose()
    assert pose.z_cm == pytest.approx(80.0 + 3.0) and pose.pitch_deg == 0.0
    (placed,) = world.people_at(camera.world_time_s())
    expected = project_point(pose, camera.intrinsics, placed.face_center_cm)
    assert centroid(colour_mask(frame.image, MAGENTA)) == pytest.approx(expected, abs=1.5)
    assert camera.read().index == 1
    camera.close()
    camera.close()
    assert camera.read() is None


def test_sim_camera_on_a_car_uses_the_car_mount(car_world):
    clock = FakeClock()
    car = SimCar(clock, origin=car_world.start_pose)
    camera = make_sim_camera(car_world, car, clock)
    pose = camera.camera_pose()
    assert (pose.z_cm, pose.pitch_deg) == (CAR_MOUNT.height_cm, CAR_MOUNT.pitch_deg)
    assert camera.intrinsics.fx == pytest.approx(CameraModel(640, 480, CAR_MOUNT.hfov_deg).fx)
    frame = camera.read()
    assert frame.source == "sim-car"
    car.execute(Command("forward", 50))
    clock.advance(5.0)
    moved = camera.read()
    assert camera.camera_pose().x_cm == pytest.approx(50.0, abs=1.0)
    assert not np.array_equal(frame.image, moved.image)


def test_rendering_is_deterministic_and_noise_is_seeded(empty_drone_world):
    world = empty_drone_world.with_people(marker_person(300.0, 0.0))

    def frame(**kwargs):
        clock = FakeClock()
        return SimCamera(world, SimDrone(clock, origin=Pose(10.0, 5.0, 0.0, 3.0)), clock, **kwargs).read().image

    clean = frame()
    assert np.array_equal(clean, frame())
    noisy = frame(noise_std=4.0, seed=1)
    assert np.array_equal(noisy, frame(noise_std=4.0, seed=1))
    assert not np.array_equal(noisy, frame(noise_std=4.0, seed=2))
    difference = noisy.astype(float) - clean.astype(float)
    assert 2.0 < difference.std() < 6.0 and abs(difference.mean()) < 0.5


def test_benchmark_reports_times():
    result = benchmark("car", width=320, height=240, frames=5)
    assert result["kind"] == "car" and result["frames"] == 5
    assert 0 < result["median_ms"] <= result["p95_ms"]
    assert result["fps"] == pytest.approx(1000.0 / result["median_ms"], rel=0.01)


def test_billboard_is_not_mirrored(empty_drone_world):
    # A photo whose left half is red and right half green must show red on the left, as a camera would see it.
    photo = np.zeros((100, 100, 3), np.uint8)
    photo[:, :50] = (0, 0, 255)
    photo[:, 50:] = (0, 255, 0)
    person = Person.create("halves", [(250.0, -60.0)], face=textures.FaceImage(photo, (20.0, 20.0, 60.0, 60.0)),
                           shirt_bgr=CYAN_SHIRT, skin_bgr=(90, 140, 200))
    renderer = Renderer(empty_drone_world.with_people(person), TELLO)
    for pose in (CameraPose(0.0, 0.0, 150.0, 0.0), CameraPose(500.0, -60.0, 150.0, 180.0)):  # in front, behind
        image = renderer.render(pose, 0.0)
        red, green = colour_mask(image, (0, 0, 255)), colour_mask(image, (0, 255, 0))
        assert red.sum() > 50 and green.sum() > 50
        assert centroid(red)[0] < centroid(green)[0]


def ray_cast_billboard(pose: CameraPose, intrinsics: CameraModel, person: Person, xy: tuple[float, float]
                       ) -> np.ndarray:
    """Reference renderer, one ray per pixel: which pixels see the (opaque part of the) person's billboard?"""
    u, v = np.meshgrid(np.arange(intrinsics.width, dtype=float), np.arange(intrinsics.height, dtype=float))
    rays = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u)], -1)
    rays_world = rays @ pose.rotation()  # camera -> world: R^T d, row-wise; camera depth of a hit = t
    base = np.array([xy[0], xy[1], 0.0])
    normal = base - pose.position
    normal[2] = 0.0
    normal /= np.linalg.norm(normal)
    right = np.array([normal[1], -normal[0], 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((base - pose.position) @ normal) / (rays_world @ normal)
    hits = pose.position + t[..., None] * rays_world
    across = (hits - base) @ right
    tex = person.texture
    col = np.floor((across / person.width_cm + 0.5) * tex.shape[1]).astype(int)
    row = np.floor((1.0 - hits[..., 2] / person.height_cm) * tex.shape[0]).astype(int)
    on = (t >= 1.0) & (col >= 0) & (col < tex.shape[1]) & (row >= 0) & (row < tex.shape[0])
    alpha = tex[np.clip(row, 0, tex.shape[0] - 1), np.clip(col, 0, tex.shape[1] - 1), 3]
    return on & (alpha >= 128)


@pytest.mark.parametrize("pose", [
    CameraPose(2.378 * math.cos(math.radians(131.4)), 2.378 * math.sin(math.radians(131.4)), 130.9, 28.3, -19.2),
    CameraPose(7.71 * math.cos(math.radians(162.1)), 7.71 * math.sin(math.radians(162.1)), 46.9, 286.7, -52.2),
    CameraPose(-20.0, 15.0, 100.0, 0.0, 0.0),
    CameraPose(-3.0, 0.5, 60.0, 10.0, 70.0),
])
def test_billboard_close_to_the_camera_matches_a_ray_cast(empty_drone_world, pose):
    # So close that the billboard crosses the near plane: what is drawn must be exactly what rays hit in front of the
    # camera (nothing of the part behind it, which the plane's homography would otherwise fold into the view).
    person = marker_person(0.0, 0.0)
    background = Renderer(empty_drone_world, TELLO).render(pose, 0.0)
    image = Renderer(empty_drone_world.with_people(person), TELLO).render(pose, 0.0)
    drawn = (image != background).any(axis=2)
    expected = ray_cast_billboard(pose, TELLO, person, (0.0, 0.0))
    assert expected.sum() > 1000
    # Equal up to the one-pixel rim where the filtered alpha edge may fall either side of a pixel centre.
    kernel = np.ones((3, 3), np.uint8)
    assert not (drawn & ~cv2.dilate(expected.astype(np.uint8), kernel).astype(bool)).any()
    assert not (cv2.erode(expected.astype(np.uint8), kernel).astype(bool) & ~drawn).any()


@pytest.mark.parametrize(("kind", "pose"), [
    ("car", CAR_MOUNT.camera_pose(Pose(10.0, 3.0, 0.0, 8.0))),
    ("drone", CameraPose(30.0, -20.0, 90.0, -25.0, pitch_deg=35.0)),
])
def test_near_ground_matches_a_ray_cast(car_world, empty_drone_world, kind, pose):
    # Each pixel's ray meets the ground at a point; sample the ground texture there (bilinear, like the renderer).
    world = car_world if kind == "car" else empty_drone_world
    intrinsics = CameraModel(640, 480, CAR_MOUNT.hfov_deg if kind == "car" else 82.6)
    image = Renderer(world, intrinsics).render(pose, 0.0)
    u, v = np.meshgrid(np.arange(640, dtype=float), np.arange(480, dtype=float))
    rays = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u)], -1)
    rays_world = rays @ pose.rotation()
    with np.errstate(divide="ignore"):
        t = -pose.z_cm / rays_world[..., 2]
    ground_x, ground_y = pose.x_cm + t * rays_world[..., 0], pose.y_cm + t * rays_world[..., 1]
    col, row = world.ground.world_to_texel(ground_x, ground_y)
    reference = cv2.remap(world.ground.image, col.astype(np.float32), row.astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=world.ground.border_bgr)
    # Compare where the full-resolution texture is used: pixels no wider than a texel on the ground.
    near = (t > 0) & (t / intrinsics.fx <= 0.7 * world.ground.cm_per_px)
    assert near.sum() > 50_000
    difference = np.abs(image.astype(int) - reference.astype(int))[near]
    assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 3


@pytest.mark.parametrize("distance_cm", [100.0, 200.0])
def test_real_face_detector_finds_the_rendered_face_where_the_ground_truth_says(distance_cm):
    # End to end with the project's BlazeFace model: the face on the billboard (a cached test photo, or a drawn face
    # when the cache is empty) is a face to a real detector, at the place and size face_box_px gives. (At 3 m the
    # face is 22 px and the detector's boxes get loose, so this stays at 1-2 m.)
    from edgepilot.vision.detectors import FaceDetector

    world = World.build(0, "drone", walking=False)
    person = world.people_at(0.0)[0]
    pose = CameraPose(person.x_cm - distance_cm, 30.0, 120.0, 0.0)
    truth = face_box_px(pose, TELLO, person)
    found = FaceDetector("full").detect(Renderer(world, TELLO).render(pose, 0.0))
    size = truth[2] - truth[0]
    centre = ((truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2)
    matches = [d for d in found if math.dist(d.center, centre) < 0.3 * size]
    assert matches, (truth, found)
    assert 0.7 * size < matches[0].box[2] - matches[0].box[0] < 1.4 * size
