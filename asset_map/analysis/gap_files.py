"""A gap analysis as files: CSV and GeoJSON, one row / feature per area, byte-identical for the same inputs.

Rows are sorted by area code, columns are in a fixed order, numbers have fixed decimals, coordinates 6 decimals
(about 0.1 m), and nothing varies from run to run except what the inputs record (register versions and import
times, reference loads, parameters, code version), which the GeoJSON carries in its top-level "asset_map" member.
"""

import json

import numpy as np
import pandas as pd
import shapely

from asset_map.analysis.gap import slug

# column -> decimals (None: text or whole number)
_BASE = [("code", None), ("name", None), ("district_code", None), ("population", 0), ("need_score", 3),
         ("need_rank", 0), ("need_decile", 0), ("need_class", None), ("origin_method", None), ("origin_x", 1),
         ("origin_y", 1), ("assets_inside", 0), ("assets_per_1000", 4)]
_TAIL = [("individuals", None), ("nearest_mean_m", 1), ("access_per_1000", 4), ("supply_score", 4), ("supply_class", None),
         ("bivariate", None), ("priority", None), ("priority_rank", 0), ("lacks", None)]


def columns(groups):
    cols = list(_BASE)
    for g in groups:
        s = slug(g)
        cols += [(f"nearest_{s}_m", 1), (f"nearest_{s}_id", 0), (f"nearest_{s}_name", None)]
    return cols + _TAIL


def _text(series, decimals):
    if series.dtype == bool:
        return series.map({True: "true", False: "false"})
    if decimals is None:
        return series.astype(object).where(series.notna(), "").astype(str)
    values = pd.to_numeric(series, errors="coerce").astype(float)
    if decimals == 0:
        values = values.where(values >= 0) if series.name and series.name.endswith("_id") else values
        return values.map(lambda v: "" if np.isnan(v) else str(int(round(v))))
    return values.map(lambda v: "" if np.isnan(v) else f"{v:.{decimals}f}")


def to_csv(frame, groups):
    """The frame as CSV text (UTF-8, '\\n' line ends)."""
    cols = columns(groups)
    out = pd.DataFrame({name: _text(frame[name], dec) for name, dec in cols if name in frame.columns})
    out = out.sort_values("code", kind="mergesort")
    return out.to_csv(index=False, lineterminator="\n")


def _json_value(value, decimals):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if decimals is None:
        return str(value)
    v = float(value)
    if np.isnan(v):
        return None
    return int(round(v)) if decimals == 0 else round(v, decimals)


def to_geojson(frame, groups, inputs):
    """The frame as a GeoJSON FeatureCollection (EPSG:4326 lon/lat), inputs in the top-level "asset_map" member."""
    cols = [(n, d) for n, d in columns(groups) if n in frame.columns]
    frame = frame.sort_values("code", kind="mergesort")
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    geoms = shapely.transform(frame.geometry.values, lambda xy: np.round(xy, 6))
    geo_text = shapely.to_geojson(geoms)
    records = frame[[n for n, _ in cols]].to_dict("records")
    parts = []
    for rec, g in zip(records, geo_text):
        props = {}
        for n, d in cols:
            v = rec[n]
            if n.endswith("_id") and v is not None and v == v and int(v) < 0:
                v = None
            props[n] = _json_value(v, d)
        parts.append('{"type":"Feature","properties":' + json.dumps(props, ensure_ascii=False, separators=(",", ":"))
                     + ',"geometry":' + g + "}")
    head = json.dumps({"type": "FeatureCollection", "name": "gap_report", "asset_map": inputs},
                      ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return head[:-1] + ',"features":[\n' + ",\n".join(parts) + "\n]}\n"
