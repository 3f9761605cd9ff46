"""/export/<layer>.<geojson|gpkg|csv>: downloads of any layer with the shared asset filters. GeoJSON and CSV stream
from the database as they are read; a GeoPackage is written to a temporary file first (it is SQLite).

Large downloads are bounded and shared:

- A download made from the database takes one of the server's export slots (web.slots) until its last byte is
  sent; when all are taken the request gets a polite 503 with Retry-After, so exports cannot take every thread
  (and core) from the map.
- A complete public download is kept under ``VAR_DIR/exports`` keyed by its inputs (layer, format, filter, options)
  and the data's change stamps (store.change_stamps): the same download asked for again, before the data changes, is
  sent from that file (by sendfile) without touching the database, still in a slot, since it holds a request thread
  while it is sent. What a signed-in user downloads may be personal data and is never kept.
"""

import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file

from asset_map.api.exporter import Export
from asset_map.store import change_stamps
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role
from asset_map.web.slots import slots

bp = Blueprint("exports", __name__)
LOW_PRIORITY = 19  # the nice value of the thread that gzips a kept file: it runs when the machine has time
GZIP_LEVEL = 6  # Flask-Compress's default: what a browser got when the file was compressed as it was sent
log = logging.getLogger(__name__)


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
        path, counts = job.gpkg_temp(tmp)  # audited as written
        # Opened before it is kept or removed: the open file is what is sent, whatever happens to its name.
        fh = _SentFile(path, lambda _complete: held.release())
        if cache is None or not _store(path, cache, sum(counts.values())):
            os.remove(path)
        return _send(fh, job)
    # One download at a time writes the copy to keep (a lock across workers): five clients asking for a national
    # file at once each wrote 529 MB, and the disk's writeback then stalled every process that wrote (access logs).
    lock = _lock(cache) if cache is not None else None
    rows = _counted(job) if lock is not None else None
    body = job.stream(comments=comments) if fmt == "csv" else job.stream()
    if lock is not None:
        unlock = _once(os.close, lock)
        body = _tee(body, rows, cache, unlock)
    res = Response(_releasing(body, held), content_type=job.media_type,
                   headers={"Content-Disposition": f'attachment; filename="{job.filename}"',
                            "X-Content-Type-Options": "nosniff"})
    if lock is not None:
        res.call_on_close(unlock)   # also when the stream never started (the client went at once)
    return res


def _once(fn, *args):
    done = []

    def call():
        if not done:
            done.append(True)
            fn(*args)

    return call


def _cache_path(job, settings, comments):
    with job.engine.connect() as conn:
        stamps = change_stamps.stamps(conn)
    inputs = json.dumps([job.layer_id, job.fmt, job.flt.as_args(), job.role, comments, settings["LICENCE"],
                         settings["ATTRIBUTION"], settings["SUPPRESS_BELOW"]], sort_keys=True, default=str)
    key = hashlib.sha256(inputs.encode("utf-8")).hexdigest()[:32]
    stamp = f"a{stamps['assets']}-r{stamps['reference']}"
    return Path(settings["VAR_DIR"]) / "exports" / f"{stamp}-{key}.{job.fmt}"


