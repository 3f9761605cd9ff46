"""Production serving under gunicorn, configured from settings rather than a gunicorn config file."""

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

        return create_app()


def run(*, host, port, workers, threads, max_requests=20000):
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
        "preload_app": False,
        # The workers' heartbeat files: on a busy disk a heartbeat can stall and get a healthy worker killed.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
    }).run()
