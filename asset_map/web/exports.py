"""/export/<layer>.<geojson|gpkg|csv>: downloads of any layer with the shared asset filters. GeoJSON and CSV stream
from the database as they are read; a GeoPackage is written to a temporary file first (it is SQLite)."""

import os
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file, stream_with_context

from asset_map.api.exporter import Export
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role
from asset_map.web.slots import slots

bp = Blueprint("exports", __name__)


@bp.get("/export/<layer_id>.<any(geojson, gpkg, csv):fmt>")
def export(layer_id, fmt):
    settings = current_app.config["ASSET_MAP"]
    job = Export.make(extensions.engine(), layer_id, fmt, request.args, role=current_role(), actor=current_actor(),
                      settings=settings)
    # A bounded number of downloads per process: one more waits a moment, then gets 503 + Retry-After, so a burst
    # of large exports cannot take every thread from the map.
    held = slots("export").acquire()
    try:
        res = _respond(job, fmt, settings, held)
    except BaseException:
        held.release()
        raise
    res.call_on_close(held.release)
    return res


def _respond(job, fmt, settings, held):
    if fmt == "gpkg":
        tmp = Path(settings["VAR_DIR"]) / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        path, _ = job.gpkg_temp(tmp)
        fh = open(path, "rb")  # noqa: SIM115 - closed when the stream ends
        os.remove(path)  # the open handle keeps the data until the response is sent
        res = send_file(fh, mimetype=job.media_type, as_attachment=True, download_name=job.filename)
        res.response = _releasing(_closing(res.response, fh), held)
        return res
    comments = request.args.get("comments", "1") not in ("0", "false", "no")
    body = _releasing(job.stream(comments=comments) if fmt == "csv" else job.stream(), held)
    return Response(stream_with_context(body), content_type=job.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{job.filename}"',
                             "X-Content-Type-Options": "nosniff"})


def _closing(chunks, fh):
    try:
        yield from chunks
    finally:
        fh.close()


def _releasing(chunks, held):
    """The stream, giving its export slot back as soon as the last chunk is out (or the client went away)."""
    try:
        yield from chunks
    finally:
        held.release()
