"""The map page."""

from flask import Blueprint, current_app, render_template, request, url_for

from asset_map.web import extensions
from asset_map.web.auth import current_role
from asset_map.web.filters import form_choices, request_filter
from asset_map.web.lazy import lazy

# Folium comes with the page builder: loaded by the first request for the map, not when a worker starts.
near = lazy("asset_map.maps.near")
page = lazy("asset_map.maps.page")

bp = Blueprint("maps", __name__)
POSTCODE_ZOOM = 15


def api_urls():
    return {"assets": url_for("explorer.assets_geojson"), "individuals": url_for("explorer.individuals_geojson"),
            "postcode": url_for("explorer.postcode"), "suggest": url_for("community.suggest"),
            # The vector tiles' URL template: explorer.js puts a layer's id in place of __layer__.
            "tiles": url_for("tiles.tile", layer_id="__layer__", z=0, x=0, y=0).replace("/0/0/0.mvt",
                                                                                         "/{z}/{x}/{y}.mvt")}


@bp.get("/")
def index():
    settings = current_app.config["ASSET_MAP"]
    flt, postcode, focus = request_filter(), request.args.get("postcode", "").strip(), None
    if postcode:
        found = near.lookup_postcode(extensions.engine(), postcode)
        focus = {"lon": found["lon"], "lat": found["lat"], "zoom": POSTCODE_ZOOM, "label": found["postcode"]}
    extensions.folium_assets()
    built = page.build(extensions.engine(), extensions.layers(), settings, need=request.args.get("need"), flt=flt,
                       role=current_role(), focus=focus, urls=api_urls(), stamps=extensions.stamps())
    return render_template("maps/index.html", page=built, need_label=page.need_label, flt=flt,
                           form=form_choices(flt), postcode=postcode)
