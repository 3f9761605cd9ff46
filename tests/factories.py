"""Test data in the store without the register importer: a synthetic county whose register rows are placed from
their own lon/lat (or their postcode's point) and written with the store's bulk upsert.

For tests of the map, exports, API and gap analysis, which need assets but are not about importing them.
"""

import geopandas as gpd
import pandas as pd

from asset_map import synth
from asset_map.reference.pack import load_pack
from asset_map.store import assets


def placed_assets(county):
    """All register rows of the county as a GeoDataFrame ready for ``assets.upsert`` (district and LSOA assigned
    by point-in-polygon)."""
    frames = []
    postcodes = county.postcodes.set_index("postcode").geometry
    for name, rows in county.registers.items():
        rows = rows.copy()
        has_xy = (rows["lon"] != "") & (rows["lat"] != "")
        xy = gpd.points_from_xy(pd.to_numeric(rows["lon"].where(has_xy)), pd.to_numeric(rows["lat"].where(has_xy)))
        geom = gpd.GeoSeries(xy, index=rows.index, crs=4326)
        by_postcode = rows["postcode"].map(postcodes)
        geom = geom.where(has_xy, gpd.GeoSeries(by_postcode, index=rows.index, crs=4326))
        gdf = gpd.GeoDataFrame(rows, geometry=geom, crs=4326)
        gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
        gdf["register"] = name
        gdf["source_row"] = range(2, len(gdf) + 2)
        frames.append(gdf)
    gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    areas = county.areas[["code", "district_code", "geometry"]]
    joined = gpd.sjoin(gdf, areas, how="left", predicate="within").drop_duplicates(subset=["register", "source_key"])
    gdf["lsoa21_code"] = joined["code"].to_numpy()
    gdf["district_code"] = joined["district_code_right"].to_numpy() if "district_code_right" in joined \
        else joined["district_code"].to_numpy()
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


def load_synthetic(engine, tmp_path, *, areas=60, assets_n=300, seed=1, as_of=None):
    """Load a synthetic county's reference data and its assets; returns the county."""
    county = synth.generate(areas=areas, assets=assets_n, seed=seed, as_of=as_of)
    load_pack(engine, county.write(tmp_path / f"synth-{seed}"))
    gdf = placed_assets(county)
    with engine.begin() as conn:
        for name in gdf["register"].unique():
            assets.ensure_register(conn, name)
        assets.upsert(conn, gdf)
    return county
