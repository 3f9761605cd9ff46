"""Any set of areas from a boundary file: electoral divisions, wards, parishes, pilot neighbourhoods.

``read_geography`` reads GeoJSON, GeoPackage or Shapefile (anything pyogrio opens) in any CRS and returns
``code, name, geometry`` (valid MultiPolygons, EPSG:4326) plus notes, or raises one InputError that lists every
feature it cannot use (a blank or repeated code, no polygon): a file is loaded whole or not at all. Invalid and
self-intersecting polygons are repaired and each repair is reported by feature; areas that overlap each other are
reported (pilot neighbourhoods may overlap on purpose, wards should not).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from asset_map.errors import InputError
from asset_map.reference.boundaries import _looks_like_bng, _polygonal_parts, read_vector_file

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
# Codes go into URLs and the shared filter's area=geography:code, so they keep to these characters.
CODE = re.compile(r"^[A-Za-z0-9 _.-]{1,64}$")
# Tried in order against the whole field name, case-insensitively: ONS/OS fields (CED23CD, WD24CD, PAR23CD), then
# the plain words.
CODE_FIELDS = [r"[A-Z]{2,5}\d\dCD", r"code", r"area_?code", r"gss_?code", r"id"]
NAME_FIELDS = [r"[A-Z]{2,5}\d\dNM", r"name", r"area_?name"]
MAX_LISTED = 20
# Overlaps smaller than this share of the smaller area are slivers of generalised boundaries, not overlaps.
OVERLAP_SHARE = 0.01


@dataclass
class GeographyFile:
    frame: geopandas.GeoDataFrame          # code, name, geometry (EPSG:4326)
    source: str
    crs: str
    notes: list = field(default_factory=list)


def check_name(name):
    value = str(name or "").strip()
    if not NAME.match(value):
        msg = (f"Geography name {str(name)[:80]!r} is not usable: start with a letter and use lower-case letters, "
               "digits, '-' or '_' (at most 64), e.g. divisions or pilot-neighbourhoods.")
        raise InputError(msg)
    return value


def read_geography(path, *, code_field=None, name_field=None, crs=None):
    path = Path(path)
    gdf = _read(path, crs)
    code_field = code_field or _field(path, gdf, CODE_FIELDS, "code")
    name_field = name_field or _field(path, gdf, NAME_FIELDS, "name", required=False)
    for f in (code_field, name_field):
        if f is not None and f not in gdf.columns:
            msg = f"{path.name}: no field {f!r}; fields: {', '.join(_fields(gdf))}"
            raise InputError(msg)
    codes = [_text(v) for v in gdf[code_field]]
    names = [_text(v) for v in gdf[name_field]] if name_field else [None] * len(gdf)
    errors, notes = [], []
    first = {}
    for i, code in enumerate(codes):
        if code is None or not CODE.match(code):
            errors.append(f"feature {i + 1}, field {code_field!r}: value {gdf[code_field].iloc[i]!r} is not a code "
                          "(1 to 64 letters, digits, spaces, '.', '_' or '-')")
        elif code in first:
            errors.append(f"feature {i + 1}, field {code_field!r}: code {code!r} repeats feature {first[code]}")
        else:
            first[code] = i + 1
    geoms = []
    for i, geom in enumerate(gdf.geometry.to_numpy()):
        label = f"feature {i + 1} ({codes[i] or 'no code'})"
        shape, problem = _repair(geom)
        if shape is None:
            errors.append(f"{label}: {problem}")
        elif problem:
            notes.append(f"{label}: {problem}")
        geoms.append(shape)
    if errors:
        listed = "; ".join(errors[:MAX_LISTED])
        more = f"; and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        msg = f"{path.name}: {len(errors)} feature{'s' if len(errors) != 1 else ''} cannot be loaded, nothing was: " \
              f"{listed}{more}"
        raise InputError(msg)
    frame = geopandas.GeoDataFrame({"code": codes, "name": [n or c for n, c in zip(names, codes)]},
                                   geometry=geopandas.GeoSeries(geoms, crs=gdf.crs), crs=gdf.crs)
    frame = frame.to_crs(4326)
    notes.extend(overlaps(frame))
    return GeographyFile(frame, path.name, gdf.crs.to_string(), notes)


def polygon_from_geojson(geometry, *, label="The drawn area"):
    """A valid MultiPolygon (EPSG:4326) from a GeoJSON geometry drawn on the map; InputError with a plain message
    for lines, two-point shapes and shapes that collapse to nothing."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        msg = f"{label} must be a polygon; got {kind or 'nothing'}. Draw the outline with at least three points."
        raise InputError(msg)
    rings = geometry.get("coordinates") or []
    polys = rings if geometry["type"] == "MultiPolygon" else [rings]
    for poly in polys:
        outer = poly[0] if poly else []
        distinct = {tuple(map(float, p[:2])) for p in outer if isinstance(p, (list, tuple)) and len(p) >= 2}
        if len(distinct) < 3:
            msg = (f"{label} has {len(distinct)} distinct point{'s' if len(distinct) != 1 else ''}; an area needs "
                   "at least three. Draw the outline again, clicking each corner and the first point to close it.")
            raise InputError(msg)
    try:
        shape = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, AttributeError) as err:
        msg = f"{label} is not a usable polygon ({err})."
        raise InputError(msg) from err
    xmin, ymin, xmax, ymax = shape.bounds
    if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        msg = f"{label} lies outside longitude -180..180 and latitude -90..90."
        raise InputError(msg)
    repaired, problem = _repair(shape)
    if repaired is None:
        msg = f"{label}: {problem}"
        raise InputError(msg)
    return repaired, problem


