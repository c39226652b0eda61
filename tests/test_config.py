import pytest

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.core import config
from edgepilot.pilot.core.behaviours import FollowConfig
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.safety import SafetyConfig


def test_tables_fill_the_config_dataclasses(tmp_path):
    path = tmp_path / "edgepilot.toml"
    path.write_text("[safety]\nfence_radius_cm = 500\n[follow]\ntarget_size_frac = 0.1\nyaw = { kp = 80.0 }\n")
    data = config.load(path)
    safety = config.section(data, "safety", SafetyConfig)
    follow = config.section(data, "follow", FollowConfig)
    assert safety.fence_radius_cm == 500 and safety.fence_ceiling_cm == SafetyConfig().fence_ceiling_cm
    assert follow.target_size_frac == 0.1
    assert follow.yaw.kp == 80.0 and follow.yaw.kd == FollowConfig().yaw.kd


@pytest.mark.parametrize("text, message", [
    ("[safety]\nfence_radious_cm = 5\n", "unknown setting 'fence_radious_cm'"),
    ("[safety]\nfence_radius_cm = 'far'\n", "must be a number"),
    ("[safety\n", "not valid TOML"),
    ("safety = 3\n", "must be a table"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        config.section(config.load(path), "safety", SafetyConfig)


def test_fly_uses_the_config_and_environment(tmp_path, monkeypatch, capsys):
    path = tmp_path / "low.toml"
    path.write_text("[safety]\nfence_ceiling_cm = 120\n")
    monkeypatch.setenv("EDGEPILOT_CONFIG", str(path))
    code = main(["fly", "--fast", "--script", "takeoff; up 100; land"])
    err = capsys.readouterr().err
    assert code != 0 and "ceiling" in err
    assert main(["fly", "--fast", "--config", str(tmp_path / "missing.toml"), "--script", "land"]) == 2
    assert "does not exist" in capsys.readouterr().err
