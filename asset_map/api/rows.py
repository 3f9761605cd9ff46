"""Reading a layer's rows: the SQL every format builds on, and a server-side cursor so exports of any size run in
constant memory and send their first byte at once."""

from sqlalchemy import text

from asset_map.store.assets import AssetFilter

PRECISION = 7  # decimal places of degrees: about 1 cm, and the most RFC 7946 advises
BATCH = 2000


def geometry_sql(layer):
    """The layer's geometry, polygons wound by the right-hand rule (exterior rings counter-clockwise)."""
    return "ST_ForcePolygonCCW(g.geom)" if layer.polygonal else "g.geom"


def select_sql(layer, flt=None, *, role="public", suppress_below=5, fields, order=True, limit=None, offset=0,
               conditions=(), params=None):
    """``SELECT <fields> FROM <layer source> WHERE ...`` ordered by the stable id; ``fields`` is SQL."""
    source, params = layer.source(flt or AssetFilter(), role=role, suppress_below=suppress_below,
                                  conditions=conditions, params=params)
    sql = f"SELECT {fields} {source}"
    if order:
        sql += f" ORDER BY {layer.id_sql}"
    if limit is not None:
        sql += " LIMIT :p_limit OFFSET :p_offset"
        params.update(p_limit=int(limit), p_offset=int(offset))
    return sql, params


def stream(engine, sql, params, *, batch=None):
    """Yield lists of rows from a server-side cursor, ``batch`` at a time."""
    with engine.connect() as conn:
        batch = batch or BATCH
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(text(sql), params)
        yield from result.partitions(batch)


def count(engine, layer, flt=None, *, role="public", suppress_below=5):
    sql, params = select_sql(layer, flt, role=role, suppress_below=suppress_below, fields="count(*)", order=False)
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()
