"""/healthz: database and PostGIS status as JSON, 503 while the database is away."""

from flask import Blueprint, jsonify

from asset_map.store.db import health
from asset_map.web import extensions

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    report = health(extensions.engine())
    return jsonify(report), (200 if report["status"] == "ok" else 503)
