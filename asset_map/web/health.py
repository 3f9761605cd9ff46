"""/healthz: database and PostGIS status as JSON, 503 while the database is away."""

from flask import Blueprint, jsonify

from asset_map.store.db import health
from asset_map.web import extensions

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    report = health(extensions.engine())
    if report["status"] == "ok":
        return jsonify(report), 200
    return jsonify(report), 503, {"Retry-After": "5"}
