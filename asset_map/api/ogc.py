"""OGC API - Features Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0) over the export layers, written by hand as a thin
protocol layer: each items page is one SQL statement that returns the features as GeoJSON text, so Python only
glues strings (pygeoapi on the same data managed 126 requests/s; this path is built for 800+).

Nothing here knows Flask: functions take the engine, a role, the base URL and plain parameters, and return dicts
(or, for items, ready JSON text).
"""

import functools
import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from urllib.parse import urlencode

import psycopg
from sqlalchemy import text

from asset_map.api import cql2_
from asset_map.api import layers as layer_defs
from asset_map.api.geojson import feature_sql
from asset_map.errors import DatabaseUnavailable, InputError, NotFound
from asset_map.store import change_stamps
from asset_map.store.assets import AssetFilter, parse_bbox, parse_int
from asset_map.vocabulary import DEFAULT_STATUSES, STATUSES

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    *cql2_.CONFORMANCE,
    # Part 4: create, replace, update and delete features of the asset collections.
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA = "application/schema+json"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
# Parameters every items request may carry; anything else must be a queryable of the collection.
ITEM_PARAMS = {"f", "bbox", "limit", "offset", "after", "datetime", "bbox-crs", "filter", "filter-lang", "filter-crs"}
_ASSET_PARAMS = {"tier": "tier", "category": "category", "status": "status", "district_code": "district"}
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class ItemsQuery:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    # The id of the last feature of the page before (the next links carry it): the page seeks past it through the
    # id index instead of counting ``offset`` rows again, so a client paging through a whole layer (QGIS, GDAL)
    # pays for each page what it pays for the first. ``offset`` still numbers the page.
    after: int | str | None = None
    flt: AssetFilter = field(default_factory=AssetFilter)
    datetime: tuple | None = None
    properties: dict = field(default_factory=dict)
    cql: tuple | None = None  # a CQL2 filter: (SQL condition, bound parameters)
    args: dict = field(default_factory=dict)  # what the caller asked, for the paging links


def _instant(value, end):
    # GDAL's OAPIF driver sends a date from a -where as "2025-03-01T": read it as the date it is.
    value = value.strip().removesuffix("T")
    if value in ("", ".."):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        msg = f"Parameter 'datetime' has value {value!r}: expected RFC 3339 such as 2025-01-31 or 2025-01-31T00:00:00Z."
        raise InputError(msg) from err
    # last_verified is a date: an instant falls on its UTC day.
    return (parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed).date()


def parse_datetime(raw):
    """'2025-01-31', '2025-01-01/2025-12-31', '../2025-01-01', '2024-01-01/..' -> (start or None, end or None)."""
    if raw is None or raw == "":
        return None
    if "/" in raw:
        start, _, end = raw.partition("/")
        interval = (_instant(start, False), _instant(end, True))
        if interval == (None, None):
            msg = "Parameter 'datetime' is '../..': give at least one end of the interval."
            raise InputError(msg)
        if interval[0] and interval[1] and interval[0] > interval[1]:
            msg = f"Parameter 'datetime' has value {raw!r}: the start is after the end."
            raise InputError(msg)
        return interval
    day = _instant(raw, False)
    return (day, day)


def _feature_id(layer, raw):
    """A feature id of the layer as the database holds it (int or code), or None when ``raw`` cannot be one."""
    if not _ID.match(raw):
        return None
    if layer.id_type == "integer":
        return int(raw) if raw.isdigit() and len(raw) < 19 else None
    return raw


def _after(layer, raw):
    if raw in (None, ""):
        return None
    value = _feature_id(layer, raw)
    if value is None:
        msg = (f"Parameter 'after' has value {raw[:40]!r}: not a position this collection gave out; follow the "
               "links from the first page.")
        raise InputError(msg)
    return value


