"""The pack's public libraries placed for gap tests without the register importer: each open library's postcode is
joined to the loaded Code-Point gazetteer (a deliberately simple, independent placement, not the app's geocoder).
"""

import csv
import json
import re

import geopandas as gpd
import pandas as pd
from sqlalchemy import text

from asset_map.store import assets

REGISTERS = ("libraries_staffordshire.csv", "libraries_stoke.csv")


def _compact(postcode):
    return re.sub(r"\s+", "", str(postcode or "").upper())


def read_libraries(pack, engine):
    """Open libraries of both council registers with a point from the gazetteer: a GeoDataFrame (EPSG:4326)."""
    with engine.connect() as conn:
        gazetteer = gpd.read_postgis(text("SELECT postcode, geom FROM postcodes"), conn, geom_col="geom", crs=4326)
    gazetteer["key"] = gazetteer["postcode"].map(_compact)
    points = dict(zip(gazetteer["key"], gazetteer.geometry))
    rows = []
    for name in REGISTERS:
        with open(pack / "registers" / name, newline="", encoding="utf-8-sig") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                if (row.get("Year closed") or "").strip():
                    continue
                point = points.get(_compact(row["Postcode"]))
                if point is None:
                    continue
                rows.append({"register": name.removesuffix(".csv"), "source_row": i,
                             "source_key": f"{name}:{i}", "name": row["Library name"].strip(),
                             "type": row["Type of library"].strip(), "postcode": row["Postcode"].strip(),
                             "geometry": point})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def store_libraries(engine, libraries):
    """Write the placed libraries with the store's bulk upsert (category library; CRL = association tier)."""
    gdf = libraries.copy()
    gdf["match_key"] = gdf["source_key"]
    gdf["tier"] = gdf["type"].map({"CRL": "association"}).fillna("organisation")
    gdf["category"] = "library"
    gdf["status"] = "open"
    gdf["visibility"] = "public"
    gdf["offers"] = "knowledge;buildings/space"
    gdf["properties"] = json.dumps({})
    for col in assets.WRITE_COLUMNS:
        if col not in gdf.columns:
            gdf[col] = None
    gdf["geocode_method"] = "postcode"
    with engine.begin() as conn:
        for name in gdf["register"].unique():
            assets.ensure_register(conn, name, source_file=f"{name}.csv")
        conn.execute(text("UPDATE registers SET version = 1, imported_at = TIMESTAMPTZ '2026-11-20 09:00:00+00' "
                          "WHERE name = ANY(:n)"), {"n": list(gdf["register"].unique())})
        assets.upsert(conn, gdf[assets.WRITE_COLUMNS + ["geometry"]])
    return pd.Series(gdf["register"]).value_counts().to_dict()
