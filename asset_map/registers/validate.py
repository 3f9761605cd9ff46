"""Check and clean mapped register rows, vectorised: every problem is a row ``(row, field, value, reason,
severity)``. An ``error`` keeps the row out of the store (it goes to the quarantine with its reasons); a ``warning``
is reported and the row is imported (the doubtful value is kept in the asset's properties, never dropped).
"""

import json

import numpy as np
import pandas as pd

from asset_map.reference.postcodes import normalise_postcodes
from asset_map.registers.readers import ROW
from asset_map.registers.schema import BOOLEAN_ALIASES, STATUS_ALIASES, VISIBILITIES, taxonomy

PROBLEM_COLUMNS = ["row", "field", "value", "reason", "severity"]
_EMAIL = r"[^@\s<>,;]+@[^@\s<>,;]+\.[A-Za-z]{2,}"
_URL = r"https?://[^\s/?#]+\.[^\s]+|https?://localhost\b.*"
_UPRN = r"\d{1,12}"
# Great Britain in WGS84, generously: a point given as (lat, lon) instead of (lon, lat) falls in the swapped box.
_GB_LON = (-9.0, 2.5)
_GB_LAT = (49.0, 61.5)


def _strip(values):
    """Stripped text of an object array, computed once per distinct value (registers repeat values a lot)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    stripped = np.array([str(u).strip() for u in uniques] + [""], dtype=object)
    return pd.Series(stripped[codes], dtype=object)


def _blank(values):
    return not len(values) or bool((np.asarray(values, dtype=object) == "").all())


class Problems:
    """Collects problem rows from masks, cheaply: one small frame per check."""

    def __init__(self, rows):
        self.rows = np.asarray(rows)
        self.parts = []

    def add(self, mask, field, values, reason, severity="error"):
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        n = int(mask.sum())
        vals = values[mask] if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)[mask]
        reasons = reason[mask] if isinstance(reason, np.ndarray) else np.full(n, reason, dtype=object)
        self.parts.append(pd.DataFrame({"row": self.rows[mask], "field": field, "value": vals.astype(object),
                                        "reason": reasons.astype(object), "severity": severity}))

    def frame(self):
        if not self.parts:
            return pd.DataFrame(columns=PROBLEM_COLUMNS)
        return pd.concat(self.parts, ignore_index=True).sort_values(["row", "severity"], kind="stable") \
            .reset_index(drop=True)


def validate(mapped):
    """Mapped frame (strings) -> (clean frame, problems frame). The clean frame keeps every row, with ``error``
    True where the row must be quarantined."""
    tax = taxonomy()
    rows = mapped[ROW].to_numpy()
    p = Problems(rows)
    out = pd.DataFrame({ROW: rows}, index=mapped.index)
    s = {c: mapped[c].astype(object).to_numpy() for c in mapped.columns if c not in (ROW,)}

    name = pd.Series(s["name"], dtype=object).str.replace(r"\s+", " ", regex=True).str.strip()
    out["name"] = name.to_numpy(dtype=object)
    p.add(name.to_numpy() == "", "name", s["name"], "name is missing")
    out["name_key"] = _name_keys(name).to_numpy(dtype=object)

    _tier_and_category(out, s, tax, p)
    out["offers"] = tax.normalise_offers(pd.Series(s["offers"], dtype=object)).to_numpy(dtype=object)

    raw_pc = pd.Series(s["postcode"], dtype=object)
    postcode = normalise_postcodes(raw_pc)
    out["postcode"] = postcode.astype(object).where(postcode.notna(), None).to_numpy()
    bad_pc = (postcode.isna().to_numpy() & (_strip(s["postcode"]) != "").to_numpy())
    p.add(bad_pc, "postcode", s["postcode"], "not a valid UK postcode", "warning")

    _coordinates(out, s, p)
    _contacts(out, s, p)
    _status_and_dates(out, s, p)
    key = _strip(s["source_key"])
    out["source_key"] = key.where(key != "", None).to_numpy(dtype=object)
    out["address"] = _blank_none(s["address"])
    out["description"] = _blank_none(s["description"])
    out["properties"] = s["properties"]

    moved = _keep_invalid(out, p)
    if moved is not None:
        out["properties"] = moved
    _duplicates(out, p)
    problems = p.frame()
    errors = problems.loc[problems["severity"] == "error", "row"]
    out["error"] = np.isin(rows, errors.to_numpy())
    return out, problems


def _blank_none(values):
    v = _strip(values)
    return v.where(v != "", None).to_numpy(dtype=object)


def _name_keys(name):
    """Name for matching: case, punctuation and spacing do not count ('Newcastle-under -Lyme' = 'Newcastle under
    Lyme')."""
    return name.str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()


def _tier_and_category(out, s, tax, p):
    raw_tier = _strip(s["tier"])
    raw_cat = _strip(s["category"])
    tier = tax.resolve_tiers(raw_tier)
    category = tax.resolve_categories(raw_cat)
    cat_tier = tax.tier_of(category)
    blank_cat = (raw_cat == "").to_numpy()
    unknown_cat = (category.isna().to_numpy() & ~blank_cat)
    p.add(blank_cat, "category", s["category"], "category is missing")
    if unknown_cat.any():
        hints = {v: tax.suggest(v) for v in pd.unique(raw_cat[unknown_cat])}
        reasons = np.array([f"unknown category; did you mean '{hints[v]}'?" if hints.get(v) else
                            "unknown category (see layers/taxonomy/categories.yaml)" for v in raw_cat], dtype=object)
        p.add(unknown_cat, "category", s["category"], reasons)
    blank_tier = (raw_tier == "").to_numpy()
    unknown_tier = tier.isna().to_numpy() & ~blank_tier
    if unknown_tier.any():
        reasons = np.array([f"unknown tier; did you mean '{tax.suggest(v, 'tier')}'?" if tax.suggest(v, "tier")
                            else "unknown tier: individual, association or organisation" for v in raw_tier],
                           dtype=object)
        p.add(unknown_tier, "tier", s["tier"], reasons)
    clash = (tier.notna() & cat_tier.notna() & (tier != cat_tier)).fillna(False).to_numpy(dtype=bool)
    if clash.any():
        reasons = np.array([f"category '{c}' belongs to tier '{t}'" for c, t in
                            zip(category.fillna(""), cat_tier.fillna(""))], dtype=object)
        p.add(clash, "tier", s["tier"], reasons)
    final_tier = tier.fillna(cat_tier)
    p.add((blank_tier & blank_cat), "tier", s["tier"], "tier is missing (and no category to take it from)")
    out["tier"] = final_tier.astype(object).where(final_tier.notna(), None).to_numpy()
    out["category"] = category.astype(object).where(category.notna(), None).to_numpy()


def _numbers(values):
    return pd.to_numeric(pd.Series(values, dtype=object).str.strip().str.replace(",", "", regex=False),
                         errors="coerce").to_numpy(dtype=float)


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
    uprn = pd.Series(s["uprn"], dtype=object).str.strip().str.replace(r"\.0$", "", regex=True)
    bad_uprn = ((uprn != "") & ~uprn.str.fullmatch(_UPRN)).to_numpy()
    p.add(bad_uprn, "uprn", s["uprn"], "a UPRN is a number of up to 12 digits; ignored", "warning")
    out["uprn"] = uprn.where((uprn != "") & ~bad_uprn, None).to_numpy(dtype=object)


def _lonlat(out, s, p):
    lon, lat = _numbers(s["lon"]), _numbers(s["lat"])
    given = (pd.Series(s["lon"]).str.strip() != "").to_numpy() | (pd.Series(s["lat"]).str.strip() != "").to_numpy()
    unreadable = given & (np.isnan(lon) | np.isnan(lat))
    p.add(unreadable, "lon/lat", _pairs(s["lon"], s["lat"]), "coordinates are not two numbers; ignored", "warning")
    # A register that writes (lat, lon) puts Great Britain at lon 49..61, lat -9..2: swap back and say so.
    swapped = (lon >= _GB_LAT[0]) & (lon <= _GB_LAT[1]) & (lat >= _GB_LON[0]) & (lat <= _GB_LON[1])
    p.add(swapped, "lon/lat", _pairs(s["lon"], s["lat"]), "latitude and longitude were swapped; corrected",
          "warning")
    lon, lat = np.where(swapped, lat, lon), np.where(swapped, lon, lat)
    out_of_range = ~np.isnan(lon) & ~np.isnan(lat) & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    p.add(out_of_range, "lon/lat", _pairs(s["lon"], s["lat"]),
          "coordinates out of range (longitude -180..180, latitude -90..90); ignored", "warning")
    zero = (lon == 0) & (lat == 0)
    p.add(zero, "lon/lat", _pairs(s["lon"], s["lat"]), "coordinates 0,0 mean 'unknown'; ignored", "warning")
    bad = out_of_range | zero
    out["lon"] = np.where(bad, np.nan, lon)
    out["lat"] = np.where(bad, np.nan, lat)


def _grid(out, s, p):
    east, north = _numbers(s["easting"]), _numbers(s["northing"])
    given = (pd.Series(s["easting"]).str.strip() != "").to_numpy()
    outside = given & ~((east >= 0) & (east <= 700_000) & (north >= 0) & (north <= 1_300_000))
    p.add(outside, "easting/northing", _pairs(s["easting"], s["northing"]),
          "not a British National Grid reference (easting 0..700000, northing 0..1300000); ignored", "warning")
    out["easting"] = np.where(outside, np.nan, east)
    out["northing"] = np.where(outside, np.nan, north)


def _pairs(a, b):
    return np.array([f"{x}, {y}" for x, y in zip(a, b)], dtype=object) if len(a) < 100_000 else \
        (pd.Series(a, dtype=object) + ", " + pd.Series(b, dtype=object)).to_numpy(dtype=object)


def _contacts(out, s, p):
    for name in ("email", "url", "phone"):
        if _blank(s[name]):
            out[name] = np.full(len(out), None, dtype=object)
        else:
            _CONTACT[name](out, s, p)


def _email(out, s, p):
    email = pd.Series(s["email"], dtype=object).str.strip()
    bad = ((email != "") & ~email.str.fullmatch(_EMAIL)).to_numpy()
    p.add(bad, "email", s["email"], "not an email address; kept in properties", "warning")
    out["email"] = email.where((email != "") & ~bad, None).to_numpy(dtype=object)


def _url(out, s, p):
    url = pd.Series(s["url"], dtype=object).str.strip()
    url = url.where(~url.str.lower().str.startswith("www."), "https://" + url)
    bad = ((url != "") & ~url.str.fullmatch(_URL)).to_numpy()
    p.add(bad, "url", s["url"], "not a web address (http or https); kept in properties", "warning")
    out["url"] = url.where((url != "") & ~bad, None).to_numpy(dtype=object)


def _phone(out, s, p):
    phone = pd.Series(s["phone"], dtype=object).str.strip()
    bad = ((phone != "") & ~phone.str.fullmatch(r"[+0-9() \-.ext]{6,30}")).to_numpy()
    p.add(bad, "phone", s["phone"], "not a phone number; kept in properties", "warning")
    out["phone"] = phone.where((phone != "") & ~bad, None).to_numpy(dtype=object)


_CONTACT = {"email": _email, "url": _url, "phone": _phone}


def _status_and_dates(out, s, p):
    status_raw = pd.Series(s["status"], dtype=object)
    status = _lookup(status_raw, STATUS_ALIASES)
    p.add(status.isna().to_numpy(), "status", s["status"], "unknown status: open, temporarily closed or closed")
    out["status"] = status.to_numpy(dtype=object)
    vis_raw = pd.Series(s["visibility"], dtype=object)
    vis = _lookup(vis_raw, {"": "public", **{v: v for v in VISIBILITIES}, "private": "restricted"})
    p.add(vis.isna().to_numpy(), "visibility", s["visibility"], "unknown visibility: public or restricted")
    out["visibility"] = vis.to_numpy(dtype=object)
    consent = _lookup(pd.Series(s["consent"], dtype=object), BOOLEAN_ALIASES)
    out["consent"] = consent.to_numpy(dtype=object)
    individual = out["tier"].to_numpy(dtype=object) == "individual"
    # An individual is recorded only with consent: a missing answer and a "no" both keep the row out.
    p.add(individual & pd.isna(consent).to_numpy(), "consent", s["consent"],
          "consent (yes or no) is required to record an individual")
    p.add(individual & (consent == False).to_numpy(), "consent", s["consent"],  # noqa: E712 - element-wise
          "the individual did not consent to be recorded")
    out["last_verified"] = _dates(s["last_verified"], p)


def _lookup(values, table):
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    resolved = np.array([table.get(str(u).strip().lower().replace("_", " ")) for u in uniques] + [None],
                        dtype=object)
    return pd.Series(resolved[codes], index=values.index, dtype=object)


def _dates(values, p):
    raw = _strip(values)
    codes, uniques = pd.factorize(raw)
    parsed = []
    for u in uniques:
        parsed.append(_date(u))
    lookup = np.array(parsed + [None], dtype=object)
    out = lookup[codes]
    bad = (raw != "").to_numpy() & pd.isna(out)
    p.add(bad, "last_verified", values, "not a date (use 2025-01-31 or 31/01/2025); kept in properties",
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
    index = pd.Series(np.arange(len(out)), index=out[ROW].to_numpy())
    for part in problems:
        field = part["field"].iloc[0]
        for row, value in zip(part["row"], part["value"]):
            i = index[row]
            data = json.loads(props[i])
            data[f"invalid_{field}"] = value
            props[i] = json.dumps(data, ensure_ascii=False)
    return props


def _duplicates(out, p):
    """Rows that are the same asset as an earlier row (same source key, else same name and postcode)."""
    def text(col):
        return pd.Series(np.asarray(out[col].to_numpy(dtype=object)).astype(str), dtype=object)

    key = np.where(pd.notna(out["source_key"]).to_numpy(), ("k:" + text("source_key")).to_numpy(dtype=object),
                   ("n:" + text("name_key") + "|" + text("postcode")).to_numpy(dtype=object))
    out["natural_key"] = key
    named = out["name_key"].to_numpy() != ""
    dup = pd.Series(key).duplicated(keep="first").to_numpy() & named
    if dup.any():
        first = pd.Series(out[ROW].to_numpy(), index=key).groupby(level=0).first()
        reasons = np.array([f"same {'source key' if k.startswith('k:') else 'name and postcode'} as row "
                            f"{first[k]}" for k in key], dtype=object)
        p.add(dup, "name", out["name"].to_numpy(dtype=object), reasons)
