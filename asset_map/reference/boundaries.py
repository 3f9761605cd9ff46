"""District and small-area (LSOA) boundaries read into canonical GeoDataFrames in EPSG:4326.

``read_districts`` -> ``code, name, geometry``; ``read_areas`` -> ``code, name, district_code, vintage, population,
geometry``. Geometries are valid MultiPolygons. Any file pyogrio can open will do (GeoJSON, GeoPackage, Shapefile).
"""

import numbers
import re
from pathlib import Path

import geopandas
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import MultiPolygon, Polygon

from asset_map.errors import InputError

DISTRICT_COLUMNS = ["code", "name", "geometry"]
AREA_COLUMNS = ["code", "name", "district_code", "vintage", "population", "geometry"]
AREA_VINTAGES = (2011, 2021)
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")

# Field names tried in order, matched case-insensitively against the whole name.
_DISTRICT_CODE = [r"LAD\d\dCD", r"lad_?code", r"lad\d\d_?code", r"district_?code", r"code"]
_DISTRICT_NAME = [r"LAD\d\dNM", r"lad_?name", r"lad\d\d_?name", r"district_?name", r"name"]
_AREA_DISTRICT = [r"LAD\d\dCD", r"lad_?code", r"lad\d\d_?code", r"district_?code", r"district"]
_POPULATION = [r"population(_\d{4})?", r"total[ _]population.*", r"pop(ulation)?_?total", r"pop"]
_ONS_CODE = re.compile(r"^[EWSN]\d{8}$")


def read_districts(path, *, code_field=None, name_field=None):
    """Read district polygons: ``code`` (ONS code), ``name``, ``geometry`` (MultiPolygon, EPSG:4326)."""
    path = Path(path)
    gdf = _read_vector(path)
    code_field = code_field or _find_field(path, gdf, _DISTRICT_CODE, "district code")
    name_field = name_field or _find_field(path, gdf, _DISTRICT_NAME, "district name", required=False)
    _require_fields(path, gdf, [code_field, name_field])
    codes = _codes(path, gdf, code_field)
    return geopandas.GeoDataFrame(
        {"code": codes, "name": _names(gdf, name_field)},
        geometry=_multipolygons(path, gdf, code_field),
        crs="EPSG:4326",
    )[DISTRICT_COLUMNS]


def read_areas(paths, *, vintage, code_field=None, name_field=None, district_field=None):
    """Read LSOA polygons from one or more files (or folders of them) into one GeoDataFrame in EPSG:4326.

    Columns: ``code, name, district_code, vintage, population`` (Int64, <NA> when the file has none) and
    ``geometry``. A file without a district field takes its district code from its name when that is an ONS
    code (the pack's lsoa2011/E07000199.geojson).
    """
    if isinstance(vintage, bool) or not isinstance(vintage, numbers.Integral) or vintage not in AREA_VINTAGES:
        msg = f"area vintage must be one of {', '.join(map(str, AREA_VINTAGES))}, not {vintage!r}"
        raise InputError(msg)
    files = _expand(paths)
    if not files:
        msg = "no area boundary files given"
        raise InputError(msg)
    frames = []
    seen = {}
    for path in files:
        frame = _read_area_file(path, vintage, code_field, name_field, district_field)
        for code in frame["code"]:
            if code in seen:
                msg = f"area code {code!r} is in both {seen[code].name} and {path.name}"
                raise InputError(msg)
            seen[code] = path
        frames.append(frame)
    gdf = pd.concat(frames, ignore_index=True)
    return geopandas.GeoDataFrame(gdf, geometry="geometry", crs="EPSG:4326")[AREA_COLUMNS]


def _read_area_file(path, vintage, code_field, name_field, district_field):
    gdf = _read_vector(path)
    year = f"{vintage % 100:02d}"
    code_field = code_field or _area_code_field(path, gdf, year)
    name_field = name_field or _find_field(
        path, gdf, [rf"LSOA{year}NM", r"lsoa_?name", r"area_?name", r"name"], "area name", required=False
    )
    district_field = district_field or _find_field(path, gdf, _AREA_DISTRICT, "district", required=False)
    population_field = _find_field(path, gdf, _POPULATION, "population", required=False)
    _require_fields(path, gdf, [code_field, name_field, district_field])
    if district_field:
        districts = _names(gdf, district_field)
    else:
        # The pack keeps one LSOA file per district, named by the district's ONS code.
        from_name = path.stem.upper() if _ONS_CODE.match(path.stem.upper()) else None
        districts = pd.Series([from_name] * len(gdf), dtype=object)
    return geopandas.GeoDataFrame(
        {
            "code": _codes(path, gdf, code_field),
            "name": _names(gdf, name_field),
            "district_code": districts,
            "vintage": pd.Series([vintage] * len(gdf), dtype="int64"),
            "population": _population(path, gdf, population_field),
        },
        geometry=_multipolygons(path, gdf, code_field),
        crs="EPSG:4326",
    )


def _area_code_field(path, gdf, year):
    """The LSOA code field for the asked vintage; a field of the other vintage means the wrong vintage was given."""
    field = _find_field(path, gdf, [rf"LSOA{year}CD", r"lsoa_?code", r"area_?code", r"code"], "area code",
                        required=False)
    if field:
        return field
    other = _find_field(path, gdf, [r"LSOA\d\dCD"], "area code", required=False)
    if other:
        msg = f"{path.name}: field {other} holds LSOA codes of another vintage than 20{year}; check the vintage"
        raise InputError(msg)
    return _find_field(path, gdf, [], "area code")  # raises, listing the fields found


