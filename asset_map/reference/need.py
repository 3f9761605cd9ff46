"""Need indicators (Indices of Deprivation and simple area-score files) read into long, canonical tables.

``read_need`` returns a ``NeedTable``: ``need`` has one row per (area, indicator) with columns
``area_code, indicator, vintage, score, rank, decile`` and ``population`` has ``area_code, population``.
"""

import numbers
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from asset_map.errors import InputError

NEED_COLUMNS = ["area_code", "indicator", "vintage", "score", "rank", "decile"]
POPULATION_COLUMNS = ["area_code", "population"]
MEASURES = ("score", "rank", "decile")

INDICATOR_LABELS = {
    "imd": "Index of Multiple Deprivation",
    "imd_income": "Income",
    "imd_employment": "Employment",
    "imd_education": "Education, Skills and Training",
    "imd_health": "Health Deprivation and Disability",
    "imd_crime": "Crime",
    "imd_barriers": "Barriers to Housing and Services",
    "imd_living_environment": "Living Environment",
    "imd_idaci": "Income Deprivation Affecting Children",
    "imd_idaopi": "Income Deprivation Affecting Older People",
}

# (domain key, words that identify it in a column label). Order matters: IDACI and IDAOPI also say "income".
# The key "" is the overall index. Labels come from both the MHCLG 2019 titles ("Income Rank (where 1 is most
# deprived)") and the 2025 short names ("Housing_and_Services_score", "Environment_decile").
_DOMAINS = [
    ("idaci", ("idaci", "affecting children")),
    ("idaopi", ("idaopi", "affecting older")),
    ("", ("index of multiple deprivation", "imd")),
    ("income", ("income",)),
    ("employment", ("employment",)),
    ("education", ("education",)),
    ("health", ("health",)),
    ("crime", ("crime",)),
    ("barriers", ("barriers", "housing")),
    ("living_environment", ("living environment", "environment")),
]
# Output order: the overall index, the seven domains, then the supplementary indices.
_DOMAIN_ORDER = {key: i for i, (key, _) in enumerate(_DOMAINS[2:] + _DOMAINS[:2])}
# "<label> <measure>" optionally followed by a bracketed note; "Rank of average rank" (district summaries) is not one.
_MEASURE_RE = re.compile(
    r"^(?P<label>.*?)[\s_]*(?<![a-z])(?P<measure>score|rank|decile)(?![a-z])\s*(\(.*\))?\s*$", re.IGNORECASE
)
_AREA_FIELDS = [
    r"area_?code",
    r"lsoa\d\d_?(cd|code)",
    r"lsoa[\s_]?code.*",
    r"geography[\s_]?code",
    r"code",
]
_LSOA_CODE = r"[EW]01\d{6}"
_POPULATION_FIELDS = [r"total[\s_]population.*", r"population(_\d{4})?", r"pop(ulation)?_?total"]
_VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")


@dataclass(frozen=True)
class NeedTable:
    """``need``: area_code, indicator, vintage, score (float), rank, decile (Int64), one row per (area, indicator).
    ``population``: area_code, population (Int64); empty when the file has no total population column."""

    need: pd.DataFrame
    population: pd.DataFrame


def read_need(path, *, indicator="imd", vintage):
    """Read an IoD file (MHCLG 2019 or 2025 layouts, .gz or not), a generic area-score file or a long table.

    Wide files: IoD columns become indicator ``<indicator>`` for the overall index and ``<indicator>_<domain>``
    for the domains, and bare ``score``/``rank``/``decile`` columns become indicator ``<indicator>``. A long table
    (``area_code, indicator, score, rank, decile``, as asset-map writes it) keeps its own indicator names; its
    ``vintage`` column, when present, must agree with ``vintage``.
    """
    path = Path(path)
    if isinstance(vintage, bool) or not isinstance(vintage, numbers.Integral):
        msg = f"need vintage must be a year such as 2019, not {vintage!r}"
        raise InputError(msg)
    frame = _read_table(path)
    area_field = _area_field(path, frame)
    areas = frame[area_field].str.strip()
    _check_blank(path, frame, area_field, areas)
    indicator_field = _find(frame.columns, [r"indicator"])
    if indicator_field:
        need = _long_rows(path, frame, areas, area_field, indicator_field, vintage)
    else:
        _check_repeats(path, frame, area_field, areas)
        need = _wide_rows(path, frame, areas, indicator, vintage)
    population = _population(path, frame, areas)
    if need is None and population.empty:
        msg = f"{path.name}: no score, rank, decile or population columns; columns found: {', '.join(frame.columns)}"
        raise InputError(msg)
    need = _empty_need() if need is None else need
    need = need.astype({"area_code": object, "indicator": object, "vintage": "int64"})[NEED_COLUMNS]
    return NeedTable(need=need.reset_index(drop=True), population=population)


