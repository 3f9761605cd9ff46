"""Engine, connections and schema upgrades.

The database is ``ASSET_MAP_DATABASE_URL`` when set; otherwise the project's own cluster under var/ (started on
first use). Engines are pooled with limits and a statement timeout, so one slow query cannot hold a worker.
"""

import logging
import os
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from asset_map.config import load_settings
from asset_map.errors import DatabaseUnavailable
from asset_map.store.cluster import Cluster

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
LOW_PRIORITY = 19  # the nice value of a low-priority engine's backends: they run when the machine has time

_engines = {}
_lock = threading.Lock()


def local_cluster(settings=None):
    settings = settings or load_settings()
    return Cluster(Path(settings["VAR_DIR"]) / "pg")


def database_url(settings=None, *, start=True, role="app"):
    """The configured URL, or the local cluster's (started when ``start``). ``role``: "app" (what the app connects
    as) or "owner" (migrations: ``OWNER_DATABASE_URL``, else ``DATABASE_URL``)."""
    settings = settings or load_settings()
    if settings["DATABASE_URL"]:
        url = settings["DATABASE_URL"]
        if role == "owner" and settings.get("OWNER_DATABASE_URL"):
            url = settings["OWNER_DATABASE_URL"]
        # Plain postgresql:// URLs would pick psycopg2, which we do not install.
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    from asset_map.store import roles

    cluster = local_cluster(settings)
    if start:
        cluster.start()
    return cluster.url(role=roles.OWNER if role == "owner" else roles.APP)


def make_engine(url, settings=None, *, pre_ping=True, server_options="", low_priority=False, **options):
    """A pooled engine whose failures are quick: a dead database is found by a pre-ping before a request uses a
    connection (so service resumes by itself when the database returns), connecting gives up after
    CONNECT_TIMEOUT_S, waiting for a free connection after POOL_TIMEOUT_S, and every statement is cancelled by the
    server after STATEMENT_TIMEOUT_MS.

    ``low_priority``: for bulk reads made outside any request (kept downloads made ahead of time) that should yield
    the CPU to interactive requests. PostgreSQL has no priority of its own, so each connection's backend process is
    given nice LOW_PRIORITY when it runs on this machine and we may (the project's own cluster, run by our user, or
    as root); an external server's backends are left as they are. A nice value cannot be lowered again without
    privileges, so such an engine has no pool: its backends exit when their connections close. (Not for requests:
    a download made at nice 19 while 20 clients kept the CPU busy took minutes, holding its thread all along.)"""
    settings = settings or load_settings()
    if low_priority:
        from sqlalchemy.pool import NullPool

        pool = {"poolclass": NullPool}
    else:
        # Connections older than pool_recycle are replaced, so a server-side idle timeout never hands us a dead one.
        pool = {"pool_size": settings["POOL_SIZE"], "max_overflow": settings["POOL_SIZE"],
                "pool_timeout": settings["POOL_TIMEOUT_S"], "pool_recycle": 1800}
    engine = create_engine(
        url,
        pool_pre_ping=pre_ping,
        **pool,
        **options,
        connect_args={
            "connect_timeout": settings["CONNECT_TIMEOUT_S"],
            "options": f"-c statement_timeout={settings['STATEMENT_TIMEOUT_MS']} {server_options}".strip(),
            "application_name": "asset-map",
        },
    )
    if low_priority:
        event.listen(engine, "connect", _lower_backend_priority)
    return engine


def _lower_backend_priority(dbapi_connection, _record):
    """Renice the new connection's backend when it is a PostgreSQL process of this machine (a remote server's pid
    means nothing here, so the host must be local and the pid's process named postgres)."""
    info = dbapi_connection.info
    if not (info.host in ("localhost", "127.0.0.1", "::1") or info.host.startswith("/")):
        return
    pid = info.backend_pid
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return
        os.setpriority(os.PRIO_PROCESS, pid, max(LOW_PRIORITY, os.getpriority(os.PRIO_PROCESS, pid)))
    except OSError as err:  # not ours to renice (another user's server): it runs as it is
        log.debug("backend %s keeps its priority: %s", pid, err)


def _engine_key(url, settings):
    return (url, settings["POOL_SIZE"], settings["POOL_TIMEOUT_S"], settings["CONNECT_TIMEOUT_S"],
            settings["STATEMENT_TIMEOUT_MS"])


