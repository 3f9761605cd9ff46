"""Kept public downloads: whole files of public exports under ``VAR_DIR/exports``, keyed by their inputs (layer,
format, filter, options) and the data's change stamps (store.change_stamps), made once and sent many times.
Nothing here knows Flask: web.exports sends the files; the import worker, `asset-map exports prepare` and `make
run` make the popular ones ahead of time (``prepare``), so no visitor waits for them to be read from the database.

One writer at a time makes a file: an exclusive ``flock`` on ``<file>.making`` (which also names the part file being
written), into a part file of its own that becomes the kept file by an atomic rename only once complete. Other
downloads of the same file meanwhile follow the part file as it grows (``follow``) instead of reading the database
again: five clients mean one making.

Only public downloads are kept or prepared (``path_of`` gives None for any other role): what a signed-in user
downloads may be personal data.
"""

import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from asset_map.store import change_stamps

log = logging.getLogger(__name__)
# Made ahead of time after a data change: the public's whole asset layer, the downloads the map page links to.
PREPARED = (("assets", "geojson"), ("assets", "csv"))
PUBLIC = "public"
LOW_PRIORITY = 19  # the nice value of what is made outside a request: it runs when the machine has time
GZIP_LEVEL = 6  # Flask-Compress's default: what a browser got when the file was compressed as it was sent
CHUNK = 256 * 1024
# The maker writes its file out to disk every this many bytes: hundreds of megabytes of dirty pages left to the
# kernel's writeback stalled every other writer of the disk meanwhile (ext4 commits them with its journal, and the
# server's access log lines waited): map API p95 841 ms against 79 while a national file was made.
SYNC_EVERY = 8 << 20
FOLLOW_POLL_S = 0.05
FOLLOW_STALL_S = 120  # a part file that has not grown for this long is given up on (its maker hangs)


class FollowFailed(OSError):
    """The file being followed will never be complete (its maker failed or went away): the download is cut."""


def folder(settings):
    return Path(settings["VAR_DIR"]) / "exports"


def path_of(job, comments=True, stamps=None):
    """Where the kept copy of export ``job`` lives (it may not exist yet), or None when it must not be kept: only a
    public download may be. ``stamps``: the change stamps already read, else read here."""
    if job.role != PUBLIC:
        return None
    if stamps is None:
        with job.engine.connect() as conn:
            stamps = change_stamps.stamps(conn)
    s = job.settings
    inputs = json.dumps([job.layer_id, job.fmt, job.flt.as_args(), job.role, bool(comments), s["LICENCE"],
                         s["ATTRIBUTION"], s["SUPPRESS_BELOW"]], sort_keys=True, default=str)
    key = hashlib.sha256(inputs.encode("utf-8")).hexdigest()[:32]
    return folder(s) / f"a{stamps['assets']}-r{stamps['reference']}-{key}.{job.fmt}"


def rows_of(cache):
    """The row count kept beside a file (for the audit record of whoever is sent it)."""
    return int(cache.with_suffix(".rows").read_text())


def gzipped(cache):
    return cache.with_name(cache.name + ".gz")


# -- making ---------------------------------------------------------------------------------------------------------


def _lock(path):
    """An exclusive lock on ``<path>.making`` (a descriptor to close), or None when another thread or process
    holds it (the file is being made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".making"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Maker:
    """The one writer of a kept file: ``Maker.begin(cache)`` (None when another is making it), ``write`` the
    chunks, then ``finish(rows, complete)``, which keeps the file when complete and always lets go of the lock.

    The part file is the maker's own (mkstemp): with one name per process the first of two downloads took the
    other's file away. Its name is written into the lock file, for followers."""

    def __init__(self, cache, lock):
        self.cache = cache
        self._lock = lock
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f"{cache.stem}.", suffix=".part")
        self.part = Path(tmp)
        self._fh = open(fd, "wb")  # noqa: SIM115 - closed by finish
        os.ftruncate(lock, 0)
        os.pwrite(lock, self.part.name.encode(), 0)
        self.kept = False
        self._unsynced = 0
        self.gzip_thread = True  # the gzip copy made by a thread of its own once kept (False: the caller makes it)

    @classmethod
    def begin(cls, cache):
        lock = _lock(cache)
        if lock is None:
            return None
        try:
            return cls(cache, lock)
        except OSError:
            os.close(lock)
            raise

    def write(self, chunk):
        self._fh.write(chunk)
        # Followers read what the file holds: hand each chunk to the kernel at once rather than keep it buffered.
        self._fh.flush()
        self._unsynced += len(chunk)
        if self._unsynced >= SYNC_EVERY:
            os.fdatasync(self._fh.fileno())
            self._unsynced = 0

    def finish(self, rows, complete):
        """Keep the file when ``complete``; returns whether it was kept. Safe to call more than once."""
        if self._lock is None:
            return self.kept
        try:
            self._fh.close()
            self.kept = bool(complete) and _store(self.part, self.cache, rows)
        finally:
            if not self.kept:
                self.part.unlink(missing_ok=True)
            lock, self._lock = self._lock, None
            try:
                os.ftruncate(lock, 0)
            finally:
                os.close(lock)
        if self.kept and self.gzip_thread and self.cache.suffix in (".geojson", ".csv"):
            threading.Thread(target=compress, args=(self.cache,), name=f"gzip-{self.cache.stem}", daemon=True).start()
        return self.kept


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
        # Atomic: a reader opens the old file or the new one, never half of one; a follower's open part file is
        # this very file (same inode), which is how it knows the file is complete.
        os.replace(path, cache)
    except OSError as err:
        log.warning("export %s not kept: %s", cache.name, err)
        return False
    return True