def _wide_rows(path, frame, areas, indicator, vintage):
    """One block of rows per indicator found in the columns; None when there is none."""
    columns = _indicator_columns(path, frame.columns, indicator)
    if not columns:
        return None
    parts = []
    for key in sorted(columns, key=lambda k: columns[k]["order"]):
        part = pd.DataFrame({"area_code": areas.to_numpy(dtype=object), "indicator": key, "vintage": vintage})
        for measure in MEASURES:
            field = columns[key].get(measure)
            part[measure] = _measure(path, frame, field, measure) if field else _blank(measure, len(frame))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _long_rows(path, frame, areas, area_field, indicator_field, vintage):
    """Rows as they stand: one per (area, indicator); None when there is no score, rank or decile column."""
    fields = {measure: _find(frame.columns, [measure]) for measure in MEASURES}
    if not any(fields.values()):
        return None
    keys = frame[indicator_field].str.strip().str.lower()
    _check_blank(path, frame, indicator_field, keys)
    _check_repeats(path, frame, area_field, areas + "\t" + keys, what="repeats an earlier row's area and indicator")
    vintage_field = _find(frame.columns, [r"vintage"])
    if vintage_field:
        years = _numbers(path, frame, vintage_field, whole=True)
        wrong = (years.notna() & (years != vintage)).to_numpy(dtype=bool)
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise InputError(_message(path, i, vintage_field, frame[vintage_field].iloc[i], f"is not {vintage}"))
    need = pd.DataFrame({"area_code": areas.to_numpy(dtype=object), "indicator": keys.to_numpy(dtype=object),
                         "vintage": vintage})
    for measure, field in fields.items():
        need[measure] = _measure(path, frame, field, measure) if field else _blank(measure, len(frame))
    return need


def _population(path, frame, areas):
    """``area_code, population`` from a total population column (first row per area); empty when there is none."""
    field = _find(frame.columns, _POPULATION_FIELDS)
    if field is None:
        population = pd.DataFrame({"area_code": pd.Series(dtype=object), "population": pd.Series(dtype="Int64")})
    else:
        counts = _numbers(path, frame, field, whole=True, low=0)
        population = pd.DataFrame({"area_code": areas.to_numpy(dtype=object), "population": counts})
        population = population.drop_duplicates("area_code").reset_index(drop=True)
    return population.astype({"area_code": object, "population": "Int64"})[POPULATION_COLUMNS]


def _read_table(path):
    """Every column as stripped-header text; CSV (gz, BOM, Windows-1252 fallback) or any vector file's attributes."""
    if not path.exists():
        msg = f"{path.name}: file not found"
        raise InputError(msg)
    if path.suffix.lower() in _VECTOR_SUFFIXES:
        try:
            frame = pyogrio.read_dataframe(path, read_geometry=False)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
            msg = f"{path.name}: not a readable vector file ({_safe(err, path)})"
            raise InputError(msg) from err
        frame = frame.astype(object).where(frame.notna(), "").astype(str)
    else:
        options = {"dtype": str, "keep_default_na": False, "na_filter": False}
        try:
            try:
                frame = pd.read_csv(path, encoding="utf-8-sig", **options)
            except UnicodeDecodeError:
                frame = pd.read_csv(path, encoding="cp1252", **options)
        except pd.errors.EmptyDataError as err:
            msg = f"{path.name}: the file is empty"
            raise InputError(msg) from err
        except (pd.errors.ParserError, ValueError) as err:
            msg = f"{path.name}: not a readable CSV file ({_safe(err, path)})"
            raise InputError(msg) from err
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _find(columns, patterns):
    for pattern in patterns:
        for column in columns:
            if re.fullmatch(pattern, column, flags=re.IGNORECASE):
                return column
    return None


