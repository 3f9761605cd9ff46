"""A gap analysis as files: CSV and GeoJSON, one row / feature per area, byte-identical for the same inputs.

Rows are sorted by area code, columns are in a fixed order, numbers have fixed decimals, coordinates 6 decimals
(about 0.1 m), and nothing varies from run to run except what the inputs record (register versions and import
times, reference loads, parameters, code version), which the GeoJSON carries in its top-level "asset_map" member.
"""

import io
import json
from json.encoder import encode_basestring as _quote  # json.dumps of one string, without its per-call overhead

import numpy as np
import pandas as pd
import shapely

from asset_map.analysis.gap import slug
from asset_map.csv_writer import CsvWriter

# column -> decimals (None: text or whole number)
_BASE = [("code", None), ("name", None), ("district_code", None), ("population", 0), ("need_score", 3),
         ("need_rank", 0), ("need_decile", 0), ("need_class", None), ("origin_method", None), ("origin_x", 1),
         ("origin_y", 1), ("assets_inside", 0), ("assets_per_1000", 4)]
_TAIL = [("individuals", None), ("nearest_mean_m", 1), ("straight_mean_m", 1), ("network_ratio", 3),
         ("network_status", None), ("origin_snap_m", 1), ("assets_within", 0), ("access_per_1000", 4), ("supply_score", 4),
         ("supply_class", None), ("bivariate", None), ("priority", None), ("priority_rank", 0), ("lacks", None)]


def columns(groups):
    cols = list(_BASE)
    for g in groups:
        s = slug(g)
        cols += [(f"nearest_{s}_m", 1), (f"nearest_{s}_id", 0), (f"nearest_{s}_name", None),
                 (f"nearest_{s}_status", None)]
    return cols + _TAIL


def _text(series, decimals):
    """A column as text: fixed decimals for numbers ("" when missing), "true"/"false", or the text itself.
    List comprehensions over plain Python values: about three times faster than Series.map at 33,755 rows."""
    if series.dtype == bool:
        return ["true" if v else "false" for v in series.tolist()]
    if decimals is None:
        return ["" if v is None or v is pd.NA or v != v else str(v) for v in series.astype(object).tolist()]
    values = pd.to_numeric(series, errors="coerce").astype(float)
    if series.name and str(series.name).endswith("_id"):
        values = values.where(values >= 0)  # -1: there was no asset at all
    if decimals == 0:
        return ["" if v != v else str(int(round(v))) for v in values.tolist()]
    fmt = f"{{:.{decimals}f}}".format
    return ["" if v != v else fmt(v) for v in values.tolist()]


def _texts(frame, groups):
    frame = frame.sort_values("code", kind="mergesort")
    cols = [(n, d) for n, d in columns(groups) if n in frame.columns]
    return frame, cols, {n: _text(frame[n], d) for n, d in cols}


def to_csv(frame, groups, *, bom=False, attribution=(), licence=None):
    """The frame as CSV text ('\\n' line ends, the header first) by the one CSV writer: names from registers are
    guarded against spreadsheet formulas; numbers keep their sign. The attribution is in the report and the GeoJSON."""
    _, cols, texts = _texts(frame, groups)
    out = io.StringIO()
    writer = CsvWriter(out, bom=bom, attribution=attribution, licence=licence, lineterminator="\n")
    writer.columns([n for n, _ in cols], texts, numeric={n for n, d in cols if d is not None})
    return out.getvalue()


def to_geojson(frame, groups, inputs):
    """The frame as a GeoJSON FeatureCollection (EPSG:4326 lon/lat), inputs in the top-level "asset_map" member.
    Property values are the CSV's texts as JSON: the same fixed decimals, null where the CSV is blank."""
    frame, cols, texts = _texts(frame, groups)
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    geoms = shapely.transform(frame.geometry.values, lambda xy: np.round(xy, 6))
    geo_text = shapely.to_geojson(geoms).tolist()
    keyed = []
    for name, dec in cols:
        key = json.dumps(name) + ":"
        if dec is None and frame[name].dtype != bool:
            keyed.append([key + _quote(t) for t in texts[name]])
        else:
            keyed.append([key + (t or "null") for t in texts[name]])
    parts = ['{"type":"Feature","properties":{' + ",".join(row) + '},"geometry":' + g + "}"
             for row, g in zip(zip(*keyed), geo_text)]
    head = json.dumps({"type": "FeatureCollection", "name": "gap_report", "asset_map": inputs},
                      ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return head[:-1] + ',"features":[\n' + ",\n".join(parts) + "\n]}\n"
