"""The app under gunicorn in a subprocess, exactly as `asset-map serve` runs it, for load benchmarks.

Loopback only. ``rss_mb()`` is the memory of the master and all its workers together, what the machine pays.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from asset_map.errors import ConfigError


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command():
    exe = Path(sys.executable).with_name("asset-map")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("asset-map")
    return [found] if found else [sys.executable, "-c", "from asset_map.cli import cli; cli()"]


def get(url, *, timeout=30, headers=None):
    """(status, body bytes, seconds); 4xx and 5xx are answers, not exceptions."""
    req = urllib.request.Request(url, headers=headers or {})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            body, status = res.read(), res.status
    except urllib.error.HTTPError as err:
        body, status = err.read(), err.code
    return status, body, time.perf_counter() - started


class Server:
    """``with Server(database_url, workdir, WORKERS=2) as srv: srv.url``; extra keywords are settings. ``worker``:
    also the background import worker `asset-map serve` starts (off by default, so its memory is not counted)."""

    def __init__(self, database_url, workdir, *, worker=False, **settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ASSET_MAP_DATABASE_URL": database_url, "ASSET_MAP_VAR_DIR": str(self.workdir),
               "ASSET_MAP_SECRET_KEY": "bench", "ASSET_MAP_TILES": "none", "ASSET_MAP_HOST": "127.0.0.1"}
        env.update({f"ASSET_MAP_{k}": str(v) for k, v in settings.items()})
        self.log = self.workdir / f"server-{self.port}.log"
        self._log = open(self.log, "w")
        extra = [] if worker else ["--no-worker"]
        self.proc = subprocess.Popen([*serve_command(), "serve", "--port", str(self.port), *extra], env=env,
                                     stdout=subprocess.DEVNULL, stderr=self._log)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"the server exited with status {self.proc.returncode}; see {self.log}"
                raise ConfigError(msg)
            try:
                if get(self.url + "/healthz", timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        msg = f"the server did not answer /healthz within {timeout} s; see {self.log}"
        raise ConfigError(msg)

    def rss_mb(self):
        try:
            master = psutil.Process(self.proc.pid)
            procs = [master, *master.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.NoSuchProcess:
            return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self):
        return self.wait_ready()

    def __exit__(self, *exc):
        self.stop()
