"""A layer as CSV: lon/lat columns for points and WKT for polygons, streamed from the database, written by the one
CSV writer (``asset_map.csv_writer``: UTF-8 with a BOM, formula-like cells neutralised, the attribution and licence
in leading ``#`` lines by default or in a sidecar text file when asked).
"""

import io

from asset_map import csv_writer
from asset_map.api import rows
from asset_map.csv_writer import BOM, MEDIA_TYPE, neutralise  # noqa: F401 - the format's names, read by callers

CHUNK = 256 * 1024


def geometry_fields(layer):
    if layer.polygonal:
        return ["wkt"], f"ST_AsText({rows.geometry_sql(layer)}, {rows.PRECISION}) AS wkt"
    return ["lon", "lat"], (f"round(ST_X(g.geom)::numeric, {rows.PRECISION})::float8 AS lon, "
                            f"round(ST_Y(g.geom)::numeric, {rows.PRECISION})::float8 AS lat")


def header_fields(layer):
    geom_names, _ = geometry_fields(layer)
    return ["id"] + [c.name for c in layer.columns] + geom_names


def stream(engine, layer, flt, *, role, attribution, licence, suppress_below=5, comments=True, on_done=None):
    """Yield the CSV as UTF-8 chunks; ``on_done(rows, complete)`` at the end."""
    _, geom_sql = geometry_fields(layer)
    fields = ", ".join([f"{layer.id_sql} AS id"] + [f"{c.sql} AS \"{c.name}\"" for c in layer.columns] + [geom_sql])
    sql, params = rows.select_sql(layer, flt, role=role, suppress_below=suppress_below, fields=fields)
    out = io.StringIO()
    n, complete = 0, False
    try:
        writer = csv_writer.CsvWriter(out, attribution=attribution if comments else (),
                                      licence=licence if comments else None)
        writer.header(header_fields(layer))
        yield out.getvalue().encode()  # before the query runs: the first byte goes at once
        out.seek(0)
        out.truncate()
        for part in rows.stream(engine, sql, params):
            writer.rows(part)
            n += len(part)
            if out.tell() >= CHUNK:
                yield out.getvalue().encode()
                out.seek(0)
                out.truncate()
        yield out.getvalue().encode()
        complete = True
    finally:
        if on_done:
            on_done(n, complete)


def sidecar_text(layer, attribution, licence):
    return csv_writer.sidecar_text(f"{layer.title} ({layer.id})", attribution, licence)


def write(path, engine, layer, flt, *, sidecar=False, **kwargs):
    """Write the CSV to ``path``; with ``sidecar`` the attribution goes to ``<path>.txt`` instead of # lines.
    Returns the sidecar's path or None."""
    with open(path, "wb") as fh:
        for chunk in stream(engine, layer, flt, comments=not sidecar, **kwargs):
            fh.write(chunk)
    if sidecar:
        side = f"{path}.txt"
        with open(side, "w", encoding="utf-8") as fh:
            fh.write(sidecar_text(layer, kwargs["attribution"], kwargs["licence"]))
        return side
    return None
