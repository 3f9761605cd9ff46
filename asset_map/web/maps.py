"""The map page."""

from flask import Blueprint, current_app, render_template, request

from asset_map.layers import page
from asset_map.web import extensions

bp = Blueprint("maps", __name__)


@bp.get("/")
def index():
    settings = current_app.config["ASSET_MAP"]
    built = page.build(extensions.engine(), extensions.layers(), settings, need=request.args.get("need"))
    return render_template("maps/index.html", page=built, need_label=page.need_label)
