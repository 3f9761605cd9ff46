"""Shared fixtures: a throwaway PostGIS cluster for the whole run, databases made from a migrated template, and the
Flask app/client over them.

PostGIS tests skip only when PostGIS cannot be had *and* ASSET_MAP_REQUIRE_POSTGIS is not set; CI sets it, so there
an unreachable PostGIS fails the run.
"""

import contextlib
import glob
import os
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from asset_map.config import PROJECT_DIR, find_reference_pack

PACK = find_reference_pack() or PROJECT_DIR.parent / "shared" / "data" / "staffordshire"
REQUIRE_POSTGIS = os.environ.get("ASSET_MAP_REQUIRE_POSTGIS") == "1"
# Under .ci/run (or any CI) a missing reference pack fails the tests that need it instead of skipping them.
REQUIRE_PACK = os.environ.get("ASSET_MAP_REQUIRE_PACK") == "1" or bool(os.environ.get("CI"))
ARTIFACTS = Path(__file__).parent / "artifacts"


def _unavailable(reason):
    if REQUIRE_POSTGIS:
        pytest.fail(f"PostGIS is required (ASSET_MAP_REQUIRE_POSTGIS=1) but unavailable: {reason}")
    pytest.skip(f"PostGIS unavailable: {reason}")


class Server:
    """A PostgreSQL server for tests: a throwaway local cluster, or one given by ASSET_MAP_TEST_SERVER_URL."""

    def __init__(self):
        self.cluster = None
        base = os.environ.get("ASSET_MAP_TEST_SERVER_URL")
        if base:
            self.base = base.rstrip("/")
        else:
            from asset_map.store.cluster import Cluster

            root = tempfile.mkdtemp(prefix="asset-map-test-pg-")
            os.chmod(root, 0o755)
            self.cluster = Cluster(root, durable=False)
            self.cluster.start()
            self.base = self.cluster.url("").rstrip("/")

    def url(self, database):
        return f"{self.base}/{database}"

    def admin(self):
        return create_engine(self.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def create(self, name, template=None):
        with self.admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            tmpl = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{tmpl}'))
        return self.url(name)

    def drop(self, name):
        with self.admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self):
        if self.cluster:
            self.cluster.destroy()


@pytest.fixture(scope="session")
def pg_server():
    try:
        server = Server()
    except Exception as err:  # noqa: BLE001 - any failure to get a server is reported the same way
        _unavailable(err)
    yield server
    server.close()


