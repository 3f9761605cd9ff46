"""Check and clean mapped register rows, vectorised: every problem is a row ``(row, field, value, reason,
severity)``. An ``error`` keeps the row out of the store (it goes to the quarantine with its reasons); a ``warning``
is reported and the row is imported (the doubtful value is kept in the asset's properties, never dropped).

Text is handled as pyarrow arrays; a check that needs Python runs once per distinct value of its column (registers
repeat the same categories, statuses and postcodes thousands of times), and a reason is written only for the rows
that have the problem.
"""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from asset_map.reference.postcodes import WHITESPACE, normalise_postcodes
from asset_map.registers.readers import ROW
from asset_map.privacy import consent_state
from asset_map.registers.schema import STATUS_ALIASES, taxonomy
from asset_map.vocabulary import VISIBILITIES

PROBLEM_COLUMNS = ["row", "field", "value", "reason", "severity"]
_EMAIL = r"[^@\s<>,;]+@[^@\s<>,;]+\.[A-Za-z]{2,}"
_URL = r"https?://[^\s/?#]+\.[^\s]+|https?://localhost\b.*"
_UPRN = r"\d{1,12}"
# Great Britain in WGS84, generously: a point given as (lat, lon) instead of (lon, lat) falls in the swapped box.
_GB_LON = (-9.0, 2.5)
_GB_LAT = (49.0, 61.5)
# pyarrow's own whitespace functions and RE2's \s know fewer characters than Python: they are given Python's.
_SPACES = f"[{WHITESPACE}]+"


def _text(column):
    """A mapped column as one pyarrow text array, "" where a value is missing."""
    values = pa.array(column.astype("str").array)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.large_string()).fill_null("")


def _objects(values):
    """A pyarrow array as a numpy object array (None where null)."""
    return values.to_numpy(zero_copy_only=False)


def _mask(values):
    """A pyarrow boolean array as a numpy one (null counts as False)."""
    return values.fill_null(False).to_numpy(zero_copy_only=False)


def _column(values):
    """A text array as the clean frame holds it, the way pandas stores an object array of strings and None: as
    text (NaN where null), but as None throughout when no row has a value."""
    if values.null_count == len(values):
        return np.full(len(values), None, dtype=object)
    return values.to_pandas().array


def _strip(values):
    """Values stripped as Python's str.strip() does."""
    return pc.utf8_trim(values, WHITESPACE)


def _distinct(values):
    """(codes as a pyarrow array, distinct values as an object Series): a check run on the distinct values, then
    taken back to every row by its code, gives the same result as on the rows themselves."""
    encoded = values.dictionary_encode()
    return encoded.indices, pd.Series(encoded.dictionary.to_pylist(), dtype=object)


def _take(per_value, codes):
    """Text (None where missing) per distinct value -> per row."""
    return pa.array(per_value, type=pa.large_string(), from_pandas=True).take(codes)


def _concat(*parts, sep=""):
    """Text arrays and strings joined row by row (null where an array is null)."""
    parts = [pa.scalar(v, pa.large_string()) if isinstance(v, str) else v for v in parts]
    return pc.binary_join_element_wise(*parts, pa.scalar(sep, pa.large_string()))


def _blank(values):
    return not len(values) or bool(pc.all(pc.equal(values, "")).as_py())


def _masked(mask, values):
    """A full-length object array holding ``values`` (one per masked row) at the masked rows."""
    full = np.full(len(mask), None, dtype=object)
    full[mask] = values
    return full