def parse_items(layer, args):
    """Validate an items request; bad values and unknown parameters are InputErrors (400)."""
    args = {k: args.get(k) for k in args}
    queryables = {c.name: c for c in layer.columns if c.queryable}
    # Asset layers also take the shared filter's area=<geography>:<code> (an area of any loaded geography).
    extra = {"area"} if layer.kind == "assets" else set()
    unknown = [k for k in args if k not in ITEM_PARAMS and k not in queryables and k not in extra]
    if unknown:
        msg = (f"Unknown parameter {unknown[0]!r} for collection '{layer.id}'. Allowed: "
               f"{', '.join(sorted(ITEM_PARAMS | set(queryables)))}.")
        raise InputError(msg)
    if args.get("bbox-crs") not in (None, "", CRS84):
        msg = f"Parameter 'bbox-crs' has value {args['bbox-crs']!r}: only {CRS84} is supported."
        raise InputError(msg)
    # A limit above the maximum is not an error (OGC API - Features 1, /req/core/fc-limit-response): it is capped.
    q = ItemsQuery(limit=min(parse_int(args, "limit", DEFAULT_LIMIT, 1, 10**9), MAX_LIMIT),
                   offset=parse_int(args, "offset", 0, 0, 10**9), after=_after(layer, args.get("after")),
                   datetime=parse_datetime(args.get("datetime")), args=args)
    bbox = args.get("bbox")
    if bbox:
        parts = bbox.split(",")
        if len(parts) == 6:  # a 3D box: the heights do not matter here
            bbox = ",".join([parts[0], parts[1], parts[3], parts[4]])
    filter_args = {"bbox": bbox} if bbox else {}
    if extra and args.get("area"):
        filter_args["area"] = args["area"]
    for name, value in args.items():
        if name not in queryables or value in (None, ""):
            continue
        if layer.kind == "assets" and name in _ASSET_PARAMS:
            filter_args[_ASSET_PARAMS[name]] = value
        else:
            q.properties[name] = _typed(queryables[name], value)
    q.flt = AssetFilter.from_args(filter_args)
    mentioned = set()
    if args.get("filter") not in (None, ""):
        tree = cql2_.parse(args["filter"], args.get("filter-lang"), crs=args.get("filter-crs"))
        mentioned = cql2_.properties_mentioned(tree)
        raw = args["filter"] if (args.get("filter-lang") or cql2_.TEXT).strip().lower() != cql2_.JSON else None
        q.cql = cql2_.to_sql(tree, filterable(layer), raw=raw)
    elif args.get("filter-lang") or args.get("filter-crs"):
        raise InputError("Parameters 'filter-lang' and 'filter-crs' need a 'filter'.")
    # A filter that names the status decides it; otherwise closed assets are hidden as everywhere.
    if layer.kind == "assets" and "status" in mentioned and "status" not in filter_args:
        q.flt = replace(q.flt, status=STATUSES)
    elif layer.kind == "assets" and "status" not in filter_args:
        q.flt = replace(q.flt, status=DEFAULT_STATUSES)
    if layer.kind != "assets" and bbox:
        q.flt = replace(AssetFilter(), bbox=parse_bbox(bbox))
    return q


def _typed(column, value):
    if column.type == "integer":
        try:
            return int(value)
        except ValueError as err:
            msg = f"Parameter '{column.name}' has value {value!r}: expected a whole number."
            raise InputError(msg) from err
    return value


def filterable(layer):
    """What a CQL2 filter may name: the equality queryables, every date, number and list column, the geometry, and
    ``datetime`` for the layer's time column. ({name: cql2_.Property})"""
    out = {c.name: cql2_.Property(c.name, c.sql, c.type) for c in layer.columns
           if c.queryable or c.type in ("date", "datetime", "array", "integer", "number")}
    out["geometry"] = cql2_.Property("geometry", "g.geom", "geometry")
    if layer.time_column:
        out.setdefault("datetime", cql2_.Property("datetime", layer.time_column, "date"))
    return out


def _conditions(layer, q):
    conds, params = [], {}
    if q.cql:
        conds.append(q.cql[0])
        params.update(q.cql[1])
    for i, (name, value) in enumerate(q.properties.items()):
        conds.append(f"{layer.column(name).sql} = :q_{i}")
        params[f"q_{i}"] = value
    if q.datetime and layer.time_column:
        start, end = q.datetime
        if start:
            conds.append(f"{layer.time_column} >= :t_start")
            params["t_start"] = start
        if end:
            conds.append(f"{layer.time_column} <= :t_end")
            params["t_end"] = end
    return conds, params


def _url(base, path, params=None):
    params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
    return f"{base}{path}" + (f"?{urlencode(params)}" if params else "")


def _timestamp():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -- items -----------------------------------------------------------------------------------------------------
_BIND = re.compile(r"(?<!:):(\w+)")


