"""The simulated world: seeding, the lane track's geometry, people and their paths, face textures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgepilot.pilot.core.errors import InputError
from edgepilot.sim import textures
from edgepilot.sim.world import CAR_PERSON_SCALE, Person, Track, World


@pytest.fixture(scope="module")
def car_world() -> World:
    return World.build(3, "car")


# ---- seeding --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["drone", "car"])
def test_same_seed_builds_the_same_world(kind):
    a, b = World.build(11, kind), World.build(11, kind)
    assert np.array_equal(a.ground.image, b.ground.image)
    assert [p.name for p in a.people] == [p.name for p in b.people]
    for pa, pb in zip(a.people, b.people, strict=True):
        assert np.array_equal(pa.texture, pb.texture)
        for t in (0.0, 2.5, 17.0):
            assert pa.position(t) == pb.position(t)


def test_different_seeds_build_different_worlds():
    a, b = World.build(1, "drone"), World.build(2, "drone")
    assert not np.array_equal(a.ground.image, b.ground.image)
    assert [p.waypoints_cm for p in a.people[1:]] != [p.waypoints_cm for p in b.people[1:]]


def test_unknown_kind_is_a_clear_input_error():
    with pytest.raises(InputError, match="drone, car"):
        World.build(0, "boat")


def test_drone_world_puts_someone_straight_ahead_of_the_start():
    world = World.build(0, "drone", people=4)
    first = world.people_at(0.0)[0]
    assert (first.x_cm, first.y_cm) == (300.0, 0.0)
    assert first.height_cm == pytest.approx(170.0)
    # The others stay clear of the line of sight to the first person.
    for other in world.people_at(0.0)[1:]:
        assert abs(other.y_cm) >= 150.0


# ---- the track ------------------------------------------------------------------------------------------------------
def test_track_centerline_is_a_closed_loop_of_the_expected_length():
    track = Track.stadium(straight_cm=200.0, radius_cm=80.0, lane_width_cm=35.0)
    line = track.centerline
    assert line.shape[1] == 2 and len(line) > 100
    steps = np.hypot(*np.diff(np.vstack([line, line[:1]]), axis=0).T)
    assert steps.max() <= 2.0 + 1e-9  # closing segment included: no gap anywhere
    assert track.length_cm == pytest.approx(2 * 200.0 + 2 * math.pi * 80.0, rel=1e-3)
    assert tuple(line[0]) == (0.0, 0.0)
    assert track.half_width_cm == 17.5
    # Counter-clockwise: positive signed area (shoelace).
    x, y = line[:, 0], line[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0


@pytest.mark.parametrize(("point", "lateral"), [
    ((0.0, 0.0), 0.0),
    ((0.0, 10.0), 10.0),  # inside the loop = left of the driving direction
    ((0.0, -10.0), -10.0),
    ((50.0, -17.5), -17.5),  # on the right (white) line
    ((100.0 + 80.0 + 5.0, 80.0), -5.0),  # outside the right-hand curve
    ((100.0 + 80.0 * math.cos(math.radians(45)) * 0.9, 80.0 + 80.0 * math.sin(math.radians(45)) * 0.9), 8.0),
    ((0.0, 167.0), -7.0),  # outside the top straight (driven towards -x)
    ((-100.0 - 80.0 + 12.0, 80.0), 12.0),  # inside the left curve
])
def test_lateral_offset_of_known_points(point, lateral):
    track = Track.stadium()
    assert track.lateral_offset_cm(*point) == pytest.approx(lateral, abs=0.02)


def test_track_points_and_poses_follow_the_loop():
    track = Track.stadium()
    x, y, heading = track.point_at(0.0)
    assert (x, y, heading) == pytest.approx((0.0, 0.0, 0.0))
    quarter_turn = 100.0 + math.pi * 80.0 / 2.0  # half the bottom straight, then half of the right curve
    x, y, heading = track.point_at(quarter_turn)
    assert (x, y) == pytest.approx((180.0, 80.0), abs=0.05)
    assert heading == pytest.approx(90.0, abs=1.5)
    x, y, _ = track.point_at(track.length_cm + 30.0, lateral_cm=-17.5)  # wraps; 17.5 cm to the right
    assert (x, y) == pytest.approx((30.0, -17.5), abs=1e-6)
    pose = track.pose_at(50.0)
    projected = track.project(pose.x_cm, pose.y_cm)
    assert projected.s_cm == pytest.approx(50.0) and projected.lateral_cm == pytest.approx(0.0, abs=1e-9)


def test_track_rejects_a_bad_centerline():
    with pytest.raises(InputError, match="Nx2"):
        Track(np.zeros((5, 3)), 10.0)


def test_car_world_starts_on_the_lane_with_figures_beside_it(car_world):
    track = car_world.track
    assert car_world.start_pose.x_cm == 0.0 and car_world.start_pose.yaw_deg == 0.0
    for person in car_world.people_at(0.0):
        assert abs(track.lateral_offset_cm(person.x_cm, person.y_cm)) > track.half_width_cm
        assert person.height_cm == pytest.approx(170.0 * CAR_PERSON_SCALE)


# ---- people ---------------------------------------------------------------------------------------------------------
def test_person_walks_the_waypoints_at_its_speed():
    person = Person.create("walker", [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0)], speed_cm_s=50.0, start_s=2.0)
    assert person.position(0.0) == (0.0, 0.0)
    assert person.position(2.0) == (0.0, 0.0)
    assert person.position(3.0) == pytest.approx((50.0, 0.0))
    assert person.position(5.0) == pytest.approx((100.0, 50.0))
    assert person.position(60.0) == pytest.approx((100.0, 100.0))  # "stop" at the end


def test_person_pingpong_and_loop_modes():
    back_and_forth = Person.create("a", [(0.0, 0.0), (100.0, 0.0)], speed_cm_s=100.0, mode="pingpong")
    assert back_and_forth.position(1.5) == pytest.approx((50.0, 0.0))
    assert back_and_forth.position(2.0) == pytest.approx((0.0, 0.0))
    square = Person.create("b", [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)], speed_cm_s=100.0,
                           mode="loop")
    assert square.position(3.5) == pytest.approx((0.0, 50.0))  # on the closing leg back to the start
    assert square.position(4.0 + 0.25) == pytest.approx((25.0, 0.0))
    with pytest.raises(InputError, match="walking mode"):
        Person.create("c", [(0.0, 0.0)], mode="run")


def test_person_steps_onto_the_road_at_the_given_time(car_world):
    world = car_world.with_person_crossing(150.0, t_s=4.0, speed_cm_s=40.0)
    assert len(world.people) == len(car_world.people) + 1  # the original world is unchanged (frozen)
    pedestrian = world.people[-1]
    track = world.track
    before = pedestrian.position(3.9)
    assert abs(track.lateral_offset_cm(*before)) > track.half_width_cm
    assert track.project(*before).s_cm == pytest.approx(150.0, abs=0.5)
    after = pedestrian.position(10.0)
    assert abs(track.lateral_offset_cm(*after)) < 0.5
    assert pedestrian.position(4.2) != before  # already moving


def test_people_at_gives_the_face_centre(car_world):
    person = Person.create("tall", [(200.0, 30.0)])
    world = car_world.with_people(person, replace=True)
    (placed,) = world.people_at(1.0)
    fx0, fy0, fx1, fy1 = textures.FACE_BOX_CM
    assert placed.face_center_cm == pytest.approx((200.0, 30.0, 170.0 - (fy0 + fy1) / 2.0))
    assert placed.face_size_cm == pytest.approx(fy1 - fy0)
    assert fx0 + fx1 == pytest.approx(textures.ADULT_WIDTH_CM)  # horizontally centred: on the billboard's axis


# ---- face textures --------------------------------------------------------------------------------------------------
def test_face_from_an_array_lands_in_the_face_box():
    marker = np.zeros((200, 200, 3), np.uint8)
    marker[:] = (255, 0, 255)
    face = textures.FaceImage(marker, (50.0, 50.0, 100.0, 100.0), "magenta")
    picture = textures.person_texture(face, (0, 200, 0), (50, 50, 50))
    ppc = picture.px_per_cm
    x0, y0, x1, y1 = (int(round(v * ppc)) for v in textures.FACE_BOX_CM)
    face_region = picture.image[y0 + 2:y1 - 2, x0 + 2:x1 - 2]
    assert (face_region[:, :, 3] == 255).all()
    assert (np.abs(face_region[:, :, :3].astype(int) - (255, 0, 255)) <= 1).all()
    # Outside the person the billboard is transparent.
    assert picture.image[0, 0, 3] == 0 and picture.image[-1, picture.image.shape[1] // 2, 3] == 0


def test_missing_face_photo_is_a_clear_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read face photo"):
        textures.load_face(tmp_path / "nobody.jpg")


def test_face_photo_from_a_file_and_generated_fallback(tmp_path):
    import cv2

    generated = textures.generated_face(5)
    path = tmp_path / "carol2.png"
    assert cv2.imwrite(str(path), generated.image)
    loaded = textures.load_face(path)
    assert loaded.name == "carol" and np.array_equal(loaded.image, generated.image)
    person = Person.create(None, [(0.0, 0.0)], face=path)
    assert person.name == "carol"
    unnamed = Person.create(None, [(0.0, 0.0)], seed=9)
    assert unnamed.name == "person9" and unnamed.texture.shape[2] == 4


def test_world_uses_the_given_faces_in_order():
    faces = [textures.generated_face(1), textures.generated_face(2)]
    world = World.build(0, "drone", people=3, faces=faces, walking=False)
    assert [p.name for p in world.people] == ["person1", "person2", "person1"]
    assert all(p.speed_cm_s == 0.0 for p in world.people)


def test_cached_real_photos_have_known_face_boxes():
    photos = textures.find_face_photos()
    if not photos:
        pytest.skip(f"no cached face photos in {textures.cache_dir()}: run scripts/fetch_test_data.py")
    for path in photos:
        face = textures.load_face(path)
        assert path.name in textures.KNOWN_FACE_BOXES
        assert face.box == tuple(float(v) for v in textures.KNOWN_FACE_BOXES[path.name])
