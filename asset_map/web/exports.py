"""/export/<layer>.<geojson|gpkg|csv>: downloads of any layer with the shared asset filters. GeoJSON and CSV stream
from the database as they are read; a GeoPackage is written to a temporary file first (it is SQLite).

Large downloads are bounded and shared:

- A download made from the database takes one of the server's export slots (web.slots) until its last byte is
  sent; when all are taken the request gets a polite 503 with Retry-After, so exports cannot take every thread
  (and core) from the map.
- A complete public download is kept under ``VAR_DIR/exports`` keyed by its inputs and the data's change stamps
  (api.kept): the same download asked for again, before the data changes, is sent from that file without touching
  the database, still in a slot, since it holds a request thread while it is sent, and at most EXPORT_RATE_MB_S
  each (paced by the kernel and sent by sendfile under gunicorn), so one client on a fast link cannot take the
  cores from the map. The popular ones (the whole public asset layer as GeoJSON and CSV) are made ahead of time by
  the import worker after a data change (api.kept.prepare).
- While a kept file is being made (by the first download or by the worker), other downloads of it follow the
  part file as it grows instead of reading the database again.
- What a signed-in user downloads may be personal data and is never kept.
"""

import io
import os
import platform
import socket
import sys
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file

from asset_map.api import kept
from asset_map.api.exporter import Export
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role
from asset_map.web.slots import slots

bp = Blueprint("exports", __name__)
# Not named by every Python's socket module: Linux's number where its generic socket.h applies (x86, Arm, RISC-V;
# a few other architectures number it differently, and there the file is paced in Python).
SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47 if sys.platform == "linux" and platform.machine() in (
    "x86_64", "i686", "aarch64", "armv7l", "riscv64") else None)


@bp.get("/export/<layer_id>.<any(geojson, gpkg, csv):fmt>")
def export(layer_id, fmt):
    settings = current_app.config["ASSET_MAP"]
    job = Export.make(extensions.engine(), layer_id, fmt, request.args, role=current_role(), actor=current_actor(),
                      settings=settings)
    comments = _comments()
    cache = kept.path_of(job, comments)  # None unless public: a signed-in user's download is never kept
    held = slots("export").acquire()
    try:
        if cache is not None and cache.is_file():
            res = _from_cache(job, cache, held)
        else:
            res = _respond(job, fmt, settings, held, comments, cache)
    except BaseException:
        held.release()
        raise
    res.call_on_close(held.release)
    return res


def _comments():
    return request.args.get("comments", "1") not in ("0", "false", "no")


def _rate(settings):
    """The per-download cap of kept-file sends in bytes/s (0: none)."""
    return max(0.0, float(settings["EXPORT_RATE_MB_S"])) * 1e6


def _respond(job, fmt, settings, held, comments, cache):
    if fmt == "gpkg":
        tmp = Path(settings["VAR_DIR"]) / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        path, counts = job.gpkg_temp(tmp)  # audited as written
        # Opened before it is kept or removed: the open file is what is sent, whatever happens to its name.
        fh = _SentFile(path, lambda _complete: held.release())
        if cache is None or not kept.keep_file(path, cache, sum(counts.values())):
            os.remove(path)
        return _send(fh, job)
    # One download at a time writes the copy to keep (a lock across workers): five clients asking for a national
    # file at once each wrote 529 MB, and the disk's writeback then stalled every process that wrote (access logs).
    # The others follow the file it writes as it grows, rather than read the database again.
    maker = kept.Maker.begin(cache) if cache is not None else None
    if cache is not None and maker is None:
        follower = kept.follow(cache)
        if follower is not None:
            return _streamed(_followed(job, follower, held), job, settings, paced=True)
        if cache.is_file():  # finished a moment ago
            return _from_cache(job, cache, held)
    rows = kept.counted(job) if maker is not None else None
    body = job.stream(comments=comments) if fmt == "csv" else job.stream()
    if maker is not None:
        body = kept.tee(body, maker, rows)
    res = _streamed(_releasing(body, held), job, settings, paced=False)
    if maker is not None:
        res.call_on_close(lambda: maker.finish(0, False))  # also when the stream never started (the client went)
    return res


def _streamed(chunks, job, settings, *, paced):
    if paced:
        chunks = kept.paced(chunks, _rate(settings))
    return Response(chunks, content_type=job.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{job.filename}"',
                             "X-Content-Type-Options": "nosniff"})


def _followed(job, follower, held):
    """A file being made, read as it grows; audited when done (complete only if its end was sent)."""
    complete = False
    try:
        yield from follower
        complete = follower.complete
    finally:
        held.release()
        follower.close()
        job.record(follower.rows if complete else 0, complete)


def _from_cache(job, cache, held):
    """The kept file, in one of the export slots: sending it costs no database work, but it holds a request thread
    for as long as the client takes (five clients pulling a national file held five of the server's eight threads,
    and the map's requests queued behind them). At most EXPORT_RATE_MB_S per download: by the server's sendfile
    on a connection the kernel paces, or else read in paced chunks; with no cap, by sendfile."""
    gz = kept.gzipped(cache)
    zipped = request.accept_encodings["gzip"] > 0 and gz.is_file()

    def sent(complete):
        held.release()
        job.record(rows if complete else 0, complete)

    settings = current_app.config["ASSET_MAP"]
    try:
        rows = kept.rows_of(cache)
        fh = _SentFile(gz if zipped else cache, sent)
    except (OSError, ValueError):  # removed by a newer download's clean-up meanwhile: make it again, not kept
        return _respond(job, job.fmt, settings, held, _comments(), None)
    rate = _rate(settings)
    res = _send(fh, job) if not rate or _paced_by_kernel(rate) else _send_paced(fh, job, settings)
    res.vary.add("Accept-Encoding")
    if zipped:
        res.headers["Content-Encoding"] = "gzip"  # and Flask-Compress leaves it as it is
    return res


def _paced_by_kernel(rate_bytes_s):
    """Ask the kernel to send this response's connection at most ``rate_bytes_s`` (TCP's own pacing, Linux's
    SO_MAX_PACING_RATE), so that a kept file can go by sendfile: no Python between its chunks, and no thread of the
    worker waking a hundred times a second to copy them (the workers' CPU for two paced downloads went from 5.7 %
    to 1.8 % of a core). False where there is no socket to ask (a server other than gunicorn, the tests' client) or
    the kernel refuses; the file is then read in paced chunks."""
    sock = request.environ.get("gunicorn.socket")
    if sock is None or SO_MAX_PACING_RATE is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, min(int(rate_bytes_s), 2**32 - 1))
    except OSError:
        return False
    return True


def _send_paced(fh, job, settings):
    """A finished file read in chunks at most EXPORT_RATE_MB_S, where the kernel cannot pace it (_paced_by_kernel):
    the pacing needs Python between the chunks, so no sendfile."""

    def chunks():
        while chunk := fh.read(kept.CHUNK):
            yield chunk

    res = _streamed(chunks(), job, settings, paced=True)
    res.content_length = fh.size
    res.call_on_close(fh.close)
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