def keep_file(path, cache, rows):
    """Keep a file written whole elsewhere (a GeoPackage is written to a temporary file first): by one writer at a
    time; returns whether it was kept (the caller removes ``path`` otherwise)."""
    lock = _lock(cache)
    if lock is None:
        return False
    try:
        return _store(path, cache, rows)
    finally:
        os.close(lock)


def counted(job):
    """Catch the row count and completeness the stream reports to the audit log (for the kept copy's sidecar):
    a dict filled with ``n`` and ``complete`` when the export's stream ends."""
    rows, record = {}, job.record

    def counting(n, complete=True):
        rows.update(n=n, complete=complete)
        record(n, complete)

    job.record = counting
    return rows


def tee(chunks, maker, rows):
    """The stream as it goes out, also written by ``maker``; the file is kept only if the stream completes."""
    done = False
    try:
        for chunk in chunks:
            maker.write(chunk)
            yield chunk
        done = rows.get("complete", False)
    finally:
        maker.finish(rows.get("n", 0), done)


def make(job, cache, *, comments=True):
    """Make the kept file ``cache`` of ``job`` from the database, unless it exists or another is making it;
    returns whether this call made it. The gzip copy is the caller's to make (``compress``)."""
    if cache.is_file():
        return False
    maker = Maker.begin(cache)
    if maker is None:
        return False
    if cache.is_file():  # made by the writer that held the lock just before
        maker.finish(0, False)
        return False
    maker.gzip_thread = False
    rows = counted(job)
    try:
        body = job.stream(comments=comments) if job.fmt == "csv" else job.stream()
        for chunk in body:
            maker.write(chunk)
    finally:
        kept = maker.finish(rows.get("n", 0), rows.get("complete", False))
    return kept


def compress(cache):
    """Keep a gzip copy beside a kept file, for the clients that accept gzip (every browser): sent as it is, by
    sendfile, instead of compressed again in a worker for every download. Once per file (a lock across
    processes), at the lowest CPU priority (zlib lets go of the GIL while it works)."""
    gz = gzipped(cache)
    lock = _lock(gz)
    if lock is None or gz.is_file():
        if lock is not None:
            os.close(lock)
        return
    try:
        _lower_priority()
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


def _lower_priority():
    """This thread at nice LOW_PRIORITY (Linux: a thread's nice value is its own)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_PRIORITY)
    except OSError:
        pass


# -- following ----------------------------------------------------------------------------------------------------


def follow(cache, *, wait_s=2.0):
    """The chunks of ``cache`` while another download or job makes it, read from its part file as it grows (a
    ``Follower``); None when nobody is making it (the caller sends the kept file if there is one, or makes it).
    The part file is opened before this returns, so its rename into place (or its removal) cannot be missed."""
    making = cache.with_suffix(".making")
    deadline = time.monotonic() + wait_s
    while True:
        lock = _lock(cache)
        if lock is not None:  # nobody is making it
            os.close(lock)
            return None
        try:
            name = making.read_text().strip()
        except OSError:
            name = ""
        if name:
            try:
                return Follower(open(cache.parent / name, "rb"), cache, name)  # noqa: SIM115 - the Follower's
            except FileNotFoundError:  # finished (or failed) a moment ago
                pass
        if cache.is_file() or time.monotonic() >= deadline:
            return None
        time.sleep(FOLLOW_POLL_S)


class Follower:
    """Iterate for the file's chunks, as its maker writes them; ends when the part file has become the kept file
    and been read to its end (``complete``, ``rows`` then set), and raises FollowFailed when it never will (the
    maker failed, went away, or hangs), so a chunked response is cut rather than ended as if whole."""

    def __init__(self, fh, cache, name, *, stall_s=FOLLOW_STALL_S):
        self._fh = fh
        self.cache = cache
        self.name = name
        self.stall_s = stall_s
        self.sent = 0
        self.complete = False
        self.rows = 0

    def __iter__(self):
        try:
            grew = time.monotonic()
            while True:
                chunk = self._fh.read(CHUNK)
                if chunk:
                    self.sent += len(chunk)
                    grew = time.monotonic()
                    yield chunk
                    continue
                if self._kept():
                    # Renamed into place after its last write: whatever is left is read to the end.
                    while chunk := self._fh.read(CHUNK):
                        self.sent += len(chunk)
                        yield chunk
                    self.rows = rows_of(self.cache)
                    self.complete = True
                    return
                if self._gone() or time.monotonic() - grew > self.stall_s:
                    msg = f"the kept download {self.cache.name} being made was not finished"
                    raise FollowFailed(msg)
                time.sleep(FOLLOW_POLL_S)
        finally:
            self._fh.close()

    def close(self):
        self._fh.close()

    def _kept(self):
        mine = os.fstat(self._fh.fileno())
        try:
            there = os.stat(self.cache)
        except FileNotFoundError:
            return False
        return (there.st_ino, there.st_dev) == (mine.st_ino, mine.st_dev)

    def _gone(self):
        """The maker failed (removed the part) or stopped (its lock is free, or another maker has taken it)."""
        if os.fstat(self._fh.fileno()).st_nlink == 0:
            return not self._kept()
        lock = _lock(self.cache)
        if lock is not None:
            os.close(lock)
            return not self._kept()
        try:
            return self.cache.with_suffix(".making").read_text().strip() not in ("", self.name)
        except OSError:
            return False


# -- pacing -------------------------------------------------------------------------------------------------------


def pause(sent, elapsed_s, rate_bytes_s, burst=0):
    """Seconds to wait before sending more, after ``sent`` bytes in ``elapsed_s``, to keep to ``rate_bytes_s``
    (after a first ``burst`` sent at once); 0 for no limit. nginx's limit_rate, as a pure function."""
    if rate_bytes_s <= 0:
        return 0.0
    return max(0.0, (sent - burst) / rate_bytes_s - elapsed_s)


