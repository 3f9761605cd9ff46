"""Geocoding: one module per method behind one small interface, tried in order on the rows still unplaced.

Each method is ``locate(frame, ctx) -> DataFrame`` with columns ``lon, lat, quality, note`` on the same index
(NaN where it found nothing). Methods work on whole frames (joins, vectorised transforms), never one query per row.
Points are EPSG:4326 (lon, lat order).
"""

import numpy as np
import pandas as pd

from asset_map.errors import ConfigError
from asset_map.geocode import bng, coordinates, nominatim, postcode, uprn
from asset_map.geocode.base import GeocodeContext

METHODS = {m.NAME: m for m in (coordinates, bng, uprn, postcode, nominatim)}
DEFAULT_ORDER = ("coordinates", "bng", "uprn", "postcode")
OUTPUT = ["lon", "lat", "geocode_method", "geocode_quality", "geocode_note"]
INPUTS = ("lon", "lat", "easting", "northing", "uprn", "postcode", "address")   # every column a method reads

__all__ = ["METHODS", "DEFAULT_ORDER", "INPUTS", "GeocodeContext", "geocode", "order_from_settings"]


def order_from_settings(settings):
    """The methods to try: the defaults, plus the online geocoder when GEOCODER names it (off by default)."""
    order = list(DEFAULT_ORDER)
    online = (settings or {}).get("GEOCODER", "") or ""
    if online:
        if online not in METHODS or online in DEFAULT_ORDER:
            msg = f"ASSET_MAP_GEOCODER={online!r}: the online geocoders are: nominatim (or empty for none)"
            raise ConfigError(msg)
        order.append(online)
    return tuple(order)


def geocode(frame, ctx, order=DEFAULT_ORDER):
    """Place each row by the first method that can: returns ``lon, lat, geocode_method, geocode_quality,
    geocode_note`` on ``frame``'s index (NaN / None where no method could)."""
    n = len(frame)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    quality = np.full(n, np.nan)
    method = np.full(n, None, dtype=object)
    note = np.full(n, None, dtype=object)
    todo = np.ones(n, dtype=bool)
    for name in order:
        if not todo.any():
            break
        # Every row is still to do before the first method: no need for a copy of them all.
        found = METHODS[name].locate(frame if todo.all() else frame[todo], ctx)
        hit_local = found["lon"].notna().to_numpy() & found["lat"].notna().to_numpy()
        where = np.flatnonzero(todo)[hit_local]
        lon[where] = found["lon"].to_numpy()[hit_local]
        lat[where] = found["lat"].to_numpy()[hit_local]
        quality[where] = found["quality"].to_numpy()[hit_local]
        method[where] = found["method"].to_numpy(dtype=object)[hit_local] if "method" in found else name
        note[where] = found["note"].to_numpy(dtype=object)[hit_local]
        # A method's reason for not placing a row (e.g. "postcode not in the gazetteer") is kept for the report.
        missed = np.flatnonzero(todo)[~hit_local]
        reasons = found["note"].to_numpy(dtype=object)[~hit_local]
        keep = pd.notna(reasons)
        note[missed[keep]] = reasons[keep]
        todo[where] = False
    return pd.DataFrame({"lon": lon, "lat": lat, "geocode_method": method, "geocode_quality": quality,
                         "geocode_note": note}, index=frame.index)
