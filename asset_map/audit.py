"""The audit log: who did what, when, with which filters and how many rows. Append-only: the table is only ever
inserted into by this module."""

import json

from sqlalchemy import text

ACTIONS = ("sign-in", "sign-in-failed", "sign-out", "import", "export", "role-change", "user-add", "user-remove",
           "token-create", "token-revoke")


def record(conn, *, actor, action, target=None, details=None, rows=None):
    """Append one event inside the caller's transaction, so an event is logged exactly when its work commits."""
    if action not in ACTIONS:
        msg = f"unknown audit action {action!r}"
        raise ValueError(msg)
    conn.execute(text("INSERT INTO audit_log (actor, action, target, details, rows) "
                      "VALUES (:a, :x, :t, CAST(:d AS jsonb), :r)"),
                 {"a": actor, "x": action, "t": target, "d": json.dumps(details or {}, default=str), "r": rows})
