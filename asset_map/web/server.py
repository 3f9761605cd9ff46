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
        # The workers' heartbeat files: on a busy disk a heartbeat can stall and get a healthy worker killed.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
    }).run()
