"""Production serving under gunicorn, configured from settings rather than a gunicorn config file.

The app is built once in the master and then forked (``preload_app``), so the workers share its code and
read-only data (settings, layer files, templates, styles) instead of each building its own copy. ``gc.freeze()``
before the fork keeps the garbage collector from writing to those shared objects (and so copying their pages)
when it scans. Nothing made before the fork holds a database connection: the engine is made by each worker on its
first request (web.extensions.engine).
"""

import gc
import os

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from asset_map.web import gate

# A worker reads its own memory after every this many requests: reading /proc/self/smaps_rollup costs about a
# millisecond in a large process, so it is not done per request.
MEMORY_CHECK_EVERY = 500


def own_memory_mb(pid="self"):
    """The memory only this process holds (private pages, clean or dirty): what recycling it would give back. Its
    RSS also counts the pages it still shares with the master and the other workers, which never grow."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        return sum(int(line.split()[1]) for line in fh if line.startswith(("Private_Clean:", "Private_Dirty:"))) / 1024


def _recycle_when_grown(limit_mb):
    """gunicorn's post_request hook: a worker whose own memory has grown past ``limit_mb`` finishes the requests it
    holds and exits, and the master starts a fresh one (as gunicorn's max_requests does, but only for a worker
    that has grown, so workers started together are not all replaced at the same moment)."""
    def post_request(worker, req, environ, resp):
        worker.asset_map_served = served = getattr(worker, "asset_map_served", 0) + 1
        if served % MEMORY_CHECK_EVERY or not worker.alive:
            return
        held = own_memory_mb()
        if held > limit_mb:
            worker.log.info("worker %s holds %.0f MB of its own, over WORKER_MAX_MB (%s): replacing it after the "
                            "requests it holds", worker.pid, held, limit_mb)
            worker.alive = False
    return post_request


class _Worker(ThreadWorker):
    """gunicorn's threaded worker, accepting only the connections it has threads for: THREADS for the map, plus
    one for each download it is sending (web.gate). Left to itself, gthread accepts up to 1,000 connections per
    worker and queues them behind its own threads, while another worker may be idle: at 20 clients that doubled
    the p95 of cold tiles. Held back, a connection waits in the kernel's queue for whichever worker frees first."""

    @property
    def worker_connections(self):
        return self.wsgi.config["ASSET_MAP"]["THREADS"] + gate.sending(self.wsgi)

    @worker_connections.setter
    def worker_connections(self, _value):
        pass  # set from the settings in ThreadWorker.__init__; the property above is the rule


class _App(BaseApplication):
    def __init__(self, options):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from asset_map.web import create_app

        app = create_app()
        if self.options.get("preload_app"):
            gc.collect()
            gc.freeze()
        return app


def run(*, host, port, workers, threads, max_requests=0, max_mb=0, preload=True):
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": _Worker,
        "worker_connections": threads,
        # No keep-alive: a connection kept open stays with its worker, so a busy worker's clients wait while another
        # is idle. A reverse proxy in front keeps the clients' connections alive.
        "keepalive": 0,
        "timeout": 60,
        "graceful_timeout": 10,
        # A backstop by request count (0: never); a worker that leaks is replaced by its memory (max_mb) instead.
        "max_requests": max_requests,
        "max_requests_jitter": max_requests // 2,
        "accesslog": "-",
        "preload_app": preload,
        # The workers' heartbeat files: on a busy disk a heartbeat can stall and get a healthy worker killed.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
    }
    if max_mb > 0:
        options["post_request"] = _recycle_when_grown(max_mb)
    _App(options).run()
