"""Online geocoding with geopy's Nominatim client: off by default (ASSET_MAP_GEOCODER=nominatim turns it on), at
most one request a second as OpenStreetMap's usage policy asks, and every answer cached in var/ so an address is
asked once. Tests never call it.
"""

import json
import logging
from pathlib import Path

import numpy as np

from asset_map.geocode.base import empty

NAME = "nominatim"
QUALITY = 0.6
log = logging.getLogger(__name__)


def _cache_path(ctx):
    return Path(ctx.settings.get("VAR_DIR", "var")) / "geocode-cache" / "nominatim.json"


def locate(frame, ctx, *, geocoder=None):
    out = empty(frame)
    queries = _queries(frame)
    wanted = sorted({q for q in queries if q})
    if not wanted:
        return out
    path = _cache_path(ctx)
    cache = json.loads(path.read_text()) if path.exists() else {}
    missing = [q for q in wanted if q not in cache]
    if missing:
        lookup = geocoder or _rate_limited(ctx)
        for q in missing:
            try:
                place = lookup(q)
            except Exception as err:  # noqa: BLE001 - network errors of every kind: the row stays unplaced
                log.warning("nominatim failed for %r: %s", q, err)
                continue
            cache[q] = [place.longitude, place.latitude] if place else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache))
    for i, q in enumerate(queries):
        hit = cache.get(q) if q else None
        if hit:
            out.iloc[i, out.columns.get_loc("lon")] = hit[0]
            out.iloc[i, out.columns.get_loc("lat")] = hit[1]
            out.iloc[i, out.columns.get_loc("quality")] = QUALITY
    return out


def _queries(frame):
    address = frame["address"].fillna("").astype(str) if "address" in frame else ""
    postcode = frame["postcode"].fillna("").astype(str) if "postcode" in frame else ""
    text = (address + ", " + postcode).str.strip(", ") if len(frame) else []
    return [f"{t}, United Kingdom" if t else None for t in np.asarray(text, dtype=object)]


def _rate_limited(ctx):
    from geopy.extra.rate_limiter import RateLimiter
    from geopy.geocoders import Nominatim

    client = Nominatim(user_agent=ctx.settings.get("GEOCODER_USER_AGENT") or "asset-map")
    return RateLimiter(client.geocode, min_delay_seconds=1.0)
