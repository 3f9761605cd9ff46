"""Engine, connections and schema upgrades.

The database is ``ASSET_MAP_DATABASE_URL`` when set; otherwise the project's own cluster under var/ (started on
first use). Engines are pooled with limits and a statement timeout, so one slow query cannot hold a worker.
"""

import logging
import threading
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from asset_map.config import load_settings
from asset_map.errors import DatabaseUnavailable
from asset_map.store.cluster import Cluster

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"

_engines = {}
_lock = threading.Lock()


def local_cluster(settings=None):
    settings = settings or load_settings()
    return Cluster(Path(settings["VAR_DIR"]) / "pg")


def database_url(settings=None, *, start=True):
    """The configured URL, or the local cluster's (started when ``start``)."""
    settings = settings or load_settings()
    if settings["DATABASE_URL"]:
        url = settings["DATABASE_URL"]
        # Plain postgresql:// URLs would pick psycopg2, which we do not install.
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    cluster = local_cluster(settings)
    if start:
        cluster.start()
    return cluster.url()


def make_engine(url, settings=None, *, pre_ping=True, **options):
    settings = settings or load_settings()
    return create_engine(
        url,
        pool_size=settings["POOL_SIZE"],
        max_overflow=settings["POOL_SIZE"],
        pool_timeout=5,
        pool_pre_ping=pre_ping,
        **options,
        connect_args={
            "connect_timeout": 2,
            "options": f"-c statement_timeout={settings['STATEMENT_TIMEOUT_MS']}",
            "application_name": "asset-map",
        },
    )


def get_engine(settings=None):
    """One pooled engine per URL and process."""
    settings = settings or load_settings()
    url = database_url(settings)
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url, settings)
        return _engines[url]


def dispose_engines():
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine, revision="head"):
    from alembic import command

    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        command.upgrade(alembic_config(conn), revision)


def current_revision(engine):
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            return None


def health(engine):
    """What /healthz reports: database reachable, PostGIS version, schema revision."""
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return {"status": "ok", "database": "ok", "postgis": postgis, "schema": revision}
    except OperationalError as err:
        log.warning("health check: database unreachable: %s", err)
        return {"status": "unavailable", "database": "unreachable",
                "reason": "The database cannot be reached; the service resumes by itself when it returns."}
    except DBAPIError as err:
        log.warning("health check failed: %s", err)
        return {"status": "unavailable", "database": "error",
                "reason": "The database answered with an error (schema not migrated or PostGIS missing?)."}


def unavailable(err):
    msg = "The database is not available right now. Please try again in a moment."
    return DatabaseUnavailable(msg)
