"""How long the data is kept: quarantined rows, saved import reports' problem rows and duplicate pairs, withdrawn
assets. Applied only by ``asset-map retention apply`` (nothing runs it by surprise; the README shows a cron line and
a systemd timer), in one transaction, audited with what it removed.

- quarantine rows older than ``RETAIN_QUARANTINE_DAYS`` are deleted;
- a register's saved report older than ``RETAIN_REPORTS_DAYS`` keeps its counts but loses its problem rows and
  duplicate pairs (the values in them may be personal);
- withdrawn assets older than ``RETAIN_WITHDRAWN_DAYS`` go: associations and organisations are deleted; an individual
  still holding personal fields is erased (asset_map.people), keeping only what the audit needs;
- hourly access counts older than a year are deleted.
"""

from sqlalchemy import text

from asset_map import audit, people
from asset_map.errors import InputError


def _days(settings, name):
    value = int(settings[name])
    if value < 1:
        msg = f"ASSET_MAP_{name} must be at least 1 day, got {value}."
        raise InputError(msg)
    return value


def apply(engine, settings, *, actor="cli", dry_run=False):
    """Remove what is older than the settings allow; returns {what: how many} (what would go, with ``dry_run``)."""
    q_days, r_days, w_days = (_days(settings, n) for n in
                              ("RETAIN_QUARANTINE_DAYS", "RETAIN_REPORTS_DAYS", "RETAIN_WITHDRAWN_DAYS"))
    removed = {}
    with engine.begin() as conn:
        old = "now() - make_interval(days => :d)"
        removed["quarantine_rows"] = conn.execute(text(
            f"SELECT count(*) FROM quarantine WHERE created_at < {old}"), {"d": q_days}).scalar()
        reports = conn.execute(text(
            f"SELECT name FROM registers WHERE imported_at < {old} AND report IS NOT NULL AND "
            "(jsonb_array_length(COALESCE(report->'problems', '[]')) > 0 OR "
            "jsonb_array_length(COALESCE(report->'duplicates', '[]')) > 0)"), {"d": r_days}).scalars().all()
        removed["import_reports_trimmed"] = len(reports)
        withdrawn = f"withdrawn_at < {old} AND erased_at IS NULL"
        removed["withdrawn_assets_deleted"] = conn.execute(text(
            f"SELECT count(*) FROM assets WHERE {withdrawn} AND tier <> 'individual'"), {"d": w_days}).scalar()
        to_erase = conn.execute(text(f"SELECT id FROM assets WHERE {withdrawn} AND tier = 'individual'"),
                                {"d": w_days}).scalars().all()
        removed["withdrawn_individuals_erased"] = len(to_erase)
        removed["access_counts"] = conn.execute(text(
            "SELECT count(*) FROM access_counts WHERE hour < now() - interval '1 year'")).scalar()
        if dry_run:
            conn.rollback()
            return removed
        conn.execute(text(f"DELETE FROM quarantine WHERE created_at < {old}"), {"d": q_days})
        if reports:
            conn.execute(text("UPDATE registers SET report = report || jsonb_build_object('problems', '[]'::jsonb, "
                              "'duplicates', '[]'::jsonb, 'trimmed_by_retention', now()) WHERE name = ANY(:n)"),
                         {"n": reports})
        conn.execute(text(f"DELETE FROM assets WHERE {withdrawn} AND tier <> 'individual'"), {"d": w_days})
        if to_erase:
            people.erase_assets(conn, to_erase, reason=f"retention: withdrawn for over {w_days} days", actor=actor)
        conn.execute(text("DELETE FROM access_counts WHERE hour < now() - interval '1 year'"))
        audit.record(conn, actor=actor, action="retention", target=None, rows=sum(removed.values()),
                     details={"removed": removed, "days": {"quarantine": q_days, "reports": r_days,
                                                           "withdrawn": w_days}})
    return removed
