"""GeoJSON per RFC 7946, built by PostGIS one feature per row and streamed: WGS84 lon/lat, no ``crs`` member,
polygons wound by the right-hand rule, at most 7 decimals, ids that are database ids or ONS codes (stable across
exports). Attribution and licence ride as top-level members (RFC 7946 section 6.1 allows foreign members)."""

import functools
import json
from datetime import datetime, timezone

from asset_map.api import rows

MEDIA_TYPE = "application/geo+json"
CHUNK = 256 * 1024


def properties_sql(layer):
    pairs = ", ".join(f"'{c.name}', {c.sql}" for c in layer.columns)
    return f"json_build_object({pairs})"


@functools.lru_cache(maxsize=64)
def feature_sql(layer):
    """One Feature as text. Concatenation, not nested json_build_object, so the geometry is not parsed again."""
    geom = f"ST_AsGeoJSON({rows.geometry_sql(layer)}, {rows.PRECISION}, 0)"
    return (f"'{{\"type\":\"Feature\",\"id\":' || to_json({layer.id_sql})::text || ',\"geometry\":' || "
            f"COALESCE({geom}, 'null') || ',\"properties\":' || {properties_sql(layer)}::text || '}}'")


def header(layer, *, attribution, licence, filters=None):
    head = {"type": "FeatureCollection", "name": layer.id, "title": layer.title,
            "attribution": attribution, "licence": licence,
            "timeStamp": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")}
    if filters:
        head["filters"] = filters
    return json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[\n'


def stream(engine, layer, flt, *, role, attribution, licence, suppress_below=5, filters=None, on_done=None):
    """Yield the FeatureCollection as UTF-8 chunks of about CHUNK bytes; ``on_done(rows, complete)`` at the end."""
    sql, params = rows.select_sql(layer, flt, role=role, suppress_below=suppress_below, fields=feature_sql(layer))
    n, complete = 0, False
    try:
        # The header goes out before the query runs: the client sees bytes at once, whatever the export's size.
        yield header(layer, attribution=attribution, licence=licence, filters=filters).encode()
        buf, size = [], 0
        for part in rows.stream(engine, sql, params):
            text_ = ",\n".join(r[0] for r in part)
            if n:
                text_ = ",\n" + text_
            n += len(part)
            buf.append(text_)
            size += len(text_)
            if size >= CHUNK:
                yield "".join(buf).encode()
                buf, size = [], 0
        buf.append(f'\n],"numberReturned":{n}}}\n')
        yield "".join(buf).encode()
        complete = True
    finally:
        if on_done:
            on_done(n, complete)


def write(path, engine, layer, flt, **kwargs):
    with open(path, "wb") as fh:
        for chunk in stream(engine, layer, flt, **kwargs):
            fh.write(chunk)
