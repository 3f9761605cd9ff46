"""Bulk writes: frames go to a staging table by COPY, then one INSERT ... ON CONFLICT moves them into place.

Staging keeps loads idempotent (a key loaded twice is updated, never duplicated) and fast; callers pass an open
connection inside a transaction, so a failure anywhere leaves the database as it was.
"""

import re
import uuid

import geopandas as gpd
from sqlalchemy import text

from asset_map.errors import InputError
from asset_map.store.models import SRID

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def identifier(name):
    """A table or column name safe to put in SQL text (names cannot be bound parameters)."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        msg = f"{str(name)[:80]!r} is not a usable column or table name (letters, digits and '_' only)."
        raise InputError(msg)
    return name


def stage(conn, frame, *, geometry="geometry"):
    """Copy ``frame`` into a temporary table that disappears at commit; returns its name."""
    name = f"_stage_{uuid.uuid4().hex[:12]}"
    if isinstance(frame, gpd.GeoDataFrame) and geometry in frame:
        if frame.crs is None or frame.crs.to_epsg() != SRID:
            frame = frame.to_crs(SRID)
        frame.to_postgis(name, conn, if_exists="fail", index=False)
    else:
        frame.to_sql(name, conn, if_exists="fail", index=False, method="multi", chunksize=5000)
    conn.execute(text(f'ALTER TABLE "{name}" SET (autovacuum_enabled = false)'))
    return name


def _stage_copy(conn, frame, table):
    """Like ``stage`` for a frame without geometry, by COPY into columns typed like ``table``'s: a quarter of a
    million need rows take seconds, where pandas' multi-row INSERTs take minutes."""
    types = dict(conn.execute(text(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"), {"t": table}).all())
    cols = [identifier(c) for c in frame.columns]
    if any(c not in types for c in cols):
        return stage(conn, frame)
    name = f"_stage_{uuid.uuid4().hex[:12]}"
    conn.execute(text(f'CREATE TEMP TABLE "{name}" ({", ".join(f"{c} {types[c]}" for c in cols)}) ON COMMIT DROP'))
    values = frame.astype(object).where(frame.notna(), None)
    copy_rows(conn, f'"{name}"', cols, values.itertuples(index=False, name=None))
    return name


def drop(conn, name):
    conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))


def upsert(conn, frame, table, *, keys, columns, geometry_sql=None):
    """Insert or update ``frame`` into ``table`` by ``keys``; ``geometry_sql`` builds the geom column from the
    staged ``geometry`` (e.g. ``ST_Multi(geometry)``). Returns the number of rows written."""
    for name in [table, *keys, *columns]:
        identifier(name)
    staged = stage(conn, frame) if geometry_sql else _stage_copy(conn, frame, table)
    cols = list(columns)
    select = [f'"{c}"' for c in cols]
    if geometry_sql:
        cols.append("geom")
        select.append(geometry_sql)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols if c not in keys)
    conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    sql = (f'INSERT INTO {table} ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
           f'SELECT {", ".join(select)} FROM "{staged}" '
           f'ON CONFLICT ({", ".join(keys)}) {conflict}')
    written = conn.execute(text(sql)).rowcount
    drop(conn, staged)
    return written


def copy_rows(conn, table, columns, rows):
    """COPY tuples of Python values into ``table`` (text format); far faster than INSERTs for many rows."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f'COPY {table} ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
