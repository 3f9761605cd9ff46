"""Production serving under gunicorn, configured from settings rather than a gunicorn config file.

The app is built once in the master and then forked (``preload_app``), so the workers share its code and
read-only data (settings, layer files, templates, styles) instead of each building its own copy. ``gc.freeze()``
before the fork keeps the garbage collector from writing to those shared objects (and so copying their pages)
when it scans. Nothing made before the fork holds a database connection: the engine is made by each worker on its
first request (web.extensions.engine).
"""

import gc
import logging
import os

from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


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


def ready_replacement(server, worker):
    """gunicorn's post_fork hook, in the new worker before it takes a request. A worker that replaces another (after
    MAX_REQUESTS, or one that died) first draws the map page once for itself, as the worker it replaces had: the
    first map page of a worker imports the map's libraries and draws the boundary layers (1.7 s in one process, over
    4 s under load), and a recycle during a benchmark's exports put a 4.3 s p95 on the map page. The first workers
    stay lean until they draw a map (issue 16's idle memory). A failure only costs the first reader that time."""
    if worker.age <= server.num_workers:
        return
    try:
        res = worker.app.wsgi().test_client().get("/")
        res.close()
    except Exception as err:  # noqa: BLE001 - the database may be down: the worker serves as it would have
        log.warning("replacement worker %s not warmed: %s", worker.pid, err)


def run(*, host, port, workers, threads, max_requests=20000, preload=True):
    _App({
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 10,
        # Recycle workers now and then so a slow leak cannot grow without bound (0: never, as the soak test runs).
        "max_requests": max_requests,
        "max_requests_jitter": max_requests // 10,
        "accesslog": "-",
        "preload_app": preload,
        "post_fork": ready_replacement,
        # The workers' heartbeat files: on a busy disk a heartbeat can stall and get a healthy worker killed.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
    }).run()
