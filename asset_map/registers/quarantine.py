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
