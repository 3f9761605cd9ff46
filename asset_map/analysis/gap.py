"""Gap analysis: where need is high and assets are few. Pure functions on (Geo)DataFrames; no Flask, no store.

Every distance is measured in EPSG:27700 metres (British National Grid): frames in any CRS are transformed here.

The pipeline (:func:`analyse`):

1. an origin per area: its geometric centroid, or its population-weighted centroid where finer population points
   (e.g. Output Area population-weighted centroids) are given; the output says which per area;
2. supply per area: assets inside (point in polygon) and per 1,000 residents; straight-line distance from the
   origin to the nearest asset of each group (a category, an offer, or all selected assets) with a KD-tree over
   *every* asset given, so the nearest asset may lie across a district border; and 2SFCA accessibility (assets per
   1,000 residents within the catchment, optionally with distance decay) computed by PySAL ``access`` on the pairs
   the KD-tree finds within the catchment, with every area as demand (not only the reported ones);
3. need class (IMD deciles 1-2 high, 3-5 medium, 6-10 low by default, or terciles of any indicator's score) x
   supply class (terciles within the reported areas) = a 3x3 bivariate class;
4. priority gaps: high need and low supply, ranked by need then supply.
"""

import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from access import fca
from pyproj import Transformer
from scipy.spatial import cKDTree

from asset_map.analysis import gap_defaults as defaults
from asset_map.analysis.gap_defaults import DECAYS, DISTANCES, MAX_CATCHMENT_M, NEED_METHODS, SUPPLY_MEASURES
from asset_map.errors import InputError

MEASURE_CRS = 27700
NEED_CLASSES = ("high", "medium", "low")
SUPPLY_CLASSES = ("low", "medium", "high")
NO_DATA = "no data"
SUPPLY_LABELS = {
    "access": "2SFCA accessibility (assets per 1,000 residents within the catchment)",
    "per_1000": "assets inside the area per 1,000 residents",
    "distance": "mean distance to the nearest asset of each group (farther = less supply)",
}


@dataclass(frozen=True)
class GapParams:
    """What a gap analysis is asked. ``groups`` are labels of the asset groups nearest distances are measured to
    (the selected categories, else the selected offers, else one group "any")."""

    catchment_m: float = defaults.CATCHMENT_M
    decay: str = defaults.DECAY
    need_method: str = defaults.NEED_METHOD
    need_breaks: tuple = defaults.NEED_BREAKS
    higher_score_is_more_need: bool = defaults.NEED_DIRECTION == "higher"
    supply_measure: str = defaults.SUPPLY_MEASURE
    groups: tuple = ("any",)
    # How distance is measured: a straight line, or along the street network of a mode (walk, drive, cycle).
    distance: str = "straight"
    # A catchment asked in minutes, and the speed (km/h) that turned it into ``catchment_m``.
    catchment_minutes: float | None = None
    speed_kmh: float | None = None
    # Network only: farthest a point may be from the network to be snapped to it, and how far to look for the
    # nearest asset (beyond it an area is "beyond search", never given a straight-line value).
    max_snap_m: float = 500.0
    search_m: float = 20_000.0

    def check(self):
        if not 0 < float(self.catchment_m) <= MAX_CATCHMENT_M:
            asked = (f"{self.catchment_minutes:g} minutes at {self.speed_kmh:g} km/h = {self.catchment_m:,.0f} m"
                     if self.catchment_minutes is not None else f"{self.catchment_m!r}")
            raise InputError(f"Catchment must be between 1 and 50,000 metres, got {asked}.")
        if self.distance not in DISTANCES:
            raise InputError(f"Distance {self.distance!r} is not known; expected one of {', '.join(DISTANCES)}.")
        if self.decay not in DECAYS:
            raise InputError(f"Distance decay {self.decay!r} is not known; expected one of {', '.join(DECAYS)}.")
        if self.need_method not in NEED_METHODS:
            raise InputError(f"Need classes {self.need_method!r} are not known; expected one of "
                             f"{', '.join(NEED_METHODS)}.")
        hi, med = (self.need_breaks + (None, None))[:2]
        if not (isinstance(hi, int) and isinstance(med, int) and 1 <= hi < med < 10):
            raise InputError(f"Need breaks must be two deciles 1 <= high < medium < 10, got {self.need_breaks!r}.")
        if self.supply_measure not in SUPPLY_MEASURES:
            raise InputError(f"Supply measure {self.supply_measure!r} is not known; expected one of "
                             f"{', '.join(SUPPLY_MEASURES)}.")
        if not self.groups:
            raise InputError("At least one asset group is needed.")
        return self

    def as_dict(self):
        return {"catchment_m": float(self.catchment_m), "decay": self.decay, "need_method": self.need_method,
                "need_breaks": list(self.need_breaks), "higher_score_is_more_need": self.higher_score_is_more_need,
                "supply_measure": self.supply_measure, "groups": list(self.groups), **self._distance_dict()}

    def _distance_dict(self):
        out = {"distance": self.distance}
        if self.catchment_minutes is not None:
            out.update(catchment_minutes=float(self.catchment_minutes), speed_kmh=float(self.speed_kmh))
        if self.distance != "straight":
            out.update(max_snap_m=float(self.max_snap_m), search_m=float(self.search_m))
        return out


