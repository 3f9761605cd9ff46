"""What tile servers build once so that a tile is cheap: area shapes per zoom band and public asset counts per grid
cell (tables of migrations 0022 and 0028), and a seeded cache of the low zooms.

- ``refresh_shapes``: every area and district transformed to Web Mercator once and simplified at each band's
  tolerance (a quarter pixel at the band's highest zoom), so a national need tile reads a few hundred small shapes;
  and, up to PIXEL_MAX_ZOOM, the areas already in each zoom's pixel grid (``tile_pixels``), as a tile's encoder wants
  them.
- ``refresh_asset_grid``: per zoom up to GRID_MAX_ZOOM, the assets the public may see (store.assets' privacy rule,
  through the shared AssetFilter: individuals are never counted) grouped per cell of maps.tiles.CELL_PIXELS, tier
  and category; the cells of zoom z are built from those of z + 1 (each cell is exactly four of the next), so the
  million assets are read once. Stale counts depend on the day and STALE_MONTHS: both are recorded with the grid.
- ``seed``: renders the public tiles of the low zooms into the disk cache (as mapproxy-seed does), so the first view
  of the country is warm.

Each table records the change stamp (store.change_stamps) it was built from; maps.tiles reads it only while that stamp
is current and otherwise renders from the live tables, so a tile is never stale, only slower. Nothing here knows
Flask.
"""

import threading
import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text

from asset_map.store import change_stamps
from asset_map.store.assets import AssetFilter

# A band is the highest zoom its shapes are simplified for; zooms above the last band read the live tables (a tile
# there covers few areas). Literally migration 0022's BANDS, which has a partial index per band.
BANDS = (5, 7, 9, 11)
# Up to this zoom (below maps.tiles.DETAIL_ZOOM, where a need tile carries the decile only) the areas are also kept in
# each zoom's pixel grid (tile_pixels, migration 0028: one partition per zoom).
PIXEL_MAX_ZOOM = 9
# The asset grid covers zooms 0..GRID_MAX_ZOOM (a partial index per zoom in migration 0022); above it a tile holds few
# enough assets to group live.
GRID_MAX_ZOOM = 12
# Filters the grid can answer: it is keyed by tier and category only.
GRID_FILTERS = frozenset({"tier", "category"})
_LOCKS = {"shapes": 160001, "assets": 160002}


def band_for(z):
    """The band whose shapes a tile at zoom ``z`` reads, or None above the last band."""
    return next((b for b in BANDS if z <= b), None)


def _pixel_m(z):
    from asset_map.maps.tiles import WORLD_M

    return WORLD_M / (256 * 2 ** z)


def state(conn):
    """{what: (stamp, built_on, params)} of what has been built."""
    rows = conn.execute(text("SELECT what, stamp, built_on, params FROM tile_prep"))
    return {r.what: (r.stamp, r.built_on, r.params) for r in rows}


@dataclass(frozen=True)
class Snapshot:
    """The change stamps (store.change_stamps) and what has been built under which stamp (``state``), as one tile
    request sees them: read once, then handed to the cache's path, the rebuild check and the render."""

    stamps: dict
    prep: dict


# Constant, so it is sent as it is (see change_stamps._sql); the stamps ride on every row of tile_prep, or on one
# row of nulls while nothing has been built.
_SNAPSHOT_SQL = ("SELECT " + ", ".join(f"{change_stamps.newest(f)}" for f in change_stamps.FAMILIES)
                 + ", p.what, p.stamp, p.built_on, p.params FROM (SELECT 1) one LEFT JOIN tile_prep p ON true")


def snapshot(conn):
    """The stamps and the prepared tables' state in one statement."""
    rows = conn.exec_driver_sql(_SNAPSHOT_SQL).all()
    n = len(change_stamps.FAMILIES)
    stamps = {f: int(rows[0][i] or 0) for i, f in enumerate(change_stamps.FAMILIES)}
    return Snapshot(stamps, {r[n]: tuple(r[n + 1:]) for r in rows if r[n] is not None})


