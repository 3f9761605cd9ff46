"""/tiles/<layer>/<z>/<x>/<y>.mvt (Mapbox Vector Tiles) and /tiles/<layer>.json (TileJSON): thin glue around
``asset_map.maps.tiles``. A tile URL that names the current change stamp (``v=``, as TileJSON writes it) may be
cached by browsers and proxies for a day: new data means a new stamp, so a new URL."""

from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from asset_map.config import attribution_lines
from asset_map.maps import tile_prep, tiles
from asset_map.store import change_stamps
from asset_map.web import extensions
from asset_map.web.auth import current_role
from asset_map.web.slots import slots

bp = Blueprint("tiles", __name__)
SHORT_MAX_AGE_S = 60
LONG_MAX_AGE_S = 86400


def _cache():
    app = current_app
    if "asset_map.tile_cache" not in app.extensions:
        app.extensions["asset_map.tile_cache"] = tiles.TileCache(Path(app.config["ASSET_MAP"]["VAR_DIR"]) / "tiles")
    return app.extensions["asset_map.tile_cache"]


def _recent_snapshot():
    return extensions.kept("asset_map.tile_snapshot",
                           lambda settings: tile_prep.RecentSnapshot(settings["PAGE_RECHECK_MS"] / 1000))


def _query(layer_id, engine=None, reference_stamp=None):
    args = {k: ",".join(request.args.getlist(k)) for k in request.args if k != "v"}
    return tiles.TileQuery.from_args(engine or extensions.engine(), layer_id, args, reference_stamp=reference_stamp)


@bp.get("/tiles/<layer_id>/<int:z>/<int:x>/<int:y>.mvt")
def tile(layer_id, z, x, y):
    settings = current_app.config["ASSET_MAP"]
    tiles.check_tile(z, x, y)
    engine, role, cache = extensions.read_engine(), current_role(), _cache()
    takes_gzip = request.accept_encodings["gzip"] > 0
    raw = gz = path = None
    if role == "public":
        # Public tiles are kept on disk by the change stamps, which this process reads at most every
        # PAGE_RECHECK_MS: a kept tile costs no query at all.
        snap = _recent_snapshot().get(engine)
        q = _query(layer_id, engine, snap.stamps["reference"])
        path = cache.path(snap.stamps, q, role, z, x, y)
        gz = cache.get(path)
    if gz is None:
        # One connection for the rest; a signed-in reader's stamps and prepared state are read on it, in one
        # statement, and everything below (the rebuild check, the render) uses them.
        with engine.connect() as conn:
            if role != "public":
                snap = tile_prep.snapshot(conn)
                q = _query(layer_id, engine, snap.stamps["reference"])
            if settings.get("TILE_PREP", 1):
                _refresh_if_stale(q, z, role, snap, settings)
            # Rendering takes a slot; a flood of uncached tiles waits, then gets 503 + Retry-After.
            with slots("tile").acquire():
                raw = tiles.draw(conn, q, z, x, y, role=role, stale_months=settings["STALE_MONTHS"], snapshot=snap)
        if path is not None or takes_gzip:
            gz = tiles.gzipped(raw)
        if path is not None:
            cache.put(path, gz)
    if takes_gzip and gz:
        # Compressed already: Flask-Compress leaves a response with a Content-Encoding alone.
        res = Response(gz, content_type=tiles.MEDIA_TYPE, headers={"Content-Encoding": "gzip"})
    else:
        res = Response(raw if raw is not None else tiles.gunzipped(gz), content_type=tiles.MEDIA_TYPE)
    res.vary.add("Accept-Encoding")
    current = request.args.get("v") == str(snap.stamps[q.layer.family])
    res.headers["Cache-Control"] = f"public, max-age={LONG_MAX_AGE_S if current else SHORT_MAX_AGE_S}"
    return res


def _refresh_if_stale(q, z, role, snap, settings):
    """Start rebuilding the prepared tables this tile would read if they are out of date (a load, import or edit
    moved the change stamp); this tile and those after it are made from the live tables until the rebuild is done."""
    if q.layer.id == "assets":
        if z > tile_prep.GRID_MAX_ZOOM or not tile_prep.grid_answers(q.flt, role):
            return
    elif tile_prep.band_for(z) is None:
        return
    if q.layer.id != "assets" and not tile_prep.shapes_current(snap.prep, snap.stamps):
        tile_prep.refresh_in_background(extensions.engine(), "shapes")
    elif q.layer.id == "assets" and not tile_prep.grid_current(snap.prep, snap.stamps,
                                                              stale_months=settings["STALE_MONTHS"],
                                                              today=date.today()):
        tile_prep.refresh_in_background(extensions.engine(), "assets", stale_months=settings["STALE_MONTHS"])


def tiles_url(layer_id, args, version):
    query = urlencode({**args, "v": version})
    base = url_for("tiles.tile", layer_id=layer_id, z=0, x=0, y=0, _external=True)
    return base.replace("/0/0/0.mvt", "/{z}/{x}/{y}.mvt") + "?" + query


@bp.get("/tiles/<layer_id>.json")
def tilejson(layer_id):
    q = _query(layer_id)
    engine = extensions.engine()
    with engine.connect() as conn:
        version = change_stamps.stamps(conn)[q.layer.family]
    doc = tiles.tilejson(engine, q, tiles_url=tiles_url(layer_id, q.as_args(), version),
                         attribution="; ".join(attribution_lines(current_app.config["ASSET_MAP"])))
    res = jsonify(doc)
    res.headers["Cache-Control"] = f"public, max-age={SHORT_MAX_AGE_S}"
    return res
