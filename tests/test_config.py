import re
from dataclasses import replace
from pathlib import Path

import pytest

from asset_map.config import PROJECT_DIR, SETTINGS, TEST_SETTINGS, find_reference_pack, load_settings, markdown_table
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


def test_environment_overrides_the_instance_file_which_overrides_the_default():
    instance = {"PORT": 8000, "STALE_MONTHS": 6}
    settings = load_settings(environ={"ASSET_MAP_PORT": "8080"}, instance=instance)
    assert settings["PORT"] == 8080 and settings["STALE_MONTHS"] == 6 and settings["SUPPRESS_BELOW"] == 5


def test_the_readme_settings_tables_are_the_generated_ones():
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- settings:start")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- settings:end -->")
    assert readme[start:end] == markdown_table(), "run `asset-map settings --markdown` and paste it into README.md"


def test_a_changed_setting_changes_the_table(monkeypatch):
    """The comparison above can fail: a setting whose help changes no longer matches the README."""
    before = markdown_table()
    monkeypatch.setattr("asset_map.config.SETTINGS", [replace(SETTINGS[0], help="Something else."), *SETTINGS[1:]])
    assert markdown_table() != before


_READS = [re.compile(r"""settings\[["']([A-Z_]+)["']\]"""), re.compile(r"""settings\.get\(["']([A-Z_]+)["']"""),
          re.compile(r"""\["ASSET_MAP"\]\[["']([A-Z_]+)["']\]"""), re.compile(r"""["']ASSET_MAP_([A-Z_]+)["']""")]


def test_every_setting_the_code_reads_is_declared_with_help():
    declared = {s.name for s in SETTINGS + TEST_SETTINGS}
    assert all(s.help.strip() for s in SETTINGS + TEST_SETTINGS)
    read = {}
    for folder in ("asset_map", "tests"):
        for path in (PROJECT_DIR / folder).rglob("*.py"):
            if "tools" in path.parts:  # the benchmarks pass their own BENCH_* variables to the servers they start
                continue
            for pattern in _READS:
                for name in pattern.findall(path.read_text(encoding="utf-8")):
                    read.setdefault(name, str(path.relative_to(PROJECT_DIR)))
    undeclared = {name: where for name, where in read.items() if name not in declared}
    assert undeclared == {}


def test_the_reference_pack_is_found_from_the_setting_or_above_the_project(tmp_path):
    assert find_reference_pack({"ASSET_MAP_REFERENCE_DIR": str(tmp_path)}) == tmp_path
    found = find_reference_pack({})
    assert found is None or (found.name == "staffordshire" and found.is_dir())


def test_ci_requires_the_reference_pack():
    ci = Path(PROJECT_DIR / ".ci" / "run").read_text()
    assert "ASSET_MAP_REQUIRE_PACK=1" in ci
