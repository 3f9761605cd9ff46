"""What a gap analysis reads from the store: areas with a need indicator, asset points (fast, by COPY), the names
of a few assets, and the provenance of it all (register versions and import times, reference loads).

The asset filter and its privacy rule are the shared ones of ``asset_map.store.assets``; nothing here computes.
"""

import io
import re

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text

from asset_map.errors import InputError
from asset_map.store import assets as store_assets


def areas_with_need(engine, *, indicator, vintage, area_vintage):
    """Every area of ``area_vintage`` with the indicator's score, rank and decile (null where not loaded), in
    EPSG:4326, sorted by code. All areas, not only the reported ones: they are all demand for 2SFCA."""
    sql = ("SELECT a.code, a.name, a.district_code, a.population, n.score AS need_score, n.rank AS need_rank, "
           "n.decile AS need_decile, a.geom AS geometry FROM areas a LEFT JOIN need_indicators n "
           "ON n.area_code = a.code AND n.indicator = :ind AND n.vintage = :nv WHERE a.vintage = :av ORDER BY a.code")
    with engine.connect() as conn:
        gdf = gpd.read_postgis(text(sql), conn, geom_col="geometry", crs=4326,
                               params={"ind": indicator, "nv": int(vintage), "av": int(area_vintage)})
    if not len(gdf):
        msg = f"No areas of vintage {area_vintage} are loaded; load them first (asset-map load areas)."
        raise InputError(msg)
    return gdf


def district_names(engine):
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT code, name FROM districts ORDER BY code")).all())


def categories(engine, *, role="public"):
    """[(category, assets)] the role may see, most common first (for the form)."""
    where, params = store_assets.AssetFilter().where(role=role)
    sql = f"SELECT a.category, count(*) FROM assets a WHERE {where} GROUP BY a.category ORDER BY 2 DESC, 1"
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def offers(engine, *, role="public"):
    where, params = store_assets.AssetFilter().where(role=role)
    sql = (f"SELECT o, count(*) FROM assets a, unnest(a.offers) o WHERE {where} GROUP BY o ORDER BY 2 DESC, 1")
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


_PARAM = re.compile(r"(?<!:):(\w+)")


def asset_points(engine, flt, *, role="public", groups=()):
    """Assets matching ``flt`` that ``role`` may see as points: id, lon, lat and a boolean ``group_<i>`` per
    (kind, value) in ``groups``, kind "category" or "offer"; a DataFrame (no geometry objects, no text columns:
    1,000,000 rows arrive by COPY in about a second, where read_postgis takes several)."""
    where, params = flt.where(role=role)
    cols = ["a.id", "ST_X(a.geom) AS lon", "ST_Y(a.geom) AS lat"]
    for i, (kind, value) in enumerate(groups):
        params[f"g_{i}"] = value
        cols.append(f"(a.category = :g_{i}) AS group_{i}" if kind == "category"
                    else f"(:g_{i} = ANY(a.offers)) AS group_{i}")
    sql = f"SELECT {', '.join(cols)} FROM assets a WHERE {where} AND a.geom IS NOT NULL ORDER BY a.id"
    # COPY cannot take server-side parameters; psycopg binds them client-side, safely quoted.
    copy_sql = "COPY (" + _PARAM.sub(r"%(\1)s", sql) + ") TO STDOUT WITH (FORMAT csv, HEADER true)"
    buf = io.BytesIO()
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            with cur.copy(copy_sql, params) as copy:
                for chunk in copy:
                    buf.write(chunk)
        raw.commit()
    finally:
        raw.close()
    buf.seek(0)
    dtypes = {"id": np.int64, "lon": float, "lat": float}
    dtypes.update({f"group_{i}": str for i in range(len(groups))})
    frame = pd.read_csv(buf, dtype=dtypes, keep_default_na=False, engine="c")
    for i in range(len(groups)):
        frame[f"group_{i}"] = frame[f"group_{i}"].eq("t")
    return frame


def assets_by_register(engine, flt, *, role="public"):
    """{register: assets} matching ``flt`` that ``role`` may see as points."""
    where, params = flt.where(role=role)
    sql = (f"SELECT a.register, count(*) FROM assets a WHERE {where} AND a.geom IS NOT NULL "
           "GROUP BY a.register ORDER BY a.register")
    with engine.connect() as conn:
        return {r: int(n) for r, n in conn.execute(text(sql), params)}


def asset_details(engine, ids, *, role="public"):
    """Name, category, register and point of the given assets the role may see (for nearest-asset lists and the
    report's map), indexed by id."""
    ids = sorted({int(i) for i in ids if i is not None and int(i) >= 0})
    if not ids:
        return gpd.GeoDataFrame({"name": [], "category": [], "register": []}, geometry=[], crs=4326)
    privacy, pparams = store_assets.visibility_condition(role, "a")
    sql = (f"SELECT a.id, a.name, a.category, a.register, a.geom AS geometry FROM assets a "
           f"WHERE a.id = ANY(:ids) AND {privacy} ORDER BY a.id")
    with engine.connect() as conn:
        gdf = gpd.read_postgis(text(sql), conn, geom_col="geometry", crs=4326, params={"ids": ids, **pparams})
    return gdf.set_index("id")


def register_versions(engine, names):
    """[{name, version, imported_at, source_file}] of the registers the assets came from, sorted by name."""
    names = sorted(set(names))
    if not names:
        return []
    sql = ("SELECT name, version, imported_at, source_file FROM registers WHERE name = ANY(:n) ORDER BY name")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"n": names}).mappings().all()
    return [{"name": r["name"], "version": int(r["version"] or 0),
             "imported_at": r["imported_at"].isoformat() if r["imported_at"] else None,
             "source_file": r["source_file"]} for r in rows]


def reference_loads(engine, *, kinds=("districts", "areas", "need"), indicator=None, vintages=()):
    """The latest load of each reference source that fed the analysis: kind, source, vintage, rows, loaded_at."""
    sql = ("SELECT DISTINCT ON (kind, source, vintage) kind, source, vintage, indicator, rows, loaded_at "
           "FROM reference_loads WHERE kind = ANY(:k) ORDER BY kind, source, vintage, loaded_at DESC")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"k": list(kinds)}).mappings().all()
    out = []
    for r in rows:
        if r["kind"] in ("areas", "need") and vintages and r["vintage"] not in {str(v) for v in vintages}:
            continue
        if r["kind"] == "need" and indicator and r["indicator"] not in (indicator, indicator.split("_")[0]):
            continue
        out.append({"kind": r["kind"], "source": r["source"], "vintage": r["vintage"], "indicator": r["indicator"],
                    "rows": int(r["rows"]), "loaded_at": r["loaded_at"].isoformat() if r["loaded_at"] else None})
    return out