def _area_field(path, frame):
    """A column named like an area code, else the first column whose values are LSOA codes."""
    field = _find(frame.columns, _AREA_FIELDS)
    if field:
        return field
    for column in frame.columns:
        values = frame[column].str.strip()
        values = values[values != ""]
        if len(values) and values.str.fullmatch(_LSOA_CODE).mean() >= 0.9:
            return column
    msg = f"{path.name}: no area code column (e.g. area_code, LSOA code); columns found: {', '.join(frame.columns)}"
    raise InputError(msg)


def _check_blank(path, frame, field, values):
    blank = (values == "").to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise InputError(_message(path, i, field, frame[field].iloc[i], "is blank"))


def _check_repeats(path, frame, field, keys, what="repeats an earlier row"):
    repeated = keys.duplicated(keep="first").to_numpy()
    if repeated.any():
        i = int(np.flatnonzero(repeated)[0])
        raise InputError(_message(path, i, field, frame[field].iloc[i], what))


def _indicator_columns(path, columns, indicator):
    """{indicator key: {"score"|"rank"|"decile": column, "order": sort key}} for the columns this file has."""
    found = {}
    for column in columns:
        parsed = _MEASURE_RE.match(column)
        if not parsed:
            continue
        label = re.sub(r"[\s_]+", " ", parsed.group("label")).strip().lower()
        if "sub-domain" in label or "subdomain" in label:
            continue  # IoD sub-domains (e.g. "Indoors Sub-domain Score") are not indicators of their own
        key, order = _indicator_key(label, indicator)
        if key is None:
            continue
        measure = parsed.group("measure").lower()
        entry = found.setdefault(key, {"order": order})
        if measure in entry:
            msg = f"{path.name}: columns {entry[measure]!r} and {column!r} both give the {key} {measure}"
            raise InputError(msg)
        entry[measure] = column
    return found


def _indicator_key(label, indicator):
    """(indicator key, sort key) for a column label, or (None, None) when the label is not an indicator."""
    prefix = indicator.strip().lower()
    if label in ("", prefix):
        return prefix, -1
    for domain, words in _DOMAINS:
        if any(re.search(rf"\b{re.escape(word)}\b", label) for word in words):
            return (f"{prefix}_{domain}" if domain else prefix), _DOMAIN_ORDER[domain]
    return None, None


def _measure(path, frame, field, measure):
    if measure == "score":
        return _numbers(path, frame, field).astype("float64")
    if measure == "rank":
        return _numbers(path, frame, field, whole=True, low=1)
    return _numbers(path, frame, field, whole=True, low=1, high=10)


def _numbers(path, frame, field, *, whole=False, low=None, high=None):
    """Parse a text column ("29,199" -> 29199); blanks become <NA>; the first bad value raises."""
    text = frame[field].str.replace(",", "", regex=False).str.strip()
    blank = text == ""
    values = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = ~blank & values.isna()
    problem = "is not a number"
    checks = []
    if whole:
        checks.append((values.notna() & (values % 1 != 0), "is not a whole number"))
    if low is not None and high is not None:
        checks.append(((values < low) | (values > high), f"is outside {low}..{high}"))
    elif low is not None:
        checks.append((values < low, f"is below {low}"))
    for mask, why in [(bad, problem)] + checks:
        mask = mask.fillna(False).to_numpy(dtype=bool)
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise InputError(_message(path, i, field, frame[field].iloc[i], why))
    values = values.reset_index(drop=True)
    return values.astype("Int64") if whole else values.astype("float64")


def _message(path, index, field, value, problem):
    if path.suffix.lower() in _VECTOR_SUFFIXES:
        where = f"feature {index + 1}"
    else:
        # Line numbers count the header as line 1, so data row i (0-based) is line i + 2.
        where = f"row {index + 2}"
    return f"{path.name}, {where}, field {field!r}: value {value!r} {problem}"


def _blank(measure, length):
    if measure == "score":
        return np.full(length, np.nan)
    return pd.array([pd.NA] * length, dtype="Int64")


def _empty_need():
    return pd.DataFrame(
        {
            "area_code": pd.Series(dtype=object),
            "indicator": pd.Series(dtype=object),
            "vintage": pd.Series(dtype="int64"),
            "score": pd.Series(dtype="float64"),
            "rank": pd.Series(dtype="Int64"),
            "decile": pd.Series(dtype="Int64"),
        }
    )


def _safe(err, path):
    # Messages are shown to users: name the file, never its folder on the server.
    return str(err).replace(str(path.resolve()), path.name).replace(str(path), path.name).strip()