def overlaps(frame):
    """Notes naming each pair of areas that overlap by more than OVERLAP_SHARE of the smaller (measured in
    EPSG:27700)."""
    if len(frame) < 2:
        return []
    geoms = frame.to_crs(27700).geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    # Overlapping or one inside another; neighbours that only touch share no area and are not tested further.
    pairs = [tree.query(geoms, predicate=p) for p in ("overlaps", "contains")]
    left = np.concatenate([np.minimum(a, b) for a, b in pairs])
    right = np.concatenate([np.maximum(a, b) for a, b in pairs])
    keep = left < right
    left, right = left[keep], right[keep]
    if not len(left):
        return []
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
    big = shared > OVERLAP_SHARE * smaller
    codes = frame["code"].to_numpy()
    out = [f"areas {codes[a]} and {codes[b]} overlap by {s / 10_000:,.1f} ha; an asset there belongs to both"
           for a, b, s in zip(left[big], right[big], shared[big])]
    if len(out) > MAX_LISTED:
        out = out[:MAX_LISTED] + [f"... and {len(out) - MAX_LISTED} more overlapping pairs"]
    return out


def _read(path, crs):
    gdf = read_vector_file(path)
    if not len(gdf):
        msg = f"{path.name}: the file has no features"
        raise InputError(msg)
    given = None
    if crs:
        try:
            given = CRS.from_user_input(crs)
        except CRSError as err:
            msg = f"CRS {crs!r} is not known; give it as e.g. EPSG:27700"
            raise InputError(msg) from err
    if given is not None:
        return gdf.set_crs(given, allow_override=True)
    # GeoJSON readers assume longitude/latitude when a file names no CRS; grid numbers there mean it had none.
    if gdf.crs is None or (gdf.crs.is_geographic and _looks_like_bng(gdf)):
        hint = " (its coordinates look like British National Grid: --crs EPSG:27700)" if _looks_like_bng(gdf) else ""
        msg = f"{path.name}: the file does not say its coordinate reference system; give it with --crs{hint}"
        raise InputError(msg)
    return gdf


def _field(path, gdf, patterns, what, *, required=True):
    for pattern in patterns:
        for column in _fields(gdf):
            if re.fullmatch(pattern, str(column).strip(), flags=re.IGNORECASE):
                return column
    if not required:
        return None
    msg = f"{path.name}: no {what} field found; name it with --{what}-field (fields: {', '.join(_fields(gdf))})"
    raise InputError(msg)


def _fields(gdf):
    return [str(c) for c in gdf.columns if c != gdf.geometry.name]


def _text(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    return out or None


def _repair(geom):
    """(valid MultiPolygon or None, a note on what was wrong or None)."""
    if geom is None or geom.is_empty:
        return None, "has no geometry"
    if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        return None, f"is a {geom.geom_type}, not a polygon"
    note = None
    if not geom.is_valid:
        note = f"invalid polygon repaired ({shapely.is_valid_reason(geom)})"
        geom = shapely.make_valid(geom)
    parts = _polygonal_parts(geom)
    if not parts:
        return None, "has no area left after repair (its outline crosses itself into nothing)"
    shape = shapely.MultiPolygon(parts)
    if not shape.is_valid:
        shape = shapely.MultiPolygon(_polygonal_parts(shapely.union_all(parts)))
    return shape, note
