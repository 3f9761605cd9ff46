"""Isochrones: the area reachable from an asset within 5, 10, 15 minutes along the street network, as GeoJSON.

An asset's isochrones show where it is, so they follow the asset's own visibility rule
(store.assets.visibility_condition): an asset the role may not see as a point (an individual, a restricted
asset, for the public) has no isochrone either, and is answered exactly like an asset that does not exist.
"""

import json

import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import text

from asset_map.analysis import network as nw
from asset_map.errors import AssetMapError, InputError, NotFound
from asset_map.store import assets as store_assets
from asset_map.store import network as store_network

DEFAULT_MINUTES = (5, 10, 15)
MAX_MINUTES = 60
PRECISION = 6


class OffNetwork(AssetMapError):
    status = 422


def parse_minutes(value):
    """"5,10,15" -> (5.0, 10.0, 15.0): at most 6 values, each above 0 and at most MAX_MINUTES."""
    if value is None or not str(value).strip():
        return tuple(float(m) for m in DEFAULT_MINUTES)
    try:
        out = tuple(sorted({float(v) for v in str(value).split(",") if v.strip()}))
    except ValueError as err:
        raise InputError(f"Parameter 'minutes' has value {str(value)[:40]!r}: expected minutes such as 5,10,15.") \
            from err
    if not out or len(out) > 6 or out[0] <= 0 or out[-1] > MAX_MINUTES:
        raise InputError(f"Parameter 'minutes' must be 1 to 6 values above 0 and at most {MAX_MINUTES}.")
    return out


def asset_point(engine, asset_id, role):
    """(name, lon, lat) of an asset ``role`` may see as a point; NotFound otherwise (hidden looks like missing)."""
    privacy, params = store_assets.visibility_condition(role, "a")
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT a.name, ST_X(a.geom), ST_Y(a.geom) FROM assets a WHERE a.id = :id AND "
                                f"a.withdrawn_at IS NULL AND {privacy}"), {"id": int(asset_id), **params}).first()
    if row is None or row[1] is None:
        raise NotFound(f"There is no asset {int(asset_id)}.")
    return row[0], float(row[1]), float(row[2])


def isochrones(engine, asset_id, *, role="public", minutes=DEFAULT_MINUTES, mode="walk", speed_kmh=None,
               max_snap_m=500.0):
    """A GeoJSON FeatureCollection (dict): one polygon per time, largest first, with minutes, metres and area."""
    if mode not in nw.MODES:
        raise InputError(f"Mode {mode!r} is not known; expected one of {', '.join(nw.MODES)}.")
    speed = float(speed_kmh or nw.DEFAULT_SPEED_KMH[mode])
    if not 0.5 <= speed <= 130:
        raise InputError(f"Parameter 'speed' has value {speed:g}: expected km/h between 0.5 and 130.")
    name, lon, lat = asset_point(engine, asset_id, role)
    net, info = store_network.read_cached(engine, mode)
    if net is None:
        raise NotFound(f"No {mode} network is loaded, so there are no isochrones; an officer loads one with "
                       f"`asset-map load network FILE.osm.pbf --mode {mode}`.")
    to_m = Transformer.from_crs(4326, 27700, always_xy=True)
    x, y = to_m.transform(lon, lat)
    node, snap = nw.snap(net, np.array([[x, y]]), max_snap_m)
    if node[0] < 0:
        raise OffNetwork(f"This asset is {snap[0]:,.0f} m from the nearest street of the {mode} network (more than "
                         f"{max_snap_m:,.0f} m), so no isochrone can be drawn for it.")
    metres = [nw.minutes_to_metres(m, speed) for m in minutes]
    polys = nw.isochrone(net, int(node[0]), float(snap[0]), metres)
    to_ll = Transformer.from_crs(27700, 4326, always_xy=True)
    features = []
    for m, d, poly in sorted(zip(minutes, metres, polys), key=lambda t: -t[0]):
        area = float(poly.area)
        geom = shapely.transform(poly, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
        geom = shapely.set_precision(geom, 10 ** -PRECISION)
        shapely.normalize(geom)
        features.append({"type": "Feature", "geometry": json.loads(shapely.to_geojson(shapely.orient_polygons(geom))),
                         "properties": {"minutes": m, "metres": round(d, 1), "area_km2": round(area / 1e6, 3)}})
    return {"type": "FeatureCollection", "features": features,
            "asset_map": {"asset_id": int(asset_id), "asset_name": name, "mode": mode, "speed_kmh": speed,
                          "snap_m": round(float(snap[0]), 1), "network": {k: info[k] for k in (
                              "source", "source_date", "loaded_at")}}}
