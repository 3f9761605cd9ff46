"""British National Grid easting/northing (EPSG:27700) converted to EPSG:4326 with pyproj, all rows at once."""

import functools

import numpy as np
from pyproj import Transformer

from asset_map.geocode.base import empty

NAME = "bng"
QUALITY = 1.0


@functools.cache
def _to_wgs84():
    # always_xy: easting/northing in, longitude/latitude out, whatever the EPSG axis order says.
    return Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


def locate(frame, ctx):
    out = empty(frame)
    if "easting" not in frame or "northing" not in frame:
        return out
    e = frame["easting"].to_numpy(dtype=float)
    n = frame["northing"].to_numpy(dtype=float)
    ok = ~np.isnan(e) & ~np.isnan(n) & (e >= 0) & (e <= 700_000) & (n >= 0) & (n <= 1_300_000)
    if ok.any():
        lon, lat = _to_wgs84().transform(e[ok], n[ok])
        out.loc[ok, "lon"] = lon
        out.loc[ok, "lat"] = lat
        out.loc[ok, "quality"] = QUALITY
    return out
