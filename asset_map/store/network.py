"""Street networks in the store: one per mode, replaced whole by a load, read whole by a report.

:func:`load` reads an OpenStreetMap extract, keeps the mode's network within the loaded districts plus a buffer and
writes it in one transaction (with its source, file date and SHA-256, and an audit event); a bad file raises an
InputError before anything is written, so the database stays as it was.
"""

import datetime as dt
from pathlib import Path

import numpy as np
from sqlalchemy import text

from asset_map import audit
from asset_map.analysis.network import MODES, Network
from asset_map.errors import InputError
from asset_map.store.bulk import copy_columns

DEFAULT_BUFFER_M = 5_000.0


def district_bbox(engine, buffer_m, districts=None):
    """(min lon, min lat, max lon, max lat) of the loaded districts (or the given codes) grown by ``buffer_m``
    metres (in EPSG:27700), and the district codes; InputError when no district is loaded."""
    where, params = ("WHERE code = ANY(:c)", {"c": list(districts)}) if districts else ("", {})
    sql = (f"SELECT codes, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ("
           f"  SELECT array_agg(code ORDER BY code) AS codes, ST_Transform(ST_SetSRID(ST_Expand(ST_Extent("
           f"ST_Transform(geom, 27700)), :b)::geometry, 27700), 4326)::box2d AS e FROM districts {where}) s")
    with engine.connect() as conn:
        row = conn.execute(text(sql), {"b": float(buffer_m), **params}).first()
    if row is None or not row[0]:
        msg = ("No districts are loaded: load districts first (`asset-map load districts FILE` or `asset-map load "
               "pack DIR`); the network is kept for the loaded districts plus a buffer.")
        raise InputError(msg)
    return (row[1], row[2], row[3], row[4]), list(row[0])


def load(engine, path, *, mode="walk", buffer_m=DEFAULT_BUFFER_M, actor="cli", source=None):
    """Read ``path`` (.osm.pbf) and store its ``mode`` network for the loaded districts plus ``buffer_m``.
    Returns the stored load's summary (a dict)."""
    from asset_map.reference import osm

    if mode not in MODES:
        raise InputError(f"Mode {mode!r} is not known; expected one of {', '.join(MODES)}.")
    if not 0 <= float(buffer_m) <= 100_000:
        raise InputError(f"Buffer must be between 0 and 100,000 metres, got {buffer_m!r}.")
    bbox, codes = district_bbox(engine, buffer_m)
    path = Path(path)
    got = osm.read_network(path, mode, bbox)
    net = got.network
    date = got.source_date or dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).isoformat(
        timespec="seconds") + " (file modified)"
    summary = {"mode": mode, "source": source or path.name, "source_date": date, "sha256": got.sha256,
               "nodes": int(net.n_nodes), "edges": int(net.n_edges), "districts": ",".join(codes),
               "buffer_m": float(buffer_m), "bbox": ",".join(f"{v:.6f}" for v in bbox)}
    with engine.begin() as conn:
        # A county network is millions of rows: the web's per-statement limit is not for this batch job.
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        for table in ("network_edges", "network_nodes", "network_loads"):
            conn.execute(text(f"DELETE FROM {table} WHERE mode = :m"), {"m": mode})
        conn.execute(text("INSERT INTO network_loads (mode, source, source_date, sha256, nodes, edges, districts, "
                          "buffer_m, bbox) VALUES (:mode, :source, :source_date, :sha256, :nodes, :edges, "
                          ":districts, :buffer_m, :bbox)"), summary)
        n = net.n_nodes
        copy_columns(conn, "network_nodes", {
            "mode": np.full(n, mode, dtype=object), "id": np.arange(n, dtype=np.int64), "osm_id": got.osm_id,
            "lon": got.lon, "lat": got.lat, "x": net.x, "y": net.y})
        m = net.n_edges
        copy_columns(conn, "network_edges", {
            "mode": np.full(m, mode, dtype=object), "u": net.u, "v": net.v, "length_m": np.round(net.length, 3),
            "oneway": net.oneway.astype(bool), "highway": got.highway})
        audit.record(conn, actor=actor, action="network-load", target=mode,
                     details={k: summary[k] for k in ("source", "source_date", "sha256", "buffer_m")},
                     rows=int(m))
    summary["ways"] = got.ways
    return summary


def info(engine, mode):
    """The stored load of ``mode`` (a dict) or None."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT mode, source, source_date, sha256, nodes, edges, districts, buffer_m, "
                                "bbox, loaded_at FROM network_loads WHERE mode = :m"), {"m": mode}).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["loaded_at"] = out["loaded_at"].isoformat() if out["loaded_at"] else None
    return out


def _copy_out(engine, sql, mode):
    """A query's rows as a DataFrame through COPY ... TO STDOUT and Arrow's CSV reader: several times faster than
    fetching a few hundred thousand rows as Python objects."""
    import io

    import pyarrow.csv as pacsv

    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = 0")  # a national network takes longer than a web request
            if mode not in MODES:  # the one value put in the SQL text: checked against the known modes
                raise InputError(f"Mode {mode!r} is not known; expected one of {', '.join(MODES)}.")
            query = sql.replace("%s", f"'{mode}'")
            buf = io.BytesIO()
            with cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for block in copy:
                    buf.write(block)
        raw.commit()
    finally:
        raw.close()
    buf.seek(0)
    frame = pacsv.read_csv(buf).to_pandas()
    if "oneway" in frame.columns and frame["oneway"].dtype != bool:
        frame["oneway"] = frame["oneway"].astype(str).str.lower().isin(("t", "true"))
    return frame


def read(engine, mode):
    """The stored ``mode`` network as an analysis Network (EPSG:27700 metres) and the lon/lat of its nodes, or
    (None, None) when none is loaded."""
    if info(engine, mode) is None:
        return None, None
    nodes = _copy_out(engine, "SELECT id, lon, lat, x, y FROM network_nodes WHERE mode = %s ORDER BY id", mode)
    edges = _copy_out(engine, "SELECT u, v, length_m, oneway FROM network_edges WHERE mode = %s "
                              "ORDER BY u, v, length_m", mode)
    net = Network(nodes["x"].to_numpy(float), nodes["y"].to_numpy(float), edges["u"].to_numpy(np.int64),
                  edges["v"].to_numpy(np.int64), edges["length_m"].to_numpy(float), edges["oneway"].to_numpy(bool),
                  mode)
    return net, nodes[["lon", "lat"]].to_numpy(float)


_CACHE = {}
_CACHE_SIZE = 4


def read_cached(engine, mode):
    """(network, load info) like :func:`read`, kept in memory per database and load (a new load is read afresh):
    isochrones are asked one asset at a time, and reading a county network takes longer than drawing one."""
    got = info(engine, mode)
    if got is None:
        return None, None
    key = (engine.url.render_as_string(hide_password=True), mode, got["sha256"], got["loaded_at"])
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = read(engine, mode)[0]
    return _CACHE[key], got