@functools.lru_cache(maxsize=256)
def _driver_sql(sql):
    """``:name`` binds as psycopg's ``%(name)s`` (casts written ``::type`` are left alone)."""
    return _BIND.sub(r"%(\1)s", sql.replace("%", "%%"))


def _fetch_one(engine, sql, params):
    """One row through the pooled driver connection: SQLAlchemy's statement machinery costs more than this
    whole request's Python otherwise. psycopg prepares the statement after a few uses, so PostgreSQL plans it once
    per connection."""
    raw = engine.raw_connection()
    try:
        return raw.driver_connection.execute(_driver_sql(sql), params).fetchone()
    except psycopg.OperationalError as err:
        # Past SQLAlchemy's wrapping, so say it here: the connection is dropped and the client told to retry.
        raw.invalidate()
        msg = "The database is not available right now. Please try again in a moment."
        raise DatabaseUnavailable(msg) from err
    finally:
        raw.close()



_MATCHED = {}  # (layer, source SQL, parameters) -> (change stamp, numberMatched)
_FAMILY = {"assets": "assets", "counts": "assets", "districts": "reference", "areas": "reference"}


def items(engine, layer, q, *, role, base, suppress_below=5):
    """The items page as GeoJSON text: one statement builds the features and counts the matches."""
    conds, params = _conditions(layer, q)
    source, params = layer.source(q.flt, role=role, suppress_below=suppress_below, conditions=conds, params=params)
    # numberMatched of a full page was counted before for the same filter: it holds while the change stamp of the
    # layer's data (moved by database triggers on every write) is the same.
    key = (str(engine.url), layer.id, source, repr(sorted(params.items())))
    known_stamp, known = _MATCHED.get(key, (None, None))
    params.update(p_limit=q.limit, p_offset=q.offset, p_known=known, p_known_stamp=known_stamp,
                  p_skip=0 if q.after is not None else q.offset, p_after=q.after)
    seek = f" AND {layer.id_sql} > :p_after" if q.after is not None else ""
    stamp = change_stamps.newest(_FAMILY.get(layer.kind, "assets"))
    # The full count runs only when this page is full and the count is not known; otherwise it is known from the
    # page or from before (InitPlans run only when CASE reaches them).
    sql = (f"WITH page AS (SELECT {feature_sql(layer)} AS f, {layer.id_sql} AS k {source}{seek} "
           f"ORDER BY {layer.id_sql} LIMIT :p_limit OFFSET :p_skip), n AS (SELECT count(*) AS k FROM page), "
           f"s AS (SELECT {stamp} AS v) "
           f"SELECT n.k, CASE WHEN n.k < :p_limit AND (n.k > 0 OR :p_offset = 0) THEN :p_offset + n.k "
           f"WHEN s.v IS NOT DISTINCT FROM CAST(:p_known_stamp AS bigint) THEN CAST(:p_known AS bigint) "
           f"ELSE (SELECT count(*) {source}) END, (SELECT string_agg(f, ',') FROM page), s.v, "
           f"(SELECT max(k) FROM page) FROM n, s")
    returned, matched, features, now, last_key = _fetch_one(engine, sql, params)
    if known is None or now != known_stamp:
        if len(_MATCHED) >= 1024:
            _MATCHED.pop(next(iter(_MATCHED)))
        _MATCHED[key] = (now, matched)
    # The query string is encoded once and the links are spliced from it: they cost more than the SQL otherwise.
    page = f"{base}/collections/{layer.id}/items?"
    kept = urlencode({k: v for k, v in q.args.items() if k not in ("offset", "after", "f") and v not in (None, "")})
    kept = kept + "&" if kept else ""
    here = f"{kept}offset={q.offset}&" if q.offset else kept
    if q.after is not None:
        here += urlencode({"after": q.after}) + "&"
    links = [
        f'{{"href":{json.dumps(page + here + "f=json")},"rel":"self","type":"{GEOJSON}","title":"This page"}}',
        f'{{"href":{json.dumps(page + here + "f=html")},"rel":"alternate","type":"{HTML}",'
        f'"title":"This page as HTML"}}',
        f'{{"href":{json.dumps(f"{base}/collections/{layer.id}")},"rel":"collection","type":"{JSON}",'
        f'"title":{json.dumps(layer.title)}}}',
    ]
    if q.offset + returned < matched:
        href = f"{page}{kept}offset={q.offset + returned}&{urlencode({'after': last_key})}&f=json"
        links.append(f'{{"href":{json.dumps(href)},"rel":"next","type":"{GEOJSON}","title":"Next page"}}')
    if q.offset > 0:
        href = f"{page}{kept}offset={max(q.offset - q.limit, 0)}&f=json"
        links.append(f'{{"href":{json.dumps(href)},"rel":"prev","type":"{GEOJSON}","title":"Previous page"}}')
    return (f'{{"type":"FeatureCollection","numberMatched":{matched},"numberReturned":{returned},'
            f'"timeStamp":"{_timestamp()}","links":[{",".join(links)}],"features":[{features or ""}]}}')


