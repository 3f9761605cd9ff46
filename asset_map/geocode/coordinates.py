"""Given longitude and latitude (EPSG:4326). Range checks and swapped lat/lon are the validator's job; this takes
the cleaned numbers."""

import numpy as np

from asset_map.geocode.base import empty

NAME = "coordinates"
QUALITY = 1.0


def locate(frame, ctx):
    out = empty(frame)
    if "lon" not in frame or "lat" not in frame:
        return out
    lon = frame["lon"].to_numpy(dtype=float)
    lat = frame["lat"].to_numpy(dtype=float)
    ok = ~np.isnan(lon) & ~np.isnan(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    if not ok.any():
        return out
    out.loc[ok, "lon"] = lon[ok]
    out.loc[ok, "lat"] = lat[ok]
    out.loc[ok, "quality"] = QUALITY
    return out
