"""A serving process's threads: THREADS for the map's requests, EXPORT_THREADS more for downloads.

`asset-map serve` runs each gunicorn worker with THREADS + EXPORT_THREADS threads. A worker keeps accepting
connections while a download holds one of its threads (for as long as the client takes), and queues them behind
its other threads; so every request enters this gate (at most THREADS at once per process) and leaves it when it
turns out to be a download (it takes an export slot, web.slots). A worker sending downloads still runs THREADS of
the map's requests at once, and one sending none runs no more than before (the extra threads without the gate ran
more of the map's requests at once, each slower: map page p95 at 20 clients 129 -> 261 ms with no export running).
"""

import logging
import threading

from flask import current_app, g

KEY = "asset_map.gate"
WAIT_S = 30  # a request never waits longer than this for a map thread; then it runs anyway (and says so)
log = logging.getLogger(__name__)


def init_app(app):
    settings = app.config["ASSET_MAP"]
    if int(settings["EXPORT_THREADS"]) <= 0:
        return  # no threads beyond THREADS: gunicorn's own pool is the bound
    app.extensions[KEY] = threading.BoundedSemaphore(max(1, int(settings["THREADS"])))
    app.before_request(_enter)
    app.teardown_request(_exit)


def _enter():
    if current_app.extensions[KEY].acquire(timeout=WAIT_S):
        g._asset_map_gate = True
    else:
        log.warning("a request waited %s s for a map thread and runs beside them", WAIT_S)


def leave():
    """The request is a download: it no longer counts against the map's threads (no-op outside the gate)."""
    if g.pop("_asset_map_gate", False):
        current_app.extensions[KEY].release()


def _exit(_exc):
    leave()
