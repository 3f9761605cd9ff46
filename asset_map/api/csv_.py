"""CSV for spreadsheets: UTF-8 with a byte-order mark so Excel reads the accents, lon/lat columns for points and WKT
for polygons, and every text cell that a spreadsheet would run as a formula (= + - @ tab CR) neutralised with a
leading apostrophe (OWASP's advice).

The attribution and licence go in leading ``#`` lines by default (Excel shows them as the first rows; pandas reads
the file with ``comment='#'``, QGIS with "header lines to discard"), or in a sidecar text file when asked.
"""

import csv
import io
from datetime import date, datetime
from decimal import Decimal

from asset_map.api import rows

MEDIA_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 256 * 1024


def neutralise(value):
    """A cell as text, safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value)
    elif isinstance(value, (datetime, date)):
        return value.isoformat()
    elif isinstance(value, (int, float, Decimal)):
        # Numbers are data, never formulas: a negative longitude keeps its minus sign.
        return repr(value) if isinstance(value, float) else str(value)
    value = str(value)
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def geometry_fields(layer):
    if layer.polygonal:
        return ["wkt"], f"ST_AsText({rows.geometry_sql(layer)}, {rows.PRECISION}) AS wkt"
    return ["lon", "lat"], (f"round(ST_X(g.geom)::numeric, {rows.PRECISION})::float8 AS lon, "
                            f"round(ST_Y(g.geom)::numeric, {rows.PRECISION})::float8 AS lat")


def header_fields(layer):
    geom_names, _ = geometry_fields(layer)
    return ["id"] + [c.name for c in layer.columns] + geom_names


def comment_lines(attribution, licence):
    return [f"# {line}" for line in attribution] + [f"# Licence: {licence}"]


def stream(engine, layer, flt, *, role, attribution, licence, suppress_below=5, comments=True, on_done=None):
    """Yield the CSV as UTF-8 chunks; ``on_done(rows, complete)`` at the end."""
    _, geom_sql = geometry_fields(layer)
    fields = ", ".join([f"{layer.id_sql} AS id"] + [f"{c.sql} AS \"{c.name}\"" for c in layer.columns] + [geom_sql])
    sql, params = rows.select_sql(layer, flt, role=role, suppress_below=suppress_below, fields=fields)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    n, complete = 0, False
    try:
        out.write(BOM)
        if comments:
            for line in comment_lines(attribution, licence):
                out.write(line.replace("\r", " ").replace("\n", " ") + "\r\n")
        writer.writerow(header_fields(layer))
        yield out.getvalue().encode()  # before the query runs: the first byte goes at once
        out.seek(0)
        out.truncate()
        for part in rows.stream(engine, sql, params):
            writer.writerows([neutralise(v) for v in row] for row in part)
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
    return "\n".join([f"{layer.title} ({layer.id})", "", *attribution, "", f"Licence: {licence}", ""])


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
