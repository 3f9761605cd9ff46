"""Faults for real: the database stops under a running gunicorn and comes back; an import is killed mid-write."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.factories import load_synthetic

TESTS_DIR = Path(__file__).parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=5):
    """(status, body, seconds) without raising on 5xx."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            body, status = res.read().decode(), res.status
    except urllib.error.HTTPError as err:
        body, status = err.read().decode(), err.code
    return status, body, time.monotonic() - started


def _wait_for(url, status, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = _get(url)
            if last[0] == status:
                return last
        except OSError as err:
            last = err
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer {status} within {timeout} s (last: {last})")


@pytest.fixture
def own_cluster():
    """A cluster of this test's own: the session one is shared and must not be stopped."""
    from asset_map.store.cluster import Cluster

    root = tempfile.mkdtemp(prefix="asset-map-fault-pg-")
    os.chmod(root, 0o755)
    cluster = Cluster(root, durable=False)
    cluster.start()
    yield cluster
    cluster.destroy()


def _serve(url, tmp_path, **settings):
    """`asset-map serve` (gunicorn) on a free port, with 2 workers of 2 threads unless ``settings`` say otherwise."""
    port = _free_port()
    env = {**os.environ, "ASSET_MAP_DATABASE_URL": url, "ASSET_MAP_VAR_DIR": str(tmp_path),
           "ASSET_MAP_SECRET_KEY": "test", "ASSET_MAP_TILES": "none",
           **{f"ASSET_MAP_{k}": str(v) for k, v in {"WORKERS": 2, "THREADS": 2, **settings}.items()}}
    exe = Path(sys.executable).with_name("asset-map")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from asset_map.cli import cli; cli()"]
    # The web server alone: these tests count its gunicorn workers (the import worker has tests of its own).
    proc = subprocess.Popen([*cmd, "serve", "--port", str(port), "--no-worker"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "server.log", "w"))
    return proc, f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_database_stops_and_returns_under_a_running_server(own_cluster, tmp_path):
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine, upgrade

    url = own_cluster.url()
    engine = make_engine(url, load_settings())
    upgrade(engine)
    load_synthetic(engine, tmp_path, areas=30, assets_n=100)
    engine.dispose()
    proc, base = _serve(url, tmp_path)
    try:
        _wait_for(base + "/healthz", 200, timeout=60)
        assert _get(base + "/")[0] == 200
        workers = sorted(c.pid for c in psutil.Process(proc.pid).children())
        assert len(workers) == 2

        own_cluster.stop()
        for _ in range(3):  # every worker and pooled connection finds out, each time quickly
            status, body, seconds = _get(base + "/healthz")
            assert status == 503 and seconds < 1, (status, seconds)
            assert json.loads(body)["cause"] == "connection refused: PostgreSQL is not running or not listening"
            status, body, seconds = _get(base + "/")
            # Refused at once, not waited for (CONNECT_TIMEOUT_S is 2 s); a worker's first map page also imports the
            # map's libraries (lazily, for the memory target), which can take a second on a busy machine.
            assert status == 503 and seconds < 2, (status, seconds)
            assert "The database is not available right now. Please try again in a moment." in body
            assert "Traceback" not in body and "psycopg" not in body
        # What needs no database keeps working.
        assert _get(base + "/static/css/site.css")[0] == 200

        own_cluster.start()
        _wait_for(base + "/healthz", 200, timeout=10)
        for _ in range(4):
            assert _get(base + "/")[0] == 200
        assert proc.poll() is None
        assert sorted(c.pid for c in psutil.Process(proc.pid).children()) == workers, "workers were restarted"
        assert "Traceback" not in (tmp_path / "server.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


KILLED_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from sqlalchemy import create_engine
    from factories import placed_assets
    from asset_map import synth
    from asset_map.store import assets

    rows = placed_assets(synth.generate(areas=30, assets=5000, seed=7))
    rows["register"] = "killed-import"
    engine = create_engine(sys.argv[1], connect_args={"application_name": "killed-import"})
    with engine.begin() as conn:
        assets.ensure_register(conn, "killed-import")
        for batch in range(10_000):
            part = rows.copy()
            part["match_key"] = part["match_key"] + f"-{batch}"
            assets.upsert(conn, part)
            print("written", batch, flush=True)
""")


def test_a_killed_import_leaves_the_database_as_it_was(db_url, engine, tmp_path):
    load_synthetic(engine, tmp_path, areas=30, assets_n=200)
    watch = create_engine(db_url, poolclass=NullPool)

    def state():
        with watch.connect() as conn:
            return (conn.execute(text("SELECT count(*) FROM assets")).scalar(),
                    conn.execute(text("SELECT array_agg(name ORDER BY name) FROM registers")).scalar(),
                    conn.execute(text("SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_stage\\_%'")).scalar())

    before = state()
    assert before[0] > 0
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, db_url, str(TESTS_DIR)], stdout=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stdout:
            if line.startswith("written 1"):
                break
        assert proc.poll() is None, "the writer finished before it could be killed"
        # Mid-way: two batches written, none visible to anyone else.
        assert state() == before
        proc.kill()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while True:  # the server notices the dead client and rolls its transaction back
        with watch.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE application_name = 'killed-import'")).scalar()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == 0
    assert state() == before
    watch.dispose()
