"""Who can reach an asset: its isochrones as GeoJSON, and a page that draws them. Thin: asset_map.api.isochrones
does the work and applies the asset's own visibility rule."""

from flask import Blueprint, Response, current_app, render_template, request

from asset_map.api import isochrones as iso
from asset_map.web import extensions
from asset_map.web.auth import current_role

bp = Blueprint("reach", __name__)


def _isochrones(asset_id):
    settings = current_app.config["ASSET_MAP"]
    speed = request.args.get("speed") or None
    try:
        speed = float(speed) if speed is not None else None
    except ValueError:
        from asset_map.errors import InputError

        raise InputError(f"Parameter 'speed' has value {speed[:20]!r}: expected km/h.") from None
    return iso.isochrones(extensions.engine(), asset_id, role=current_role(),
                          minutes=iso.parse_minutes(request.args.get("minutes")),
                          mode=(request.args.get("mode") or "walk").lower(), speed_kmh=speed,
                          max_snap_m=settings["NETWORK_SNAP_M"])


@bp.get("/api/assets/<int:asset_id>/isochrones.geojson")
def isochrones_geojson(asset_id):
    import json

    body = json.dumps(_isochrones(asset_id), separators=(",", ":"))
    return Response(body, mimetype="application/geo+json", headers={"Cache-Control": "private, max-age=300"})


@bp.get("/assets/<int:asset_id>/reach")
def page(asset_id):
    name, _, _ = iso.asset_point(extensions.engine(), asset_id, current_role())
    settings = current_app.config["ASSET_MAP"]
    return render_template("reach/page.html", asset_id=asset_id, asset_name=name, tiles=settings["TILES"],
                           tiles_attribution=settings["TILES_ATTRIBUTION"])
