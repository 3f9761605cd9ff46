"""Overrides applied to a register's mapped rows before validation (pure functions, no database)."""

import pandas as pd

from asset_map.registers import overrides
from asset_map.registers.readers import ROW
from asset_map.registers.schema import FIELDS


def _mapped(rows):
    frame = pd.DataFrame([{f: r.get(f, "") for f in FIELDS} for r in rows])
    frame["properties"] = "{}"
    frame[ROW] = range(2, 2 + len(rows))
    return frame


def _table(*rows):
    return pd.DataFrame([{"id": i, "row_key": k, "asset_id": None, "field": f, "value": v, "base": b,
                          "conflict": None} for i, (k, f, v, b) in enumerate(rows, start=1)])


def test_keys_are_the_source_key_else_the_normalised_name_and_postcode():
    keys = overrides.row_keys(_mapped([{"source_key": " 42 ", "name": "X"},
                                       {"name": "Newcastle-under -Lyme  Library", "postcode": "st5 1bl"},
                                       {"name": "Hall"}]))
    assert list(keys) == ["k:42", "n:newcastle under lyme library|ST5 1BL", "n:hall|"]
    assert overrides.asset_key(None, "Newcastle-under-Lyme Library", "ST5 1BL") == keys.iloc[1]


def test_an_override_replaces_the_value_and_a_changed_register_value_is_a_conflict():
    mapped = _mapped([{"source_key": "1", "name": "Audley Library", "postcode": "ST7 8DB"},
                      {"source_key": "2", "name": "Barton Library"},
                      {"source_key": "3", "name": "Totals"}])
    table = _table(("k:1", "name", "Audley Community Library", "Audley Library"),
                   ("k:2", "name", "Barton Hub", "Barton Under Needwood Library"),
                   ("k:2", "lon", "-1.7", ""), ("k:3", overrides.WITHDRAWN, "dismissed", None),
                   ("k:9", "name", "Gone", "Gone"))
    out, conflicts = overrides.apply(mapped, table)
    assert list(out["name"]) == ["Audley Community Library", "Barton Hub"]
    assert list(out["lon"]) == ["", "-1.7"]
    assert conflicts == [(2, "Barton Library")]
    assert list(mapped["name"]) == ["Audley Library", "Barton Library", "Totals"]   # the input is not changed


def test_spelling_that_validation_cleans_is_not_a_conflict():
    assert overrides.comparable("postcode", "st162lp") == overrides.comparable("postcode", "ST16 2LP")
    assert overrides.comparable("last_verified", "31/01/2025") == overrides.comparable("last_verified", "2025-01-31")
    assert overrides.comparable("name", "Audley  library") == overrides.comparable("name", "audley Library")
    assert overrides.comparable("name", "Audley") != overrides.comparable("name", "Audley Hub")