def paced(chunks, rate_bytes_s, *, burst=None, clock=time.monotonic, sleep=time.sleep):
    """``chunks`` again, at most ``rate_bytes_s`` on average after a first ``burst`` (default one CHUNK): the wait
    comes before a chunk, so the last byte is not delayed for nothing."""
    burst = CHUNK if burst is None else burst
    sent, started = 0, clock()
    for chunk in chunks:
        wait = pause(sent, clock() - started, rate_bytes_s, burst)
        if wait > 0:
            sleep(wait)
        yield chunk
        sent += len(chunk)


# -- ahead of time ------------------------------------------------------------------------------------------------


def prepare(engine, settings, *, which=PREPARED, actor="asset-map:prepare", force=False, progress=None):
    """Make the popular public downloads ``which`` ((layer, format) pairs, unfiltered) for the data as it is now,
    into the folder the download route reads, at low CPU priority: a thread of its own at nice LOW_PRIORITY (the
    caller's thread keeps its priority: a job worker's threads are reused), reading the rows on backends reniced the
    same way when they run on this machine (store.db.make_engine(low_priority=True)); no statement timeout, as
    nobody waits on it. Returns [(layer, format, path, seconds, made)]; made is False when the file was already
    kept or another process was making it. ``force``: make them again even when kept."""
    out, failed = [], []

    def work():
        try:
            _lower_priority()
            _prepare(engine, settings, which, actor, force, progress, out)
        except BaseException as err:  # noqa: BLE001 - raised again in the caller's thread
            failed.append(err)

    thread = threading.Thread(target=work, name="prepare-exports")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return out


def _prepare(engine, settings, which, actor, force, progress, out):
    from asset_map.api.exporter import Export
    from asset_map.store.db import make_engine

    bulk = make_engine(engine.url.render_as_string(hide_password=False), {**settings, "STATEMENT_TIMEOUT_MS": 0},
                       low_priority=True)
    try:
        for layer_id, fmt in which:
            job = Export.make(bulk, layer_id, fmt, {}, role=PUBLIC, actor=actor, settings=settings)
            cache = path_of(job)
            if force and cache.is_file():
                for p in (cache, gzipped(cache)):
                    p.unlink(missing_ok=True)
            started = time.perf_counter()
            made = make(job, cache)
            if made and fmt in ("geojson", "csv"):
                compress(cache)  # here rather than in a thread: a job's process may exit as soon as it returns
            took = time.perf_counter() - started
            out.append((layer_id, fmt, cache, took, made))
            if progress is not None:
                progress(layer_id, fmt, cache, took, made)
    finally:
        bulk.dispose()


def current(engine, settings, *, which=PREPARED):
    """Whether every prepared download is kept for the data as it is now (a stamps query and a few stat calls)."""
    from asset_map.api.exporter import Export

    with engine.connect() as conn:
        stamps = change_stamps.stamps(conn)
    for layer_id, fmt in which:
        job = Export.make(engine, layer_id, fmt, {}, role=PUBLIC, actor="", settings=settings)
        if not path_of(job, stamps=stamps).is_file():
            return False
    return True
