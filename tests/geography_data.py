"""Test geographies made from the real pack: ~60 'electoral divisions' dissolved from LSOA 2021 polygons (each
district's LSOAs cut into groups by position), and a drawn pilot neighbourhood in Tamworth. Not a test module."""

import geopandas as gpd
import numpy as np
import pandas as pd

TAMWORTH = "E07000199"


def divisions(pack, *, target=60, crs=27700):
    """About ``target`` divisions covering the pack's nine districts (codes D001.., names '<district> n'), in
    ``crs`` (British National Grid by default, so loading them exercises reprojection)."""
    lsoa = gpd.read_file(pack / "boundaries" / "lsoa2021_imd2025.geojson").to_crs(27700)
    per_division = max(1, round(len(lsoa) / target))
    parts = []
    for district, group in lsoa.groupby("lad24cd", sort=True):
        group = group.assign(x=group.geometry.centroid.x, y=group.geometry.centroid.y)
        # Order along the district's longer axis, then cut into runs of about per_division LSOAs.
        axis = "x" if np.ptp(group["x"]) >= np.ptp(group["y"]) else "y"
        group = group.sort_values([axis, "lsoa21cd"])
        n = max(1, round(len(group) / per_division))
        group["part"] = np.minimum(np.arange(len(group)) * n // len(group), n - 1)
        merged = group.dissolve(by="part", as_index=False)
        merged["district"] = district
        parts.append(merged[["district", "part", "geometry"]])
    out = pd.concat(parts, ignore_index=True)
    out["code"] = [f"D{i + 1:03d}" for i in range(len(out))]
    out["name"] = [f"{d} division {p + 1}" for d, p in zip(out["district"], out["part"])]
    gdf = gpd.GeoDataFrame(out[["code", "name", "district"]], geometry=out.geometry.buffer(0), crs=27700)
    return gdf.to_crs(crs)


# A pilot neighbourhood drawn around central Tamworth (lon, lat), as a browser would send it (closed ring).
PILOT_RING = [[-1.7050, 52.6420], [-1.6800, 52.6420], [-1.6800, 52.6280], [-1.7050, 52.6280], [-1.7050, 52.6420]]
PILOT = {"type": "Polygon", "coordinates": [PILOT_RING]}