def slug(label):
    """A column-safe name for a group label ("gp_practice", "buildings/space" -> "buildings_space")."""
    return re.sub(r"[^a-z0-9]+", "_", str(label).lower()).strip("_") or "group"


# -- geometry helpers ----------------------------------------------------------------------------------------------

def _in_metres(gdf):
    if gdf.crs is None:
        raise InputError("A frame without a CRS cannot be measured; set it (EPSG:4326 for the store's frames).")
    return gdf if gdf.crs.to_epsg() == MEASURE_CRS else gdf.to_crs(MEASURE_CRS)


def _xy(geoms):
    return np.column_stack([geoms.x.to_numpy(), geoms.y.to_numpy()]) if len(geoms) else np.empty((0, 2))


def area_origins(areas_m, population_points=None):
    """(x, y) origin per area in EPSG:27700 and how it was found ("population-weighted" or "geometric").

    ``population_points`` (optional): points with a ``population`` column, e.g. Output Area population-weighted
    centroids; an area with at least one such point with population > 0 gets their weighted mean, others keep
    the geometric centroid (which may fall outside a crescent-shaped area, as is usual for this measure).
    """
    centroids = areas_m.geometry.centroid
    xy = _xy(centroids)
    method = np.full(len(areas_m), "geometric", dtype=object)
    if population_points is not None and len(population_points):
        pts = _in_metres(population_points)
        weights = pd.to_numeric(pts["population"], errors="coerce").fillna(0).to_numpy(float)
        poly_idx, pt_idx = _points_in_polygons(areas_m.geometry, pts.geometry)
        w = weights[pt_idx]
        keep = w > 0
        poly_idx, pt_idx, w = poly_idx[keep], pt_idx[keep], w[keep]
        pxy = _xy(pts.geometry)[pt_idx]
        total = np.bincount(poly_idx, weights=w, minlength=len(areas_m))
        sx = np.bincount(poly_idx, weights=w * pxy[:, 0], minlength=len(areas_m))
        sy = np.bincount(poly_idx, weights=w * pxy[:, 1], minlength=len(areas_m))
        has = total > 0
        xy[has, 0] = sx[has] / total[has]
        xy[has, 1] = sy[has] / total[has]
        method[has] = "population-weighted"
    return xy, method


def _points_in_polygons(polygons, points):
    """(polygon index, point index) of every point inside (or on the edge of) a polygon.

    The tree holds the points and each polygon queries it once: a polygon is prepared once for all its
    candidate points, several times faster at 1,000,000 points than a tree of polygons queried by each point."""
    points = np.asarray(points.values if hasattr(points, "values") else points)
    polygons = np.asarray(polygons.values if hasattr(polygons, "values") else polygons)
    if not len(points) or not len(polygons):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    poly_idx, pt_idx = shapely.STRtree(points).query(polygons, predicate="intersects")
    if len(pt_idx):
        # A point on a shared edge intersects two areas: it counts for the first only, so totals add up.
        order = np.lexsort((poly_idx, pt_idx))
        pt_idx, poly_idx = pt_idx[order], poly_idx[order]
        first = np.r_[True, pt_idx[1:] != pt_idx[:-1]]
        pt_idx, poly_idx = pt_idx[first], poly_idx[first]
    return poly_idx, pt_idx


