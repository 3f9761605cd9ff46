"""Geographies in the store: their areas, each asset's areas in them (``asset_areas``), and the writes that keep
the two in step.

Assets are assigned to every area they lie in (point in polygon, EPSG:4326 as stored, the same test PostGIS's
ST_Intersects makes): in bulk here when a geography is loaded or an area drawn, and by the importer for the assets
it has just written (``assign_register``). Every write is one transaction and audited.
"""

import hashlib
import io
import time

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text

from asset_map import audit
from asset_map.errors import InputError, NotFound
from asset_map.reference.geographies import CODE, check_name, polygon_from_geojson, read_geography
from asset_map.store import partitions, writes
from asset_map.store.assets import AssetFilter

LINKS = "asset_areas"    # partitioned by geography (migration 0023)


def load(engine, name, path, *, label=None, code_field=None, name_field=None, crs=None, actor="cli"):
    """Load (or reload) geography ``name`` from a boundary file and assign every asset to its areas. Areas missing
    from a reloaded file are removed (with their assets' links and councillors' attachments). Returns a summary
    dict with the notes of the read."""
    name = check_name(name)
    clock = [time.perf_counter()]
    timings = {}

    def lap(stage):
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 3)
        clock[0] = now

    read = read_geography(path, code_field=code_field, name_field=name_field, crs=crs)
    frame = read.frame
    lap("read and check")
    with engine.begin() as conn:
        _ensure(conn, name, label or name.replace("-", " ").replace("_", " ").capitalize(), read.source)
        removed = conn.execute(text("DELETE FROM geography_areas WHERE geography = :g AND NOT code = ANY(:c)"),
                               {"g": name, "c": frame["code"].tolist()}).rowcount
        writes.upsert(conn, frame.assign(geography=name), "geography_areas", keys=["geography", "code"],
                      columns=["geography", "code", "name"], geometry_sql="ST_Multi(geometry)")
        lap("store areas")
        links = assign_geography(conn, name, timings=timings)
        lap("link assets")
        _touch(conn, name)
        audit.record(conn, actor=actor, action="geography-load", target=name, rows=len(frame),
                     details={"source": read.source, "crs": read.crs, "removed": removed, "assets_linked": links,
                              "notes": len(read.notes)})
    lap("commit")
    return {"geography": name, "areas": len(frame), "removed": removed, "assets_linked": links,
            "source": read.source, "crs": read.crs, "notes": read.notes, "timings": timings}


def save_drawn(engine, geography, code, area_name, geometry, *, actor, label=None):
    """Save a polygon drawn on the map (a GeoJSON geometry, EPSG:4326) as area ``code`` of ``geography`` (created
    when new; an existing code is redrawn) and assign the assets inside it. Returns a summary dict."""
    geography = check_name(geography)
    code = str(code or "").strip()
    area_name = str(area_name or "").strip() or code
    if not CODE.match(code):
        raise InputError("Give the area a code of 1 to 64 letters, digits, spaces, '.', '_' or '-', e.g. PN-01.")
    shape, note = polygon_from_geojson(geometry)
    if shapely.area(shape) <= 0:
        raise InputError("The drawn area has no area: draw an outline around the neighbourhood.")
    with engine.begin() as conn:
        _ensure(conn, geography, label or geography.replace("-", " ").replace("_", " ").capitalize(), "drawn")
        conn.execute(text(
            "INSERT INTO geography_areas (geography, code, name, geom, drawn_by) "
            "VALUES (:g, :c, :n, ST_Multi(ST_GeomFromText(:wkt, 4326)), :by) "
            "ON CONFLICT (geography, code) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom, "
            "drawn_by = EXCLUDED.drawn_by, loaded_at = now()"),
            {"g": geography, "c": code, "n": area_name, "wkt": shape.wkt, "by": actor})
        conn.execute(text("DELETE FROM asset_areas WHERE geography = :g AND area_code = :c"),
                     {"g": geography, "c": code})
        links = conn.execute(text(
            "INSERT INTO asset_areas (geography, area_code, asset_id) SELECT g.geography, g.code, a.id "
            "FROM geography_areas g JOIN assets a ON ST_Intersects(g.geom, a.geom) "
            "WHERE g.geography = :g AND g.code = :c"), {"g": geography, "c": code}).rowcount
        _touch(conn, geography)
        audit.record(conn, actor=actor, action="geography-draw", target=f"{geography}:{code}", rows=links,
                     details={"name": area_name, "repaired": note})
    return {"geography": geography, "code": code, "name": area_name, "assets_linked": links, "note": note}


