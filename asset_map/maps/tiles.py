"""Mapbox Vector Tiles of the map's layers, made by PostGIS (ST_AsMVT), so the browser gets only what one tile shows.

Four tile layers, each a short name in ``LAYERS``:

- ``need``: LSOAs of the vintage that goes with a need indicator, with its score, rank and decile (``need=imd:2025``);
- ``areas``: LSOA boundaries of a vintage (``vintage=2021``); ``districts``: district boundaries;
- ``assets``: the assets the shared ``AssetFilter`` selects, seen as ``role`` sees them (the same SQL conditions as
  the map API, so the same privacy rule), grouped per grid cell and category at low zooms and single points with
  their popup fields when few are in the tile.

Polygons are simplified for the zoom (about a quarter of a screen pixel, in Web Mercator metres) before ST_AsMVTGeom
snaps them to the tile's grid; at national zooms the need layer carries only the decile. Rendered tiles are kept
on disk under ``VAR_DIR/tiles`` by (change stamps, layer, query): a load, import or edit makes a new stamp
(store.change_stamps), so nothing stale is served. Only tiles made for the public are written to disk: what a signed-in
officer sees may be personal data. Nothing here knows Flask.
"""

import functools
import gzip
import hashlib
import math
import os
import shutil
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import text

from asset_map.errors import InputError, NotFound
from asset_map.maps import features, queries, tile_prep
from asset_map.store import change_stamps
from asset_map.store.assets import AssetFilter

