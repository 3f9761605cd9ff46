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


def test_demo_synth_emits_a_street_network_for_its_areas(db_url, tmp_path, monkeypatch):
    from asset_map.cli import cli
    from asset_map.store import network
    from asset_map.store.db import make_engine
    from asset_map.config import load_settings

    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", db_url)
    monkeypatch.setenv("ASSET_MAP_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo", "synth", "--areas", "30", "--assets", "50", "--seed", "3",
                                      "--network-edges", "5000"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "synth-3" / "network.osm.pbf").is_file()
    eng = make_engine(db_url, load_settings())
    for mode in ("walk", "drive"):
        got = network.info(eng, mode)
        assert got["source"].startswith("synthetic street grid") and 4_000 <= got["edges"] <= 6_500
    net, _ = network.read(eng, "walk")
    from asset_map.analysis import network as nw

    # One river, crossed by bridges: the whole grid is one connected network.
    assert len(set(nw.components(net))) == 1
    eng.dispose()
