"""Turn a layer into a query: the frames the map, exports and reports draw from.

Polygons are simplified for display in EPSG:27700 metres (so the tolerance means the same everywhere) and handed
back in EPSG:4326. All SQL takes its values as bound parameters.
"""

import re
import threading

from sqlalchemy import text

from asset_map.errors import InputError
from asset_map.store import change_stamps

# IMD 2019 and earlier are published on LSOA 2011; IMD 2025 on LSOA 2021. Codes of unchanged LSOAs are the same in
# both vintages, so the join must name the area vintage, not guess it from the codes.
AREA_VINTAGE_FOR_NEED = {2010: 2011, 2015: 2011, 2019: 2011, 2025: 2021}
DISPLAY_TOLERANCE_M = 15
_NEED_OPTIONS = {}
_LOCK = threading.Lock()


def area_vintage(need_vintage):
    return AREA_VINTAGE_FOR_NEED.get(int(need_vintage), 2021 if int(need_vintage) >= 2021 else 2011)


def _simplified(column="geom", tolerance=DISPLAY_TOLERANCE_M):
    return (f"ST_Transform(ST_SimplifyPreserveTopology(ST_Transform({column}, 27700), {float(tolerance)}), 4326)")


def districts(engine, *, simplify=True):
    geom = _simplified() if simplify else "geom"
    import geopandas as gpd  # here, not at the top: tiles and tables use this module without frames

    sql = f"SELECT code, name, {geom} AS geometry FROM districts ORDER BY code"
    with engine.connect() as conn:
        return gpd.read_postgis(text(sql), conn, geom_col="geometry", crs=4326)


def need_options(engine, *, stamp=None):
    """[(indicator, vintage, areas)] loaded, most recent first. Kept until reference data changes (the change
    stamp of store.change_stamps): every map page and every need tile asks, and at England scale the count reads
    hundreds of thousands of rows. ``stamp``: the reference stamp when the caller has just read it (a tile has),
    which saves reading it again; read before the options, so the options are never older than their key."""
    sql = ("SELECT indicator, vintage, count(*) AS areas FROM need_indicators GROUP BY indicator, vintage "
           "ORDER BY vintage DESC, indicator")
    if stamp is None:
        with engine.connect() as conn:
            stamp = change_stamps.stamps(conn)["reference"]
    key = (str(engine.url), stamp)
    with _LOCK:
        if key in _NEED_OPTIONS:
            return list(_NEED_OPTIONS[key])
    with engine.connect() as conn:
        options = [tuple(r) for r in conn.execute(text(sql))]
    with _LOCK:
        _NEED_OPTIONS.clear()
        _NEED_OPTIONS[key] = options
    return list(options)


def choropleth(engine, *, indicator, vintage, district=None, simplify=True):
    """Areas of the vintage that goes with the indicator, with score, rank and decile (null where not loaded)."""
    geom = _simplified("a.geom") if simplify else "a.geom"
    where = ["a.vintage = :av"]
    params = {"av": area_vintage(vintage), "ind": indicator, "nv": int(vintage)}
    if district:
        codes = [district] if isinstance(district, str) else list(district)
        where.append("a.district_code = ANY(:districts)")
        params["districts"] = codes
    sql = (f"SELECT a.code, a.name, a.district_code, a.population, n.score, n.rank, n.decile, {geom} AS geometry "
           f"FROM areas a LEFT JOIN need_indicators n ON n.area_code = a.code AND n.indicator = :ind "
           f"AND n.vintage = :nv WHERE {' AND '.join(where)} ORDER BY a.code")
    import geopandas as gpd

    with engine.connect() as conn:
        gdf = gpd.read_postgis(text(sql), conn, geom_col="geometry", crs=4326, params=params)
    for col in ("population", "rank", "decile"):
        gdf[col] = gdf[col].astype("Int64")
    return gdf


_INDICATOR = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def parse_need(value, options):
    """'imd:2025' -> ('imd', 2025), checked against what is loaded."""
    try:
        indicator, vintage = value.split(":")
        vintage = int(vintage)
    except (AttributeError, ValueError) as err:
        msg = f"need must look like 'imd:2025' (indicator:vintage), got {value!r}."
        raise InputError(msg) from err
    if not _INDICATOR.match(indicator):
        msg = f"need: {indicator[:40]!r} is not an indicator name (lower-case letters, digits and '_')."
        raise InputError(msg)
    loaded = {(i, v) for i, v, _ in options}
    if loaded and (indicator, vintage) not in loaded:
        known = ", ".join(f"{i}:{v}" for i, v in sorted(loaded))
        msg = f"Need indicator {indicator}:{vintage} is not loaded. Loaded: {known}."
        raise InputError(msg)
    return indicator, vintage


def counts(engine):
    """How many of each reference table are loaded (for the CLI's status and /healthz)."""
    sql = {
        "districts": "SELECT count(*) FROM districts",
        "areas_2011": "SELECT count(*) FROM areas WHERE vintage = 2011",
        "areas_2021": "SELECT count(*) FROM areas WHERE vintage = 2021",
        "need_rows": "SELECT count(*) FROM need_indicators",
        "postcodes": "SELECT count(*) FROM postcodes",
        "assets": "SELECT count(*) FROM assets",
    }
    with engine.connect() as conn:
        return {k: conn.execute(text(q)).scalar() for k, q in sql.items()}

