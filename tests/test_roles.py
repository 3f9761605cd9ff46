"""Least privilege in the database (asset_map.store.roles, asset_map.store.cluster): the app's role reads and writes
the data, imports registers (creating their partitions), but cannot truncate, change or disable the triggers of the
audit log, nor run programs on the server; the project's own cluster trusts nobody, and an old trusting cluster is
converted without losing its data."""

import subprocess

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from asset_map.registers import importer
from asset_map.store import roles
from asset_map.store.cluster import SUPERUSER, Cluster, _bindir
from tests.test_consent import SIX


OWNER_PW, APP_PW = "owner-test-password", "app-test-password"


def _as(url, role, password):
    """``url`` (a superuser's) for another role."""
    head, _, tail = url.partition("@")
    scheme = head.split("//")[0]
    return create_engine(f"{scheme}//{role}:{password}@{tail}", poolclass=NullPool)


@pytest.fixture
def roles_db(ref_db):  # noqa: F811
    superuser = create_engine(ref_db, poolclass=NullPool)
    database = ref_db.rsplit("/", 1)[1]
    with superuser.begin() as conn:
        for statement in roles.create_sql(database, owner_password=OWNER_PW, app_password=APP_PW):
            conn.execute(text(statement))
        for statement in roles.adopt_sql():
            conn.execute(text(statement))
    owner = _as(ref_db, roles.OWNER, OWNER_PW)
    with owner.begin() as conn:
        assert roles.grant(conn)
    yield _as(ref_db, roles.APP, APP_PW), owner
    # Roles belong to the whole (shared) test server: leave it as it was.
    with superuser.begin() as conn:
        conn.execute(text(f"REASSIGN OWNED BY {roles.APP}, {roles.OWNER} TO CURRENT_USER"))
        conn.execute(text(f"DROP OWNED BY {roles.APP}, {roles.OWNER}"))
        conn.execute(text(f"DROP ROLE {roles.APP}, {roles.OWNER}"))
    superuser.dispose()


@pytest.mark.parametrize("statement", [
    "TRUNCATE audit_log",
    "DELETE FROM audit_log",
    "UPDATE audit_log SET actor = 'nobody'",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate",
    "DROP TABLE audit_log",
    "COPY (SELECT 1) TO PROGRAM 'id'",
    "CREATE ROLE intruder SUPERUSER",
])
def test_the_app_role_cannot_touch_the_audit_log_or_the_server(roles_db, statement):
    app, owner = roles_db
    with app.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied|must be owner|must be superuser|append-only|"
                                             "pg_execute_server_program|only roles with"):
            conn.execute(text(statement))


def test_the_check_can_fail_the_owner_could(roles_db):
    """The owner role (migrations) can disable the log's triggers: the app's refusal above is its role's doing."""
    app, owner = roles_db
    with owner.connect() as conn:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate"))
        conn.rollback()


def test_the_app_role_reads_writes_and_imports(roles_db):
    app, owner = roles_db
    report = importer.import_register(app, SIX, register="people-as-app")  # a new partition, attached
    assert report.imported == 6
    with app.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM assets WHERE register = 'people-as-app'")).scalar() == 6
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'import'")).scalar() >= 1
        assert conn.execute(text("SELECT current_user")).scalar() == roles.APP
    assert importer.import_register(app, SIX, register="people-as-app").unchanged == 6


def test_an_old_trusting_cluster_is_secured_without_losing_data():
    import tempfile
    from pathlib import Path

    top = Path(tempfile.mkdtemp(prefix="asset-map-trust-"))
    top.chmod(0o755)  # the postgres user must reach it when the tests run as root
    root = top / "pg"
    root.mkdir()
    cluster = Cluster(root)  # the project's own kind: it gets the owner and app roles
    # A cluster as asset-map made them before issue 12: everybody trusted.
    cluster.root.mkdir(exist_ok=True)
    cluster.data.mkdir()
    cluster.socket_dir.mkdir()
    cluster.log.touch()
    cluster._give_to_owner(cluster.root, cluster.data, cluster.socket_dir, cluster.log)
    cluster.data.chmod(0o700)
    cluster._run([str(_bindir() / "initdb"), "-D", str(cluster.data), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8"])
    opts = f"-p {cluster.port} -k {cluster.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    cluster._run([str(_bindir() / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.log), "-o", opts, "-w",
                  "start"])
    try:
        cluster.psql("CREATE DATABASE asset_map")
        cluster.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('data')", database="asset_map")
        cluster.stop()
        cluster.start()  # what `make run` does
        hba = subprocess.run(cluster._as_owner(["cat", str(cluster.data / "pg_hba.conf")]), capture_output=True,
                             text=True, check=True).stdout
        assert "trust" not in [line.split()[-1] for line in hba.splitlines() if line and not line.startswith("#")]
        nobody = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{cluster.port}/asset_map"
        with pytest.raises(DBAPIError, match="password"):
            create_engine(nobody, poolclass=NullPool).connect()
        with create_engine(cluster.url(role=roles.OWNER), poolclass=NullPool).connect() as conn:
            assert conn.execute(text("SELECT v FROM kept")).scalar() == "data"
        assert (root / "passwords.json").stat().st_mode & 0o077 == 0
    finally:
        cluster.destroy()
        import shutil

        shutil.rmtree(top, ignore_errors=True)
