"""COPY of large frames: columns to Arrow and CSV (written by pyarrow) chunk by chunk, so the server parses and
stores one chunk while the next is being made here. For a million assets this is seconds where pandas'
``to_csv`` and shapely's per-geometry WKB writer took about ten.
"""

import binascii

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from psycopg.copy import QueuedLibpqWriter

# Extended WKB of a 2D point with an SRID, little-endian: byte order, type (point | has-SRID flag), SRID, x, y.
_EWKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")])
_EWKB_POINT_TYPE = 0x20000001


def arrow_table(columns):
    """Columns (a frame, or a dict of name to Series or array) as an Arrow table for ``copy_table``: blank text
    becomes null (COPY reads a quoted "" as an empty string, where the store wants NULL), and a column Arrow cannot
    type (mixed Python values) is sent as text, which PostgreSQL casts to the column's type. pandas' own Arrow
    strings pass through without a copy."""
    table = {}
    for name, values in columns.items():
        try:
            column = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            column = pa.array([None if pd.isna(v) else str(v) for v in values], type=pa.string())
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
        table[name] = column
    return pa.table(table)


def points_ewkb(geoms, srid):
    """Hex EWKB of point geometries (None or empty: null), as PostGIS reads it from COPY. Points are fixed-size,
    so all of them are packed in one numpy buffer rather than written one by one."""
    geoms = np.asarray(geoms, dtype=object)
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    packed = np.empty(len(geoms), dtype=_EWKB_POINT)
    packed["order"], packed["type"], packed["srid"], packed["x"], packed["y"] = 1, _EWKB_POINT_TYPE, srid, x, y
    width = 2 * _EWKB_POINT.itemsize
    hexed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(geoms),
                                                 [None, pa.py_buffer(binascii.hexlify(packed.tobytes()))])
    text = hexed.cast(pa.binary()).cast(pa.string())
    missing = pa.array(np.isnan(x) | np.isnan(y))
    return pc.if_else(missing, pa.scalar(None, pa.string()), text)


def copy_columns(conn, table, columns, chunk=25_000):
    """COPY ``columns`` (name -> Series, numpy or Arrow array, all of one length) into ``table`` (an identifier the
    caller has checked) on the SQLAlchemy connection ``conn``. Each chunk is turned into Arrow and CSV here while a
    queued writer's thread sends the previous one, so the server is kept busy rather than waiting for this side."""
    raw = conn.connection.driver_connection
    options = pacsv.WriteOptions(include_header=False)
    rows = len(next(iter(columns.values())))
    with raw.cursor() as cur:
        with cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN WITH (FORMAT csv)',
                      writer=QueuedLibpqWriter(cur)) as copy:
            for start in range(0, rows, chunk):
                part = {name: _slice(values, start, start + chunk) for name, values in columns.items()}
                sink = pa.BufferOutputStream()
                pacsv.write_csv(arrow_table(part), sink, write_options=options)
                copy.write(sink.getvalue())


def _slice(values, start, stop):
    return values.iloc[start:stop] if isinstance(values, pd.Series) else values[start:stop]


def integers(values):
    """Whole numbers without a '.0' (a UPRN read as a float would not cast to bigint); anything else null."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    return numbers.astype("Int64").astype(object).where(numbers.notna(), None).to_numpy()