# psycopg prepares a statement it sees often, and PostgreSQL then plans it once without its values: for a bounding
# box it guesses a few rows, and an OGC page of a district (16,000 matches) took 50 ms by that plan instead of 3 ms
# planned with its box. The read engine plans every execution (a millisecond at most here).
# No JIT either: these are short reads (a tile, a page) whose estimated cost can still pass jit_above_cost, and
# compiling them with LLVM costs more than it saves. Set for the session because autocommit has no transaction for a
# SET LOCAL to live in (the other engine's readers say SET LOCAL jit = off in theirs).
READ_SERVER_OPTIONS = "-c plan_cache_mode=force_custom_plan -c jit=off"


def get_engine(settings=None, *, reads=False):
    """One pooled engine per URL (and pool settings) and process. ``reads``: the engine for reads at a high rate:
    autocommit (no BEGIN/ROLLBACK round trips) and no ping on checkout (a connection the server dropped fails one
    request and is then replaced); several statements on one of its connections do not share a snapshot."""
    settings = settings or load_settings()
    url = database_url(settings)
    key = (*_engine_key(url, settings), reads)
    with _lock:
        if key not in _engines:
            if reads:
                _engines[key] = make_engine(url, settings, pre_ping=False, isolation_level="AUTOCOMMIT",
                                            server_options=READ_SERVER_OPTIONS)
                _ping_when_idle(_engines[key], READ_PING_IDLE_S)
            else:
                _engines[key] = make_engine(url, settings)
        return _engines[key]


# The read engine pings a connection only when it sat unused this long: at its rates a ping on every checkout is a
# round trip per statement, but a connection idle through a database restart must be replaced before a request
# uses it (the map page after a restart answered 503 once per pooled connection). A restart takes longer than this;
# a server under load reuses its connections within milliseconds and never pings.
READ_PING_IDLE_S = 0.2


def _ping_when_idle(engine, idle_s):
    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, proxy):
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            dbapi_connection.execute("SELECT 1")
        except Exception as err:  # noqa: BLE001 - any failure means this connection is gone
            raise DisconnectionError("idle connection lost") from err   # the pool connects afresh


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

    from asset_map.store import roles

    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        command.upgrade(alembic_config(conn), revision)
        # The app role's rights on what the migrations made (when the roles exist: the project's own cluster, or
        # a server set up as the README says).
        roles.grant(conn)


def owner_engine(settings=None):
    """An engine of the owner role, for migrations (not pooled: used once)."""
    from sqlalchemy.pool import NullPool

    settings = settings or load_settings()
    return create_engine(database_url(settings, role="owner"), poolclass=NullPool)


def current_revision(engine):
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            return None


_CAUSES = (
    # (words in the driver's message, what /healthz says) - the driver's text itself may name hosts and users.
    ("connection refused", "connection refused: PostgreSQL is not running or not listening"),
    ("timeout expired", "connection timed out: the database host does not answer"),
    ("starting up", "the database is starting up"),
    ("shutting down", "the database is shutting down"),
    ("terminating connection", "the database closed the connection (restart or administrator command)"),
    ("server closed the connection", "the database closed the connection (restart or administrator command)"),
    ("too many clients", "the database has no free connection slots"),
    ("does not exist", "the configured database does not exist"),
    ("password authentication failed", "the database refused our credentials"),
    ("canceling statement due to statement timeout", "the health query hit the statement timeout"),
)


def failure_cause(err):
    """A short, safe description of why the database cannot be used, for /healthz and the log."""
    if isinstance(err, PoolTimeout):
        return "every database connection is busy (pool exhausted)"
    text_ = str(getattr(err, "orig", None) or err).lower()
    for words, cause in _CAUSES:
        if words in text_:
            return cause
    return "the database cannot be reached"


def health(engine):
    """What /healthz reports: database reachable, PostGIS version, schema revision; and why not, when not."""
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return {"status": "ok", "database": "ok", "postgis": postgis, "schema": revision}
    except (OperationalError, PoolTimeout) as err:
        cause = failure_cause(err)
        log.warning("health check: database unavailable: %s (%s)", cause, err)
        return {"status": "unavailable", "database": "unreachable", "cause": cause,
                "reason": f"The database cannot be reached ({cause}). The service resumes by itself when it "
                          "returns."}
    except DBAPIError as err:
        log.warning("health check failed: %s", err)
        return {"status": "unavailable", "database": "error",
                "reason": "The database answered with an error (schema not migrated or PostGIS missing?)."}


def unavailable(err):
    msg = "The database is not available right now. Please try again in a moment."
    return DatabaseUnavailable(msg)
