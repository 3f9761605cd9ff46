"""The synthetic county goes through the same loaders as real data and shows on the map."""

from click.testing import CliRunner
from sqlalchemy import text

from asset_map import synth
from asset_map.reference.pack import load_pack


def test_synthetic_county_loads_and_maps(engine, db_url, tmp_path):
    county = synth.generate(areas=60, assets=200, seed=7)
    out = county.write(tmp_path / "synth")
    results = load_pack(engine, out)
    assert [r.kind for r in results] == ["districts", "areas", "need", "postcodes"]
    assert all(len(r.rejected) == 0 for r in results)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM areas WHERE vintage = 2021")).scalar() == 60
        assert conn.execute(text("SELECT count(*) FROM districts")).scalar() == len(county.districts)
        assert conn.execute(text("SELECT count(*) FROM postcodes")).scalar() == len(county.postcodes)
        deciles = conn.execute(text("SELECT count(DISTINCT decile) FROM need_indicators WHERE indicator='imd'"))
        assert deciles.scalar() == 10

    from tests.conftest import make_app

    html = make_app(db_url, tmp_path).test_client().get("/").get_data(as_text=True)
    assert html.count('"code": "E019') == 60


def test_demo_synth_command(db_url, tmp_path, monkeypatch):
    from asset_map.cli import cli

    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", db_url)
    monkeypatch.setenv("ASSET_MAP_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo", "synth", "--areas", "30", "--assets", "50", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "areas: 30 rows" in result.output
    assert (tmp_path / "synth-3" / "registers").is_dir()
