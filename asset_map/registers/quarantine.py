"""Rows an import could not place, as the quarantine table keeps them: the source row (its fields and unmapped
columns) and every problem with it, as JSON, so a fixed file or a retry can place them later.
"""

import json

from asset_map.registers.readers import ROW
from asset_map.registers.schema import FIELDS


def records(register, bad, problems, mapped):
    """Rows for the quarantine table: (register, source row, the row as JSON, its problems as JSON)."""
    if not len(bad):
        return []
    rows = mapped.set_index(ROW).loc[bad[ROW].to_numpy()]
    reasons = _problems_json(problems, rows.index)
    # Columns as plain object arrays, zipped into rows: pandas' to_dict boxes every Arrow string one at a time.
    fields = zip(*(rows[f].to_numpy(dtype=object) for f in FIELDS))
    return [(register, row, _row_json(values, prop), reasons.get(row, "[]"))
            for row, values, prop in zip(rows.index.tolist(), fields, rows["properties"].to_numpy(dtype=object))]


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