def _ensure(conn, name, label, source):
    conn.execute(text("INSERT INTO geographies (name, label, source) VALUES (:n, :l, :s) "
                      "ON CONFLICT (name) DO UPDATE SET label = EXCLUDED.label, "
                      "source = COALESCE(EXCLUDED.source, geographies.source)"),
                 {"n": name, "l": label, "s": source})
    conn.execute(text(partitions.ddl(f'CREATE TABLE IF NOT EXISTS "{links_partition(name)}" PARTITION OF {LINKS} '
                                     'FOR VALUES IN ({})', name, conn)))


def links_partition(geography):
    """The table of one geography's links, a partition of ``asset_areas`` named from the geography (as migration
    0023 names them), so it needs no lookup."""
    return "asset_areas_g_" + hashlib.md5(geography.encode("utf-8")).hexdigest()[:16]


def _touch(conn, name):
    conn.execute(text("UPDATE geographies SET updated_at = now(), areas = (SELECT count(*) FROM geography_areas "
                      "WHERE geography = :n) WHERE name = :n"), {"n": name})


def assign_geography(conn, name, *, timings=None):
    """Replace the asset links of one geography: every asset with a point, in every area it lies in. Points and
    polygons are read in binary and tested in memory with a prepared STRtree (as districts are in the import),
    then the links are COPYed back. Returns the number of links."""
    raw = conn.connection.driver_connection
    with raw.cursor(binary=True) as cur:
        cur.execute("SELECT code, ST_AsBinary(geom) FROM geography_areas WHERE geography = %s ORDER BY code",
                    (name,))
        rows = cur.fetchall()
    codes = np.array([r[0] for r in rows], dtype=object)
    polys = shapely.from_wkb([r[1] for r in rows])
    started = time.perf_counter()
    ids, lon, lat = _asset_points(raw) if rows else (np.array([], dtype=np.int64), np.array([]), np.array([]))
    read = time.perf_counter()
    pt, poly = _inside(lon, lat, polys)
    tested = time.perf_counter()
    # Sorted as the primary key: the index is then built from presorted input.
    order = np.lexsort((ids[pt], poly))
    _replace_links(conn, name, codes[poly[order]], ids[pt[order]])
    if timings is not None:
        timings.update({"read points": round(read - started, 3), "point in polygon": round(tested - read, 3),
                        "write links": round(time.perf_counter() - tested, 3)})
    return len(pt)


