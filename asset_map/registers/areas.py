"""District, LSOA 2011 and LSOA 2021 of each point, by point-in-polygon in EPSG:27700 (metres).

Boundaries are generalised, so a real point near a border can fall just outside every polygon: within
``tolerance_m`` it takes the nearest polygon and is flagged (``area_flag``); beyond it, the point is outside the
loaded districts, which the importer treats as a row it cannot place (quarantined with the distance).

Registers repeat points (every asset geocoded by the same postcode shares one), so each distinct point is tested once.
"""

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import text

MEASURE_CRS = 27700
_TO_BNG = Transformer.from_crs(4326, MEASURE_CRS, always_xy=True)


@dataclass
class Layer:
    codes: np.ndarray
    tree: shapely.STRtree
    districts: np.ndarray | None = None
    outline: object = None            # the layer's union, simplified: for "how far outside" only


def load_boundaries(engine):
    """Districts and both LSOA vintages from the store, in EPSG:27700, each with a spatial index."""
    layers = {}
    queries = {
        "district": "SELECT code, NULL AS district_code, geom FROM districts ORDER BY code",
        "lsoa11": "SELECT code, district_code, geom FROM areas WHERE vintage = 2011 ORDER BY code",
        "lsoa21": "SELECT code, district_code, geom FROM areas WHERE vintage = 2021 ORDER BY code",
    }
    with engine.connect() as conn:
        for name, sql in queries.items():
            gdf = gpd.read_postgis(text(sql), conn, geom_col="geom", crs=4326).to_crs(MEASURE_CRS)
            geoms = gdf.geometry.to_numpy()
            shapely.prepare(geoms)
            # 50 m of simplification moves a reported distance of kilometres by at most 50 m.
            outline = shapely.union_all(shapely.simplify(geoms, 50)) if name == "district" and len(geoms) else None
            layers[name] = Layer(gdf["code"].to_numpy(dtype=object), shapely.STRtree(geoms),
                                 gdf["district_code"].to_numpy(dtype=object), outline)
    return layers


def assign(lon, lat, layers, *, tolerance_m=200.0):
    """Frame of ``district_code, lsoa11_code, lsoa21_code, area_flag, outside_m`` for points (EPSG:4326 arrays).

    ``outside_m`` is the distance to the nearest district for points beyond the tolerance (NaN otherwise);
    ``area_flag`` names what was taken as the nearest within the tolerance ("nearest district 37 m").
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    n = len(lon)
    located = ~np.isnan(lon) & ~np.isnan(lat)
    # Distinct points only: factorize a complex number made of the pair (exact, hashable, vectorised).
    codes, uniques = pd.factorize(lon[located] + 1j * lat[located])
    x, y = _TO_BNG.transform(uniques.real, uniques.imag)
    points = shapely.points(x, y)
    result = {"district_code": np.full(n, None, dtype=object), "lsoa11_code": np.full(n, None, dtype=object),
              "lsoa21_code": np.full(n, None, dtype=object), "area_flag": np.full(n, None, dtype=object),
              "outside_m": np.full(n, np.nan)}
    flags = np.full(len(points), None, dtype=object)
    outside = np.full(len(points), np.nan)
    found = {}
    in_area = np.ones(len(points), dtype=bool)
    for name, layer in layers.items():
        # Points outside every district need no LSOA: they are out of area.
        code, snapped, far = np.full(len(points), None, dtype=object), np.full(len(points), np.nan), \
            np.full(len(points), np.nan)
        sub = np.flatnonzero(in_area)
        code[sub], snapped[sub], far[sub] = _locate(points[sub], layer, tolerance_m)
        if name == "district":
            in_area = ~pd.isna(code)
        found[name] = code
        if name == "district":
            outside = far
            for i in np.flatnonzero(~np.isnan(snapped)):
                flags[i] = f"nearest district {snapped[i]:.0f} m"
        else:
            for i in np.flatnonzero(~np.isnan(snapped) & pd.isna(flags)):
                flags[i] = f"nearest {name} {snapped[i]:.0f} m"
    where = np.flatnonzero(located)
    for name, column in (("district", "district_code"), ("lsoa11", "lsoa11_code"), ("lsoa21", "lsoa21_code")):
        if name in found:
            result[column][where] = found[name][codes]
    result["area_flag"][where] = flags[codes]
    result["outside_m"][where] = outside[codes]
    # Out of area: no district within the tolerance, so no area codes either.
    far = ~np.isnan(result["outside_m"])
    for column in ("lsoa11_code", "lsoa21_code"):
        result[column][far] = None
    return pd.DataFrame(result)


def _locate(points, layer, tolerance_m):
    """(code per point or None, distance where snapped to the nearest else NaN, distance where beyond the
    tolerance else NaN)."""
    m = len(points)
    code = np.full(m, None, dtype=object)
    snapped = np.full(m, np.nan)
    far = np.full(m, np.nan)
    if not len(layer.codes) or not m:
        return code, snapped, far
    inside_pt, inside_poly = layer.tree.query(points, predicate="intersects")
    # A point on a shared border touches two polygons: the first (lowest code) wins, the same every time.
    order = np.lexsort((inside_poly, inside_pt))
    inside_pt, inside_poly = inside_pt[order], inside_poly[order]
    first = np.unique(inside_pt, return_index=True)[1]
    code[inside_pt[first]] = layer.codes[inside_poly[first]]
    missing = np.flatnonzero(pd.isna(code))
    if len(missing):
        # Bounded search first: points far from everything are answered by the outline below, not by a full
        # nearest-neighbour search over detailed polygons.
        (near_pt, near_poly), distance = layer.tree.query_nearest(
            points[missing], max_distance=tolerance_m, return_distance=True, all_matches=False)
        idx = missing[near_pt]
        code[idx] = layer.codes[near_poly]
        snapped[idx] = distance
        rest = np.setdiff1d(missing, idx)
        if len(rest) and layer.outline is not None:
            far[rest] = np.maximum(shapely.distance(points[rest], layer.outline), tolerance_m)
        elif len(rest):
            far[rest] = np.inf
    return code, snapped, far
