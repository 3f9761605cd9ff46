"""What the public sends without an account: suggestions of assets and changes, individuals' offers of their own
skills (and their private links), and answers to confirm-your-listing links. Thin routes: the work is in
asset_map.suggestions, asset_map.offers and asset_map.confirmations. POSTs are rate-limited (web/limits.py)."""

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from asset_map import suggestions
from asset_map.errors import FormInvalid, InputError
from asset_map.web import extensions, limits
from asset_map.web.auth import client_ip

bp = Blueprint("community", __name__)
# A field no person sees or fills (hidden by CSS and from screen readers); robots fill every field they find.
HONEYPOT = "website_address"


def _map_config(point=None, zoom=None):
    settings = current_app.config["ASSET_MAP"]
    tiles = settings["TILES"] if settings["TILES"] and settings["TILES"].lower() != "none" else None
    with extensions.engine().connect() as conn:
        from sqlalchemy import text

        bounds = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                   "(SELECT ST_Extent(geom) AS e FROM districts) x")).first()
    return {"tiles": tiles, "attribution": settings["TILES_ATTRIBUTION"], "point": point, "zoom": zoom,
            "districts_url": url_for("ogc.items", collection_id="districts", f="json", limit=100),
            "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]] if bounds and bounds[0] is not None else None}


def _robot():
    return bool(request.form.get(HONEYPOT, "").strip())


@bp.route("/suggest", methods=["GET", "POST"])
def suggest():
    engine = extensions.engine()
    asset_id = request.values.get("asset", type=int)
    current = suggestions.current_asset(engine, asset_id, role="public") if asset_id else None
    if asset_id and current is None:
        asset_id = None
    values, problems = dict(request.values.items()), {}
    if request.method == "POST":
        try:
            with limits.public_write():
                if _robot():
                    # Tell a robot nothing it could learn from; nothing is stored.
                    return redirect(url_for("community.thanks", kind="suggestion"))
                suggestions.submit(engine, request.form, kind="change" if asset_id else "new", asset_id=asset_id,
                                   ip=client_ip(), tolerance_m=current_app.config["ASSET_MAP"]["AREA_TOLERANCE_M"])
            return redirect(url_for("community.thanks", kind="suggestion"))
        except FormInvalid as err:
            problems = err.problems
        except InputError as err:
            problems = {"name": err.user_message}
    elif current is not None:
        values = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in current.items() if v is not None}
        values.pop("lon", None), values.pop("lat", None)
    point = None
    try:
        point = [float(request.values["lat"]), float(request.values["lon"])]
    except (KeyError, ValueError):
        if current is not None and current.get("lat") is not None:
            point = [current["lat"], current["lon"]]
    status = 400 if problems else 200
    return render_template("community/suggest.html", values=values, problems=problems, current=current,
                           choices=suggestions.category_choices(), honeypot=HONEYPOT,
                           map_config=_map_config(point, request.values.get("zoom", type=int))), status


@bp.get("/suggest/thanks")
def thanks():
    return render_template("community/thanks.html", kind=request.args.get("kind", "suggestion"))
