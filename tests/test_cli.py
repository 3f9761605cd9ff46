"""The asset-map command as a user runs it: clear one-line errors, the bootstrap of `make run`."""

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from asset_map.cli import cli


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", db_url)
    monkeypatch.setenv("ASSET_MAP_VAR_DIR", str(tmp_path))

    def invoke(*args):
        return CliRunner().invoke(cli, list(args))

    return invoke


def test_bad_file_exits_1_with_a_one_line_reason(run, tmp_path):
    bad = tmp_path / "need.csv"
    bad.write_text("area_code,decile\nE01029708,11\n")
    result = run("load", "need", str(bad), "--vintage", "2025")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "need.csv" in lines[0] and "11" in lines[0]


def test_bootstrap_without_a_pack_makes_a_synthetic_county(run, engine, monkeypatch, tmp_path):
    monkeypatch.setattr("asset_map.cli.default_reference_dir", lambda settings: None)
    result = run("bootstrap")
    assert result.exit_code == 0, result.output
    assert "synthetic county" in result.output
    # Reports by walking distance work without an extract: a synthetic street grid is loaded, and says so.
    assert "walk network:" in result.output and "synthetic street grid" in result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM areas")).scalar() == 700
    again = run("bootstrap")
    assert "already loaded" in again.output
    # The public downloads are queued for the worker (make run starts it beside the server), once.
    assert "queued: the public downloads" in result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
                                 "'asset_map.prepare_exports' AND status = 'todo'")).scalar() == 1


def test_exports_prepare_makes_the_public_downloads_once(run, tmp_path):
    first = run("exports", "prepare")
    assert first.exit_code == 0, first.output
    assert "assets.geojson: made in" in first.output and "assets.csv: made in" in first.output
    assert len(list((tmp_path / "exports").glob("*.geojson"))) == 1
    assert len(list((tmp_path / "exports").glob("*.csv.gz"))) == 1
    again = run("exports", "prepare")
    assert again.output.count("already kept") == 2
    assert run("exports", "prepare", "--force").output.count("made in") == 2


def test_layers_check_and_db_status(run):
    assert run("layers", "check").exit_code == 0
    status = run("db", "status")
    assert status.exit_code == 0, status.output
    assert "postgis: 3." in status.output and "districts: 0" in status.output