class RecentSnapshot:
    """The snapshot this process read last, trusted for ``recheck_s`` seconds (the asset pages' PAGE_RECHECK_MS):
    a public tile found in the cache then costs no query at all. A change made by another process is served stale
    for at most that long; ``forget()`` (after a write by this process) makes the next request read it again."""

    def __init__(self, recheck_s, *, clock=time.monotonic):
        self._recheck = change_stamps.Recheck(recheck_s, clock=clock)
        self._snap = None

    def get(self, engine):
        token = self._recheck.due()
        if token is None:
            return self._snap
        with engine.connect() as conn:
            snap = self._snap = snapshot(conn)
        self._recheck.checked(token)
        return snap

    def forget(self):
        self._recheck.forget()


def shapes_current(prep, stamps):
    return prep.get("shapes", (None,))[0] == stamps["reference"]


def shapes_extent(prep):
    """(minx, miny, maxx, maxy) in EPSG:3857 of every area and district when the shapes were built, or None: a tile
    outside it is empty without asking the database (most of the country's lowest-zoom tiles are sea)."""
    params = prep.get("shapes", (None, None, ""))[2] or ""
    if not params.startswith("extent="):
        return None
    return tuple(float(v) for v in params[len("extent="):].split(","))


def _grid_params(stale_months):
    return f"stale_months={int(stale_months)}"


def grid_current(prep, stamps, *, stale_months, today):
    stamp, built_on, params = prep.get("assets", (None, None, None))
    return stamp == stamps["assets"] and built_on == today and params == _grid_params(stale_months)


def grid_answers(flt, role):
    """Whether the grid holds what this filter selects for this role: the public's view, by tier and category."""
    return role == "public" and set(flt.as_args()) <= GRID_FILTERS


def _record(conn, what, stamp, *, params="", today=None, rows=0, seconds=None):
    conn.execute(text("INSERT INTO tile_prep (what, stamp, built_on, params, rows, seconds) "
                      "VALUES (:w, :s, :d, :p, :r, :sec) ON CONFLICT (what) DO UPDATE SET stamp = EXCLUDED.stamp, "
                      "built_on = EXCLUDED.built_on, params = EXCLUDED.params, rows = EXCLUDED.rows, "
                      "seconds = EXCLUDED.seconds, built_at = now()"),
                 {"w": what, "s": stamp, "d": today or date.today(), "p": params, "r": rows, "sec": seconds})


def _locked(conn, what, wait):
    if wait:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCKS[what]})
        return True
    return conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCKS[what]}).scalar()