def item(engine, layer, feature_id, *, role, base, suppress_below=5):
    missing = f"There is no feature {feature_id!r} in '{layer.id}'."
    value = _feature_id(layer, feature_id)
    if value is None:
        raise NotFound(missing)
    flt = AssetFilter(status=STATUSES) if layer.kind == "assets" else AssetFilter()
    source, params = layer.source(flt, role=role, suppress_below=suppress_below,
                                  conditions=[f"{layer.id_sql} = :fid"], params={"fid": value})
    with engine.connect() as conn:
        found = conn.execute(text(f"SELECT {feature_sql(layer)} {source}"), params).scalar()
    if found is None:
        raise NotFound(missing)
    path = f"/collections/{layer.id}/items/{feature_id}"
    links = [{"href": _url(base, path, {"f": "json"}), "rel": "self", "type": GEOJSON},
             {"href": _url(base, path, {"f": "html"}), "rel": "alternate", "type": HTML},
             {"href": _url(base, f"/collections/{layer.id}"), "rel": "collection", "type": JSON}]
    return found[:-1] + f',"links":{json.dumps(links)}}}'


# -- metadata --------------------------------------------------------------------------------------------------
def landing(base, *, title="asset-map", description="Community assets, need and districts as OGC API Features."):
    return {"title": title, "description": description, "links": [
        {"href": _url(base, "/", {"f": "json"}), "rel": "self", "type": JSON, "title": "This document"},
        {"href": _url(base, "/", {"f": "html"}), "rel": "alternate", "type": HTML, "title": "This document as HTML"},
        {"href": f"{base}/api", "rel": "service-desc", "type": OPENAPI, "title": "The API definition (OpenAPI 3.0)"},
        {"href": _url(base, "/api", {"f": "html"}), "rel": "service-doc", "type": HTML,
         "title": "The API documentation"},
        {"href": _url(base, "/conformance", {"f": "json"}), "rel": "conformance", "type": JSON,
         "title": "Conformance classes"},
        {"href": _url(base, "/conformance", {"f": "json"}), "rel": "http://www.opengis.net/def/rel/ogc/1.0/conformance",
         "type": JSON, "title": "Conformance classes"},
        {"href": _url(base, "/collections", {"f": "json"}), "rel": "data", "type": JSON, "title": "Collections"},
    ]}


def conformance():
    return {"conformsTo": CONFORMANCE}


def _extents(engine, role="public"):
    """Spatial extents, and the temporal extent of the assets ``role`` may see (an individual's or a restricted
    asset's verification date is not the public's to learn)."""
    from asset_map.store.assets import visibility_condition

    seen, params = visibility_condition(role, alias="")
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT (SELECT ST_Extent(geom) FROM districts), "
            "(SELECT ST_Extent(geom) FROM areas WHERE vintage = 2011), "
            "(SELECT ST_Extent(geom) FROM areas WHERE vintage = 2021), "
            f"(SELECT min(last_verified) FROM assets WHERE withdrawn_at IS NULL AND {seen}), "
            f"(SELECT max(last_verified) FROM assets WHERE withdrawn_at IS NULL AND {seen})"), params).one()
    return row


def _box(box2d):
    if not box2d:
        return [-180, -90, 180, 90]
    nums = [float(v) for v in re.findall(r"-?[0-9.]+(?:e-?[0-9]+)?", box2d)]
    return [round(v, 7) for v in nums[:4]]


