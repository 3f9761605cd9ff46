"""One partition of ``assets`` per register (migration 0009), and the bulk path that creates one.

A register seen for the first time is written into a table of its own with no index, indexed in bulk (a sorted
build, several times faster than maintaining five indexes row by row) and only then attached to ``assets``. Attaching
takes a lock that lets readers and other registers' writers carry on; the whole thing is inside the caller's
transaction, so a failure leaves no partition behind.
"""

import hashlib
import re

from psycopg import sql
from sqlalchemy import text

from asset_map.store import change_stamps

PARENT = "assets"
_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (?:ONLY )?\S+ (.*)$")


def partition_name(register):
    """The partition's table name: derived from the register's name, so it needs no lookup table. Migration 0009
    names existing partitions the same way ('assets_r_' || left(md5(register), 16))."""
    return "assets_r_" + hashlib.md5(register.encode("utf-8")).hexdigest()[:16]


def existing(conn, registers):
    """The registers among ``registers`` that already have a partition."""
    names = {partition_name(r): r for r in registers}
    rows = conn.execute(text("SELECT relname FROM pg_class WHERE relname = ANY(:n) AND relispartition"),
                        {"n": list(names)})
    return {names[r[0]] for r in rows}


def ensure(conn, register):
    """An (empty) partition for ``register`` unless it has one, for code that writes with plain SQL."""
    if not existing(conn, [register]):
        create_detached(conn, register)
        attach(conn, register)


def create_detached(conn, register):
    """An empty table shaped like ``assets`` (defaults included, so ids come from the shared sequence), not yet
    attached; returns its name. Fill it, then call ``attach``."""
    name = partition_name(register)
    conn.execute(text(f'CREATE TABLE "{name}" (LIKE {PARENT} INCLUDING DEFAULTS)'))
    # Proves every row belongs to the register, so ATTACH need not scan the table to check.
    conn.execute(text(ddl(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_only" CHECK (register = {{}})',
                           register, conn)))
    return name


def attach(conn, register):
    """Index the filled partition like its parent (the same constraints and indexes, so ATTACH adopts them rather
    than building its own) and attach it to ``assets``."""
    name = partition_name(register)
    index_like_parent(conn, PARENT, name)
    conn.execute(text(ddl(f'ALTER TABLE {PARENT} ATTACH PARTITION "{name}" FOR VALUES IN ({{}})', register, conn)))
    conn.execute(text(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_only"'))
    # Attaching fires no trigger on ``assets``: the tile caches learn of the new rows here.
    change_stamps.record(conn, "assets")
    return name


def index_like_parent(conn, parent, name):
    """Give table ``name`` (filled, not yet attached) the constraints and indexes of partitioned table ``parent``,
    built in bulk, so that ATTACH adopts them rather than building its own."""
    for conname, definition in conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
            "AND contype IN ('p', 'u') ORDER BY conname"), {"t": parent}):
        conn.execute(text(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_{conname}" {definition}'))
    for index, definition in conn.execute(text(
            "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = CAST(:t AS regclass) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname"), {"t": parent}):
        rest = _INDEX.match(definition)
        conn.execute(text(f'CREATE {rest.group(1) or ""}INDEX "{name}_{index}" ON "{name}" {rest.group(3)}'))


def ddl(template, value, conn):
    """DDL cannot take bound parameters: the value (a register's or a geography's name) goes in as a properly quoted
    literal."""
    literal = sql.Literal(value).as_string(conn.connection.driver_connection)
    return template.format(literal.replace(":", r"\:"))
