"""District, LSOA 2011 and LSOA 2021 of each point, by point-in-polygon in EPSG:27700 (metres).

Boundaries are generalised, so a real point near a border can fall just outside every polygon: within
``tolerance_m`` it takes the nearest polygon and is flagged (``area_flag``); beyond it, the point is outside the
loaded districts, which the importer treats as a row it cannot place (quarantined with the distance).

Registers repeat points (every asset geocoded by the same postcode shares one), so each distinct point is tested once.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

MEASURE_CRS = 27700
_TO_BNG = Transformer.from_crs(4326, MEASURE_CRS, always_xy=True)
_LAYERS = {
    "district": "SELECT code, NULL AS district_code, ST_AsBinary(geom) FROM districts ORDER BY code",
    "lsoa11": "SELECT code, district_code, ST_AsBinary(geom) FROM areas WHERE vintage = 2011 ORDER BY code",
    "lsoa21": "SELECT code, district_code, ST_AsBinary(geom) FROM areas WHERE vintage = 2021 ORDER BY code",
}


@dataclass
class Layer:
    codes: np.ndarray
    tree: shapely.STRtree
    districts: np.ndarray | None = None
    outline: object = None            # the layer's union, simplified: for "how far outside" only


def load_boundaries(engine):
    """Districts and both LSOA vintages from the store, in EPSG:27700, each with a spatial index."""
    layers = {}
    with engine.connect() as conn, conn.connection.driver_connection.cursor(binary=True) as cur:
        for name, sql in _LAYERS.items():
            # WKB straight from the driver as bytes: no hex text, no Row objects, no GeoDataFrame.
            cur.execute(sql)
            rows = cur.fetchall()
            codes = np.array([r[0] for r in rows], dtype=object)
            districts = np.array([r[1] for r in rows], dtype=object)
            geoms = shapely.from_wkb([r[2] for r in rows])
            # EPSG:4326 (lon, lat) to EPSG:27700 (easting, northing): all the layer's vertices in one pyproj call.
            geoms = shapely.transform(geoms, _TO_BNG.transform, interleaved=False)
            shapely.prepare(geoms)
            # 50 m of simplification moves a reported distance of kilometres by at most 50 m.
            outline = shapely.union_all(shapely.simplify(geoms, 50)) if name == "district" and len(geoms) else None
            layers[name] = Layer(codes, shapely.STRtree(geoms), districts, outline)
    return layers


@dataclass
class DistinctPoints:
    """Points given as EPSG:4326 arrays, kept once each: ``codes`` gives each row's point among the distinct
    ``lon, lat`` (-1 where the row's lon or lat is NaN)."""
    codes: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    row_lon: np.ndarray
    row_lat: np.ndarray

    @classmethod
    def of(cls, lon, lat):
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        located = np.flatnonzero(~np.isnan(lon) & ~np.isnan(lat))
        codes = np.full(len(lon), -1, dtype=np.intp)
        # A complex number made of the pair: hashable and factorized in one vectorised pass.
        pairs = np.empty(len(located), dtype=complex)
        pairs.real, pairs.imag = lon[located], lat[located]
        codes[located], uniques = pd.factorize(pairs)
        u_lon, u_lat = uniques.real, uniques.imag
        # factorize holds -0.0 and 0.0 equal: a row whose zero's sign differs from its point's gets a point of its
        # own, so that its geometry and texts keep the row's numbers exactly.
        odd = located[(np.signbit(u_lon[codes[located]]) != np.signbit(lon[located]))
                      | (np.signbit(u_lat[codes[located]]) != np.signbit(lat[located]))]
        codes[odd] = len(u_lon) + np.arange(len(odd))
        return cls(codes, np.append(u_lon, lon[odd]), np.append(u_lat, lat[odd]), lon, lat)

    def spread(self, values, missing):
        """Row values from one value per distinct point (``missing`` for unlocated rows). The values are typed
        once on the distinct points (strings become pandas' "str", as a frame of the rows would infer) and then
        taken, so a million rows make no Python objects."""
        typed = pd.Series(np.append(values, missing)).array
        return typed[self.codes]  # code -1 takes the appended ``missing``

    def geometry(self):
        """A shapely point (EPSG:4326) per row; rows sharing a point share one immutable geometry object."""
        points = np.append(shapely.points(self.lon, self.lat), None)[self.codes]
        unlocated = self.codes < 0
        points[unlocated] = shapely.points(self.row_lon[unlocated], self.row_lat[unlocated])
        return points


def assign(lon, lat, layers, *, tolerance_m=200.0):
    """Frame of ``district_code, lsoa11_code, lsoa21_code, area_flag, outside_m`` for points (EPSG:4326 arrays).

    ``outside_m`` is the distance to the nearest district for points beyond the tolerance (NaN otherwise);
    ``area_flag`` names what was taken as the nearest within the tolerance ("nearest district 37 m").
    """
    return assign_distinct(DistinctPoints.of(lon, lat), layers, tolerance_m=tolerance_m)


def assign_distinct(points, layers, *, tolerance_m=200.0):
    """``assign`` for DistinctPoints: each distinct point is located once."""
    found = _assign_distinct(points.lon, points.lat, layers, tolerance_m)
    return pd.DataFrame({column: points.spread(values, None if values.dtype == object else np.nan)
                         for column, values in found.items()})


def _assign_distinct(lon, lat, layers, tolerance_m):
    """The columns of ``assign`` for distinct points."""
    x, y = _TO_BNG.transform(lon, lat)
    points = shapely.points(x, y)
    m = len(points)
    result = {"district_code": np.full(m, None, dtype=object), "lsoa11_code": np.full(m, None, dtype=object),
              "lsoa21_code": np.full(m, None, dtype=object), "area_flag": np.full(m, None, dtype=object),
              "outside_m": np.full(m, np.nan)}
    in_area = np.ones(m, dtype=bool)
    for name, layer in layers.items():
        column = "district_code" if name == "district" else f"{name}_code"
        # Points with no district, not even one within the tolerance, need no LSOA: they are out of area.
        sub = np.flatnonzero(in_area)
        code, snapped, far = _locate(points[sub], layer, tolerance_m)
        result[column][sub] = code
        flag = np.flatnonzero(~np.isnan(snapped) & pd.isna(result["area_flag"][sub]))
        result["area_flag"][sub[flag]] = [f"nearest {name} {d:.0f} m" for d in snapped[flag]]
        if name == "district":
            result["outside_m"][sub] = far
            in_area = ~pd.isna(result[column])
    return result


def _locate(points, layer, tolerance_m):
    """(code per point or None, distance where snapped to the nearest else NaN, distance where beyond the
    tolerance else NaN)."""
    m = len(points)
    code = np.full(m, None, dtype=object)
    snapped = np.full(m, np.nan)
    far = np.full(m, np.nan)
    if not len(layer.codes) or not m:
        return code, snapped, far
    inside_pt, inside_poly = _intersecting(points, layer.tree)
    # A point on a shared border touches two polygons: the first (lowest code) wins, the same every time.
    order = np.lexsort((inside_poly, inside_pt))
    inside_pt, inside_poly = inside_pt[order], inside_poly[order]
    first = np.unique(inside_pt, return_index=True)[1]
    code[inside_pt[first]] = layer.codes[inside_poly[first]]
    missing = np.flatnonzero(pd.isna(code))
    if len(missing):
        # Bounded search first: points far from everything are answered by the outline below, not by a full
        # nearest-neighbour search over detailed polygons. Even bounded, that search measures the distance to every
        # polygon whose box is near, so it runs only on the few points that some polygon is within reach of.
        near = missing[_near_any(points[missing], layer.tree, tolerance_m)]
        (near_pt, near_poly), distance = layer.tree.query_nearest(
            points[near], max_distance=tolerance_m, return_distance=True, all_matches=False)
        idx = near[near_pt]
        code[idx] = layer.codes[near_poly]
        snapped[idx] = distance
        rest = np.setdiff1d(missing, idx)
        if len(rest) and layer.outline is not None:
            far[rest] = np.maximum(shapely.distance(points[rest], layer.outline), tolerance_m)
        elif len(rest):
            far[rest] = np.inf
    return code, snapped, far


def _intersecting(points, tree):
    """(point index, polygon index) of each point and polygon that intersect.

    The tree's own predicate query would test every candidate pair against the unprepared polygon; filtering its
    bounding-box candidates with ``shapely.intersects`` on the prepared polygons is many times faster."""
    pt, poly = tree.query(points)
    hit = shapely.intersects(tree.geometries[poly], points[pt])
    return pt[hit], poly[hit]


def _near_any(points, tree, distance):
    """Indices of the points within about ``distance`` of a polygon of the tree (a little more, never less)."""
    # One metre more than asked: this only narrows the exact search, which must see every point it would find.
    reach = distance + 1.0
    x, y = shapely.get_x(points), shapely.get_y(points)
    pt, poly = tree.query(shapely.box(x - reach, y - reach, x + reach, y + reach))
    # As in _intersecting: the polygons are prepared, so dwithin on them beats the tree's own predicate.
    close = shapely.dwithin(tree.geometries[poly], points[pt], reach)
    return np.unique(pt[close])
