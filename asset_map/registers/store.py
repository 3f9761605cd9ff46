"""Reading imported registers and their saved reports back from the store (for the web pages and the CLI)."""

from sqlalchemy import text

from asset_map.errors import NotFound


def list_registers(engine):
    """[{name, source_file, version, imported_at, assets, quarantined}] by name."""
    sql = """SELECT r.name, r.source_file, r.version, r.imported_at,
                    (SELECT count(*) FROM assets a WHERE a.register = r.name AND a.withdrawn_at IS NULL) AS assets,
                    (SELECT count(*) FROM quarantine q WHERE q.register = r.name) AS quarantined
             FROM registers r ORDER BY r.name"""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql))]


def get_register(engine, name):
    """(register row as a dict, its last ImportReport or None); NotFound for an unknown name."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, source_file, version, imported_at, report FROM registers "
                                "WHERE name = :n"), {"n": name}).first()
    if row is None:
        msg = f"No register named {name!r}."
        raise NotFound(msg)
    # The report module brings pandas: imported when a report is shown, not by every process that lists registers.
    from asset_map.registers.import_report import ImportReport

    data = dict(row._mapping)
    report = ImportReport.from_dict(data.pop("report")) if data.get("report") else None
    return data, report