def refresh_shapes(engine, *, force=False, wait=True):
    """Rebuild ``tile_shapes`` unless it is current; returns the rows written (0 when nothing was done)."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        if not _locked(conn, "shapes", wait):
            return 0
        stamp = change_stamps.stamps(conn)["reference"]
        if not force and shapes_current(state(conn), {"reference": stamp}):
            return 0
        conn.execute(text("DELETE FROM tile_shapes"))
        conn.execute(text(
            "CREATE TEMPORARY TABLE tile_src ON COMMIT DROP AS "
            "SELECT 'areas' AS layer, vintage, code, ST_Transform(geom, 3857) AS g FROM areas "
            "UNION ALL SELECT 'districts', 0, code, ST_Transform(geom, 3857) FROM districts"))
        rows = 0
        for band in BANDS:
            # Polygons that collapse are kept (preserveCollapsed), as for live tiles, so small urban areas stay drawn.
            rows += conn.execute(text(
                "INSERT INTO tile_shapes (layer, vintage, band, code, geom) SELECT layer, vintage, :band, code, "
                "ST_Simplify(g, :tol, true) FROM tile_src WHERE g IS NOT NULL"),
                {"band": band, "tol": _pixel_m(band) / 4}).rowcount
        rows += _refresh_pixels(conn)
        box = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                "(SELECT ST_Extent(geom) AS e FROM tile_shapes WHERE band = :band) s"),
                           {"band": BANDS[-1]}).one()
        extent = "" if box[0] is None else "extent=" + ",".join(f"{v:.1f}" for v in box)
        _record(conn, "shapes", stamp, params=extent, rows=rows, seconds=time.perf_counter() - started)
    return rows


def _refresh_pixels(conn):
    """``tile_pixels`` and ``tile_deciles`` (migration 0028) from the bands' area shapes; returns the rows written.

    A shape goes through ST_AsMVTGeom once per zoom, against the whole world as one tile of 4096 * 2^z units: that
    snaps, orients and validates it exactly as for any one tile of zoom z (tiles are whole units of that grid), only
    without clipping. Each area of a vintage gets a place (idx), and each need indicator an array of its areas'
    deciles in that order (0: none), so a tile finds a decile by position (maps.tiles)."""
    from asset_map.maps.queries import area_vintage
    from asset_map.maps.tiles import EXTENT

    conn.execute(text("DELETE FROM tile_pixels"))
    conn.execute(text("DELETE FROM tile_deciles"))
    conn.execute(text(
        "CREATE TEMPORARY TABLE tile_idx ON COMMIT DROP AS SELECT vintage, code, "
        "(row_number() OVER (PARTITION BY vintage ORDER BY code))::int AS idx FROM tile_shapes "
        "WHERE layer = 'areas' AND band = :band"), {"band": BANDS[0]})
    rows = 0
    for z in range(PIXEL_MAX_ZOOM + 1):
        rows += conn.execute(text(
            "INSERT INTO tile_pixels (z, vintage, code, idx, geom) SELECT :z, vintage, code, idx, g FROM ("
            "SELECT s.vintage, s.code, i.idx, ST_SetSRID(ST_AsMVTGeom(s.geom, ST_TileEnvelope(0, 0, 0), :extent, 0, "
            "false), 0) AS g FROM tile_shapes s JOIN tile_idx i ON i.vintage = s.vintage AND i.code = s.code "
            "WHERE s.layer = 'areas' AND s.band = :band) p WHERE g IS NOT NULL AND ST_Dimension(g) = 2"),
            {"z": z, "extent": EXTENT * 2 ** z, "band": band_for(z)}).rowcount
    for indicator, vintage in conn.execute(text("SELECT DISTINCT indicator, vintage FROM need_indicators")).all():
        rows += conn.execute(text(
            "INSERT INTO tile_deciles (indicator, vintage, area_vintage, deciles) SELECT :ind, :nv, :av, "
            "array_agg(coalesce(n.decile, 0)::smallint ORDER BY i.idx) FROM tile_idx i LEFT JOIN need_indicators n "
            "ON n.area_code = i.code AND n.indicator = :ind AND n.vintage = :nv WHERE i.vintage = :av "
            "HAVING count(*) > 0"),
            {"ind": indicator, "nv": vintage, "av": area_vintage(vintage)}).rowcount
    return rows


# Cells written in blocks of 16 x 16 (about three tiles square), so that a tile's cells sit on a few pages of the
# table: in the order of a GROUP BY, a zoom 11 tile's 375 cells were on 348 pages, each a read when not in
# PostgreSQL's buffers. (A parent cell is its children's coordinates shifted by one more.)
_NEARBY = "{y} >> {shift}, {x} >> {shift}"


def refresh_asset_grid(engine, *, stale_months=12, today=None, force=False, wait=True):
    """Rebuild ``tile_asset_cells`` unless it is current; returns the rows written (0 when nothing was done)."""
    from asset_map.maps import features
    from asset_map.maps.tiles import CELL_PIXELS

    started = time.perf_counter()
    today = today or date.today()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        if not _locked(conn, "assets", wait):
            return 0
        stamps = change_stamps.stamps(conn)
        if not force and grid_current(state(conn), stamps, stale_months=stale_months, today=today):
            return 0
        # The public's view with the map's default filter: the same SQL conditions (privacy rule included) as a live
        # tile or the map API.
        where, params = AssetFilter().where(role="public")
        params.update(today=today, stale_months=int(stale_months), z=GRID_MAX_ZOOM,
                      cell=CELL_PIXELS * _pixel_m(GRID_MAX_ZOOM))
        conn.execute(text("DELETE FROM tile_asset_cells"))
        rows = conn.execute(text(
            "INSERT INTO tile_asset_cells (z, ix, iy, tier, category, n, stale_n, first_id, sx, sy, geom) "
            "SELECT :z, ix, iy, tier, category, count(*), count(*) FILTER (WHERE stale), min(id), sum(x), sum(y), "
            "ST_SetSRID(ST_MakePoint(avg(x), avg(y)), 3857) FROM (SELECT id, tier, category, stale, ST_X(p) AS x, "
            "ST_Y(p) AS y, floor(ST_X(p) / :cell)::int AS ix, floor(ST_Y(p) / :cell)::int AS iy FROM ("
            f"SELECT a.id, a.tier, a.category, {features.stale_sql()} AS stale, ST_Transform(a.geom, 3857) AS p "
            f"FROM assets a WHERE {where} AND a.geom IS NOT NULL) s) t GROUP BY ix, iy, tier, category "
            f"ORDER BY {_NEARBY.format(x='ix', y='iy', shift=4)}"),
            params).rowcount
        for z in range(GRID_MAX_ZOOM - 1, -1, -1):
            rows += conn.execute(text(
                "INSERT INTO tile_asset_cells (z, ix, iy, tier, category, n, stale_n, first_id, sx, sy, geom) "
                "SELECT :z, floor(ix / 2.0)::int AS px, floor(iy / 2.0)::int AS py, tier, category, sum(n), "
                "sum(stale_n), min(first_id), sum(sx), sum(sy), ST_SetSRID(ST_MakePoint(sum(sx) / sum(n), "
                "sum(sy) / sum(n)), 3857) FROM tile_asset_cells WHERE z = :z + 1 "
                f"GROUP BY px, py, tier, category ORDER BY {_NEARBY.format(x='min(ix)', y='min(iy)', shift=5)}"),
                {"z": z}).rowcount
        _record(conn, "assets", stamps["assets"], params=_grid_params(stale_months), today=today, rows=rows,
                seconds=time.perf_counter() - started)
    _tidy(engine, "tile_asset_cells")
    return rows


def _tidy(engine, tables):
    """VACUUM ANALYZE after a rebuild: the rows it deleted stay in the GiST indexes until vacuumed (a zoom 10 tile's
    index scan took 2.8 ms instead of 0.05 after a few rebuilds), and the planner needs the new rows' statistics.
    Only the tables' owner may (the CLI and the benchmark); a web process's background rebuild leaves it to
    autovacuum, with a warning from PostgreSQL and nothing else."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(f"VACUUM ANALYZE {tables}"))


