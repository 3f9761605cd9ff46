"""Rows an import could not place, as the quarantine table keeps them: the source row (its fields and unmapped
columns) and every problem with it, as JSON, so a fixed file or a retry can place them later.
"""

import json

from asset_map.privacy import PERSONAL_FIELDS
from asset_map.registers.readers import ROW
from asset_map.registers.schema import FIELDS


def records(register, bad, problems, mapped):
    """Rows for the quarantine table: (register, source row, the row as JSON, its problems as JSON). An
    individual's row keeps only its non-personal cells (asset_map.privacy.PERSONAL_FIELDS blanked, no unmapped
    columns): the row number and the reasons say what to fix in the register."""
    if not len(bad):
        return []
    rows = mapped.set_index(ROW).loc[bad[ROW].to_numpy()]
    reasons = _problems_json(problems, rows.index)
    person = (bad["tier"] == "individual").to_numpy() if "tier" in bad else [False] * len(bad)
    # Columns as plain object arrays, zipped into rows: pandas' to_dict boxes every Arrow string one at a time.
    columns = [rows[f].to_numpy(dtype=object) for f in FIELDS]
    props = rows["properties"].to_numpy(dtype=object)
    out = []
    for i, (row, values) in enumerate(zip(rows.index.tolist(), zip(*columns))):
        if person[i]:
            values = tuple("" if f in PERSONAL_FIELDS else v for f, v in zip(FIELDS, values))
        out.append((register, row, _row_json(values, "{}" if person[i] else props[i]), reasons.get(row, "[]")))
    return out


_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _row_json(values, properties):
    """The source row as the quarantine keeps it: its field values and its unmapped columns. ``properties`` is
    already JSON text (from the mapping), so it goes in as it is rather than parsed and written again."""
    return f'{{"fields": {_ENCODE(dict(zip(FIELDS, values)))}, "properties": ' \
           f'{properties if isinstance(properties, str) else "{}"}}}'


def _problems_json(problems, rows):
    """{row: JSON list of that row's problems} for the given rows."""
    grouped = {}
    mine = problems[problems["row"].isin(rows)]
    for r, fld, value, reason, severity in mine[["row", "field", "value", "reason", "severity"]].itertuples(
            index=False, name=None):
        grouped.setdefault(r, []).append({"field": fld, "value": value, "reason": reason, "severity": severity})
    return {r: _ENCODE(items) for r, items in grouped.items()}


# -- the quarantine in the browser: listing, one row, dismissal (fixes are overrides: registers.overrides) ------
def _filter(register, field, q):
    conds, params = ["q.register = :r"], {"r": register}
    if field:
        conds.append("EXISTS (SELECT 1 FROM jsonb_array_elements(q.problems) p WHERE p->>'field' = :field "
                     "AND p->>'severity' = 'error')")
        params["field"] = field
    if q:
        conds.append("q.problems::text ILIKE :q")
        params["q"] = "%" + q[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return " AND ".join(conds), params


def page(conn, register, *, field=None, q=None, size=50, after=None, before=None, last=False, counted=True):
    """One keyset.Page of the register's quarantined rows matching the filters, by source row (then id): the first,
    the one ``after`` or ``before`` a cursor, or the ``last``."""
    from asset_map.store import keyset

    where, params = _filter(register, field, q)
    return keyset.seek(conn, "q.id, q.source_row, q.row, q.problems, q.created_at",
                       f"FROM quarantine q WHERE {where}", params, key="coalesce(q.source_row, 0)", cast="integer",
                       size=size, after=after, before=before, last=last, counted=counted)


def every_row(engine, register, *, batch=5000):
    """Every quarantined row of the register by source row, a batch at a time, each batch on its own connection: a
    download of any size holds one batch in memory and no transaction open."""
    after = None
    while True:
        with engine.connect() as conn:
            found = page(conn, register, size=batch, after=after, counted=False)
        yield from found.rows
        after = found.cursors.get("next")
        if after is None:
            return


def count(conn, register):
    from sqlalchemy import text

    return conn.execute(text("SELECT count(*) FROM quarantine WHERE register = :r"), {"r": register}).scalar()


def reasons(conn, register):
    """[(field, rows)] of the errors that keep the register's rows out, most rows first (the filter's choices)."""
    from sqlalchemy import text

    return [tuple(r) for r in conn.execute(text(
        "SELECT p->>'field' AS field, count(DISTINCT q.id) FROM quarantine q, jsonb_array_elements(q.problems) p "
        "WHERE q.register = :r AND p->>'severity' = 'error' GROUP BY 1 ORDER BY 2 DESC, 1"), {"r": register})]


def one(conn, register, quarantine_id):
    from sqlalchemy import text

    from asset_map.errors import NotFound

    row = conn.execute(text("SELECT id, source_row, row, problems, created_at FROM quarantine "
                            "WHERE id = :i AND register = :r"),
                       {"i": int(quarantine_id), "r": register}).mappings().first()
    if row is None:
        raise NotFound(f"Register {register!r} has no quarantined row {quarantine_id} (it may have been placed).")
    return dict(row)


def row_fields(row):
    """The quarantined row's field values as text (what the fix form starts from)."""
    fields = (row.get("row") or {}).get("fields") or {}
    return {f: "" if fields.get(f) is None else str(fields.get(f)) for f in FIELDS}