def _expand(paths):
    """A list of files; a single path is accepted, and a folder stands for the vector files in it."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in VECTOR_SUFFIXES))
        else:
            files.append(path)
    return files


def read_vector_file(path):
    """Any vector file pyogrio opens, as it is (its own CRS, or none); InputError naming the file otherwise."""
    if not path.exists():
        msg = f"{path.name}: file not found"
        raise InputError(msg)
    try:
        return geopandas.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as err:
        msg = f"{path.name}: not a readable vector file ({_safe(err, path)})"
        raise InputError(msg) from err


def _read_vector(path):
    """Read any vector file with pyogrio and return it in EPSG:4326, guessing the CRS when the file has none."""
    gdf = read_vector_file(path)
    crs = gdf.crs
    looks_projected = _looks_like_bng(gdf)
    # GeoJSON readers assume EPSG:4326 when the file names no CRS, so grid coordinates there mean BNG too.
    if crs is None or (crs.is_geographic and looks_projected):
        if looks_projected:
            crs = "EPSG:27700"
        elif _looks_like_lonlat(gdf):
            crs = "EPSG:4326"
        else:
            msg = f"{path.name}: the file has no CRS and its coordinates are neither longitude/latitude nor BNG"
            raise InputError(msg)
        gdf = gdf.set_crs(crs, allow_override=True)
    return gdf.to_crs("EPSG:4326").reset_index(drop=True)


def _looks_like_lonlat(gdf):
    minx, miny, maxx, maxy = gdf.total_bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def _looks_like_bng(gdf):
    # British National Grid eastings run 0..700 km and northings 0..1300 km; degrees never exceed 180.
    minx, miny, maxx, maxy = gdf.total_bounds
    return 0 <= minx <= maxx <= 700_000 and 0 <= miny <= maxy <= 1_300_000 and max(maxx, maxy) > 180


def _find_field(path, gdf, patterns, what, *, required=True):
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    for pattern in patterns:
        for column in columns:
            if re.fullmatch(pattern, str(column).strip(), flags=re.IGNORECASE):
                return column
    if not required:
        return None
    msg = f"{path.name}: no {what} field found; fields: {', '.join(map(str, columns))}"
    raise InputError(msg)


def _require_fields(path, gdf, fields):
    for field in fields:
        if field is not None and field not in gdf.columns:
            msg = f"{path.name}: no field {field!r}; fields: {', '.join(map(str, gdf.columns))}"
            raise InputError(msg)


def _codes(path, gdf, field):
    """Stripped codes; a blank or repeated code raises naming the feature (1-based), field and value."""
    codes = _names(gdf, field)
    first_seen = {}
    for i, code in enumerate(codes):
        if code is None:
            msg = f"{path.name}, feature {i + 1}, field {field!r}: value {gdf[field].iloc[i]!r} is not a code"
            raise InputError(msg)
        if code in first_seen:
            msg = (
                f"{path.name}, feature {i + 1}, field {field!r}: value {code!r} repeats feature {first_seen[code]}"
            )
            raise InputError(msg)
        first_seen[code] = i + 1
    return codes


def _names(gdf, field):
    """Stripped text as an object column, None for missing or blank values (all None when there is no field)."""
    if field is None:
        return pd.Series([None] * len(gdf), dtype=object)
    values = []
    for value in gdf[field].tolist():
        text = None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip()
        values.append(text or None)
    return pd.Series(values, dtype=object)


def _population(path, gdf, field):
    if field is None:
        return pd.Series([pd.NA] * len(gdf), dtype="Int64")
    raw = gdf[field]
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.replace(",", "").str.strip()
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = (text != "") & (numbers.isna() | (numbers % 1 != 0) | (numbers < 0))
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        msg = f"{path.name}, feature {i + 1}, field {field!r}: value {raw.iloc[i]!r} is not a head count"
        raise InputError(msg)
    return numbers.astype("Int64").reset_index(drop=True)


def _multipolygons(path, gdf, code_field):
    """Valid MultiPolygons: invalid shapes are repaired and only their polygonal parts kept."""
    out = []
    for i, geom in enumerate(gdf.geometry):
        polygons = _polygonal_parts(shapely.make_valid(geom) if geom is not None and not geom.is_valid else geom)
        if not polygons:
            code = gdf[code_field].iloc[i]
            msg = f"{path.name}, feature {i + 1}, field 'geometry': area {code!r} has no polygon"
            raise InputError(msg)
        shape = MultiPolygon(polygons)
        if not shape.is_valid:
            # Parts of a valid collection may overlap; their union is one valid (Multi)Polygon.
            shape = MultiPolygon(_polygonal_parts(shapely.union_all(polygons)))
        out.append(shape)
    return geopandas.GeoSeries(out, crs="EPSG:4326")


def _polygonal_parts(geom):
    """The non-empty Polygons in ``geom``, through any nesting of multi-parts and collections (make_valid may
    return polygons mixed with the lines and points that collapsed)."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    return [polygon for part in getattr(geom, "geoms", []) for polygon in _polygonal_parts(part)]


def _safe(err, path):
    # Messages are shown to users: name the file, never its folder on the server.
    return str(err).replace(str(path.resolve()), path.name).replace(str(path), path.name).strip()