def _migrated(url):
    from asset_map.store.db import upgrade

    engine = create_engine(url, poolclass=NullPool)
    upgrade(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def template_db(pg_server):
    """An empty, migrated database that each test's database is copied from."""
    url = pg_server.create("am_template")
    with create_engine(url, poolclass=NullPool).begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    _migrated(url)
    return "am_template"


@contextlib.contextmanager
def copied_database(server, template):
    """A database copied from ``template`` for the block's duration; its URL."""
    from asset_map.store.db import dispose_engines

    name = f"am_{uuid.uuid4().hex[:10]}"
    url = server.create(name, template=template)
    try:
        yield url
    finally:
        dispose_engines()  # a database with open connections cannot be dropped
        server.drop(name)


@contextlib.contextmanager
def engine_over(url):
    """A pooled engine over ``url`` for the block's duration."""
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    eng = make_engine(url, load_settings())
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def db_url(pg_server, template_db):
    """A fresh migrated database for one test."""
    with copied_database(pg_server, template_db) as url:
        yield url


@pytest.fixture
def engine(db_url):
    with engine_over(db_url) as eng:
        yield eng


# -- the reference data an import needs (districts, both LSOA vintages, postcodes), loaded once -------------
def load_reference(engine, pack):
    from asset_map.reference import load

    """What an import needs: districts, both LSOA vintages and the postcode gazetteers (no need indicators)."""
    load.load_districts(engine, pack / "boundaries" / "districts.geojson")
    load.load_areas(engine, sorted(glob.glob(str(pack / "boundaries" / "lsoa2011" / "*.geojson"))), vintage=2011)
    load.load_areas(engine, pack / "boundaries" / "lsoa2021_imd2025.geojson", vintage=2021)
    for name in ("codepoint_open_2014.csv", "codepoint_open_2014_outside_area.csv", "nspl_nov2021_TF.csv"):
        load.load_postcodes(engine, pack / "postcodes" / name)


@pytest.fixture(scope="session")
def reference_template(pg_server, template_db, pack):
    """A database with the reference data an import needs, loaded once; tests get copies of it."""
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    name = f"am_regref_{uuid.uuid4().hex[:8]}"
    engine = make_engine(pg_server.create(name, template=template_db), load_settings())
    load_reference(engine, pack)
    engine.dispose()
    yield name
    pg_server.drop(name)


@pytest.fixture
def ref_db(pg_server, reference_template):
    """A fresh copy of the reference database for one test (imports write to it)."""
    with copied_database(pg_server, reference_template) as url:
        yield url


@pytest.fixture(scope="session")
def pack():
    if not PACK.is_dir():
        msg = f"reference pack not found at {PACK}: set ASSET_MAP_REFERENCE_DIR to its folder"
        if REQUIRE_PACK:
            pytest.fail(f"{msg} (ASSET_MAP_REQUIRE_PACK=1 or CI is set, so this fails rather than skips)")
        pytest.skip(msg)
    return PACK


@pytest.fixture(scope="session")
def pack_db(pg_server, template_db, pack):
    """A database with the whole Staffordshire pack loaded, shared read-only by the tests that need it."""
    from asset_map.config import load_settings
    from asset_map.reference.pack import load_pack
    from asset_map.store.db import make_engine

    url = pg_server.create("am_pack", template=template_db)
    eng = make_engine(url, load_settings())
    load_pack(eng, pack)
    eng.dispose()
    return url


@pytest.fixture
def pack_engine(pack_db):
    with engine_over(pack_db) as eng:
        yield eng


def make_app(url, tmp_path, **extra):
    from asset_map.web import create_app

    config = {"DATABASE_URL": url, "TESTING": 1, "VAR_DIR": str(tmp_path), "SECRET_KEY": "test", "TILES": "none"}
    config.update(extra)
    return create_app(config)


def hold_slot(app, name):
    """Take one of the app's ``name`` slots (web.slots) on another thread, as a concurrent request would; returns
    an object whose ``release()`` gives it back."""
    import threading

    from asset_map.web.slots import slots

    taken, done = threading.Event(), threading.Event()

    def hold():
        with app.app_context():
            held = slots(name).acquire()
        taken.set()
        done.wait(60)
        held.release()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(10)

    class _Release:
        def release(self):
            done.set()
            thread.join(10)

    return _Release()


@pytest.fixture
def app(db_url, tmp_path):
    return make_app(db_url, tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def pack_app(pack_db, tmp_path):
    return make_app(pack_db, tmp_path)


@pytest.fixture
def pack_client(pack_app):
    return pack_app.test_client()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class LiveServer:
    """The app served by werkzeug in a thread on a free loopback port, for browsers and real HTTP clients."""

    def __init__(self, app):
        import threading

        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()


@pytest.fixture
def live_server():
    servers = []

    def start(app):
        server = LiveServer(app)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def geo_db(pg_server, pack_db, pack, tmp_path_factory):
    """The pack, its two council library registers and a small Tamworth community register, then ~60 'electoral
    divisions' (dissolved from the pack's LSOAs, tests/geography_data.py) loaded from a GeoPackage in British
    National Grid, and a pilot neighbourhood drawn in Tamworth. Shared: tests that change it undo their changes.
    Returns (url, the divisions load's summary, the divisions file)."""
    from asset_map.registers import importer
    from asset_map.store import geographies
    from asset_map.store.db import dispose_engines
    from tests.geography_data import PILOT, divisions

    dispose_engines()  # a template database with open connections cannot be copied
    path = tmp_path_factory.mktemp("geo") / "divisions.gpkg"
    divisions(pack).to_file(path, driver="GPKG")
    url = pg_server.create("am_geo", template="am_pack")
    with engine_over(url) as eng:
        for name in ("libraries_staffordshire", "libraries_stoke"):
            importer.import_register(eng, pack / "registers" / f"{name}.csv", register=name)
        importer.import_register(eng, Path(__file__).parent / "data" / "tamworth_community.csv",
                                 register="tamworth_community")
        done = geographies.load(eng, "divisions", path, label="Electoral divisions", actor="test")
        geographies.save_drawn(eng, "pilot-neighbourhoods", "PN-01", "Tamworth town centre", PILOT,
                               actor="officer@example.org")
    return url, done, path


@pytest.fixture
def geo_engine(geo_db):
    with engine_over(geo_db[0]) as eng:
        yield eng


# The pack with its libraries and a walk network over Tamworth, shared by the network report and isochrone tests.
from tests.network_data import walk_db  # noqa: E402,F401
