"""Shared test data for the explorer's tests (not a test module): a synthetic county with placed assets plus a few
hand-made assets with known names, places and dates, in one database per test module (read only)."""

import geopandas as gpd
from shapely.geometry import Point

from asset_map.store import assets

HOSTILE = "<img src=x onerror=alert(1)>"


def hand_made(rows):
    """Rows of (match_key, name, tier, category, lon, lat, extra dict) as an upsert-ready frame (register 'hand')."""
    records = []
    for i, (key, name, tier, category, lon, lat, extra) in enumerate(rows, start=2):
        rec = {c: None for c in assets.WRITE_COLUMNS}
        rec.update(register="hand", source_row=i, source_key=key, match_key=key, tier=tier, category=category,
                   name=name, offers="", status="open", visibility="public", consent=True,
                   geocode_method="coordinates", geocode_quality=1.0, properties="{}", last_verified="2026-10-01")
        rec.update(extra)
        rec["geometry"] = Point(lon, lat)
        records.append(rec)
    return gpd.GeoDataFrame(records, geometry="geometry", crs=4326)


def synthetic_database(pg_server, template_db, tmp_path, name):
    """A database with a synthetic county (600 assets) plus a hostile-named stale library and a closed hall."""
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine
    from tests.factories import load_synthetic

    url = pg_server.create(name, template=template_db)
    eng = make_engine(url, load_settings())
    county = load_synthetic(eng, tmp_path, areas=60, assets_n=600, seed=4)
    centre = county.postcodes.geometry.iloc[0]
    add_hand_made(eng, [
        ("h1", HOSTILE, "organisation", "library", centre.x, centre.y,
         {"address": "=HYPERLINK(\"http://evil\")", "last_verified": "2020-01-01"}),
        ("h2", "Old Closed Hall", "organisation", "community_centre", centre.x + 0.001, centre.y, {"status": "closed"}),
    ])
    eng.dispose()
    return url


def add_hand_made(engine, rows):
    gdf = hand_made(rows)
    with engine.begin() as conn:
        assets.ensure_register(conn, "hand")
        assets.upsert(conn, gdf)
    return gdf
