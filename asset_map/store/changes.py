"""Change stamps for caches of derived data (tiles): ``tile_changes`` (migration 0015) gets a row whenever a statement
writes reference data or assets, from database triggers, so every writer is covered. ``stamps`` reads the newest row
per family; a cache entry made under older stamps is stale."""

from sqlalchemy import text

FAMILIES = ("reference", "assets")


def stamps(conn):
    """{family: newest change id}; one index probe per family."""
    sql = ("SELECT f, (SELECT max(id) FROM tile_changes c WHERE c.family = f) "
           "FROM unnest(CAST(:families AS text[])) AS f")
    return {f: int(v or 0) for f, v in conn.execute(text(sql), {"families": list(FAMILIES)})}


def record(conn, family):
    """For writes no trigger sees (attaching a partition that was filled while detached)."""
    conn.execute(text("INSERT INTO tile_changes (family) VALUES (:f)"), {"f": family})