def _replace_links(conn, name, area_codes, asset_ids):
    """Swap in a new partition holding the links (area code, asset id) for the geography's old one: written with
    no index, then indexed in one sorted build (four times faster than maintaining the indexes row by row at a
    million links), all in the caller's transaction."""
    part = links_partition(name)
    fresh = f"{part}_new"
    conn.execute(text(f'CREATE TABLE "{fresh}" (LIKE {LINKS})'))
    # The geography is the same on every row: a default, so the COPY carries two short columns.
    conn.execute(text(partitions.ddl(f'ALTER TABLE "{fresh}" ALTER geography SET DEFAULT {{}}', name, conn)))
    # Proves every row belongs to the geography, so ATTACH need not scan the table to check.
    conn.execute(text(partitions.ddl(f'ALTER TABLE "{fresh}" ADD CONSTRAINT "{fresh}_only" CHECK (geography = {{}})',
                                     name, conn)))
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f'COPY "{fresh}" (area_code, asset_id) FROM STDIN') as copy:
        # Area codes were checked on load (letters, digits, spaces, '.', '_', '-'): nothing to escape.
        copy.write("".join(f"{c}\t{i}\n" for c, i in zip(area_codes.tolist(), asset_ids.tolist())))
    conn.execute(text(f'ALTER TABLE "{fresh}" ALTER geography DROP DEFAULT'))
    conn.execute(text(f'DROP TABLE IF EXISTS "{part}"'))  # first, so that the new indexes may take its names
    conn.execute(text(f'ALTER TABLE "{fresh}" RENAME TO "{part}"'))
    partitions.index_like_parent(conn, LINKS, part)
    conn.execute(text(partitions.ddl(f'ALTER TABLE {LINKS} ATTACH PARTITION "{part}" FOR VALUES IN ({{}})', name,
                                     conn)))
    conn.execute(text(f'ALTER TABLE "{part}" DROP CONSTRAINT "{fresh}_only"'))


def _asset_points(raw):
    """(ids, lon, lat) of every asset with a point, by COPY (a million rows in about a second)."""
    buf = io.BytesIO()
    with raw.cursor() as cur, cur.copy("COPY (SELECT id, ST_X(geom), ST_Y(geom) FROM assets WHERE geom IS NOT NULL) "
                                       "TO STDOUT WITH (FORMAT csv)") as copy:
        for chunk in copy:
            buf.write(chunk)
    buf.seek(0)
    if not buf.getbuffer().nbytes:
        return np.array([], dtype=np.int64), np.array([]), np.array([])
    frame = pd.read_csv(buf, header=None, names=["id", "lon", "lat"], dtype={"id": np.int64, "lon": float,
                                                                            "lat": float}, engine="c")
    return frame["id"].to_numpy(), frame["lon"].to_numpy(), frame["lat"].to_numpy()


def _inside(lon, lat, polys):
    """(point index, polygon index) of each point and polygon containing or touching it. Points repeat (every
    asset geocoded by one postcode shares a point), so each distinct point is tested once.

    No geometry is made for the points (a million GEOS points cost seconds): they are sorted by longitude once,
    each polygon takes the slab of its bounding box by binary search and the points of the slab inside the box,
    and its prepared geometry tests those in one vectorised call."""
    pairs = np.empty(len(lon), dtype=complex)
    pairs.real, pairs.imag = lon, lat
    codes, uniques = pd.factorize(pairs)
    by_x = np.argsort(uniques.real, kind="stable")
    xs, ys = uniques.real[by_x], uniques.imag[by_x]
    boxes = shapely.bounds(polys)
    starts = np.searchsorted(xs, boxes[:, 0], side="left")
    ends = np.searchsorted(xs, boxes[:, 2], side="right")
    shapely.prepare(polys)
    found_pt, found_poly = [np.array([], dtype=np.intp)], [np.array([], dtype=np.intp)]
    for k in np.flatnonzero(ends > starts):
        lo, hi = starts[k], ends[k]
        in_box = lo + np.flatnonzero((ys[lo:hi] >= boxes[k, 1]) & (ys[lo:hi] <= boxes[k, 3]))
        hit = in_box[shapely.intersects_xy(polys[k], xs[in_box], ys[in_box])]
        found_pt.append(by_x[hit])
        found_poly.append(np.full(len(hit), k, dtype=np.intp))
    upt, upoly = np.concatenate(found_pt), np.concatenate(found_poly)
    # Spread each distinct point's polygons back to the rows that share it (rows grouped by distinct point).
    rows_by_point = np.argsort(codes, kind="stable")
    per_point = np.bincount(codes, minlength=len(uniques))
    first = np.cumsum(per_point) - per_point
    counts = per_point[upt]
    rows = rows_by_point[np.repeat(first[upt], counts) + _ranges(counts)]
    return rows, np.repeat(upoly, counts)