class Problems:
    """Collects problem rows from masks, cheaply: one small frame per check."""

    def __init__(self, rows):
        self.rows = np.asarray(rows)
        self.parts = []

    def add(self, mask, field, values, reason, severity="error"):
        """``values`` and ``reason`` (or one reason for all) give one item per row: numpy or pyarrow arrays, only
        the masked rows of which are ever turned into Python objects."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        n = int(mask.sum())
        vals = _pick(values, mask)
        reasons = _pick(reason, mask) if isinstance(reason, (np.ndarray, pa.Array)) else np.full(n, reason,
                                                                                                  dtype=object)
        self.parts.append(pd.DataFrame({"row": self.rows[mask], "field": field, "value": vals,
                                        "reason": reasons, "severity": severity}))

    def frame(self):
        if not self.parts:
            return pd.DataFrame(columns=PROBLEM_COLUMNS)
        return pd.concat(self.parts, ignore_index=True).sort_values(["row", "severity"], kind="stable") \
            .reset_index(drop=True)


def _pick(values, mask):
    if isinstance(values, pa.Array):
        return _objects(values.filter(pa.array(mask)))
    if isinstance(values, np.ndarray):
        return values[mask].astype(object)
    return np.asarray(values, dtype=object)[mask]


def validate(mapped):
    """Mapped frame (strings) -> (clean frame, problems frame). The clean frame keeps every row, with ``error``
    True where the row must be quarantined."""
    tax = taxonomy()
    rows = mapped[ROW].to_numpy()
    p = Problems(rows)
    out = pd.DataFrame({ROW: rows}, index=mapped.index)
    s = {c: _text(mapped[c]) for c in mapped.columns if c not in (ROW,)}

    name = pc.utf8_trim(pc.replace_substring_regex(s["name"], _SPACES, " "), " ")
    out["name"] = _column(name)
    p.add(_mask(pc.equal(name, "")), "name", s["name"], "name is missing")
    name_key = _name_key_array(name)
    out["name_key"] = _column(name_key)

    _tier_and_category(out, s, tax, p)
    codes, distinct = _distinct(s["offers"])
    out["offers"] = _column(_take(tax.normalise_offers(distinct), codes))

    encoded = s["postcode"].dictionary_encode()
    normal = normalise_postcodes(encoded.dictionary.to_pandas())
    postcode = _take(normal, encoded.indices)
    out["postcode"] = _column(postcode)
    bad_pc = normal.isna().to_numpy() & _mask(pc.not_equal(_strip(encoded.dictionary), ""))
    p.add(bad_pc[encoded.indices.to_numpy()], "postcode", s["postcode"], "not a valid UK postcode", "warning")

    _coordinates(out, s, p)
    _contacts(out, s, p)
    _status_and_dates(out, s, p)
    source_key = _blank_null(s["source_key"])
    out["source_key"] = _column(source_key)
    out["address"] = _column(_blank_null(s["address"]))
    out["description"] = _column(_blank_null(s["description"]))
    out["properties"] = _column(s["properties"])

    moved = _keep_invalid(out, p)
    if moved is not None:
        out["properties"] = moved
    _duplicates(out, _natural_keys(source_key, name_key, postcode), name, name_key, p)
    problems = p.frame()
    errors = problems.loc[problems["severity"] == "error", "row"]
    out["error"] = np.isin(rows, errors.to_numpy())
    return out, problems


def _blank_null(values):
    """Stripped values, null where blank."""
    stripped = _strip(values)
    return pc.if_else(pc.equal(stripped, ""), None, stripped)


def _name_keys(name):
    """Name for matching: case, punctuation and spacing do not count ('Newcastle-under -Lyme' = 'Newcastle under
    Lyme')."""
    return pd.Series(_objects(_name_key_array(_text(name))), index=name.index, dtype=object)


def _name_key_array(name):
    keys = pc.utf8_trim(pc.replace_substring_regex(pc.utf8_lower(name), "[^a-z0-9]+", " "), " ")
    # pyarrow lower-cases a few letters unlike Python ('İ' gives 'i', Python 'i' and a combining dot), so names
    # beyond ASCII take Python's way: a name keeps the key it was stored under.
    odd = pc.invert(pc.string_is_ascii(name))
    if pc.any(odd).as_py():
        others = pd.Series(name.filter(odd).to_pylist(), dtype=object)
        fixed = others.str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()
        keys = pc.replace_with_mask(keys, odd, pa.array(fixed.tolist(), type=keys.type))
    return keys


def _tier_and_category(out, s, tax, p):
    tier_codes, tiers = _distinct(s["tier"])
    cat_codes, cats = _distinct(s["category"])
    tiers, cats = tiers.str.strip(), cats.str.strip()
    # Per distinct value: the tier or category it names (<NA> when unknown) and the tier of that category.
    tier_of_value = tax.resolve_tiers(tiers)
    cat_of_value = tax.resolve_categories(cats)
    cat_tier_of_value = tax.tier_of(cat_of_value)
    tier, category = _take(tier_of_value, tier_codes), _take(cat_of_value, cat_codes)
    cat_tier = _take(cat_tier_of_value, cat_codes)
    blank_cat = (cats == "").to_numpy(dtype=bool)[cat_codes.to_numpy()]
    unknown_cat = _mask(category.is_null()) & ~blank_cat
    p.add(blank_cat, "category", s["category"], "category is missing")
    if unknown_cat.any():
        hints = [tax.suggest(v) if v and pd.isna(c) else None for v, c in zip(cats, cat_of_value)]
        reasons = pa.array([f"unknown category; did you mean '{h}'?" if h else
                            "unknown category (see layers/taxonomy/categories.yaml)" for h in hints])
        p.add(unknown_cat, "category", s["category"], reasons.take(cat_codes))
    blank_tier = (tiers == "").to_numpy(dtype=bool)[tier_codes.to_numpy()]
    unknown_tier = _mask(tier.is_null()) & ~blank_tier
    if unknown_tier.any():
        hints = [tax.suggest(v, "tier") if v and pd.isna(t) else None for v, t in zip(tiers, tier_of_value)]
        reasons = pa.array([f"unknown tier; did you mean '{h}'?" if h else
                            "unknown tier: individual, association or organisation" for h in hints])
        p.add(unknown_tier, "tier", s["tier"], reasons.take(tier_codes))
    clash = _mask(pc.not_equal(tier, cat_tier))
    if clash.any():
        reasons = pa.array([f"category '{c}' belongs to tier '{t}'" for c, t in
                            zip(cat_of_value, cat_tier_of_value)])
        p.add(clash, "tier", s["tier"], reasons.take(cat_codes))
    p.add((blank_tier & blank_cat), "tier", s["tier"], "tier is missing (and no category to take it from)")
    out["tier"] = _column(pc.coalesce(tier, cat_tier))
    out["category"] = _column(category)


def _numbers(values):
    return pd.to_numeric(pd.Series(_objects(values), dtype=object).str.strip().str.replace(",", "", regex=False),
                         errors="coerce").to_numpy(dtype=float)


def _given(values):
    return _objects(pc.not_equal(pc.utf8_trim_whitespace(values), ""))


def _coordinates(out, s, p):
    n = len(out)
    if _blank(s["lon"]) and _blank(s["lat"]):
        out["lon"] = out["lat"] = np.full(n, np.nan)
    else:
        _lonlat(out, s, p)
    if _blank(s["easting"]) and _blank(s["northing"]):
        out["easting"] = out["northing"] = np.full(n, np.nan)
    else:
        _grid(out, s, p)
    if _blank(s["uprn"]):
        out["uprn"] = np.full(n, None, dtype=object)
        return
    uprn = pd.Series(_objects(s["uprn"]), dtype=object).str.strip().str.replace(r"\.0$", "", regex=True)
    bad_uprn = ((uprn != "") & ~uprn.str.fullmatch(_UPRN)).to_numpy()
    p.add(bad_uprn, "uprn", s["uprn"], "a UPRN is a number of up to 12 digits; ignored", "warning")
    out["uprn"] = uprn.where((uprn != "") & ~bad_uprn, None).to_numpy(dtype=object)


def _lonlat(out, s, p):
    lon, lat = _numbers(s["lon"]), _numbers(s["lat"])
    pairs = _concat(s["lon"], s["lat"], sep=", ")
    given = _given(s["lon"]) | _given(s["lat"])
    unreadable = given & (np.isnan(lon) | np.isnan(lat))
    p.add(unreadable, "lon/lat", pairs, "coordinates are not two numbers; ignored", "warning")
    # A register that writes (lat, lon) puts Great Britain at lon 49..61, lat -9..2: swap back and say so.
    swapped = (lon >= _GB_LAT[0]) & (lon <= _GB_LAT[1]) & (lat >= _GB_LON[0]) & (lat <= _GB_LON[1])
    p.add(swapped, "lon/lat", pairs, "latitude and longitude were swapped; corrected", "warning")
    lon, lat = np.where(swapped, lat, lon), np.where(swapped, lon, lat)
    out_of_range = ~np.isnan(lon) & ~np.isnan(lat) & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    p.add(out_of_range, "lon/lat", pairs, "coordinates out of range (longitude -180..180, latitude -90..90); ignored",
          "warning")
    zero = (lon == 0) & (lat == 0)
    p.add(zero, "lon/lat", pairs, "coordinates 0,0 mean 'unknown'; ignored", "warning")
    bad = out_of_range | zero
    out["lon"] = np.where(bad, np.nan, lon)
    out["lat"] = np.where(bad, np.nan, lat)


def _grid(out, s, p):
    east, north = _numbers(s["easting"]), _numbers(s["northing"])
    given = _given(s["easting"])
    outside = given & ~((east >= 0) & (east <= 700_000) & (north >= 0) & (north <= 1_300_000))
    p.add(outside, "easting/northing", _concat(s["easting"], s["northing"], sep=", "),
          "not a British National Grid reference (easting 0..700000, northing 0..1300000); ignored", "warning")
    out["easting"] = np.where(outside, np.nan, east)
    out["northing"] = np.where(outside, np.nan, north)


# field: (pattern a stripped value must match, reason when it does not)
_CONTACTS = {
    "email": (_EMAIL, "not an email address; kept in properties"),
    "url": (_URL, "not a web address (http or https); kept in properties"),
    "phone": (r"[+0-9() \-.ext]{6,30}", "not a phone number; kept in properties"),
}


def _contacts(out, s, p):
    for field, (pattern, reason) in _CONTACTS.items():
        if _blank(s[field]):
            out[field] = np.full(len(out), None, dtype=object)
            continue
        codes, distinct = _distinct(s[field])
        value = distinct.str.strip()
        if field == "url":
            value = value.where(~value.str.lower().str.startswith("www."), "https://" + value)
        bad = ((value != "") & ~value.str.fullmatch(pattern)).to_numpy(dtype=bool)
        p.add(bad[codes.to_numpy()], field, s[field], reason, "warning")
        out[field] = _column(_take(value.where((value != "") & ~bad, None), codes))


def _status_and_dates(out, s, p):
    status = _lookup(s["status"], STATUS_ALIASES)
    p.add(_mask(status.is_null()), "status", s["status"], "unknown status: open, temporarily closed or closed")
    out["status"] = _column(status)
    vis = _lookup(s["visibility"], {"": "public", **{v: v for v in VISIBILITIES}, "private": "restricted"})
    p.add(_mask(vis.is_null()), "visibility", s["visibility"], "unknown visibility: public or restricted")
    out["visibility"] = _column(vis)
    # The one consent rule (asset_map.privacy): each distinct spelling is read once.
    codes, distinct = _distinct(s["consent"])
    states = np.array([consent_state(v) for v in distinct] + ["missing"], dtype=object)[codes.to_numpy()]
    out["consent"] = np.select([states == "given", (states == "refused") | (states == "withdrawn")],
                               [True, False], None).astype(object)
    out["consent_state"] = states
    individual = (out["tier"] == "individual").to_numpy(dtype=bool)
    # An individual is recorded only with consent: anything but a clear yes keeps the row out, and the importer
    # erases an earlier entry of the same person (asset_map.people.erase_person).
    p.add(individual & (states == "missing"), "consent", s["consent"],
          "consent (yes or no) is required to record an individual")
    p.add(individual & (states == "refused"), "consent", s["consent"],
          "the individual did not consent to be recorded")
    p.add(individual & (states == "withdrawn"), "consent", s["consent"],
          "the individual withdrew consent: not recorded, any earlier entry erased")
    p.add(individual & (states == "unknown"), "consent", s["consent"],
          "consent is not a recognised answer (yes, no or withdrawn): not guessed, kept without personal fields")
    out["consent_date"] = _column(_dates(s["consent_date"], p, "consent_date"))
    out["consent_wording"] = _column(_blank_null(s["consent_wording"]))
    out["last_verified"] = _column(_dates(s["last_verified"], p))


def _word(value):
    return value.strip().lower().replace("_", " ")


def _lookup(values, table):
    """The table's text for each value (null when it has none), case, spacing and underscores aside."""
    codes, distinct = _distinct(values)
    return _take([table.get(_word(v)) for v in distinct], codes)


def _dates(values, p, field="last_verified"):
    codes, distinct = _distinct(values)
    stripped = distinct.str.strip()
    out = _take([_date(v) for v in stripped], codes)
    bad = (stripped != "").to_numpy(dtype=bool)[codes.to_numpy()] & _mask(out.is_null())
    p.add(bad, field, values, "not a date (use 2025-01-31 or 31/01/2025); kept in properties",
          "warning")
    return out


def _date(text):
    if not text:
        return None
    for fmt, dayfirst in (("ISO8601", False), (None, True)):
        try:
            value = pd.to_datetime(text, format=fmt, dayfirst=dayfirst) if fmt else \
                pd.to_datetime(text, dayfirst=dayfirst)
        except (ValueError, TypeError, OverflowError):
            continue
        if 1900 <= value.year <= 2100:
            return value.date().isoformat()
    return None


def _keep_invalid(out, p):
    """Doubtful contact and date values are not put in their field but kept in the row's properties."""
    problems = [part for part in p.parts if part["severity"].iloc[0] == "warning"
                and part["field"].iloc[0] in ("email", "url", "phone", "last_verified")]
    if not problems:
        return None
    props = out["properties"].to_numpy(dtype=object).copy()
    position = pd.Index(out[ROW].to_numpy())
    for part in problems:
        field = part["field"].iloc[0]
        for i, value in zip(position.get_indexer(part["row"]), part["value"]):
            data = json.loads(props[i])
            data[f"invalid_{field}"] = value
            props[i] = json.dumps(data, ensure_ascii=False)
    return props


def _natural_keys(source_key, name_key, postcode):
    """What a row is matched by: its source key, else its name key and postcode."""
    # A missing postcode is written as pandas held it before: NaN ("nan") in a column of text, None ("None") when no
    # row has a postcode; the keys already stored stay the keys.
    missing = "None" if postcode.null_count == len(postcode) else "nan"
    keys = _concat("k:", source_key)
    unkeyed = keys.is_null()
    if pc.any(unkeyed).as_py():
        by_name = _concat("n:", name_key.filter(unkeyed), "|", postcode.filter(unkeyed).fill_null(missing))
        keys = pc.replace_with_mask(keys, unkeyed, by_name)
    return keys


def _duplicates(out, key, name, name_key, p):
    """Rows that are the same asset as an earlier row (same source key, else same name and postcode)."""
    out["natural_key"] = _column(key)
    codes = key.dictionary_encode().indices.to_numpy()
    dup = pd.Series(codes).duplicated(keep="first").to_numpy() & _mask(pc.not_equal(name_key, ""))
    if dup.any():
        first = pd.Series(out[ROW].to_numpy()).groupby(codes).transform("first").to_numpy()
        by_source = _objects(pc.starts_with(key.filter(pa.array(dup)), "k:"))
        reasons = [f"same {'source key' if k else 'name and postcode'} as row {r}"
                   for k, r in zip(by_source, first[dup])]
        p.add(dup, "name", name, _masked(dup, reasons))
