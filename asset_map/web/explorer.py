"""The explorer's API and pages: assets as GeoJSON for the visible area, individuals as counts, postcode lookup,
'near a postcode' and district pages. Routes are thin: the work is in asset_map.maps."""

import dataclasses
import json as json_

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from asset_map import disclosure
from asset_map.maps import features, summary
from asset_map.store.assets import parse_int
from asset_map.web import extensions
from asset_map.web.auth import current_role
from asset_map.web.filters import form_choices, request_filter
from asset_map.web.lazy import lazy

# Folium and geopandas come with these: loaded by the first page that draws a map or finds the nearest assets.
near_ = lazy("asset_map.maps.near")
page = lazy("asset_map.maps.page")

bp = Blueprint("explorer", __name__)


@bp.get("/api/assets.geojson")
def assets_geojson():
    settings = current_app.config["ASSET_MAP"]
    body = features.assets_geojson(extensions.engine(), request_filter(), role=current_role(),
                                   zoom=parse_int(request.args, "zoom", 12, 0, features.MAX_ZOOM),
                                   stale_months=settings["STALE_MONTHS"], points_limit=settings["MAP_POINTS_LIMIT"])
    return Response(body, mimetype="application/geo+json")


@bp.get("/api/individuals.geojson")
def individuals_geojson():
    geography, _, offer, ignored = disclosure.table_request(request.args)
    body = features.individual_counts_geojson(extensions.engine(), request_filter(),
                                              by=disclosure.GEOGRAPHIES[geography][0], offer=offer, ignored=ignored,
                                              suppress_below=disclosure.method(current_app.config["ASSET_MAP"]))
    return Response(body, mimetype="application/geo+json")


@bp.get("/api/openapi.json")
def map_api():
    from asset_map.api import openapi

    base = f"{request.scheme}://{request.host}{request.script_root}/api"
    return Response(json_.dumps(openapi.map_document(base)), content_type="application/vnd.oai.openapi+json;version=3.0")


@bp.get("/api/postcode")
def postcode():
    return jsonify(near_.lookup_postcode(extensions.engine(), request.args.get("postcode", "")))


@bp.get("/near")
def near():
    from asset_map.web.maps import api_urls

    flt, raw = request_filter(), request.args.get("postcode", "").strip()
    found, rows, built = None, None, None
    if raw:
        engine = extensions.engine()
        found = near_.lookup_postcode(engine, raw)
        rows = near_.nearest(engine, found["lon"], found["lat"], flt, role=current_role(),
                             limit=parse_int(request.args, "limit", 20, 1, near_.MAX_RESULTS))
        extensions.folium_assets()
        built = page.build(engine, extensions.layers(), current_app.config["ASSET_MAP"], flt=flt,
                           role=current_role(), urls=api_urls(), stamps=extensions.stamps(),
                           focus={"lon": found["lon"], "lat": found["lat"], "zoom": 14, "label": found["postcode"]})
        built.explorer["nearest"] = [{"n": i, "lon": r.lon, "lat": r.lat, "name": r.name}
                                     for i, r in enumerate(rows.itertuples(), start=1)]
    return render_template("explorer/near.html", flt=flt, form=form_choices(flt), postcode=raw, found=found,
                           rows=rows, page=built, need_label=page.need_label)


@bp.get("/districts")
def districts():
    engine = extensions.engine()
    return render_template("explorer/districts.html", districts=summary.districts(engine, role=current_role()))


@bp.get("/districts/<code>")
def district(code):
    from asset_map.web.maps import api_urls

    engine, settings, role = extensions.engine(), current_app.config["ASSET_MAP"], current_role()
    info = summary.district(engine, code)
    flt = dataclasses.replace(request_filter(), district=(code,))
    extensions.folium_assets()
    built = page.build(engine, extensions.layers(), settings, flt=flt, role=role, urls=api_urls(),
                       stamps=extensions.stamps())
    indicator, vintage = built.need
    return render_template("explorer/district.html", info=info, page=built, flt=flt, need_label=page.need_label,
                           deciles=summary.need_deciles(engine, code, indicator=indicator, vintage=vintage),
                           counts=summary.asset_counts(engine, code, flt, role=role,
                                                       suppress_below=disclosure.method(settings)))
