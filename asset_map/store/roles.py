"""Least privilege in the database: an owner role runs the migrations, the app connects as a role that reads and
writes the data but cannot alter, disable triggers on or truncate ``audit_log`` (it does not own it and has only
SELECT and INSERT on it) and cannot run ``COPY ... TO PROGRAM`` (it is neither a superuser nor a member of
``pg_execute_server_program``).

The app owns ``assets`` and its partitions: a register's first import creates its partition and attaches it, which
PostgreSQL allows only to the parent's owner. The owner role is a member of the app role, so migrations can still
alter them. The same SQL sets up an external server (README, "The database").
"""

from sqlalchemy import text

OWNER = "asset_map_owner"
APP = "asset_map_app"


def create_sql(database, *, owner=OWNER, app=APP, owner_password="OWNER_PASSWORD", app_password="APP_PASSWORD"):
    """What a superuser runs once on a server: the two roles, the database's owner, the app's membership."""
    def role(name, password):
        return (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN "
                f"CREATE ROLE {name} LOGIN PASSWORD '{password}'; ELSE ALTER ROLE {name} LOGIN PASSWORD "
                f"'{password}'; END IF; END $$")
    return [
        role(owner, owner_password),
        role(app, app_password),
        f"ALTER ROLE {app} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        f"ALTER ROLE {owner} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        f"GRANT {app} TO {owner}",
        f'ALTER DATABASE "{database}" OWNER TO {owner}',
        f"ALTER SCHEMA public OWNER TO {owner}",
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO {app}',
    ]


def adopt_sql(owner=OWNER):
    """Tables, sequences and views made by the superuser before the roles existed (an older local cluster) pass to
    the owner, except PostGIS's own."""
    return [f"""DO $$ DECLARE r record; BEGIN
        FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')
                 AND pg_get_userbyid(c.relowner) <> '{owner}' AND c.relname <> 'spatial_ref_sys'
                 AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
                 AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid
                                                      AND d.deptype IN ('a', 'i')))
        LOOP
            EXECUTE format('ALTER %s %I OWNER TO {owner}',
                           CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname);
        END LOOP; END $$"""]


def grant_sql(owner=OWNER, app=APP):
    """What the owner runs after every migration: the app's rights on what exists now."""
    return [
        f"GRANT USAGE, CREATE ON SCHEMA public TO {app}",
        f"""DO $$ DECLARE r record; BEGIN
            FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'audit_log'
                     AND pg_get_userbyid(c.relowner) IN ('{owner}', '{app}', current_user)
            LOOP
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %I TO {app}', r.relname);
            END LOOP; END $$""",
        f"GRANT SELECT ON spatial_ref_sys TO {app}",
        f"REVOKE ALL ON audit_log FROM {app}",
        f"GRANT SELECT, INSERT ON audit_log TO {app}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app}",
        # assets (and every partition) belong to the app: a new register's partition is attached by the app.
        f"""DO $$ DECLARE r record; BEGIN
            FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND (c.relname = 'assets' OR c.oid IN
                           (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'assets'::regclass))
                     AND pg_get_userbyid(c.relowner) <> '{app}'
            LOOP
                EXECUTE format('ALTER TABLE %I OWNER TO {app}', r.relname);
            END LOOP; END $$""",
    ]


def exists(conn, app=APP):
    return bool(conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": app}).scalar())


def grant(conn, owner=OWNER, app=APP):
    """Run ``grant_sql`` when the roles exist (a server without them, e.g. a test's, is left as it is)."""
    if not exists(conn, app):
        return False
    for statement in grant_sql(owner, app):
        conn.execute(text(statement))
    return True