MAX_ZOOM = 20
EXTENT = 4096
BUFFER = 64
# Asset tiles carry what lies just beyond their edges, as far as the map's circles reach (explorer-tiles.js: points
# 11 px and groups up to 24 px in radius, plus their outline): each tile is drawn on a canvas of its own, so a circle
# across an edge must be drawn by both tiles or it is cut in half. Only as far as needed: it costs a wider query.
ASSET_BUFFER = {"points": 13 * EXTENT // 256, "grid": 25 * EXTENT // 256, "clusters": 25 * EXTENT // 256}
# Web Mercator's circumference in metres: a 256-pixel tile at zoom z is this / 2**z wide.
WORLD_M = 2 * math.pi * 6378137.0
# Below this zoom a need tile carries the decile only (the colour); names and scores come with the detail.
DETAIL_ZOOM = 10
# Up to this zoom a tile covers enough of the country to hold thousands of areas (see _shapes).
WIDE_ZOOM = 7
# An asset tile holding more than this many assets is sent grouped, per cell of CELL_PIXELS at that zoom.
POINTS_LIMIT = 500
CELL_PIXELS = 48
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
# England and Wales in EPSG:4326, the TileJSON bounds when nothing is loaded.
DEFAULT_BOUNDS = [-6.5, 49.8, 2.0, 55.9]
# A tile is compressed once, by the request that renders it, so the fastest level: the biggest national need tile
# (415 KB) takes 4.5 ms to 196 KB at level 1, 13 ms to 176 KB at level 6 (MVT's packed integers leave gzip little).
GZIP_LEVEL = 1


@dataclass(frozen=True)
class TileLayer:
    id: str
    title: str
    family: str
    minzoom: int
    fields: dict


LAYERS = {
    "need": TileLayer("need", "Need by small area (LSOA)", "reference", 0, {
        "decile": "Number", "code": "String", "name": "String", "district_code": "String", "population": "Number",
        "score": "Number", "rank": "Number"}),
    "areas": TileLayer("areas", "Small area (LSOA) boundaries", "reference", 0, {
        "code": "String", "name": "String", "district_code": "String"}),
    "districts": TileLayer("districts", "District boundaries", "reference", 0, {"code": "String", "name": "String"}),
    "assets": TileLayer("assets", "Assets", "assets", 0, {
        "id": "Number", "name": "String", "tier": "String", "category": "String", "count": "Number",
        "stale_count": "Number", "status": "String", "stale": "Boolean", "address": "String",
        "postcode": "String", "url": "String", "last_verified": "String", "offers": "String"}),
}


def layer(layer_id):
    if layer_id not in LAYERS:
        msg = f"There is no tile layer {layer_id!r}: the layers are {', '.join(LAYERS)}."
        raise NotFound(msg)
    return LAYERS[layer_id]


def check_tile(z, x, y):
    if not 0 <= z <= MAX_ZOOM:
        msg = f"Tile zoom {z} is out of range: expected 0 to {MAX_ZOOM}."
        raise InputError(msg)
    n = 2 ** z
    if not (0 <= x < n and 0 <= y < n):
        msg = f"Tile {z}/{x}/{y} does not exist: at zoom {z}, x and y run from 0 to {n - 1}."
        raise InputError(msg)


@dataclass(frozen=True)
class TileQuery:
    """What one tile URL asks for, parsed and checked: the layer and its own parameters (need, vintage, filter)."""

    layer: TileLayer
    params: tuple = ()
    flt: AssetFilter | None = None

    @classmethod
    def from_args(cls, engine, layer_id, args, *, reference_stamp=None):
        """``reference_stamp``: the reference data's change stamp when the caller has read it already."""
        spec = layer(layer_id)
        if spec.id == "need":
            options = queries.need_options(engine, stamp=reference_stamp)
            raw = args.get("need") or next((f"{i}:{v}" for i, v, _ in options if i == "imd"), "imd:2025")
            indicator, vintage = queries.parse_need(raw, options)
            return cls(spec, (*_districts(args), ("need", f"{indicator}:{vintage}")))
        if spec.id == "areas":
            vintage = args.get("vintage") or "2021"
            if vintage not in ("2011", "2021"):
                msg = f"Parameter 'vintage' has value {vintage!r}: expected 2011 or 2021."
                raise InputError(msg)
            return cls(spec, (*_districts(args), ("vintage", vintage)))
        if spec.id == "assets":
            if args.get("bbox"):
                msg = "Parameter 'bbox' does not apply to tiles: the tile is the box."
                raise InputError(msg)
            flt = AssetFilter.from_args(args)
            return cls(spec, tuple(sorted(flt.as_args().items())), flt)
        return cls(spec, ())

    def as_args(self):
        return dict(self.params)

    def cache_key(self, role):
        raw = "|".join([self.layer.id, role, *(f"{k}={v}" for k, v in self.params)])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def _districts(args):
    """An optional ``district`` list (ONS codes, checked by the shared filter) limiting the area layers."""
    codes = AssetFilter.from_args({"district": args.get("district") or ""}).district
    return (("district", ",".join(sorted(codes))),) if codes else ()


def _district_sql(q, params, alias="a"):
    codes = q.as_args().get("district")
    if not codes:
        return ""
    params["districts"] = codes.split(",")
    return f" AND {alias}.district_code = ANY(:districts)"


def _pixel_m(z):
    return WORLD_M / (256 * 2 ** z)


# A tile's SQL is one of a few hundred strings (per layer, zoom band and filter shape): each is parsed for its bind
# parameters once, not on every tile.
_statement = functools.lru_cache(maxsize=1024)(text)


def _overlaps(extent, z, x, y):
    """Whether tile z/x/y, with its buffer, meets ``extent`` (EPSG:3857); True when the extent is unknown."""
    if extent is None:
        return True
    size = WORLD_M / 2 ** z
    margin = size * BUFFER / EXTENT
    minx, maxy = -WORLD_M / 2 + x * size, WORLD_M / 2 - y * size
    return not (minx - margin > extent[2] or minx + size + margin < extent[0]
                or maxy + margin < extent[1] or maxy - size - margin > extent[3])


def _envelope_params(z, x, y, buffer=BUFFER):
    return {"z": z, "x": x, "y": y, "extent": EXTENT, "buffer": buffer, "margin": buffer / EXTENT}


_ENV = ("WITH env AS MATERIALIZED (SELECT ST_TileEnvelope(:z, :x, :y) AS e, "
        "ST_TileEnvelope(:z, :x, :y, margin => :margin) AS em, "
        "ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326) AS g) ")


def _shapes(layer_id, vintage, z, prepared):
    """FROM-clause source of (code, geom in EPSG:3857 simplified for zoom z) and its bbox condition: the prepared
    shapes of z's band when they are current (maps.tile_prep), else the live table transformed and simplified now."""
    band = tile_prep.band_for(z) if prepared else None
    if band is not None:
        # Up to WIDE_ZOOM a tile can hold thousands of areas (18,000 over London at zoom 6): the box is written out,
        # so the planner folds it, estimates how many shapes it holds and joins their need indicators by hashing
        # them (a fifth less database time than 18,000 index probes). Above, the box comes from env, which the
        # planner cannot see into: it guesses a few shapes and probes the index for each, cheaper for the few
        # hundred there (with the box written out it hashed all 34,000 indicators for 700 shapes at zoom 9).
        box = "ST_TileEnvelope(:z, :x, :y, margin => :margin)" if z <= WIDE_ZOOM else "(SELECT em FROM env)"
        # The band is a literal from BANDS so that the planner picks that band's partial index.
        return (f"(SELECT code, geom FROM tile_shapes WHERE layer = '{layer_id}' AND vintage = {int(vintage)} "
                f"AND band = {int(band)} AND geom && {box})")
    table = "districts" if layer_id == "districts" else "areas"
    cond = "" if layer_id == "districts" else f" AND vintage = {int(vintage)}"
    return (f"(SELECT code, ST_Simplify(ST_Transform(geom, 3857), {float(_pixel_m(z) / 4)}, true) AS geom "
            f"FROM {table} WHERE geom && (SELECT g FROM env){cond})")


def _polygon_sql(q, z, params, prepared=False):
    # Simplified in Web Mercator metres for the zoom (a quarter pixel, polygons that collapse kept so small urban
    # areas stay drawn), then clipped and snapped to the tile grid. OFFSET 0 keeps each subquery whole, so that
    # ST_AsMVTGeom runs once per shape rather than again in the outer filter.
    mvt = "ST_AsMVTGeom(s.geom, env.e, :extent, :buffer, true)"
    if q.layer.id == "districts":
        return (_ENV + f"SELECT ST_AsMVT(t, 'districts', :extent, 'geom') FROM (SELECT d.code, d.name, {mvt} AS geom "
                f"FROM {_shapes('districts', 0, z, prepared)} s JOIN districts d ON d.code = s.code, env OFFSET 0) t "
                "WHERE t.geom IS NOT NULL")
    if q.layer.id == "areas":
        vintage = int(q.as_args()["vintage"])
        params["av"] = vintage
        return (_ENV + f"SELECT ST_AsMVT(t, 'areas', :extent, 'geom') FROM (SELECT a.code, a.name, a.district_code, "
                f"{mvt} AS geom FROM {_shapes('areas', vintage, z, prepared)} s JOIN areas a ON a.code = s.code "
                f"AND a.vintage = :av, env WHERE true{_district_sql(q, params)} OFFSET 0) t WHERE t.geom IS NOT NULL")
    indicator, vintage = q.as_args()["need"].split(":")
    av = queries.area_vintage(vintage)
    params.update(av=av, ind=indicator, nv=int(vintage))
    district = _district_sql(q, params)
    if z < DETAIL_ZOOM and not district and prepared and z <= tile_prep.PIXEL_MAX_ZOOM:
        # The areas already in this zoom's pixel grid, moved into the tile, and their deciles by position
        # (maps.tile_prep): no ST_AsMVTGeom and no join per shape. Not clipped: a shape at the tile's edge reaches
        # past it by what it is (a few pixels at these zooms) and the renderer clips it. The deciles array is
        # concatenated so that the subquery returns it detoasted, once: read straight from the table, each lookup
        # decompressed all of it (0.8 s for a tile instead of 15 ms).
        x0, y0 = params["x"] * EXTENT, params["y"] * EXTENT
        params.update(dx=-x0, dy=-y0, x0=x0 - BUFFER, y0=y0 - BUFFER, x1=x0 + EXTENT + BUFFER, y1=y0 + EXTENT + BUFFER)
        return ("SELECT ST_AsMVT(t, 'need', :extent, 'geom') FROM (SELECT nullif((SELECT deciles || '{}'::smallint[] "
                "FROM tile_deciles WHERE indicator = :ind AND vintage = :nv)[p.idx], 0) AS decile, "
                "ST_Translate(ST_Collect(p.geom), :dx, :dy) AS geom FROM tile_pixels p "
                f"WHERE p.z = {int(z)} AND p.vintage = :av AND p.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1) "
                "GROUP BY 1) t")
    if z < DETAIL_ZOOM and not district:
        # Only the decile, so one feature per decile: the areas' clipped shapes collected into a MultiPolygon. A
        # national tile holds up to 17,000 areas, and a browser decodes, styles and draws ten features far faster
        # than 17,000 (half the bytes, too). The shapes' codes are the areas' own: the areas table is not needed.
        return (_ENV + "SELECT ST_AsMVT(t, 'need', :extent, 'geom') FROM (SELECT decile, ST_Collect(geom) AS geom "
                f"FROM (SELECT n.decile, {mvt} AS geom FROM {_shapes('areas', av, z, prepared)} s CROSS JOIN env "
                "LEFT JOIN need_indicators n ON n.area_code = s.code AND n.indicator = :ind AND n.vintage = :nv "
                "OFFSET 0) u WHERE ST_Dimension(geom) = 2 GROUP BY decile) t")
    detail = "a.code, a.name, a.district_code, a.population, n.score, n.rank, " if z >= DETAIL_ZOOM else ""
    return (_ENV + f"SELECT ST_AsMVT(t, 'need', :extent, 'geom') FROM (SELECT {detail}n.decile, {mvt} AS geom "
            f"FROM {_shapes('areas', av, z, prepared)} s JOIN areas a ON a.code = s.code AND a.vintage = :av "
            "CROSS JOIN env LEFT JOIN need_indicators n "
            "ON n.area_code = a.code AND n.indicator = :ind AND n.vintage = :nv "
            f"WHERE true{district} OFFSET 0) t WHERE t.geom IS NOT NULL")


def _popup_sql(role, where_s):
    # A group of one is drawn as that asset, with its popup fields (looked up under the same privacy rule).
    return ("CASE WHEN c.n = 1 THEN (SELECT CAST(" + features.properties_sql(role, "s.") + " AS jsonb) || "
            f"jsonb_build_object('id', s.id) FROM assets s WHERE s.id = c.first_id AND {where_s} LIMIT 1) "
            "ELSE jsonb_build_object('tier', c.tier, 'category', c.category, 'count', c.n, "
            "'stale_count', c.stale_n) END AS props, ")


def _asset_sql(role, where, mode, where_s):
    """The SQL of an asset tile, one statement that returns (assets in the tile, tile or NULL). ``points``: the tile
    when it holds at most POINTS_LIMIT assets (counting stops one past it, as the map API's does). ``grid`` and
    ``clusters``: the tile grouped per cell when it holds more (``grid``: the prepared counts of maps.tile_prep;
    ``clusters``: grouped live). NULL means the other kind of tile is wanted; 0 assets, an empty tile."""
    props = features.properties_sql(role)
    base = f"FROM assets a, env WHERE {where} AND a.geom && env.g"
    if mode == "points":
        # The popup fields as jsonb: ST_AsMVT makes each key a feature property (lists such as offers as JSON text).
        return (_ENV + ", pts AS MATERIALIZED (SELECT "
                f"CAST({props} AS jsonb) || jsonb_build_object('id', a.id) AS props, a.geom {base} LIMIT :cap) "
                "SELECT n, CASE WHEN n BETWEEN 1 AND :limit THEN (SELECT ST_AsMVT(t, 'assets', :extent, 'geom') FROM "
                "(SELECT props, ST_AsMVTGeom(ST_Transform(p.geom, 3857), env.e, :extent, :buffer, true) AS geom "
                "FROM pts p, env) t WHERE t.geom IS NOT NULL) END FROM (SELECT count(*) AS n FROM pts) c")
    if mode == "grid":
        # The prepared counts of this zoom's cells (maps.tile_prep); each cell keeps its sums, so the mean point of a
        # tier and category in a cell is exact.
        cells = ("cells AS MATERIALIZED (SELECT c.tier, c.category, sum(c.n) AS n, min(c.first_id) AS first_id, "
                 "sum(c.stale_n) AS stale_n, sum(c.sx) / sum(c.n) AS mx, sum(c.sy) / sum(c.n) AS my "
                 f"FROM tile_asset_cells c, env WHERE c.z = :z AND c.geom && env.em{_grid_filter_sql()} "
                 "GROUP BY c.tier, c.category, c.ix, c.iy) ")
        total = "SELECT coalesce(sum(n), 0) AS n FROM cells"
    else:
        # A group sits at the mean of its points; the count is one past the limit at most, as for points.
        cells = ("cells AS MATERIALIZED (SELECT a.tier, a.category, count(*) AS n, min(a.id) AS first_id, "
                 f"count(*) FILTER (WHERE {features.stale_sql()}) AS stale_n, "
                 "avg(ST_X(ST_Transform(a.geom, 3857))) AS mx, avg(ST_Y(ST_Transform(a.geom, 3857))) AS my "
                 f"{base} GROUP BY a.tier, a.category, floor(ST_X(ST_Transform(a.geom, 3857)) / :cell), "
                 "floor(ST_Y(ST_Transform(a.geom, 3857)) / :cell)) ")
        total = f"SELECT count(*) AS n FROM (SELECT 1 {base} LIMIT :cap) s"
    return (_ENV + ", " + cells + f"SELECT n, CASE WHEN n > :limit THEN (SELECT ST_AsMVT(t, 'assets', :extent, 'geom') "
            "FROM (SELECT " + _popup_sql(role, where_s) +
            "ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.mx, c.my), 3857), env.e, :extent, :buffer, true) AS geom "
            f"FROM cells c, env) t WHERE t.geom IS NOT NULL) END FROM ({total}) c")


def _grid_filter_sql():
    # The filter's own bound parameters (store.assets.AssetFilter.where names them f_tier and f_category).
    return (" AND (CAST(:g_tier AS text[]) IS NULL OR c.tier = ANY(:g_tier))"
            " AND (CAST(:g_category AS text[]) IS NULL OR c.category = ANY(:g_category))")


def render(engine, q, z, x, y, *, role="public", stale_months=12, today=None, prepared=True):
    """The tile's bytes (an empty bytes object when nothing is in it), on a connection of its own. ``prepared``:
    read maps.tile_prep's tables where they are current (False: always the live tables, the reference the benchmark
    and tests compare with)."""
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL jit = off"))
        snap = tile_prep.snapshot(conn) if prepared else None
        return draw(conn, q, z, x, y, role=role, stale_months=stale_months, today=today, snapshot=snap)


def draw(conn, q, z, x, y, *, role="public", stale_months=12, today=None, snapshot=None):
    """``render`` on the caller's connection, under the stamps and prepared state the caller read already
    (maps.tile_prep.snapshot; None: the live tables). The connection should have JIT off (``render`` sets it for
    its transaction; the web's read engine for its sessions): these are short queries whose estimated cost is high
    enough for PostgreSQL to compile them with LLVM, which costs more than it saves."""
    check_tile(z, x, y)
    params = _envelope_params(z, x, y)
    today = today or date.today()
    prep, stamps = (snapshot.prep, snapshot.stamps) if snapshot is not None else (None, None)
    if q.layer.id != "assets":
        ready = snapshot is not None and tile_prep.shapes_current(prep, stamps)
        if ready and not _overlaps(tile_prep.shapes_extent(prep), z, x, y):
            return b""
        sql = _polygon_sql(q, z, params, prepared=ready)
    else:
        where, fparams = q.flt.where(role=role)
        where_s, _ = q.flt.where(role=role, alias="s")
        params.update(fparams, today=today, stale_months=int(stale_months), cell=CELL_PIXELS * _pixel_m(z))
        grid = (snapshot is not None and z <= tile_prep.GRID_MAX_ZOOM and tile_prep.grid_answers(q.flt, role)
                and tile_prep.grid_current(prep, stamps, stale_months=stale_months, today=today))
        params.update(cap=POINTS_LIMIT + 1, limit=POINTS_LIMIT)
        if grid:
            params.update(g_tier=list(q.flt.tier) or None, g_category=list(q.flt.category) or None)
        # One statement for most tiles: grouped where many assets are expected (the prepared grid, or the low
        # zooms), else the points; the next kind only when one finds the tile is not its kind (the grid's count
        # and the live one can differ, hence clusters after points).
        if grid:
            order = ("grid", "points", "clusters")
        elif z <= tile_prep.GRID_MAX_ZOOM:
            order = ("clusters", "points")
        else:
            order = ("points", "clusters")
        for mode in order:
            params.update(_envelope_params(z, x, y, ASSET_BUFFER[mode]))
            n, body = conn.execute(_statement(_asset_sql(role, where, mode, where_s)), params).one()
            if n == 0 or body is not None:
                return bytes(body or b"")
        return b""
    body = conn.execute(_statement(sql), params).scalar()
    return bytes(body or b"")


def gzipped(body):
    """A tile as it is kept on disk and sent to clients that take gzip; an empty tile stays empty (nothing to
    decode)."""
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if body else b""


def gunzipped(stored):
    """The tile's own bytes from ``gzipped``'s, for clients that do not take gzip."""
    return gzip.decompress(stored) if stored else b""


FOLDERS_REMEMBERED = 4096


class TileCache:
    """Rendered public tiles on disk, gzip-compressed (``gzipped``): ``root/<stamps>/<layer>/<query hash>/<z>/
    <x>-<y>.mvt.gz``. Stamps change with every write (store.change_stamps), so an old folder is simply never read again;
    ``prune`` removes them."""

    def __init__(self, root):
        self.root = Path(root)
        self._folders = set()  # made already by this process: a mkdir per tile costs more than writing it

    def path(self, stamps, q, role, z, x, y):
        stamp = f"{q.layer.family}-{stamps[q.layer.family]}"
        # One folder per zoom, not per column: each new folder is a metadata write, and at the higher zooms almost
        # every tile of a view was in a column of its own.
        return self.root / stamp / q.layer.id / q.cache_key(role) / str(z) / f"{x}-{y}.mvt.gz"

    def get(self, path):
        try:
            return path.read_bytes()
        except OSError:
            return None

    def put(self, path, body):
        """Written to a temporary file and renamed, so a reader never sees half a tile."""
        if path.parent not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            if len(self._folders) >= FOLDERS_REMEMBERED:  # new stamps make new folders: forget the old ones
                self._folders.clear()
            self._folders.add(path.parent)
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
        try:
            with open(tmp, "wb") as fh:
                fh.write(body)
        except FileNotFoundError:  # the folder was pruned meanwhile: made again next time
            self._folders.discard(path.parent)
            return
        os.replace(tmp, path)

    def prune(self, stamps):
        """Remove the folders of every older stamp."""
        keep = {f"{f}-{v}" for f, v in stamps.items()}
        self._folders.clear()
        if not self.root.is_dir():
            return 0
        gone = 0
        for child in self.root.iterdir():
            if child.is_dir() and child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)
                gone += 1
        return gone


def bounds(engine):
    """[minLon, minLat, maxLon, maxLat] of the loaded districts (EPSG:4326), or England's."""
    with engine.connect() as conn:
        box = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                "(SELECT ST_Extent(geom) AS e FROM districts) s")).one()
    return [round(v, 5) for v in box] if box[0] is not None else list(DEFAULT_BOUNDS)


def tilejson(engine, q, *, tiles_url, attribution):
    """The TileJSON 3.0.0 document of one layer and query; ``tiles_url`` is the URL template with {z}/{x}/{y}."""
    with engine.connect() as conn:
        stamps = change_stamps.stamps(conn)
    return {
        "tilejson": "3.0.0",
        "name": q.layer.title,
        "version": f"{stamps[q.layer.family]}",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": q.layer.minzoom,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds(engine),
        "attribution": attribution,
        "vector_layers": [{"id": q.layer.id, "description": q.layer.title, "minzoom": q.layer.minzoom,
                           "maxzoom": MAX_ZOOM, "fields": q.layer.fields}],
    }
