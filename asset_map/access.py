"""Bulk reads and anonymous access, logged without flooding the log. Nothing here imports Flask.

- A signed-in user's (or token's) bulk read of data is an export: one audit event with who, what, filters and rows.
- The anonymous public's downloads, and sign-ins refused by the rate limit, are *counted* per hour, kind and target
  in ``access_counts`` (one row per hour however many requests), so nobody can flood the audit log.
"""

from sqlalchemy import text

from asset_map import audit

ANONYMOUS = "anonymous"


def count(conn, kind, target):
    """Add one to this hour's count of ``kind`` (e.g. "download", "sign-in-refused") for ``target``."""
    conn.execute(text(
        "INSERT INTO access_counts (hour, kind, target, n) VALUES (date_trunc('hour', now()), :k, :t, 1) "
        "ON CONFLICT (hour, kind, target) DO UPDATE SET n = access_counts.n + 1"),
        {"k": str(kind)[:32], "t": str(target)[:200]})


def record_read(conn, *, actor, target, details=None, rows=None):
    """A bulk read: audited as an export for a known actor, counted per hour for the anonymous."""
    if actor == ANONYMOUS:
        count(conn, "download", target)
    else:
        audit.record(conn, actor=actor, action="export", target=target, details=details, rows=rows)


def counts(engine, *, since_hours=24 * 7):
    """The counters of the last ``since_hours`` hours, newest first: [{hour, kind, target, n}]."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT hour, kind, target, n FROM access_counts "
                                 "WHERE hour > now() - make_interval(hours => :h) ORDER BY hour DESC, kind, target"),
                            {"h": int(since_hours)}).mappings().all()
    return [dict(r) for r in rows]
