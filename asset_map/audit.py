"""The audit log: who did what, when, with which filters and how many rows. Append-only: the table is only ever
inserted into by this module."""

import json
from datetime import timezone

from sqlalchemy import text

from asset_map.store import keyset

ACTIONS = ("sign-in", "sign-in-failed", "sign-out", "import", "export", "role-change", "user-add", "user-remove",
           "token-create", "token-revoke", "password-change",
           # Individuals' rights and the data's lifecycle (asset_map.people, asset_map.retention): ids and counts only.
           "person-find", "person-export", "person-erase", "consent-erase", "retention",
           # Issue 13: assets one at a time, registers managed in the browser.
           "asset-create", "asset-edit", "asset-verify", "asset-close", "asset-reopen", "asset-withdraw",
           "asset-restore", "upload", "mapping-save", "preview", "import-queued", "import-failed", "rollback",
           "quarantine-fix", "quarantine-dismiss", "override-clear",
           # Issue 18: street networks.
           "network-load",
           # Issue 19: geographies, briefings and councillors.
           "geography-load", "geography-draw", "councillor-attach", "briefing-send")
# Issue 14: the community's own writes (suggestions, moderation decisions, individuals' offers, confirm links).
ACTIONS += ("suggestion", "moderation", "offer", "offer-change", "offer-withdraw", "offer-accept", "offer-reject",
            "confirm-send", "confirm")


def record(conn, *, actor, action, target=None, details=None, rows=None):
    """Append one event inside the caller's transaction, so an event is logged exactly when its work commits."""
    if action not in ACTIONS:
        msg = f"unknown audit action {action!r}"
        raise ValueError(msg)
    conn.execute(text("INSERT INTO audit_log (actor, action, target, details, rows) "
                      "VALUES (:a, :x, :t, CAST(:d AS jsonb), :r)"),
                 {"a": actor, "x": action, "t": target, "d": json.dumps(details or {}, default=str), "r": rows})


FILTERS = ("actor", "action", "target", "since", "until")
CSV_COLUMNS = ("id", "at", "actor", "action", "target", "rows", "details")


def _conditions(filters):
    """Parameterised WHERE for the admin page's filters (actor/target: part of the text; action: exact)."""
    from asset_map.errors import InputError
    from asset_map.store.assets import parse_datetime

    conds, params = [], {}
    for name in ("actor", "target"):
        value = (filters.get(name) or "").strip()
        if value:
            conds.append(f"{name} ILIKE :{name}")
            params[name] = "%" + value[:200].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    action = (filters.get("action") or "").strip()
    if action:
        if action not in ACTIONS:
            msg = f"Parameter 'action' has value {action[:50]!r}: expected one of {', '.join(ACTIONS)}."
            raise InputError(msg)
        conds.append("action = :action")
        params["action"] = action
    for name, op in (("since", ">="), ("until", "<")):
        value = parse_datetime((filters.get(name) or "").strip() or None, name)
        if value is not None:
            conds.append(f"at {op} :{name}")
            params[name] = value
    return (" AND ".join(conds) or "TRUE"), params


def events(engine, filters=None, *, limit=100):
    """(total, rows) of the newest ``limit`` entries of the log, as dicts; ``total`` counted exactly (for an export's
    own audit record: the page reader uses ``page``, which never counts a long log)."""
    where, params = _conditions(filters or {})
    with engine.connect() as conn:
        total = conn.execute(text(f"SELECT count(*) FROM audit_log WHERE {where}"), params).scalar_one()
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM audit_log a WHERE {where} ORDER BY at DESC, id DESC "
                                 "LIMIT :limit"), {**params, "limit": int(limit)}).mappings().all()
    return total, [_utc(dict(r)) for r in rows]


def page(engine, filters=None, *, size=100, after=None, before=None, last=False):
    """One keyset.Page of the log, newest first (by ``at``, then ``id``): the first, the one ``after`` or ``before``
    a cursor, or the ``last`` (the oldest entries). Seeks through the (at, id) index, however long the log."""
    where, params = _conditions(filters or {})
    with engine.connect() as conn:
        found = keyset.seek(conn, _COLUMNS, f"FROM audit_log a WHERE {where}", params, key="a.at", cast="timestamptz",
                            descending=True, size=size, after=after, before=before, last=last)
    found.rows = [_utc(r) for r in found.rows]
    return found


_COLUMNS = "id, at, actor, action, target, rows, details"


def _utc(row):
    row["at"] = row["at"].astimezone(timezone.utc)
    return row


def _cell(value):
    """Details as JSON text; every cell goes through the CSV writer's formula guard (a typed e-mail can start with
    = + - @ and would run as a formula in Excel)."""
    return json.dumps(value, default=str, sort_keys=True) if isinstance(value, dict) else value


def last_id(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT COALESCE(max(id), 0) FROM audit_log")).scalar_one()


def csv_lines(engine, filters=None, *, upto=None, batch=5000):
    """The filtered log as CSV text, oldest first, in batches (for a streamed download); ``upto``: the last id to
    include, so a download is the log as it was when asked for."""
    import io

    from asset_map.csv_writer import CsvWriter

    where, params = _conditions(filters or {})
    buffer = io.StringIO()
    writer = CsvWriter(buffer, bom=False)
    writer.header(CSV_COLUMNS)
    yield buffer.getvalue()
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT id, at, actor, action, target, rows, details FROM audit_log "
                                     f"WHERE {where} AND id > :last AND id <= :upto ORDER BY id LIMIT :batch"),
                                {**params, "last": last, "batch": batch,
                                 "upto": upto if upto is not None else 2**62}).mappings().all()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.row([_cell(row[c]) for c in CSV_COLUMNS])
        last = rows[-1]["id"]
        yield buffer.getvalue()