def _collection(layer, base, extents):
    districts, a2011, a2021, first, last = extents
    if layer.kind == "areas":
        box = a2011 if layer_defs.area_vintage(layer.need[1]) == 2011 else a2021
    elif layer.kind == "counts":
        box = a2021
    else:
        box = districts or a2021 or a2011
    out = {"id": layer.id, "title": layer.title, "description": layer.description, "itemType": "feature",
           "crs": [CRS84],
           "extent": {"spatial": {"bbox": [_box(box)], "crs": CRS84}},
           "links": [
               {"href": _url(base, f"/collections/{layer.id}", {"f": "json"}), "rel": "self", "type": JSON},
               {"href": _url(base, f"/collections/{layer.id}", {"f": "html"}), "rel": "alternate", "type": HTML},
               {"href": _url(base, f"/collections/{layer.id}/items", {"f": "json"}), "rel": "items",
                "type": GEOJSON, "title": "Features as GeoJSON"},
               {"href": _url(base, f"/collections/{layer.id}/items", {"f": "html"}), "rel": "items",
                "type": HTML, "title": "Features as HTML"},
               {"href": f"{base}/collections/{layer.id}/schema", "rel": "describedby", "type": SCHEMA,
                "title": "JSON Schema of the features"},
               {"href": f"{base}/collections/{layer.id}/schema", "rel": "http://www.opengis.net/def/rel/ogc/1.0/schema",
                "type": SCHEMA, "title": "JSON Schema of the features"},
               {"href": f"{base}/collections/{layer.id}/queryables",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": SCHEMA,
                "title": "Properties to filter on"},
               {"href": _url(base.rsplit("/ogc", 1)[0], f"/export/{layer.id}.geojson"), "rel": "enclosure",
                "type": GEOJSON, "title": "Download everything as GeoJSON"},
           ]}
    if layer.time_column:
        out["extent"]["temporal"] = {"interval": [[_iso(first), _iso(last)]],
                                     "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return out


def _iso(day):
    return f"{day.isoformat()}T00:00:00Z" if day else None


def collections(engine, *, role, base):
    extents = _extents(engine, role)
    listed = layer_defs.available(engine, role)
    return {"links": [{"href": _url(base, "/collections", {"f": "json"}), "rel": "self", "type": JSON},
                      {"href": _url(base, "/collections", {"f": "html"}), "rel": "alternate", "type": HTML}],
            "collections": [_collection(layer, base, extents) for layer in listed]}


def collection(engine, layer, *, base, role="public"):
    return _collection(layer, base, _extents(engine, role))


SCHEMA_TYPES = {"string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
                 "date": {"type": "string", "format": "date"}, "datetime": {"type": "string", "format": "date-time"},
                 "array": {"type": "array", "items": {"type": "string"}}}


def schema(layer, *, base):
    """JSON Schema of the collection's features, as a GeoJSON Feature whose ``properties`` are the layer's
    columns: clients such as GDAL learn the fields from it, even for a collection that is empty today."""
    props = {c.name: {**SCHEMA_TYPES[c.type], "title": c.name, **({"description": c.description}
                                                                    if c.description else {})}
             for c in layer.columns}
    geometry = "Point" if not layer.polygonal else "MultiPolygon"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{base}/collections/{layer.id}/schema",
            "title": layer.title, "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "integer" if layer.id_type == "integer" else "string"},
                "geometry": {"type": "object", "properties": {"type": {"type": "string", "enum": [geometry]}},
                             "x-ogc-role": "primary-geometry"},
                "properties": {"type": "object", "properties": props}}}


def queryables(layer, *, base):
    """What ``items`` filters on (OGC API - Features Part 3): the properties a CQL2 ``filter`` may name (those
    marked as query parameters may also be given as ``name=value``) and the geometry."""
    props = {}
    for name, prop in filterable(layer).items():
        column = layer.column(name)
        if prop.type == "geometry":
            kind = "point" if not layer.polygonal else "multipolygon"
            props[name] = {"title": "geometry", "format": f"geometry-{kind}", "x-ogc-role": "primary-geometry"}
        elif column is None:
            props[name] = {"type": "string", "format": "date", "title": "last verified",
                           "description": "The date last verified; also the datetime parameter (instant or "
                                          "interval)."}
        else:
            props[name] = {**SCHEMA_TYPES[column.type], "title": name,
                           **({"description": column.description} if column.description else {}),
                           **({"x-ogc-queryParameter": True} if column.queryable else {})}
    return {"$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": f"{base}/collections/{layer.id}/queryables", "type": "object", "title": layer.title,
            "properties": props, "additionalProperties": False}
