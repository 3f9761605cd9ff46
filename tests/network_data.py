"""The real pack's libraries over a synthetic street grid laid on Tamworth (no real OpenStreetMap extract is
available offline): a grid about 95 m across with a river through the middle crossed by a bridge every 3 km."""

import json
import uuid

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from asset_map import synth
from asset_map.config import load_settings
from asset_map.store import assets, network
from asset_map.store.db import make_engine
from tests.gap_libraries import read_libraries, store_libraries

TAMWORTH = "E07000199"


def tamworth_grid(engine, path, edges=12_000):
    with engine.connect() as conn:
        box = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                                "ST_Extent(ST_Transform(geom, 27700)) AS e FROM districts WHERE code = :c) s"),
                           {"c": TAMWORTH}).one()
    grid = synth.StreetGrid.covering(tuple(box), edges)
    return synth.write_street_grid(grid, path), grid


def add_asset(engine, *, name, tier, visibility, lon, lat, consent=None):
    """One asset written with the store's bulk upsert (register 'reach-test'); returns its id."""
    gdf = gpd.GeoDataFrame({"register": ["reach-test"], "source_key": [name], "match_key": [name], "name": [name],
                            "tier": [tier], "category": ["library" if tier != "individual" else "skills"],
                            "status": ["open"], "visibility": [visibility], "consent": [consent],
                            "offers": ["knowledge"], "properties": [json.dumps({})], "geocode_method": ["coordinates"]},
                           geometry=[shapely.Point(lon, lat)], crs=4326)
    for col in assets.WRITE_COLUMNS:
        if col not in gdf.columns:
            gdf[col] = None
    with engine.begin() as conn:
        assets.ensure_register(conn, "reach-test", source_file="reach-test.csv")
        assets.upsert(conn, gdf[assets.WRITE_COLUMNS + ["geometry"]])
        return conn.execute(text("SELECT id FROM assets WHERE register = 'reach-test' AND name = :n"),
                            {"n": name}).scalar()


@pytest.fixture(scope="session")
def walk_db(pg_server, template_db, pack, tmp_path_factory):
    """(database URL, the grid): the pack, its open libraries and the Tamworth walk network; made once per run and
    shared by the network report and isochrone tests (registered in conftest)."""
    from asset_map.reference.pack import load_pack

    name = f"am_gapnet_{uuid.uuid4().hex[:8]}"
    url = pg_server.create(name, template=template_db)
    eng = make_engine(url, load_settings())
    load_pack(eng, pack)
    store_libraries(eng, read_libraries(pack, eng))
    path, grid = tamworth_grid(eng, tmp_path_factory.mktemp("net") / "tamworth-grid.osm.pbf")
    network.load(eng, path, mode="walk", buffer_m=1_000, source="synthetic street grid (tamworth-grid.osm.pbf)")
    eng.dispose()
    yield url, grid
    from asset_map.store.db import dispose_engines

    dispose_engines()
    pg_server.drop(name)