def _store(path, cache, rows):
    """Keep a finished file under its key; older stamps' files go (they can never be asked for again). Returns
    whether it was kept: a newer stamp's clean-up may have removed it meanwhile, and then it is not (the download
    it was written for is still whole)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    stamp = cache.name.split("-", 2)[:2]
    for old in cache.parent.glob("a*-r*-*"):
        if old.name.split("-", 2)[:2] != stamp:
            old.unlink(missing_ok=True)
    try:
        cache.with_suffix(".rows").write_text(str(int(rows)))
        # Atomic: a reader opens the old file or the new one, never half of one. Two downloads made at once
        # each replace it with the same rows.
        os.replace(path, cache)
    except OSError as err:
        log.warning("export %s not kept: %s", cache.name, err)
        return False
    if cache.suffix in (".geojson", ".csv"):
        threading.Thread(target=_compress, args=(cache,), name=f"gzip-{cache.stem}", daemon=True).start()
    return True


def _gzipped(cache):
    return cache.with_name(cache.name + ".gz")


def _compress(cache):
    """Keep a gzip copy beside a kept file, for the clients that accept gzip (every browser): sent as it is, by
    sendfile, instead of compressed again in a worker for every download. Once per file (a lock across workers),
    in a thread of its own at the lowest CPU priority (zlib lets go of the GIL while it works)."""
    gz = _gzipped(cache)
    lock = _lock(gz)
    if lock is None or gz.is_file():
        if lock is not None:
            os.close(lock)
        return
    try:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_PRIORITY)
        except OSError:
            pass
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f"{gz.stem}.", suffix=".part")
        try:
            with open(cache, "rb") as src, open(fd, "wb") as raw, \
                    gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as out:
                shutil.copyfileobj(src, out, 1 << 20)
            if cache.is_file():  # not cleaned away for a newer stamp meanwhile
                os.replace(tmp, gz)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        log.exception("could not gzip the kept download %s", cache.name)
    finally:
        os.close(lock)


def _lock(path):
    """An exclusive lock on ``<path>.making`` (a descriptor to close), or None when another thread or worker holds
    it (the file is being made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".making"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _counted(job):
    """Catch the row count and completeness the stream reports to the audit log (for the cached copy's sidecar)."""
    rows, record = {}, job.record

    def counting(n, complete=True):
        rows.update(n=n, complete=complete)
        record(n, complete)

    job.record = counting
    return rows


def _tee(chunks, rows, cache, unlock):
    """The stream as it goes out, also written to a file that becomes the cached copy only if it completes; then
    ``unlock()`` (the lock from ``_lock``).

    The file is the download's own (mkstemp): with one name per process, the first of two identical downloads to
    finish took the other's file away and the other failed after its last byte."""
    fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f"{cache.stem}.", suffix=".part")
    done = False
    try:
        with open(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                yield chunk
        done = rows.get("complete", False)
    finally:
        try:
            if not (done and _store(tmp, cache, rows.get("n", 0))):
                Path(tmp).unlink(missing_ok=True)
        finally:
            unlock()


def _from_cache(job, cache):
    """The kept file, in one of the export slots: sending it costs no database work, but it holds a request thread
    for as long as the client takes (five clients pulling a national file held five of the server's eight threads,
    and the map's requests queued behind them)."""
    gz = _gzipped(cache)
    zipped = request.accept_encodings["gzip"] > 0 and gz.is_file()
    held = slots("export").acquire()

    def sent(complete):
        held.release()
        job.record(rows if complete else 0, complete)

    try:
        rows = int(cache.with_suffix(".rows").read_text())
        fh = _SentFile(gz if zipped else cache, sent)
    except (OSError, ValueError):  # removed by a newer download's clean-up meanwhile: make it again
        held.release()
        return _uncached(job)
    res = _send(fh, job)
    res.vary.add("Accept-Encoding")
    if zipped:
        res.headers["Content-Encoding"] = "gzip"  # and Flask-Compress leaves it as it is
    return res


def _uncached(job):
    held = slots("export").acquire()
    res = _respond(job, job.fmt, current_app.config["ASSET_MAP"], held,
                   request.args.get("comments", "1") not in ("0", "false", "no"), None)
    res.call_on_close(held.release)
    return res


def _send(fh, job):
    """A finished file as the response, left to the WSGI server's file wrapper: gunicorn hands it to the kernel
    (sendfile), so no worker thread pushes hundreds of megabytes through Python. The file's ``close`` (by the server,
    or by the response when something such as compression wrapped it) gives the audit record and the slot back."""
    res = send_file(fh, mimetype=job.media_type, as_attachment=True, download_name=job.filename)
    res.content_length = fh.size
    res.headers["X-Content-Type-Options"] = "nosniff"
    res.call_on_close(fh.close)
    return res


class _SentFile(io.FileIO):
    """A file opened for sending; ``on_close(complete)`` runs once when it is closed.

    Complete means every byte was handed to the server's socket: after ``sendfile`` the file's position is where
    sending stopped (gunicorn and socket.sendfile leave it there, also when the client went away); when the server
    reads the file instead, only a read that found the end (asked for after the last chunk was written) counts. As
    with a streamed download, a client that drops after the kernel took the last bytes cannot be told apart."""

    def __init__(self, path, on_close):
        super().__init__(path, "rb")
        self.size = os.fstat(self.fileno()).st_size
        self._on_close = on_close
        self._read = self._at_end = False

    def read(self, size=-1):
        self._read = True
        data = super().read(size)
        if size != 0 and not data:
            self._at_end = True
        return data

    def close(self):
        if self.closed:
            return
        try:
            complete = self._at_end if self._read else self.tell() >= self.size
        except OSError:
            complete = False
        on_close, self._on_close = self._on_close, None
        super().close()
        if on_close is not None:
            on_close(complete)


def _releasing(chunks, held):
    """The stream, giving its export slot back as soon as the last chunk is out (or the client went away)."""
    try:
        yield from chunks
    finally:
        held.release()
