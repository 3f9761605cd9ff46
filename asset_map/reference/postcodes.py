"""Postcode gazetteers (OS Code-Point Open, ONS NSPL/ONSPD, or a postcode/lat/lon table) read into one canonical
GeoDataFrame, and the postcode normalisation every other module uses.

``read_postcodes`` returns columns ``postcode, district_code, lsoa11_code, source, vintage, geometry`` (EPSG:4326).
Rows that cannot be used are not dropped silently: they are listed in ``gdf.attrs["rejected"]`` as a DataFrame
``row, field, value, reason`` where ``row`` is the line number in the file (the header is line 1).
"""

import functools
import re
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyproj import Transformer

from asset_map.errors import InputError

# The official format (BS 7666 / gov.uk bulk data standard) with its letter rules: Q, V, X never first; I, J, Z
# never second; only some letters third (A9A) or fourth (AA9A); the inward letters never use C, I, K, M, O, V.
_OUTWARD = (
    r"(?:[A-PR-UWYZ][0-9]{1,2}"
    r"|[A-PR-UWYZ][A-HK-Y][0-9]{1,2}"
    r"|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])"
)
_INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"
# What Python's str.strip() and regex \s take for whitespace (none lies above U+3000). pyarrow's regexes (RE2) know
# fewer characters as \s, so they are given these by name.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_SPACE = f"[{WHITESPACE}]"


def _valid(space):
    # Whitespace is allowed anywhere a register might put it; the canonical form has exactly one space.
    return rf"{space}*(?:{_OUTWARD}{space}*{_INWARD}|GIR{space}*0AA){space}*"


_VALID_RE = re.compile(_valid(r"\s"))
_VALID_ARROW = rf"\A(?:{_valid(_SPACE)})\z"
_WHITESPACE_RE = re.compile(r"\s+")

# The official headerless Code-Point Open files keep their column names in Code-Point_Open_Column_Headers.csv.
_CODEPOINT_SHORT_NAMES = ["PC", "PQ", "EA", "NO", "CY", "RH", "LH", "CC", "DC", "WC"]

# Role -> accepted column names (lower case) or patterns. A layout needs a postcode and a position (lat/long or
# easting/northing); Code-Point is told apart by its positional quality column.
_CODEPOINT = {
    "postcode": ("postcode", "pc"),
    "quality": ("positional_quality_indicator", "pq"),
    "easting": ("eastings", "easting", "ea"),
    "northing": ("northings", "northing", "no"),
    "district": ("admin_district_code", "dc"),
}
_NSPL = {
    "postcode": ("pcds", "pcd", "pcd2", "pcd7", "pcd8"),
    "lat": ("lat",),
    "long": ("long", "lon"),
    "easting": ("oseast1m", "east1m"),
    "northing": ("osnrth1m", "north1m"),
    "district": ("laua", "oslaua", re.compile(r"^lad\d\dcd$")),
    "lsoa11": ("lsoa11", "lsoa11cd"),
    "doterm": ("doterm",),
}
# The canonical columns written out as a table (asset-map's own exports and the synthetic pack).
_TABLE = {
    "postcode": ("postcode",),
    "lat": ("lat", "latitude"),
    "long": ("lon", "long", "longitude", "lng"),
    "easting": ("easting", "eastings"),
    "northing": ("northing", "northings"),
    "district": ("district_code", "lad_code", "laua", re.compile(r"^lad\d\dcd$")),
    "lsoa11": ("lsoa11_code", "lsoa11", "lsoa11cd"),
    "source": ("source",),
    "vintage": ("vintage",),
}
# (layout, roles, roles it needs besides a position, default source; None means the file's name)
_LAYOUTS = [
    ("codepoint", _CODEPOINT, ("postcode", "quality"), "codepoint-open"),
    ("nspl", _NSPL, ("postcode",), "nspl"),
    ("table", _TABLE, ("postcode",), None),
]
# NSPL/ONSPD give postcodes without a grid reference a latitude of 99.999999.
_NO_LATITUDE = 99.0

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = "(" + "|".join(_MONTHS) + ")[a-z]*"
_YEAR = r"((?:19|20)\d\d)"

COLUMNS = ["postcode", "district_code", "lsoa11_code", "source", "vintage", "geometry"]
REJECTED_COLUMNS = ["row", "field", "value", "reason"]


