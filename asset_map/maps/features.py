"""Assets as GeoJSON for the map, built in SQL (json_agg) so 50,000 assets never pass through Python objects.

The map asks for the visible box and zoom. When few assets are in view it gets points with their popup fields;
when many are, it gets them aggregated per grid cell (about 64 screen pixels at that zoom) and per category, so the
payload stays small at any scale and the browser clusters a few hundred markers instead of 50,000.
Nothing here knows Flask: callers pass the shared ``AssetFilter`` and the role.
"""

import json
import math
import threading
import time
from collections import OrderedDict
from datetime import date

from sqlalchemy import text

from asset_map.store.assets import AssetFilter
from asset_map.vocabulary import role_rank

CELL_PIXELS = 64
MAX_ZOOM = 19
# Many people open the same views (the county at its default zoom above all): answers are kept per query until an
# asset is added or changed, or for CACHE_SECONDS (withdrawals), up to CACHE_ENTRIES answers of CACHE_MAX_CHARS each.
CACHE_SECONDS = 60
CACHE_ENTRIES = 64
CACHE_MAX_CHARS = 2_000_000
_CACHE = OrderedDict()
_LOCK = threading.Lock()


def stale_sql(p="a."):
    return (f"({p}last_verified IS NULL OR "
            f"{p}last_verified < (CAST(:today AS date) - make_interval(months => :stale_months)))")


def properties_sql(role, p="a."):
    """Popup fields; contact details only for the roles the store's privacy rule allows (url for everybody)."""
    fields = [("name", f"{p}name"), ("tier", f"{p}tier"), ("category", f"{p}category"), ("offers", f"{p}offers"),
              ("address", f"{p}address"), ("postcode", f"{p}postcode"), ("url", f"{p}url"),
              ("status", f"{p}status"), ("last_verified", f"{p}last_verified"), ("stale", stale_sql(p))]
    if role_rank(role) >= role_rank("organiser"):
        fields += [("email", f"{p}email"), ("phone", f"{p}phone")]
    return "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in fields) + ")"


def cell_degrees(zoom, latitude):
    """Grid cell (dx, dy) in degrees that is about CELL_PIXELS wide on a Web Mercator map at ``zoom``."""
    zoom = min(max(int(zoom), 0), MAX_ZOOM)
    dx = CELL_PIXELS * 360.0 / (256 * 2 ** zoom)
    return dx, dx * math.cos(math.radians(max(min(latitude, 85.0), -85.0)))


def assets_geojson(engine, flt=None, *, role="public", zoom=12, stale_months=12, points_limit=4000, today=None):
    """A GeoJSON FeatureCollection (as a str) of the assets matching ``flt`` that ``role`` may see.

    ``mode`` is "points" (one feature per asset, ``id`` and popup properties) or "clusters" (one feature per grid
    cell and category with ``count``; a cell holding one asset carries that asset's properties and id).
    """
    flt = flt or AssetFilter()
    where, params = flt.where(role=role)
    params.update(today=today or date.today(), stale_months=int(stale_months))
    key = (str(engine.url), role, tuple(sorted(flt.as_args().items())), int(zoom), int(points_limit),
           int(stale_months), str(params["today"]))
    with engine.connect() as conn:
        version = tuple(conn.execute(text("SELECT max(id), max(updated_at) FROM assets")).one())
    now = time.monotonic()
    with _LOCK:
        hit = _CACHE.get(key)
        if hit and hit[0] == version and now - hit[1] < CACHE_SECONDS:
            _CACHE.move_to_end(key)
            return hit[2]
    body = _build(engine, flt, where, params, role=role, zoom=zoom, points_limit=points_limit)
    if len(body) <= CACHE_MAX_CHARS:
        with _LOCK:
            _CACHE[key] = (version, now, body)
            while len(_CACHE) > CACHE_ENTRIES:
                _CACHE.popitem(last=False)
    return body


def _build(engine, flt, where, params, *, role, zoom, points_limit):
    with engine.connect() as conn, conn.begin():
        # These are short queries: compiling them with LLVM (JIT) costs more than it saves.
        conn.execute(text("SET LOCAL jit = off"))
        # Enough memory to group the cells in a hash table rather than sorting every asset by cell.
        conn.execute(text("SET LOCAL work_mem = '64MB'"))
        # Counting stops one past the limit: at 50,000 assets in view there is no need to count them all twice.
        capped = conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM assets a WHERE {where} "
                                   f"AND a.geom IS NOT NULL LIMIT :cap) c"), {**params, "cap": points_limit + 1}
                              ).scalar()
        if capped <= points_limit:
            mode, total = "points", capped
            features = conn.execute(text(_points_sql(role, where)), params).scalar()
        else:
            lat = (flt.bbox[1] + flt.bbox[3]) / 2 if flt.bbox else 52.8
            params["dx"], params["dy"] = cell_degrees(zoom, lat)
            mode = "clusters"
            features, total = conn.execute(text(_clusters_sql(role, where)), params).one()
    return ('{"type":"FeatureCollection","mode":' + json.dumps(mode) + ',"total":' + str(int(total))
            + ',"features":' + (features or "[]") + "}")


