"""The preview of an import: the real importer run on the file in a transaction that is rolled back, so the counts
are what the import would do, not an estimate. Before the rollback it reads what changed, by district and tier, and
a sample of the placed points for a small map.
"""

from sqlalchemy import text

from asset_map.registers import importer

# A new version that would withdraw more than this share of the register's assets is probably the wrong file.
WITHDRAW_WARNING_SHARE = 0.2
MAP_POINTS = 3000
PROBLEM_ROWS = 25


def preview(engine, path, *, register, mapping, settings, source_name):
    """{report, by_area: [{district_code, district_name, tier, inserted, updated, unchanged, withdrawn}], points,
    problems (the first rows), warnings}."""
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM assets WHERE register = :r AND withdrawn_at IS NULL"),
                              {"r": register}).scalar()
    report = importer.import_register(engine, path, register=register, mapping=mapping, settings=settings,
                                      source_name=source_name, dry_run=True, inspect=lambda c, t: _inspect(c, t))
    by_area, points = report.inspected
    warnings = []
    if before and report.withdrawn / before > WITHDRAW_WARNING_SHARE:
        warnings.append(f"This file would withdraw {report.withdrawn:,} of the register's {before:,} assets "
                        f"({report.withdrawn / before:.0%}): is it the whole register, and the right file?")
    if report.rows_read and report.quarantined / report.rows_read > WITHDRAW_WARNING_SHARE:
        warnings.append(f"{report.quarantined:,} of {report.rows_read:,} rows would be quarantined: check the "
                        "mapping of the location and category columns.")
    return {"report": report, "by_area": by_area, "points": points, "before": before,
            "problems": report.problems[:PROBLEM_ROWS], "warnings": warnings}


def _inspect(conn, table):
    # Inside the import's transaction: now() is its start, so rows written by it have updated_at = now(). ``table``
    # is the register's own partition (a new register's is never attached in a dry run: store.assets.sync).
    rows = conn.execute(text(
        "SELECT a.district_code, d.name AS district_name, a.tier, "
        "count(*) FILTER (WHERE a.created_at = now()) AS inserted, "
        "count(*) FILTER (WHERE a.created_at < now() AND a.updated_at = now() AND a.withdrawn_at IS NULL) AS updated, "
        "count(*) FILTER (WHERE a.updated_at < now() AND a.withdrawn_at IS NULL) AS unchanged, "
        "count(*) FILTER (WHERE a.withdrawn_at = now()) AS withdrawn "
        f'FROM "{table}" a LEFT JOIN districts d ON d.code = a.district_code '
        "GROUP BY a.district_code, d.name, a.tier ORDER BY a.district_code, a.tier")).mappings()
    by_area = [dict(r) for r in rows if r["inserted"] or r["updated"] or r["unchanged"] or r["withdrawn"]]
    points = [[round(x, 6), round(y, 6), name] for x, y, name in conn.execute(text(
        f'SELECT ST_X(geom), ST_Y(geom), name FROM "{table}" WHERE withdrawn_at IS NULL '
        "AND geom IS NOT NULL ORDER BY id LIMIT :n"), {"n": MAP_POINTS})]
    return by_area, points