_IN_TEXT_RE = re.compile(rf"(?<![A-Z0-9])({_OUTWARD}\s*{_INWARD})(?![A-Z0-9])")


def postcode_in(text):
    """The last UK postcode written in free text (an address line), normalised; None when there is none."""
    found = _IN_TEXT_RE.findall(str(text or "").upper())
    return normalise_postcode(found[-1]) if found else None


def normalise_postcode(value):
    """Return ``value`` as "OUTWARD INWARD" in upper case, or None when blank or not a UK postcode."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).upper()
    if not _VALID_RE.fullmatch(text):
        return None
    compact = _WHITESPACE_RE.sub("", text)
    return f"{compact[:-3]} {compact[-3:]}"


def normalise_postcodes(series):
    """Vectorised ``normalise_postcode``: a "string" Series with <NA> for blank or invalid values."""
    if not isinstance(series, pd.Series):
        series = pd.Series(series)
    # Registers repeat postcodes a lot, so the string work runs once per distinct value, not once per row.
    codes, uniques = pd.factorize(series)
    upper = pc.utf8_upper(pa.array(pd.Series(uniques).astype("string")))
    compact = pc.replace_substring_regex(upper, f"{_SPACE}+", "")
    canonical = pc.binary_join_element_wise(pc.utf8_slice_codeunits(compact, 0, -3),
                                            pc.utf8_slice_codeunits(compact, -3), pa.scalar(" ", compact.type))
    lookup = pd.arrays.ArrowStringArray(pc.if_else(pc.match_substring_regex(upper, _VALID_ARROW), canonical, None))
    # factorize codes missing values as -1, which the take fills with <NA>.
    return pd.Series(lookup.take(codes, allow_fill=True), index=series.index, name=series.name)


def postcode_sector(pc):
    """The postcode sector ("ST16 2DH" -> "ST16 2"); None when ``pc`` is not a postcode."""
    normal = normalise_postcode(pc)
    return normal[:-2] if normal else None


def sectors(series):
    """Vectorised ``postcode_sector``: a "string" Series with <NA> for invalid postcodes."""
    return normalise_postcodes(series).str.slice(0, -2)


def read_postcodes(path, *, source=None, vintage=None):
    """Read a Code-Point Open, NSPL/ONSPD or canonical postcode table into the gazetteer GeoDataFrame (EPSG:4326).

    ``source`` and ``vintage`` given here win over the file's own columns, then the file name. Terminated NSPL
    postcodes are left out (their number is in ``gdf.attrs["terminated"]``); rows with an invalid postcode, no
    coordinates or a repeated postcode are listed in ``gdf.attrs["rejected"]``. pandas compares ``attrs`` when
    concatenating and cannot compare DataFrames, so pop ``"rejected"`` before ``pd.concat`` of two gazetteers.
    """
    path = Path(path)
    header = _read_header(path)
    headerless = normalise_postcode(header[0]) is not None
    if headerless:
        extra = [f"column_{i + 1}" for i in range(len(_CODEPOINT_SHORT_NAMES), len(header))]
        header = (_CODEPOINT_SHORT_NAMES + extra)[: len(header)]
    default_source, columns = _detect_layout(path, header)
    frame = _read_columns(path, header, columns, headerless)
    # Line numbers in the file: the header is line 1 unless the file has none.
    lines = np.arange(len(frame)) + (1 if headerless else 2)
    terminated = 0
    if "doterm" in columns:
        live = (frame[columns["doterm"]].str.strip() == "").to_numpy()
        terminated = int((~live).sum())
        frame, lines = frame[live].reset_index(drop=True), lines[live]
    lon, lat, position_field = _coordinates(frame, columns)

    raw = frame[columns["postcode"]]
    postcode = normalise_postcodes(raw)
    rejected = []
    invalid = postcode.isna().to_numpy()
    rejected.append(_rejections(lines, invalid, columns["postcode"], raw, _postcode_reason(raw)))
    located = ~np.isnan(lon)
    no_place = ~invalid & ~located
    rejected.append(_rejections(lines, no_place, position_field, frame[position_field], "no coordinates"))
    usable = ~invalid & located
    repeated = usable & postcode.duplicated(keep="first").to_numpy()
    first_line_of = pd.Series(lines[usable], index=postcode[usable]).groupby(level=0).first()
    reasons = "repeats the postcode on row " + postcode.map(first_line_of).astype("Int64").astype("string")
    rejected.append(_rejections(lines, repeated, columns["postcode"], raw, reasons))
    keep = usable & ~repeated

    default_source = default_source or path.name.split(".")[0].lower()
    if "onspd" in path.name.lower() and default_source == "nspl":
        default_source = "onspd"
    gdf = geopandas.GeoDataFrame(
        {
            "postcode": _text(postcode, keep),
            "district_code": _text(frame.get(columns.get("district")), keep),
            "lsoa11_code": _text(frame.get(columns.get("lsoa11")), keep),
            "source": _setting(source, frame.get(columns.get("source")), default_source, keep),
            "vintage": _setting(vintage, frame.get(columns.get("vintage")), guess_vintage(path), keep),
        },
        geometry=geopandas.points_from_xy(lon[keep], lat[keep], crs="EPSG:4326"),
    )[COLUMNS]
    gdf.attrs["rejected"] = pd.concat(rejected).sort_values("row", kind="stable").reset_index(drop=True)
    gdf.attrs["terminated"] = terminated
    return gdf


def guess_vintage(path):
    """Guess "YYYY-MM" (or "YYYY") from a file name such as nspl_nov2021_TF.csv; None when it says nothing."""
    stem = Path(path).stem.lower()
    for pattern, year_group, month_group in (
        (rf"(?<![a-z]){_MONTH}[_\- ]?{_YEAR}(?!\d)", 2, 1),
        (rf"(?<!\d){_YEAR}[_\- ]?{_MONTH}", 1, 2),
    ):
        found = re.search(pattern, stem)
        if found:
            month = _MONTHS.index(found.group(month_group)[:3]) + 1
            return f"{found.group(year_group)}-{month:02d}"
    found = re.search(rf"(?<!\d){_YEAR}[_\-]?(0[1-9]|1[0-2])(?!\d)", stem)
    if found:
        return f"{found.group(1)}-{found.group(2)}"
    found = re.search(rf"(?<!\d){_YEAR}(?!\d)", stem)
    return found.group(1) if found else None


def _read_header(path):
    """The first row of the file (a header, or the first record of a headerless file)."""
    try:
        first = _read_csv(path, header=None, nrows=1)
    except pd.errors.EmptyDataError as err:
        msg = f"{path.name}: the file is empty"
        raise InputError(msg) from err
    return [str(name).strip() for name in first.iloc[0].tolist()]


def _read_csv(path, **kwargs):
    """Read text columns as they are written; a BOM or gzip is handled, and Windows-1252 is the fallback."""
    options = {"dtype": str, "keep_default_na": False, "na_filter": False, **kwargs}
    try:
        try:
            return pd.read_csv(path, encoding="utf-8-sig", **options)
        except UnicodeDecodeError:
            return pd.read_csv(path, encoding="cp1252", **options)
    except FileNotFoundError as err:
        msg = f"{path.name}: file not found"
        raise InputError(msg) from err
    except (pd.errors.ParserError, ValueError) as err:
        msg = f"{path.name}: not a readable CSV file ({_safe(err, path)})"
        raise InputError(msg) from err


def _detect_layout(path, header):
    """Return (default source, {role: column name}) from the header, or raise naming the columns found."""
    for _layout, roles, required, default_source in _LAYOUTS:
        found = _match_roles(header, roles)
        has_position = {"lat", "long"} <= found.keys() or {"easting", "northing"} <= found.keys()
        if has_position and all(role in found for role in required):
            return default_source, found
    msg = (
        f"{path.name}: not a Code-Point Open, NSPL/ONSPD or postcode/lat/lon file; "
        f"columns found: {', '.join(header)}"
    )
    raise InputError(msg)


def _match_roles(header, roles):
    """{role: first column whose lower-cased name is one of the role's names (or matches its pattern)}."""
    found = {}
    for role, names in roles.items():
        for name in names:
            hits = [column for column in header if _name_matches(column.lower(), name)]
            if hits:
                found[role] = hits[0]
                break
    return found


def _name_matches(lowered, name):
    return lowered == name if isinstance(name, str) else bool(name.match(lowered))


def _read_columns(path, header, columns, headerless):
    wanted = set(columns.values())
    if headerless:
        frame = _read_csv(path, header=None, names=header, usecols=lambda name: name in wanted)
    else:
        # Stripped names were matched; read_csv sees the raw header, so select by position.
        positions = [i for i, name in enumerate(header) if name in wanted]
        frame = _read_csv(path, usecols=positions)
        frame.columns = [header[i] for i in positions]
    return frame


@functools.cache
def _bng_to_wgs84():
    # always_xy: easting/northing in, longitude/latitude out, whatever the EPSG axis order says.
    return Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


def _grid_to_lonlat(easting, northing):
    """Vectorised EPSG:27700 -> EPSG:4326; NaN in gives NaN out."""
    lon = np.full(len(easting), np.nan)
    lat = np.full(len(easting), np.nan)
    # A grid reference of (0, 0) is Code-Point's "no coordinates" (positional quality 90).
    ok = ~np.isnan(easting) & ~np.isnan(northing) & ~((easting == 0) & (northing == 0))
    if ok.any():
        lon[ok], lat[ok] = _bng_to_wgs84().transform(easting[ok], northing[ok])
    return lon, lat


def _numbers(column):
    # A writable copy: NSPL's "no location" latitudes are blanked in place.
    return np.array(pd.to_numeric(column.str.strip(), errors="coerce"), dtype=float)


def _coordinates(frame, columns):
    """(lon, lat, field to blame): latitude/longitude where the file gives them, else the grid reference
    converted from EPSG:27700."""
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    if "lat" in columns and "long" in columns:
        lat = _numbers(frame[columns["lat"]])
        lon = _numbers(frame[columns["long"]])
        missing = np.isnan(lat) | np.isnan(lon) | (np.abs(lat) > _NO_LATITUDE) | (np.abs(lon) > 180)
        lat[missing] = np.nan
        lon[missing] = np.nan
    if "easting" in columns and "northing" in columns:
        todo = np.isnan(lon)
        grid_lon, grid_lat = _grid_to_lonlat(
            _numbers(frame[columns["easting"]])[todo], _numbers(frame[columns["northing"]])[todo]
        )
        lon[todo], lat[todo] = grid_lon, grid_lat
    position_field = columns["lat"] if "lat" in columns else columns["easting"]
    return lon, lat, position_field


def _postcode_reason(raw):
    blank = raw.str.strip() == ""
    return pd.Series(np.where(blank, "postcode missing", "not a valid UK postcode"), index=raw.index)


def _rejections(lines, mask, field, values, reason):
    """Rejected rows as ``row, field, value, reason``; ``reason`` is one string or a Series aligned with ``values``."""
    mask = np.asarray(mask, dtype=bool)
    if isinstance(reason, pd.Series):
        reasons = reason[mask].to_numpy(dtype=object)
    else:
        reasons = np.full(int(mask.sum()), reason, dtype=object)
    return pd.DataFrame(
        {
            "row": lines[mask].astype("int64"),
            "field": np.full(int(mask.sum()), field, dtype=object),
            "value": values[mask].to_numpy(dtype=object),
            "reason": reasons,
        },
        columns=REJECTED_COLUMNS,
    ).astype({"field": object, "value": object, "reason": object})


def _setting(given, column, default, keep):
    """Per-row source or vintage: the argument if given, else the file's column (blanks filled), else ``default``."""
    count = int(keep.sum())
    if given is not None:
        return pd.Series([given] * count, dtype=object)
    if column is None:
        return pd.Series([default] * count, dtype=object)
    values = _text(column, keep)
    return values.where(values.notna(), default).astype(object)


def _text(values, keep):
    """The kept rows as an object column of stripped strings, None for blanks (all None when ``values`` is None)."""
    if values is None:
        return pd.Series([None] * int(keep.sum()), dtype=object)
    text = values[keep].astype(str).str.strip().to_numpy(dtype=object)
    text[text == ""] = None
    return pd.Series(text, dtype=object)


def _safe(err, path):
    # Messages are shown to users: name the file, never its folder on the server.
    return str(err).replace(str(path.resolve()), path.name).replace(str(path), path.name).strip()
