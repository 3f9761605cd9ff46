"""/export/<layer>.<geojson|gpkg|csv>: downloads of any layer with the shared asset filters. GeoJSON and CSV stream
from the database as they are read; a GeoPackage is written to a temporary file first (it is SQLite)."""

import os
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file

from asset_map.api.exporter import Export
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role

bp = Blueprint("exports", __name__)


@bp.get("/export/<layer_id>.<any(geojson, gpkg, csv):fmt>")
def export(layer_id, fmt):
    settings = current_app.config["ASSET_MAP"]
    job = Export.make(extensions.engine(), layer_id, fmt, request.args, role=current_role(), actor=current_actor(),
                      settings=settings)
    if fmt == "gpkg":
        tmp = Path(settings["VAR_DIR"]) / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        path, _ = job.gpkg_temp(tmp)
        fh = open(path, "rb")  # noqa: SIM115 - closed by the response
        os.remove(path)  # the open handle keeps the data until the response is sent
        return send_file(fh, mimetype=job.media_type, as_attachment=True, download_name=job.filename)
    comments = request.args.get("comments", "1") not in ("0", "false", "no")
    body = job.stream(comments=comments) if fmt == "csv" else job.stream()
    return Response(body, content_type=job.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{job.filename}"',
                             "X-Content-Type-Options": "nosniff"})