def refresh(engine, *, stale_months=12, today=None, force=False):
    """Both tables, each only if out of date; returns {what: rows written}."""
    shapes = refresh_shapes(engine, force=force)
    if shapes:
        _tidy(engine, "tile_shapes, tile_pixels, tile_deciles")
    return {"shapes": shapes,
            "assets": refresh_asset_grid(engine, stale_months=stale_months, today=today, force=force)}


_running = set()
_running_lock = threading.Lock()


def refresh_in_background(engine, what, **kwargs):
    """Start one rebuild of ``what`` ('shapes' or 'assets') on a thread unless this process already runs one; the
    advisory lock keeps other processes from building the same table at once (they skip, not wait)."""
    with _running_lock:
        if what in _running:
            return False
        _running.add(what)

    def run():
        try:
            if what == "shapes":
                refresh_shapes(engine, wait=False)
            else:
                refresh_asset_grid(engine, wait=False, **kwargs)
        except Exception:  # noqa: BLE001 - a failed rebuild leaves tiles on the live path; the next tile retries
            import logging

            logging.getLogger(__name__).exception("rebuilding the tile tables (%s) failed", what)
        finally:
            with _running_lock:
                _running.discard(what)

    threading.Thread(target=run, name=f"tile-prep-{what}", daemon=True).start()
    return True


def _tiles_over(bbox, z):
    import math

    minx, miny, maxx, maxy = bbox
    n = 2 ** z

    def tx(lon):
        return min(max(int((lon + 180) / 360 * n), 0), n - 1)

    def ty(lat):
        lat = max(min(lat, 85.0511), -85.0511)
        return min(max(int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n), 0), n - 1)

    return [(x, y) for x in range(tx(minx), tx(maxx) + 1) for y in range(ty(maxy), ty(miny) + 1)]


def seed(engine, cache, queries_, *, max_zoom=8, stale_months=12, today=None):
    """Render the public tiles of ``queries_`` (maps.tiles.TileQuery) for zooms 0..max_zoom over the loaded
    districts into ``cache`` (maps.tiles.TileCache); returns the number of tiles written."""
    from asset_map.maps import tiles

    bbox = tiles.bounds(engine)
    written = 0
    for q in queries_:
        for z in range(max_zoom + 1):
            for x, y in _tiles_over(bbox, z):
                with engine.connect() as conn:
                    stamps = change_stamps.stamps(conn)
                path = cache.path(stamps, q, "public", z, x, y)
                if cache.get(path) is not None:
                    continue
                body = tiles.render(engine, q, z, x, y, stale_months=stale_months, today=today)
                cache.put(path, tiles.gzipped(body))
                written += 1
    return written
