"""Benchmark data: a synthetic county with its assets placed, in a benchmark's database.

The register importer is not used here on purpose: benchmarks of the map, exports, API and load measure those
surfaces, not the import. Assets are placed from their own lon/lat (or their postcode's point) and assigned to
districts and LSOAs by point-in-polygon, then written with the store's bulk upsert, like tests/factories.py does.
"""

import time
from datetime import date

import geopandas as gpd
import pandas as pd
from sqlalchemy import text

from asset_map import synth
from asset_map.reference.pack import load_pack
from asset_map.store import assets

AS_OF = date(2026, 1, 1)  # fixed, so that every run draws the same share of stale assets


def placed_assets(county):
    """Every register row of the county as a GeoDataFrame ready for ``assets.upsert`` (EPSG:4326)."""
    postcodes = county.postcodes.set_index("postcode").geometry
    frames = []
    for name, rows in county.registers.items():
        rows = rows.copy()
        has_xy = (rows["lon"] != "") & (rows["lat"] != "")
        xy = gpd.points_from_xy(pd.to_numeric(rows["lon"].where(has_xy)), pd.to_numeric(rows["lat"].where(has_xy)))
        geom = gpd.GeoSeries(xy, index=rows.index, crs=4326)
        geom = geom.where(has_xy, gpd.GeoSeries(rows["postcode"].map(postcodes), index=rows.index, crs=4326))
        gdf = gpd.GeoDataFrame(rows, geometry=geom, crs=4326)
        gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
        gdf["register"] = name
        gdf["source_row"] = range(2, len(gdf) + 2)
        frames.append(gdf)
    gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    areas = county.areas[["code", "district_code", "geometry"]].rename(columns={"district_code": "area_district"})
    joined = gpd.sjoin(gdf, areas, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    gdf["lsoa21_code"] = joined["code"].reindex(gdf.index).to_numpy()
    gdf["district_code"] = joined["area_district"].reindex(gdf.index).to_numpy()
    gdf["match_key"] = gdf["source_key"]
    gdf["consent"] = gdf["consent"].map({"yes": True, "no": False}).astype(object)
    gdf["geocode_method"] = "coordinates"
    gdf["geocode_quality"] = 1.0
    gdf["properties"] = "{}"
    for col in ("lsoa11_code", "area_flag"):
        gdf[col] = None
    for col in ("uprn", "last_verified"):
        gdf[col] = gdf[col].replace("", None)
    return gdf[assets.WRITE_COLUMNS + ["geometry"]]


def load_county(engine, workdir, *, areas, assets_n, seed=1, as_of=AS_OF):
    """Load a synthetic county's reference data and assets; returns (county, assets written, seconds)."""
    started = time.perf_counter()
    county = synth.generate(areas=areas, assets=assets_n, seed=seed, as_of=as_of)
    load_pack(engine, county.write(workdir / f"synth-{seed}"))
    gdf = placed_assets(county)
    with engine.begin() as conn:
        for name in gdf["register"].unique():
            assets.ensure_register(conn, name)
        written = assets.upsert(conn, gdf)
    return county, written, time.perf_counter() - started


def settle(engine):
    """The store as autovacuum leaves it within a minute or two of a bulk load: statistics, hint bits and the
    visibility map. Measured straight after a load, the first reads of each page write it back (hint bits) and
    autovacuum runs beside the load test: /healthz's p95 was 1.2 s instead of 50 ms, and pages' tails with it."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
