"""The key each imported row is stored under: an existing asset's when the row is that asset (same source key, else
same normalised name and postcode), else a new one. This is what makes a re-import update assets, never double them.
"""

import numpy as np
import pandas as pd

from asset_map.registers.readers import ROW
from asset_map.registers.validate import _name_keys


def match_keys(conn, register, good, bad):
    """The key each row is stored under: an existing asset's when its source key (else its normalised name and
    postcode) matches one, else a new key made the same way. Also the keys of quarantined rows that match existing
    assets, so those are not withdrawn while their row waits in the quarantine, with the rows of ``bad`` they
    belong to (positions), so the importer can tell an individual's row from others'."""
    existing = _fetch(conn, "SELECT match_key, source_key, name, postcode FROM assets WHERE register = %s",
                      (register,), ["match_key", "source_key", "name", "postcode"])
    keys = _both(good, bad, "natural_key")
    if len(existing):
        hit = _existing_keys(existing, good, bad)
        keys = np.where(pd.notna(hit), hit, keys)
    taken = _objects(keys).duplicated(keep="first").to_numpy()
    if taken.any():
        keys[taken] = keys[taken] + "#" + _both(good, bad, ROW)[taken].astype(str).astype(object)
    quarantined = keys[len(good):]
    known = _objects(quarantined).isin(_objects(existing["match_key"])).to_numpy()
    return keys[:len(good)], quarantined[known].tolist(), np.flatnonzero(known)


def _objects(values, index=None):
    """A Series of plain Python strings: pandas hashes and compares those much faster than its Arrow-backed strings
    (whose ``isin`` and ``map`` go one value at a time), and would infer that dtype unless told otherwise."""
    if index is not None:
        index = pd.Index(np.asarray(index, dtype=object), dtype=object)
    return pd.Series(np.asarray(values, dtype=object), index=index, dtype=object)


def _both(good, bad, column):
    """One column of the stored rows then the quarantined ones, as a NumPy object array."""
    return np.concatenate([good[column].to_numpy(dtype=object), bad[column].to_numpy(dtype=object)])


def _existing_keys(existing, good, bad):
    """For each row (stored then quarantined), the match key of the existing asset it is, else None: the one with its
    source key, else (rows without a source key) the one with its normalised name and postcode that no source key
    claimed. Two rows never claim one asset (that would update it twice in one statement): the first keeps it."""
    match_key = existing["match_key"].to_numpy(dtype=object)
    with_source = existing["source_key"].notna().to_numpy()
    by_source = _objects(match_key[with_source], existing["source_key"].to_numpy(dtype=object)[with_source])
    source = _objects(_both(good, bad, "source_key"))
    hit = source.map(by_source[~by_source.index.duplicated(keep="first")])
    unclaimed = ~_objects(match_key).isin(hit.dropna()).to_numpy()
    pairs = (_name_keys(existing["name"].fillna("")) + "|" + existing["postcode"].fillna("None")).to_numpy(dtype=object)
    by_name = _objects(match_key[unclaimed], pairs[unclaimed])
    postcode = _both(good, bad, "postcode")
    pair = _objects(_both(good, bad, "name_key").astype(str)) + "|" + \
        _objects(np.where(pd.isna(postcode), "None", postcode).astype(str))
    by_pair = pair.map(by_name[~by_name.index.duplicated(keep="first")]).where(source.isna(), None)
    hit = hit.where(hit.notna(), by_pair)
    hit[hit.notna() & hit.duplicated(keep="first")] = None
    return hit.to_numpy(dtype=object)


def _fetch(conn, sql, params, columns):
    """Rows straight from the driver as tuples: much faster than Row objects for a whole register."""
    with conn.connection.driver_connection.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame.from_records(cur.fetchall(), columns=columns)
