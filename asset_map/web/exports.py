"""/export/<layer>.<geojson|gpkg|csv>: downloads of any layer with the shared asset filters. GeoJSON and CSV stream
from the database as they are read; a GeoPackage is written to a temporary file first (it is SQLite).

Large downloads are bounded and shared:

- A download made from the database takes one of the server's export slots (web.slots) until its last byte is
  sent; when all are taken the request gets a polite 503 with Retry-After, so exports cannot take every thread
  (and core) from the map.
- A complete public download is kept under ``VAR_DIR/exports`` keyed by its inputs (layer, format, filter, options)
  and the data's change stamps (store.changes): the same download asked for again, before the data changes, is
  sent from that file without a slot and without touching the database. What a signed-in user downloads may be
  personal data and is never kept.
"""

import hashlib
import json
import os
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file

from asset_map.api.exporter import Export
from asset_map.store import changes
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role
from asset_map.web.slots import slots

bp = Blueprint("exports", __name__)


@bp.get("/export/<layer_id>.<any(geojson, gpkg, csv):fmt>")
def export(layer_id, fmt):
    settings = current_app.config["ASSET_MAP"]
    job = Export.make(extensions.engine(), layer_id, fmt, request.args, role=current_role(), actor=current_actor(),
                      settings=settings)
    comments = request.args.get("comments", "1") not in ("0", "false", "no")
    cache = _cache_path(job, settings, comments) if job.role == "public" else None
    if cache is not None and cache.is_file():
        return _from_cache(job, cache)
    held = slots("export").acquire()
    try:
        res = _respond(job, fmt, settings, held, comments, cache)
    except BaseException:
        held.release()
        raise
    res.call_on_close(held.release)
    return res


def _respond(job, fmt, settings, held, comments, cache):
    if fmt == "gpkg":
        tmp = Path(settings["VAR_DIR"]) / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        path, counts = job.gpkg_temp(tmp)
        if cache is not None:
            _store(path, cache, sum(counts.values()))
            path = cache
            fh = open(path, "rb")  # noqa: SIM115 - closed when the stream ends
        else:
            fh = open(path, "rb")  # noqa: SIM115 - closed when the stream ends
            os.remove(path)  # the open handle keeps the data until the response is sent
        res = send_file(fh, mimetype=job.media_type, as_attachment=True, download_name=job.filename)
        res.response = _releasing(_closing(res.response, fh), held)
        return res
    rows = _counted(job) if cache is not None else None
    body = job.stream(comments=comments) if fmt == "csv" else job.stream()
    if cache is not None:
        body = _tee(body, rows, cache)
    return Response(_releasing(body, held), content_type=job.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{job.filename}"',
                             "X-Content-Type-Options": "nosniff"})


def _cache_path(job, settings, comments):
    with job.engine.connect() as conn:
        stamps = changes.stamps(conn)
    inputs = json.dumps([job.layer_id, job.fmt, job.flt.as_args(), job.role, comments, settings["LICENCE"],
                         settings["ATTRIBUTION"], settings["SUPPRESS_BELOW"]], sort_keys=True, default=str)
    key = hashlib.sha256(inputs.encode("utf-8")).hexdigest()[:32]
    stamp = f"a{stamps['assets']}-r{stamps['reference']}"
    return Path(settings["VAR_DIR"]) / "exports" / f"{stamp}-{key}.{job.fmt}"


def _store(path, cache, rows):
    """Keep a finished file under its key; older stamps' files go (they can never be asked for again)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    stamp = cache.name.split("-", 2)[:2]
    for old in cache.parent.glob("a*-r*-*"):
        if old.name.split("-", 2)[:2] != stamp:
            old.unlink(missing_ok=True)
    cache.with_suffix(".rows").write_text(str(int(rows)))
    os.replace(path, cache)


def _counted(job):
    """Catch the row count and completeness the stream reports to the audit log (for the cached copy's sidecar)."""
    rows, record = {}, job.record

    def counting(n, complete=True):
        rows.update(n=n, complete=complete)
        record(n, complete)

    job.record = counting
    return rows


def _tee(chunks, rows, cache):
    """The stream as it goes out, also written to a file that becomes the cached copy only if it completes."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.part")
    done = False
    try:
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                yield chunk
        done = rows.get("complete", False)
    finally:
        if done:
            _store(tmp, cache, rows.get("n", 0))
        else:
            tmp.unlink(missing_ok=True)


def _from_cache(job, cache):
    try:
        rows = int(cache.with_suffix(".rows").read_text())
        fh = open(cache, "rb")  # noqa: SIM115 - closed when the stream ends
    except (OSError, ValueError):  # removed by a newer download's clean-up meanwhile: make it again
        return _uncached(job)
    res = send_file(fh, mimetype=job.media_type, as_attachment=True, download_name=job.filename)
    res.response = _recorded(_closing(res.response, fh), job, rows)
    res.headers["X-Content-Type-Options"] = "nosniff"
    return res


def _uncached(job):
    held = slots("export").acquire()
    res = _respond(job, job.fmt, current_app.config["ASSET_MAP"], held,
                   request.args.get("comments", "1") not in ("0", "false", "no"), None)
    res.call_on_close(held.release)
    return res


def _recorded(chunks, job, rows):
    """A cached download is audited like any other: complete, or cut short when the client went away."""
    complete = False
    try:
        yield from chunks
        complete = True
    finally:
        job.record(rows if complete else 0, complete)


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