def count_inside(areas, assets):
    """Assets inside each area (an asset on a shared edge counts once). Both frames in the same CRS."""
    if not len(assets):
        return np.zeros(len(areas), dtype=np.int64)
    poly_idx, _ = _points_in_polygons(areas.geometry, assets.geometry)
    return np.bincount(poly_idx, minlength=len(areas)).astype(np.int64)


def points_in_metres(points):
    """(n, 2) EPSG:27700 coordinates of a point GeoSeries/GeoDataFrame in any CRS: arrays through pyproj, with no
    new geometry objects (a million points would take seconds to rebuild)."""
    geoms = points.geometry if hasattr(points, "geometry") else points
    if not len(geoms):
        return np.empty((0, 2))
    xy = shapely.get_coordinates(geoms.values)
    if geoms.crs is None:
        raise InputError("A frame without a CRS cannot be measured; set it (EPSG:4326 for the store's frames).")
    if geoms.crs.to_epsg() == MEASURE_CRS:
        return xy
    x, y = Transformer.from_crs(geoms.crs, MEASURE_CRS, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def nearest(origins_xy, asset_xy, asset_ids, tree=None):
    """Distance (m) and id of the nearest asset to each origin; NaN / -1 when there is no asset at all."""
    if not len(asset_xy):
        return np.full(len(origins_xy), np.nan), np.full(len(origins_xy), -1, dtype=np.int64)
    dist, idx = (tree or cKDTree(asset_xy)).query(origins_xy, k=1)
    return dist, np.asarray(asset_ids)[idx]


def decay_weight(distance, catchment, decay):
    """Weight of a pair at ``distance`` (within the catchment): 1, or falling linearly to 0 at the catchment, or
    the Gaussian of Dai (2010) that falls to 0 at the catchment."""
    d = np.asarray(distance, dtype=float)
    if decay == "none":
        return np.ones_like(d)
    if decay == "linear":
        return np.clip(1.0 - d / catchment, 0.0, 1.0)
    g0 = np.exp(-0.5)
    return np.clip((np.exp(-0.5 * (d / catchment) ** 2) - g0) / (1 - g0), 0.0, 1.0)


def pairs_within(origins_xy, asset_xy, catchment, tree=None):
    """(origin index, asset index, distance) of every origin-asset pair within ``catchment`` metres."""
    if not len(asset_xy) or not len(origins_xy):
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    found = (tree or cKDTree(asset_xy)).sparse_distance_matrix(cKDTree(origins_xy), catchment, output_type="ndarray")
    return found["j"].astype(np.int64), found["i"].astype(np.int64), found["v"].astype(float)


def two_step_fca(origins_xy, population, asset_xy, catchment, decay="none", tree=None):
    """2SFCA accessibility per origin in assets per 1,000 residents, by PySAL ``access``.

    Step 1: each asset's supply (1) over the population of the origins within the catchment; step 2: each origin
    sums the ratios of the assets within its catchment. With decay, both steps weight a pair by
    :func:`decay_weight`. The KD-tree finds the pairs (a dense matrix at England scale has 3.4e10 cells).
    """
    o, a, d = pairs_within(origins_xy, asset_xy, catchment, tree)
    return fca_from_pairs(o, a, d, population, len(asset_xy), catchment, decay)


def fca_from_pairs(o, a, d, population, n_assets, catchment, decay="none"):
    """2SFCA per origin (assets per 1,000 residents) from the (origin, asset, cost) pairs within the catchment,
    whatever measured the cost (a straight line or the street network)."""
    out = np.zeros(len(population))
    if not len(o):
        return out
    demand = pd.DataFrame({"geoid": np.arange(len(population)), "demand": np.asarray(population, dtype=float)})
    supply = pd.DataFrame({"supply": np.ones(n_assets)}, index=pd.RangeIndex(n_assets, name="asset"))
    if decay == "none":
        cost = pd.DataFrame({"origin": o, "dest": a, "cost": d})
        series = fca.two_stage_fca(demand, supply, cost, max_cost=float(catchment), demand_index="geoid",
                                   demand_name="demand", supply_name="supply")
    else:
        # access applies weight_fn element by element (slow for millions of pairs) unless it is a numpy ufunc:
        # the pairs are already within the catchment, so the cost column carries the weight and np.positive
        # hands it through unchanged, vectorised.
        cost = pd.DataFrame({"origin": o, "dest": a, "cost": decay_weight(d, catchment, decay)})
        series = fca.two_stage_fca(demand, supply, cost, max_cost=None, demand_index="geoid",
                                   demand_name="demand", supply_name="supply", weight_fn=np.positive)
    series = series.replace([np.inf, -np.inf], np.nan).dropna()
    out[series.index.to_numpy(dtype=np.int64)] = series.to_numpy() * 1000.0
    return out


# -- classes -------------------------------------------------------------------------------------------------------

def need_classes(frame, params):
    """(need_class, need_band) per area. need_band 1..10, 1 = most need, orders the priority list."""
    n = len(frame)
    cls = np.full(n, NO_DATA, dtype=object)
    band = np.full(n, np.nan)
    if params.need_method == "deciles":
        dec = pd.to_numeric(frame["need_decile"], errors="coerce").to_numpy(float)
        hi, med = params.need_breaks
        ok = ~np.isnan(dec)
        cls[ok & (dec <= hi)] = "high"
        cls[ok & (dec > hi) & (dec <= med)] = "medium"
        cls[ok & (dec > med)] = "low"
        band[ok] = dec[ok]
        return cls, band
    score = pd.to_numeric(frame["need_score"], errors="coerce")
    if not params.higher_score_is_more_need:
        score = -score
    if score.isna().all():
        # Some releases publish ranks only (IMD 2019 in the pack): rank 1 is the most need.
        score = -pd.to_numeric(frame["need_rank"], errors="coerce")
    ok = score.notna().to_numpy()
    # Share of the reported areas with at least as much need; ties share the better (higher-need) position.
    share = score.rank(method="min", ascending=False, pct=True).to_numpy(float)
    cls[ok & (share <= 1 / 3)] = "high"
    cls[ok & (share > 1 / 3) & (share <= 2 / 3)] = "medium"
    cls[ok & (share > 2 / 3)] = "low"
    band[ok] = np.ceil(share[ok] * 10)
    return cls, band


def supply_classes(key):
    """Terciles of the supply key (higher = more supply) within the reported areas: low, medium, high.

    Ranks are 'min' ranks as shares of the areas, so tied areas share a class and a run of areas with none
    (all 0) is low, however many there are."""
    key = pd.Series(key, dtype=float)
    share = key.rank(method="min", ascending=True, pct=True).to_numpy(float)
    cls = np.full(len(key), NO_DATA, dtype=object)
    ok = key.notna().to_numpy()
    cls[ok & (share <= 1 / 3)] = "low"
    cls[ok & (share > 1 / 3) & (share <= 2 / 3)] = "medium"
    cls[ok & (share > 2 / 3)] = "high"
    return cls


# -- the whole analysis --------------------------------------------------------------------------------------------

def analyse(areas, assets, params, *, report=None, population_points=None, network=None, run=None):
    """Supply, classes and priority gaps per reported area.

    ``areas``: GeoDataFrame of every area of one vintage (all are demand for 2SFCA) with ``code, name,
    district_code, population, need_score, need_rank, need_decile``. ``report``: boolean mask (or None = all) of
    the areas to report. ``assets``: GeoDataFrame of points with ``id`` and a boolean column ``group_<slug>`` per
    label in ``params.groups`` (an asset may be in several groups; the "any" group needs no column).
    ``network`` (an analysis.network.Network, needed unless ``params.distance`` is "straight"): distances,
    counts within the catchment and 2SFCA are measured along it, per district, each district's partition run by
    ``run`` (default in this process; asset_map.compute gives a cluster's).
    Returns a GeoDataFrame (the reported areas, sorted by code, in the areas' CRS).
    """
    params.check()
    if params.distance != "straight" and network is None:
        raise InputError(f"No {params.distance} network is loaded: load one with `asset-map load network FILE.osm.pbf "
                         f"--mode {params.distance}`, or measure straight-line distances.")
    areas = areas.reset_index(drop=True)
    assets = assets.reset_index(drop=True)
    for col in ("code", "population", "need_score", "need_rank", "need_decile"):
        if col not in areas.columns:
            raise InputError(f"The areas frame has no column '{col}'.")
    areas_m = _in_metres(areas)
    origins, origin_method = area_origins(areas_m, population_points)
    population = pd.to_numeric(areas["population"], errors="coerce").fillna(0).to_numpy(float)
    asset_xy = points_in_metres(assets)
    asset_ids = assets["id"].to_numpy() if len(assets) else np.empty(0, dtype=np.int64)
    tree = cKDTree(asset_xy) if len(asset_xy) else None  # shared by the "any" group and 2SFCA
    # Inside is a topological question: asked in the areas' own CRS (the store's EPSG:4326), as the store
    # assigns assets to areas, so a point near a generalised border lands in the same area everywhere.
    same_crs = assets if not len(assets) or assets.crs == areas.crs else assets.to_crs(areas.crs)

    mask = np.ones(len(areas), dtype=bool) if report is None else np.asarray(report, dtype=bool)
    out = pd.DataFrame(areas.drop(columns=areas.geometry.name)).loc[mask].copy()
    out["origin_method"] = origin_method[mask]
    out["origin_x"] = origins[mask, 0]
    out["origin_y"] = origins[mask, 1]
    inside = count_inside(areas.loc[mask], same_crs)
    out["assets_inside"] = inside
    pop = population[mask]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["assets_per_1000"] = np.where(pop > 0, inside / pop * 1000.0, np.nan)

    distance_cols = []
    lacks = [[] for _ in range(int(mask.sum()))]
    measured = None
    if params.distance != "straight":
        measured = _network_measures(network, areas, origins, population, mask, assets, asset_xy, params, run)
    straight = []
    for label in params.groups:
        s = slug(label)
        in_group = np.ones(len(asset_xy), bool) if label == "any" else assets[f"group_{s}"].to_numpy(bool)
        dist, ids = nearest(origins[mask], asset_xy[in_group], asset_ids[in_group],
                            tree=tree if label == "any" else None)
        if measured is not None:
            straight.append(dist)
            dist = measured[f"{label}\tm"].to_numpy(float)
            which = measured[f"{label}\tasset"].to_numpy(np.int64)
            ids = np.where(which >= 0, asset_ids[np.maximum(which, 0)] if len(asset_ids) else -1, -1)
            out[f"nearest_{s}_status"] = measured[f"{label}\tstatus"].to_numpy(object)
        out[f"nearest_{s}_m"] = dist
        out[f"nearest_{s}_id"] = ids
        distance_cols.append(f"nearest_{s}_m")
        for i in np.flatnonzero(~(dist <= params.catchment_m)):
            lacks[i].append(label)
    out["nearest_mean_m"] = out[distance_cols].mean(axis=1, skipna=False)
    out["lacks"] = [";".join(x) for x in lacks]
    if measured is None:
        access_all = two_step_fca(origins, population, asset_xy, params.catchment_m, params.decay, tree=tree)
        out["access_per_1000"] = access_all[mask]
    else:
        out["origin_snap_m"] = measured["origin_snap_m"].to_numpy(float)
        out["assets_within"] = measured["within"].to_numpy(np.int64)
        out["access_per_1000"] = measured["access"].to_numpy(float)
        out["straight_mean_m"] = np.mean(np.column_stack(straight), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = out["nearest_mean_m"].to_numpy(float) / np.maximum(out["straight_mean_m"].to_numpy(float), 1.0)
        out["network_ratio"] = ratio
        out["network_status"] = _status_text(out, params.groups)
        out.attrs["network"] = measured.attrs["network"]

    need_cls, band = need_classes(out, params)
    out["need_class"] = need_cls
    out["need_band"] = band
    key = {"access": out["access_per_1000"], "per_1000": out["assets_per_1000"],
           "distance": -out["nearest_mean_m"]}[params.supply_measure]
    out["supply_score"] = key.abs() if params.supply_measure == "distance" else key
    out["supply_class"] = supply_classes(key.to_numpy(float))
    out["bivariate"] = [f"{n} need / {s} supply" if n != NO_DATA and s != NO_DATA else NO_DATA
                        for n, s in zip(out["need_class"], out["supply_class"])]
    out["priority"] = (out["need_class"] == "high") & (out["supply_class"] == "low")
    out["priority_rank"] = _priority_ranks(out, key)
    attrs = dict(out.attrs)
    out = out.sort_values("code", kind="mergesort")
    geom = areas.geometry.loc[out.index]
    result = gpd.GeoDataFrame(out.reset_index(drop=True), geometry=geom.reset_index(drop=True).values, crs=areas.crs)
    result.attrs.update(attrs)
    return result


def _network_measures(network, areas, origins, population, mask, assets, asset_xy, params, run):
    """Network measures for the reported areas (in their order): see analysis.network_gap."""
    from asset_map.analysis import network_gap

    groups = {label: (np.ones(len(asset_xy), bool) if label == "any" else assets[f"group_{slug(label)}"]
                      .to_numpy(bool)) for label in params.groups}
    district = areas["district_code"].astype(str).to_numpy(object) if "district_code" in areas.columns \
        else np.full(len(areas), "all", dtype=object)
    parts, o_snap, a_snap, o_node, a_node = network_gap.plan(
        network, origins, population, district, mask, asset_xy, groups, catchment_m=float(params.catchment_m),
        decay=params.decay, max_snap_m=float(params.max_snap_m), search_m=float(params.search_m))
    measured = network_gap.measure(parts, network, run).reindex(np.flatnonzero(mask))
    measured["origin_snap_m"] = o_snap[mask]
    off = a_node < 0
    ids = assets["id"].to_numpy()[off] if len(assets) else np.empty(0)
    measured.attrs["network"] = {
        "partitions": len(parts), "nodes": int(network.n_nodes), "edges": int(network.n_edges),
        "assets_snapped": int((~off).sum()), "assets_off_network": int(off.sum()),
        "assets_off_network_ids": [int(i) for i in ids[:50]],
        "asset_snap_median_m": round(float(np.median(a_snap[~off])), 1) if (~off).any() else None,
        "asset_snap_max_m": round(float(a_snap[~off].max()), 1) if (~off).any() else None,
        "origins_off_network": int((o_node[mask] < 0).sum()),
    }
    return measured


def _status_text(out, groups):
    """One word per area for the report: "ok", or which groups are off network / unreachable / beyond search."""
    cols = [(label, out[f"nearest_{slug(label)}_status"].to_numpy(object)) for label in groups]
    text = []
    for i in range(len(out)):
        bad = [(label, st[i]) for label, st in cols if st[i] != "ok"]
        if not bad:
            text.append("ok")
        elif len(groups) == 1 or len({b for _, b in bad}) == 1 and len(bad) == len(groups):
            text.append(bad[0][1])
        else:
            text.append("; ".join(f"{label}: {b}" for label, b in bad))
    return text


def _priority_ranks(out, key):
    """1, 2, ... for priority gaps: most need first (lowest band, then highest score), then least supply, then
    farthest from the nearest assets, then area code; blank for other areas."""
    score = pd.to_numeric(out["need_score"], errors="coerce").fillna(-np.inf)
    order = pd.DataFrame({"band": out["need_band"], "score": -score, "supply": key.to_numpy(float),
                          "far": -out["nearest_mean_m"].fillna(np.inf), "code": out["code"]}, index=out.index)
    ranked = order[out["priority"].to_numpy()].sort_values(["band", "supply", "far", "score", "code"],
                                                           kind="mergesort")
    ranks = pd.Series(pd.NA, index=out.index, dtype="Int64")
    ranks.loc[ranked.index] = np.arange(1, len(ranked) + 1)
    return ranks
