"""Pages about the service rather than its data: downloads and the API (every layer with its formats, how to open
them in QGIS and Excel, the attribution to quote), the data sources and licence, the privacy notice and the
accessibility statement. Thin: the layers come from asset_map.api.layers, the words from the settings."""

from flask import Blueprint, current_app, render_template, request

from asset_map.api import layers
from asset_map.api.exporter import FORMATS
from asset_map.config import attribution_lines
from asset_map.web import extensions
from asset_map.web.auth import current_role

bp = Blueprint("pages", __name__)
FORMAT_LABELS = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "csv": "CSV"}
# Feeds other parts of the app may serve: listed on the downloads page when their endpoint exists.
OTHER_FEEDS = (
    ("explorer.assets_geojson", "Assets of a map view as GeoJSON",
     "The map's own feed: assets of a bounding box (bbox=minLon,minLat,maxLon,maxLat), grouped when there are many."),
    ("explorer.individuals_geojson", "Individuals as counts per area",
     "Consenting individuals counted per LSOA 2021; small counts are suppressed."),
    ("tiles.index", "Vector tiles", "Map layers as Mapbox Vector Tiles, for QGIS and web maps."),
)


def _settings():
    return current_app.config["ASSET_MAP"]


@bp.get("/downloads")
def downloads():
    role = current_role()
    found = layers.available(extensions.engine(), role)
    by_district = [layer for layer in found if layer.district]
    main = [layer for layer in found if not layer.district]
    feeds = [(endpoint, title, text) for endpoint, title, text in OTHER_FEEDS
             if endpoint in current_app.view_functions]
    return render_template("pages/downloads.html", layers=main, district_layers=by_district,
                           formats=[(f, FORMAT_LABELS.get(f, f)) for f in FORMATS], feeds=feeds,
                           ogc_url=request.url_root.rstrip("/") + "/ogc",
                           licence=_settings()["LICENCE"], attribution=attribution_lines(_settings()))


@bp.get("/about/data")
def licence():
    return render_template("pages/licence.html", attribution=attribution_lines(_settings()),
                           licence=_settings()["LICENCE"])


@bp.get("/privacy")
def privacy():
    return render_template("pages/privacy.html", suppress_below=_settings()["SUPPRESS_BELOW"],
                           session_hours=_settings()["SESSION_HOURS"])


@bp.get("/accessibility")
def accessibility():
    return render_template("pages/accessibility.html")
