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


def _query(layer_id):
    args = {k: ",".join(request.args.getlist(k)) for k in request.args if k != "v"}
    return tiles.TileQuery.from_args(extensions.engine(), layer_id, args)


@bp.get("/tiles/<layer_id>/<int:z>/<int:x>/<int:y>.mvt")
def tile(layer_id, z, x, y):
    settings = current_app.config["ASSET_MAP"]
    tiles.check_tile(z, x, y)
    q, role = _query(layer_id), current_role()
    engine, cache = extensions.engine(), _cache()
    with engine.connect() as conn:
        stamps = change_stamps.stamps(conn)
    path = cache.path(stamps, q, role, z, x, y) if role == "public" else None
    body = cache.get(path) if path is not None else None
    if body is None:
        # Rendering takes a slot; a flood of uncached tiles waits, then gets 503 + Retry-After.
        if settings.get("TILE_PREP", 1):
            _refresh_if_stale(engine, q, z, role, stamps, settings)
        with slots("tile").acquire():
            body = tiles.render(engine, q, z, x, y, role=role, stale_months=settings["STALE_MONTHS"])
        if path is not None:
            cache.put(path, body)
    res = Response(body, content_type=tiles.MEDIA_TYPE)
    current = request.args.get("v") == str(stamps[q.layer.family])
    res.headers["Cache-Control"] = f"public, max-age={LONG_MAX_AGE_S if current else SHORT_MAX_AGE_S}"
    return res


def _refresh_if_stale(engine, q, z, role, stamps, settings):
    """Start rebuilding the prepared tables this tile would read if they are out of date (a load, import or edit
    moved the change stamp); this tile and those after it are made from the live tables until the rebuild is done."""
    if q.layer.id == "assets":
        if z > tile_prep.GRID_MAX_ZOOM or not tile_prep.grid_answers(q.flt, role):
            return
    elif tile_prep.band_for(z) is None:
        return
    with engine.connect() as conn:
        prep = tile_prep.state(conn)
    if q.layer.id != "assets" and not tile_prep.shapes_current(prep, stamps):
        tile_prep.refresh_in_background(engine, "shapes")
    elif q.layer.id == "assets" and not tile_prep.grid_current(prep, stamps, stale_months=settings["STALE_MONTHS"],
                                                              today=date.today()):
        tile_prep.refresh_in_background(engine, "assets", stale_months=settings["STALE_MONTHS"])


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