def _ranges(counts):
    """0..n-1 for each n in counts, concatenated."""
    total = int(counts.sum())
    if not total:
        return np.array([], dtype=np.int64)
    ends = np.cumsum(counts)
    return np.arange(total) - np.repeat(ends - counts, counts)


def assign_register(conn, register):
    """Link a register's assets (just imported) to every loaded geography's areas, in SQL: an import touches one
    register, and with no geography loaded this is one cheap query."""
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM geography_areas)")).scalar():
        return 0
    conn.execute(text("DELETE FROM asset_areas x USING assets a WHERE a.id = x.asset_id AND a.register = :r"),
                 {"r": register})
    return conn.execute(text(
        "INSERT INTO asset_areas (geography, area_code, asset_id) SELECT g.geography, g.code, a.id "
        "FROM assets a JOIN geography_areas g ON ST_Intersects(g.geom, a.geom) WHERE a.register = :r"),
        {"r": register}).rowcount


# -- reads ---------------------------------------------------------------------------------------------------------

def list_geographies(engine):
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT name, label, source, areas, loaded_at, updated_at FROM geographies ORDER BY name"))]


def areas(engine, geography, *, role="public"):
    """[{code, name, drawn_by, assets}] of a geography, by code; ``assets`` counts what ``role`` may see as points
    (open and temporarily closed; below officer no individuals, so a count never reveals how many live there).
    NotFound for an unknown geography."""
    where, params = AssetFilter().where(role=role)
    with engine.connect() as conn:
        label = conn.execute(text("SELECT label FROM geographies WHERE name = :g"), {"g": geography}).scalar()
        if label is None:
            raise NotFound(f"No geography named {str(geography)[:64]!r} is loaded.")
        return [dict(r._mapping) for r in conn.execute(text(
            f"SELECT g.code, g.name, g.drawn_by, coalesce(n.assets, 0) AS assets FROM geography_areas g "
            f"LEFT JOIN (SELECT x.area_code, count(*) AS assets FROM asset_areas x JOIN assets a ON a.id = x.asset_id "
            f"WHERE x.geography = :g AND {where} GROUP BY x.area_code) n ON n.area_code = g.code "
            f"WHERE g.geography = :g ORDER BY g.code"), {"g": geography, **params})]


def area(engine, geography, code):
    """{geography, label, code, name, geometry (shapely, EPSG:4326), drawn_by, loaded_at}; NotFound otherwise."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT g.geography, s.label, g.code, g.name, ST_AsBinary(g.geom) AS wkb, g.drawn_by, g.loaded_at "
            "FROM geography_areas g JOIN geographies s ON s.name = g.geography "
            "WHERE g.geography = :g AND g.code = :c"), {"g": geography, "c": code}).first()
    if row is None:
        raise NotFound(f"No area {str(code)[:64]!r} in geography {str(geography)[:64]!r}.")
    out = dict(row._mapping)
    out["geometry"] = shapely.from_wkb(bytes(out.pop("wkb")))
    return out


def choices(engine, *, limit=2000):
    """[(geography label, [(value 'geography:code', area name)])] for filter forms; geographies with more areas
    than ``limit`` are left out of the list (they are still accepted as parameters)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.name, s.label, g.code, g.name FROM geographies s JOIN geography_areas g ON g.geography = s.name "
            "WHERE s.areas <= :lim ORDER BY s.label, g.name, g.code"), {"lim": limit}).all()
    out = {}
    for geo, label, code, name in rows:
        out.setdefault((geo, label), []).append((f"{geo}:{code}", name))
    return [(label, items) for (_, label), items in out.items()]


def area_label(engine, value):
    """'Name (geography label)' of a 'geography:code' value, or the value itself when unknown."""
    geo, _, code = str(value).partition(":")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT g.name, s.label FROM geography_areas g JOIN geographies s ON "
                                "s.name = g.geography WHERE g.geography = :g AND g.code = :c"),
                           {"g": geo, "c": code}).first()
    return f"{row[0]} ({row[1]})" if row else str(value)
