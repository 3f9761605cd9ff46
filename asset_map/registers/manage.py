"""What an officer does to a register from its page, besides importing: fix or dismiss quarantined rows (kept as
overrides of the register's rows, so the fix holds when the same file is imported again), roll the register back to
the state after an earlier import, and the register's facts for its page. Each action writes its audit event in the
transaction that does it.
"""

from sqlalchemy import text

from asset_map import audit
from asset_map.errors import InputError
from asset_map.registers import importer, overrides, quarantine
from asset_map.registers.edits import EDITABLE, _clean
from asset_map.store import history


def fix_quarantined(engine, register, quarantine_id, changes, *, actor, reason=None, settings=None):
    """Keep ``changes`` (text values of EDITABLE fields) as overrides of the quarantined row and try the register's
    quarantine again. Returns ("placed", asset id) or ("quarantined", the row's problems now)."""
    changes = _clean(changes)
    reason = history.check_reason(reason)
    with engine.connect() as conn:
        row = quarantine.one(conn, register, quarantine_id)
    before = quarantine.row_fields(row)
    changed = {f: v for f, v in changes.items() if f in EDITABLE and v != before.get(f, "")}
    if not changed:
        raise InputError("Nothing was changed: correct the fields named in the problems, or place the point on "
                         "the map.")
    if {"lon", "lat"} & set(changed) and not (changes.get("lon") and changes.get("lat")):
        raise InputError("Give both longitude and latitude (click the map to set them).")
    key = overrides.row_keys(_frame(before)).iloc[0]
    with engine.begin() as conn:
        for field, value in changed.items():
            overrides.put(conn, register=register, row_key=key, asset_id=None, field=field, value=value,
                          base=before.get(field, ""), actor=actor, reason=reason or "quarantined row fixed")
        audit.record(conn, actor=actor, action="quarantine-fix", target=register,
                     details={"row": row["source_row"], "fields": sorted(changed), "reason": reason})
    importer.retry(engine, register, settings=settings, actor=actor, action="quarantine-fix")
    with engine.begin() as conn:
        placed = conn.execute(text(
            "SELECT id FROM assets WHERE register = :r AND source_row = :row AND withdrawn_at IS NULL "
            "ORDER BY updated_at DESC LIMIT 1"), {"r": register, "row": row["source_row"]}).scalar()
        still = conn.execute(text("SELECT problems FROM quarantine WHERE register = :r AND source_row = :row"),
                             {"r": register, "row": row["source_row"]}).scalar()
        if placed is not None and still is None:
            conn.execute(text("UPDATE asset_overrides SET asset_id = :a WHERE register = :r AND row_key = :k "
                              "AND revoked_at IS NULL"), {"a": placed, "r": register, "k": key})
            return "placed", placed
    return "quarantined", still or []


def dismiss_quarantined(engine, register, quarantine_id, *, actor, reason):
    """Take a quarantined row out for good (it is not an asset: a heading, a test row, a duplicate): kept as an
    override that leaves the row out of every later import of the register, with the reason."""
    reason = history.check_reason(reason, required=True)
    with engine.begin() as conn:
        row = quarantine.one(conn, register, quarantine_id)
        key = overrides.row_keys(_frame(quarantine.row_fields(row))).iloc[0]
        overrides.put(conn, register=register, row_key=key, asset_id=None, field=overrides.WITHDRAWN,
                      value="dismissed", base=None, actor=actor, reason=reason)
        conn.execute(text("DELETE FROM quarantine WHERE id = :i"), {"i": row["id"]})
        audit.record(conn, actor=actor, action="quarantine-dismiss", target=register,
                     details={"row": row["source_row"], "reason": reason})


def rollback(engine, register, import_id, *, actor, reason=None):
    """Roll the register back to the state after import ``import_id``: a new version of every asset changed since
    (history is never deleted) and the quarantine that import left (``quarantine_restored``: rows, or None when the
    import is older than its snapshots and the quarantine stays as it is). Returns counts."""
    reason = history.check_reason(reason)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": "import:" + register})
        target = conn.execute(text("SELECT version FROM register_imports WHERE id = :i AND register = :r"),
                              {"i": import_id, "r": register}).scalar()
        rollback_id = history.start_import(conn, register, kind="rollback", actor=actor,
                                           source_file=f"rollback to import {target}")
        counts = history.rollback(conn, register, import_id,
                                  history.Stamp(actor=actor, action="rollback", reason=reason, import_id=rollback_id))
        # The rows that import could not place come back too (fixes made since were revoked with the overrides).
        restored = history.restore_quarantine(conn, register, import_id)
        counts["quarantine_restored"] = restored
        if restored is not None:
            counts["quarantined"] = restored
        history.finish_import(conn, rollback_id, counts | {"to_import": import_id, "to_version": target})
        conn.execute(text("UPDATE registers SET version = version + 1 WHERE name = :r"), {"r": register})
        audit.record(conn, actor=actor, action="rollback", target=register, rows=counts["restored"],
                     details={"to_import": import_id, "to_version": target, "reason": reason, **counts})
    return counts


def facts(engine, register, *, stale_months=12):
    """The register page's figures: kind, assets, withdrawn, quarantined, stale, overrides and conflicts."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT (SELECT kind FROM registers WHERE name = :r) AS kind, "
            "(SELECT mapping FROM registers WHERE name = :r) AS mapping, "
            "count(*) FILTER (WHERE withdrawn_at IS NULL) AS assets, "
            "count(*) FILTER (WHERE withdrawn_at IS NOT NULL) AS withdrawn, "
            "count(*) FILTER (WHERE withdrawn_at IS NULL AND (last_verified IS NULL OR last_verified < "
            "current_date - make_interval(months => :m))) AS stale, "
            "(SELECT count(*) FROM quarantine WHERE register = :r) AS quarantined, "
            "(SELECT count(*) FROM asset_overrides WHERE register = :r AND revoked_at IS NULL) AS overrides, "
            "(SELECT count(*) FROM asset_overrides WHERE register = :r AND revoked_at IS NULL "
            "AND conflict IS NOT NULL) AS conflicts FROM assets WHERE register = :r"),
            {"r": register, "m": int(stale_months)}).mappings().one()
        imports = history.imports(conn, register)
    return dict(row), imports


def _frame(fields):
    import pandas as pd

    return pd.DataFrame([fields])
