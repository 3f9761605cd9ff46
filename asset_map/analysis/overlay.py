"""Need of an area that follows no statistical boundary (a ward, a drawn pilot neighbourhood), summarised from the
LSOAs it overlaps. Pure functions on GeoDataFrames: no Flask, no store.

Method (said in every report that uses it): each LSOA's population inside the area is estimated by areal
weighting, population x (area of the LSOA inside / area of the LSOA), measured in EPSG:27700, which assumes
residents are spread evenly within an LSOA. The area's need is the mean of the LSOAs' scores weighted by those
estimated residents, and the share of its residents in each need decile. Where an LSOA has no population loaded,
its area inside stands in for residents and the summary says so.
"""

import geopandas as gpd
import numpy as np
import pandas as pd

MEASURE_CRS = 27700
# Overlaps smaller than this share of an LSOA are border slivers of generalised boundaries.
MIN_SHARE = 0.001

METHOD = ("Need is summarised from the LSOAs the area overlaps, each weighted by its estimated residents inside "
          "the area: the LSOA's population times the share of its area that lies inside (areal weighting in "
          "EPSG:27700, assuming residents are spread evenly within each LSOA).")


def shares(lsoas, area):
    """The LSOAs (a GeoDataFrame with ``code`` and ``population``) that overlap ``area`` (a shapely geometry in the
    LSOAs' CRS), with ``share`` (of the LSOA's area inside) and ``population_inside`` (estimated; NaN where the
    LSOA has no population). Sorted by code."""
    gdf = lsoas.to_crs(MEASURE_CRS)
    shape = gpd.GeoSeries([area], crs=lsoas.crs).to_crs(MEASURE_CRS).iloc[0]
    candidates = gdf.iloc[gdf.sindex.query(shape, predicate="intersects")]
    inside = candidates.geometry.intersection(shape).area
    share = (inside / candidates.geometry.area).clip(upper=1.0)
    out = pd.DataFrame({"code": candidates["code"].to_numpy(), "share": share.to_numpy(),
                        "area_inside_ha": inside.to_numpy() / 10_000})
    out = out[out["share"] >= MIN_SHARE].reset_index(drop=True)
    population = pd.to_numeric(lsoas.set_index("code")["population"], errors="coerce")
    out["population"] = out["code"].map(population).astype(float)
    out["population_inside"] = out["population"] * out["share"]
    return out.sort_values("code", kind="mergesort").reset_index(drop=True)


def whole(lsoas):
    """:func:`shares` for LSOAs taken whole (a county's profile): every share is 1."""
    areas = lsoas.to_crs(MEASURE_CRS).geometry.area.to_numpy() / 10_000
    population = pd.to_numeric(lsoas["population"], errors="coerce").astype(float).to_numpy()
    return pd.DataFrame({"code": lsoas["code"].to_numpy(), "share": 1.0, "area_inside_ha": areas,
                         "population": population, "population_inside": population})


def weighted_need(overlap, need):
    """Summary of an area's need from ``overlap`` (from :func:`shares`) and ``need`` (code -> score, decile):
    {lsoas, population_inside, score, deciles: {decile: share of residents}, missing_population: [codes],
    missing_need: [codes], weighted_by, method}."""
    frame = overlap.merge(need[["code", "need_score", "need_decile"]], on="code", how="left")
    missing_pop = sorted(frame.loc[frame["population"].isna(), "code"])
    by_people = not missing_pop
    weights = frame["population_inside"] if by_people else frame["area_inside_ha"]
    has_need = frame["need_score"].notna()
    w = weights[has_need].to_numpy(float)
    score = float(np.average(frame.loc[has_need, "need_score"], weights=w)) if w.sum() > 0 else None
    deciles = {}
    if w.sum() > 0:
        for decile, part in frame[has_need & frame["need_decile"].notna()].groupby("need_decile"):
            deciles[int(decile)] = float(weights[part.index].sum() / w.sum())
    method = METHOD if by_people else (
        METHOD + f" {len(missing_pop)} of the LSOAs ({', '.join(missing_pop[:10])}) have no population loaded, so "
        "every LSOA is weighted by its area inside the area instead of its residents.")
    return {"lsoas": int(len(frame)),
            "population_inside": float(frame["population_inside"].sum()) if by_people else None,
            "score": score, "deciles": dict(sorted(deciles.items())),
            "missing_population": missing_pop,
            "missing_need": sorted(frame.loc[~has_need, "code"]),
            "weighted_by": "residents" if by_people else "area", "method": method}
