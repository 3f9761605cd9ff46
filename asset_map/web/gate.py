"""A serving process's threads: THREADS for the map's requests, EXPORT_THREADS more for downloads.

`asset-map serve` runs each gunicorn worker with THREADS + EXPORT_THREADS threads. A worker keeps accepting
connections while a download holds one of its threads (for as long as the client takes), and queues them behind
its other threads. So every request enters this gate (at most THREADS at once per process) and leaves it when it
turns out to be a download (it asks for an export slot, web.slots); and a download, waiting for its slot or sent,
takes one of the process's EXPORT_THREADS download threads, or gets a polite 503 at once when they are all taken
(waiting would hold a thread the map needs). A worker sending downloads still has THREADS threads for the map.

Under gunicorn (web.server) a worker also accepts only as many connections as it has threads for the map plus the
downloads it is sending (``sending``): the rest wait in the kernel's queue for whichever worker frees first, so
this gate is rarely waited at there.
"""

import logging
import threading

from flask import current_app, g

from asset_map.errors import Busy

KEY = "asset_map.gate"
DOWNLOADS_KEY = "asset_map.gate.downloads"
RETRY_AFTER_S = 5
WAIT_S = 30  # a request never waits longer than this for a map thread; then it runs anyway (and says so)
log = logging.getLogger(__name__)


def init_app(app):
    settings = app.config["ASSET_MAP"]
    if int(settings["EXPORT_THREADS"]) <= 0:
        return  # no threads beyond THREADS: gunicorn's own pool is the bound
    app.extensions[KEY] = threading.BoundedSemaphore(max(1, int(settings["THREADS"])))
    app.extensions[DOWNLOADS_KEY] = _Downloads(int(settings["EXPORT_THREADS"]))
    app.before_request(_enter)
    app.teardown_request(_exit)


class _Downloads(threading.BoundedSemaphore):
    """The process's download threads, counting those taken."""

    def __init__(self, value):
        super().__init__(value)
        self.taken = 0
        self._count = threading.Lock()

    def acquire(self, blocking=True, timeout=None):
        got = super().acquire(blocking, timeout)
        if got:
            with self._count:
                self.taken += 1
        return got

    def release(self, n=1):
        with self._count:
            self.taken -= n
        super().release(n)


def sending(app):
    """How many downloads the process is sending (or waiting to send) now."""
    threads = app.extensions.get(DOWNLOADS_KEY)
    return 0 if threads is None else threads.taken


def _enter():
    if current_app.extensions[KEY].acquire(timeout=WAIT_S):
        g._asset_map_gate = True
    else:
        log.warning("a request waited %s s for a map thread and runs beside them", WAIT_S)


def leave():
    """The request is a download: it no longer counts against the map's threads (no-op outside the gate)."""
    if g.pop("_asset_map_gate", False):
        current_app.extensions[KEY].release()


def download():
    """The request is a download: it leaves the map's share and takes one of the process's download threads;
    returns the function that gives it back (None without the gate). Busy (503) when they are all taken."""
    leave()
    threads = current_app.extensions.get(DOWNLOADS_KEY)
    if threads is None:
        return None
    if not threads.acquire(blocking=False):
        msg = (f"This server is sending as many downloads as it can. Please try again in {RETRY_AFTER_S} "
               "seconds.")
        raise Busy(msg, retry_after=RETRY_AFTER_S)
    given = []

    def give_back():
        if not given:
            given.append(True)
            threads.release()

    return give_back


def _exit(_exc):
    leave()