def _points_sql(role, where):
    return ("SELECT CAST(coalesce(json_agg(json_build_object('type', 'Feature', 'id', a.id, "
            "'geometry', CAST(ST_AsGeoJSON(a.geom, 6) AS json), "
            f"'properties', {properties_sql(role)}) ORDER BY a.id), '[]') AS text) "
            f"FROM assets a WHERE {where} AND a.geom IS NOT NULL")


def _clusters_sql(role, where):
    # Cells are integer grid indices (cheap to hash) and a cell's marker sits at the mean of its points. A cell
    # holding one asset is drawn as that asset: its popup fields are fetched by primary key for those cells only.
    return ("WITH cells AS MATERIALIZED (SELECT a.tier, a.category, count(*) AS n, min(a.id) AS first_id, "
            f"count(*) FILTER (WHERE {stale_sql()}) AS stale_n, avg(ST_X(a.geom)) AS x, avg(ST_Y(a.geom)) AS y "
            f"FROM assets a WHERE {where} AND a.geom IS NOT NULL "
            "GROUP BY a.tier, a.category, floor(ST_X(a.geom) / :dx), floor(ST_Y(a.geom) / :dy)), "
            f"singles AS MATERIALIZED (SELECT a.id, a.geom, {properties_sql(role)} AS props FROM assets a "
            "WHERE a.id = ANY(ARRAY(SELECT first_id FROM cells WHERE n = 1))) "
            "SELECT CAST(coalesce(json_agg(json_build_object('type', 'Feature', "
            "'id', s.id, "
            "'geometry', CAST(ST_AsGeoJSON(coalesce(s.geom, ST_SetSRID(ST_MakePoint(c.x, c.y), 4326)), 6) AS json), "
            "'properties', coalesce(s.props, json_build_object("
            "'tier', c.tier, 'category', c.category, 'count', c.n, 'stale_count', c.stale_n)))), '[]') AS text) "
            ", (SELECT coalesce(sum(n), 0) FROM cells) AS total "
            "FROM cells c LEFT JOIN singles s ON s.id = c.first_id AND c.n = 1")


def individual_counts_geojson(engine, flt=None, *, by="lsoa21_code", suppress_below=5, offer=None, ignored=()):
    """Individuals per area as points on the area (PostGIS point on surface): the protected table of
    ``asset_map.disclosure`` (every area of the district or view listed, small counts suppressed, the rest
    rounded), the only form in which the public sees individuals. ``ignored``: filters given that do not apply."""
    from asset_map import disclosure

    flt = flt or AssetFilter()
    how = disclosure.as_method(suppress_below)
    geography = {"district_code": "district", "lsoa11_code": "lsoa11"}.get(by, "lsoa21")
    cells = disclosure.individual_table(engine, geography, districts=flt.district, offer=offer, bbox=flt.bbox,
                                        how=how, flt=flt)
    whole = disclosure.total([disclosure.Cell(c.value, c.label) for c in cells], how)
    head = {"type": "FeatureCollection", "suppress_below": how.threshold, "geography": geography,
            "offer": offer, "total": {"count": whole.value, "label": whole.label},
            "disclosure_control": disclosure.describe(how), "ignored_filters": list(ignored)}
    if not cells:
        return json.dumps({**head, "features": []})
    codes = [c.code for c in cells]
    if geography == "district":
        sql = ("SELECT code, CAST(ST_AsGeoJSON(ST_PointOnSurface(geom), 6) AS text) FROM districts "
               "WHERE code = ANY(:codes)")
        params = {"codes": codes}
    else:
        sql = ("SELECT code, CAST(ST_AsGeoJSON(ST_PointOnSurface(geom), 6) AS text) FROM areas "
               "WHERE code = ANY(:codes) AND vintage = :v")
        params = {"codes": codes, "v": 2011 if geography == "lsoa11" else 2021}
    with engine.connect() as conn:
        places = dict(conn.execute(text(sql), params).all())
    features = [{"type": "Feature", "geometry": json.loads(places[c.code]),
                 "properties": {"area_code": c.code, "area_name": c.name, "count": c.value, "label": c.label}}
                for c in cells if c.code in places]
    return json.dumps({**head, "features": features})
