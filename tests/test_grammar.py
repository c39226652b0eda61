import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgepilot.pilot.core.errors import CommandRejected
from edgepilot.pilot.core.grammar import parse_command, parse_script


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("takeoff", "takeoff"),
        ("Take off", "takeoff"),
        ("land", "land"),
        ("stop", "stop"),
        ("hover", "stop"),
        ("emergency", "emergency"),
        ("up 50", "up 50"),
        ("go up 50 centimeters", "up 50"),
        ("down 20", "down 20"),
        ("left 500", "left 500"),
        ("right 30 cm", "right 30"),
        ("fly forward 1 meter", "forward 100"),
        ("fly forward 1.5 meters", "forward 150"),
        ("move backwards 40", "back 40"),
        ("cw 90", "cw 90"),
        ("ccw 1", "ccw 1"),
        ("turn right 90", "cw 90"),
        ("turn left 45 degrees", "ccw 45"),
        ("rotate clockwise 360", "cw 360"),
        ("flip l", "flip l"),
        ("flip backward", "flip b"),
        ("speed 10", "speed 10"),
        ("set speed to 100", "speed 100"),
        ("follow me", "follow me"),
        ("follow alice", "follow alice"),
        ("photo", "photo"),
        ("take a picture", "photo"),
        ("wait 2", "wait 2"),
        ("wait 0.5 seconds", "wait 0.5"),
    ],
)
def test_valid_commands_parse_to_canonical_text(text, canonical):
    assert parse_command(text).text == canonical


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("up 19", "20-500 cm"),
        ("up 501", "20-500 cm"),
        ("forward 6 meters", "20-500 cm"),
        ("cw 0", "1-360 degrees"),
        ("ccw 361", "1-360 degrees"),
        ("speed 9", "10-100 cm/s"),
        ("speed 101", "10-100 cm/s"),
        ("wait 601", "0-600 s"),
        ("up -50", "20-500 cm"),
    ],
)
def test_out_of_range_arguments_name_the_range(text, fragment):
    with pytest.raises(CommandRejected, match=fragment):
        parse_command(text)


@pytest.mark.parametrize(
    "text", ["", "   ", "jump", "up", "up fifty", "flip", "flip x", "follow", "follow 42", "up 50 parsecs",
             "cw 90 90", "takeoff now please", "up 1e9", "forward nan", "forward inf"],
)
def test_invalid_commands_are_rejected(text):
    with pytest.raises(CommandRejected):
        parse_command(text)


def test_script_splits_on_semicolons_and_newlines_and_skips_comments():
    script = "takeoff; up 50 # climb\ncw 90;; forward 100\n# done\nland"
    assert [c.text for c in parse_script(script)] == ["takeoff", "up 50", "cw 90", "forward 100", "land"]
    assert all(c.source == "script" for c in parse_script("land"))


def test_script_error_names_the_failing_command():
    with pytest.raises(CommandRejected, match=r"script command 3: 'up 600'"):
        parse_script("takeoff; up 50; up 600; land")


def test_empty_script_is_rejected():
    with pytest.raises(CommandRejected, match="empty"):
        parse_script(" ; # nothing\n")


def test_canonical_text_round_trips():
    for text in ["takeoff", "up 50", "cw 90", "flip l", "speed 50", "follow me", "follow bob", "wait 1.5", "photo"]:
        command = parse_command(text)
        assert parse_command(command.text) == command


@given(st.text(max_size=80))
def test_no_string_crashes_the_parser(text):
    try:
        command = parse_command(text)
    except CommandRejected:
        return
    # Whatever parses must be valid canonical text that parses to itself.
    assert parse_command(command.text) == command


@given(st.lists(st.sampled_from(["takeoff", "land", "up", "cw", "flip", "speed", "wait", "50", "-3", "9999", "l",
                                 "me", ";", " ", "meters", "1.5", "turn", "right"]), max_size=12))
def test_no_word_soup_crashes_the_script_parser(words):
    try:
        parse_script(" ".join(words))
    except CommandRejected:
        pass
