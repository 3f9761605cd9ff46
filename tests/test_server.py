"""gunicorn as `asset-map serve` runs it: a worker that has grown past WORKER_MAX_MB is replaced, one at a time, and
no request is lost while it is."""

import signal
import time
import urllib.request

import psutil
import pytest

from asset_map.web import server
from tests.test_faults import _serve, _wait_for

REQUESTS = 2 * server.MEMORY_CHECK_EVERY + 20


def _workers_seen(proc, base):
    """Send REQUESTS requests one after another, noting every worker pid seen meanwhile; all must succeed."""
    seen = set()
    for _ in range(REQUESTS):
        with urllib.request.urlopen(base + "/static/css/site.css", timeout=10) as res:
            assert res.status == 200
        seen.update(c.pid for c in psutil.Process(proc.pid).children())
    return seen


def _run(db_url, tmp_path, max_mb):
    proc, base = _serve(db_url, tmp_path, WORKERS=1, WORKER_MAX_MB=max_mb, MAX_REQUESTS=0)
    try:
        _wait_for(base + "/healthz", 200, timeout=60)
        seen = _workers_seen(proc, base)
        time.sleep(1)  # a replacement started by the last check is up
        return seen, (tmp_path / "server.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.mark.slow
def test_a_worker_grown_past_the_limit_is_replaced_without_losing_a_request(db_url, tmp_path):
    # Every worker holds more than 1 MB of its own, so each check replaces it.
    seen, log = _run(db_url, tmp_path, max_mb=1)
    assert len(seen) >= 2, seen
    assert "over WORKER_MAX_MB (1)" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_with_no_limit_the_worker_is_kept(db_url, tmp_path):
    seen, log = _run(db_url, tmp_path, max_mb=0)
    assert len(seen) == 1, seen
    assert "WORKER_MAX_MB" not in log


def test_own_memory_counts_private_pages_only():
    own = server.own_memory_mb()
    rss = psutil.Process().memory_info().rss / 2**20
    assert 1 < own <= rss
    grown = bytearray(64 * 2**20)  # written pages are this process's own
    grown[::4096] = b"x" * len(grown[::4096])
    assert server.own_memory_mb() - own > 60


def test_a_worker_takes_connections_for_its_map_threads_and_the_downloads_it_sends(db_url, tmp_path):
    from types import SimpleNamespace

    from asset_map.web import gate
    from tests.conftest import make_app

    app = make_app(db_url, tmp_path, THREADS=2, EXPORT_THREADS=2)
    worker = SimpleNamespace(wsgi=app)
    taking = server._Worker.worker_connections.fget
    assert taking(worker) == 2
    with app.test_request_context():
        give_back = gate.download()  # a request turns out to be a download
        assert taking(worker) == 3  # it no longer counts against the map's threads
        give_back()
    assert taking(worker) == 2
