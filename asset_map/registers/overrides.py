"""Overrides: values an officer set on a register's row (an edit of an imported asset, a fixed quarantined row),
kept in ``asset_overrides`` and applied to the register's mapped rows *before* validation at every import, so the
edit goes through the same checks, geocoding and area assignment as the register's own values and survives the next
import of the register.

An override is keyed by the row's natural key as the register gives it: ``k:`` + source key, else ``n:`` + the
normalised name and postcode. ``base`` is the register's value when the override was made; when a later version of
the register has a different value for that field, the override still wins and the register's value is kept in
``conflict`` for an officer to see and settle.
"""

import numpy as np
import pandas as pd
from sqlalchemy import text

from asset_map.reference.postcodes import normalise_postcodes
from asset_map.registers.schema import FIELDS
from asset_map.registers.validate import _date, _name_key_array, _text

WITHDRAWN = "_withdrawn"
OVERRIDABLE = tuple(FIELDS) + (WITHDRAWN,)


def row_keys(mapped):
    """The natural key of each mapped row (strings), as overrides are keyed."""
    source = mapped["source_key"].astype(str).str.strip()
    names = _text(mapped["name"].astype(str).str.split().str.join(" "))
    name_keys = pd.Series(_name_key_array(names).to_pylist(), index=mapped.index, dtype=object)
    postcodes = normalise_postcodes(mapped["postcode"].astype(str)).fillna("")
    keys = "n:" + name_keys + "|" + postcodes.astype(str).to_numpy()
    return keys.where(source == "", "k:" + source)


def asset_key(source_key, name, postcode):
    """The natural key of a stored asset (its values as stored: normalised name and postcode)."""
    frame = pd.DataFrame({"source_key": [source_key or ""], "name": [name or ""], "postcode": [postcode or ""]})
    return row_keys(frame).iloc[0]


def live(conn, register):
    """The register's live overrides as a DataFrame (id, row_key, asset_id, field, value, base, conflict)."""
    rows = conn.execute(text(
        "SELECT id, row_key, asset_id, field, value, base, conflict FROM asset_overrides "
        "WHERE register = :r AND revoked_at IS NULL ORDER BY id"), {"r": register}).all()
    return pd.DataFrame(rows, columns=["id", "row_key", "asset_id", "field", "value", "base", "conflict"])


def comparable(field, value):
    """A value as compared for conflicts: spelling that validation would clean up does not count as a change."""
    value = "" if value is None or (isinstance(value, float) and np.isnan(value)) else " ".join(str(value).split())
    if field == "postcode":
        return normalise_postcodes(pd.Series([value])).fillna(value.upper()).iloc[0]
    if field == "last_verified":
        return _date(value) or value
    if field in ("lon", "lat", "easting", "northing"):
        try:
            return f"{float(value):.6f}"
        except ValueError:
            return value
    return value.casefold()


def apply(mapped, table):
    """The mapped frame with ``table``'s overrides applied (a copy when any applies), and the conflicts:
    [(override id, the register's value)] where the register now differs from the override's base. Rows with a
    ``_withdrawn`` override are left out (withdrawn by hand: the import withdraws them as missing)."""
    if not len(table) or not len(mapped):
        return mapped, []
    keys = row_keys(mapped)
    hit = keys.isin(set(table["row_key"]))
    if not hit.any():
        return mapped, []
    mapped = mapped.copy()
    position = pd.Series(np.flatnonzero(hit.to_numpy()), index=keys[hit].to_numpy())
    position = position[~position.index.duplicated(keep="first")]
    conflicts, drop, by_field = [], [], {}
    for oid, key, field, value, base in table[["id", "row_key", "field", "value", "base"]].itertuples(
            index=False, name=None):
        if key not in position.index:
            continue
        i = position[key]
        if field == WITHDRAWN:
            drop.append(i)
            continue
        if field not in mapped:
            continue
        current = mapped[field].iat[i]
        if base is not None and comparable(field, current) != comparable(field, base):
            conflicts.append((int(oid), "" if current is None else str(current)))
        by_field.setdefault(field, []).append((i, "" if value is None else value))
    # One new column per overridden field (not one per override): a register may have many fixes.
    for field, pairs in by_field.items():
        values = mapped[field].astype(object).to_numpy(copy=True)
        rows, new = zip(*pairs)
        values[list(rows)] = list(new)
        mapped[field] = pd.Series(values, index=mapped.index, dtype=object)
    if drop:
        mapped = mapped.drop(index=mapped.index[drop])
    return mapped, conflicts


def save_conflicts(conn, conflicts):
    for oid, value in conflicts:
        conn.execute(text("UPDATE asset_overrides SET conflict = :v, base = :v WHERE id = :i"), {"v": value, "i": oid})


def put(conn, *, register, row_key, asset_id, field, value, base, actor, reason):
    """Set (or replace) one override; the replaced one is revoked, not deleted."""
    if field not in OVERRIDABLE:
        msg = f"unknown field {field!r}"
        raise ValueError(msg)
    conn.execute(text("UPDATE asset_overrides SET revoked_at = now() WHERE register = :r AND row_key = :k "
                      "AND field = :f AND revoked_at IS NULL"), {"r": register, "k": row_key, "f": field})
    conn.execute(text(
        "INSERT INTO asset_overrides (register, row_key, asset_id, field, value, base, actor, reason) "
        "VALUES (:r, :k, :a, :f, :v, :b, :actor, :why)"),
        {"r": register, "k": row_key, "a": asset_id, "f": field, "v": value, "b": base, "actor": actor,
         "why": reason})


def of_asset(conn, asset_id):
    """The asset's live overrides as dicts (field, value, base, conflict, actor, at, reason)."""
    rows = conn.execute(text(
        "SELECT id, register, row_key, field, value, base, conflict, actor, at, reason FROM asset_overrides "
        "WHERE asset_id = :a AND revoked_at IS NULL ORDER BY field"), {"a": asset_id}).mappings().all()
    return [dict(r) for r in rows]
