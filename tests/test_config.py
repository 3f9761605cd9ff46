from pathlib import Path

import pytest

from asset_map.config import PROJECT_DIR, SETTINGS, load_settings
from asset_map.errors import ConfigError


def test_environment_then_overrides():
    env = {"ASSET_MAP_PORT": "8080", "ASSET_MAP_TILES": "none"}
    settings = load_settings({"PORT": "9090"}, environ=env)
    assert settings["PORT"] == 9090
    assert settings["TILES"] == "none"
    assert settings["SUPPRESS_BELOW"] == 5


def test_bad_number_names_the_variable():
    with pytest.raises(ConfigError, match="ASSET_MAP_PORT must be a whole number, got 'eighty'"):
        load_settings(environ={"ASSET_MAP_PORT": "eighty"})


def test_every_setting_is_documented_in_the_readme():
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    missing = [s.env for s in SETTINGS if s.env not in readme]
    assert not missing, f"README.md does not document {missing}"
    assert "make run" in readme and "make test" in readme


def test_ci_runs_exactly_the_readme_test_command():
    ci = Path(PROJECT_DIR / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci
