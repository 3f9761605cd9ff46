"""UPRN: the point of a Unique Property Reference Number, from the ``uprns`` table when one is loaded.

One query for all the UPRNs of the import (an array parameter), never one per row.
"""

import numpy as np
import pandas as pd
from sqlalchemy import text

from asset_map.geocode.base import empty

NAME = "uprn"
QUALITY = 0.95


def locate(frame, ctx):
    out = empty(frame)
    if "uprn" not in frame or ctx.engine is None:
        return out
    given = frame["uprn"].notna().to_numpy().copy()
    # Text only for the rows that have a value: registers without UPRNs should not pay a million conversions.
    given[given] = (frame["uprn"][given].astype(str) != "").to_numpy()
    if not given.any():
        return out
    if "uprns" not in ctx.cache:
        with ctx.engine.connect() as conn:
            ctx.cache["uprns"] = conn.execute(text("SELECT EXISTS (SELECT 1 FROM uprns)")).scalar()
    if not ctx.cache["uprns"]:
        return out
    wanted = pd.to_numeric(frame.loc[given, "uprn"], errors="coerce").dropna().astype("int64").unique()
    with ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT uprn, ST_X(geom), ST_Y(geom) FROM uprns WHERE uprn = ANY(:u)"),
                            {"u": [int(u) for u in wanted]}).all()
    table = pd.DataFrame(rows, columns=["uprn", "lon", "lat"]).set_index("uprn")
    keys = pd.to_numeric(frame["uprn"], errors="coerce")
    lon = keys.map(table["lon"]).to_numpy(dtype=float)
    lat = keys.map(table["lat"]).to_numpy(dtype=float)
    ok = ~np.isnan(lon)
    out["lon"], out["lat"] = lon, lat
    out.loc[ok, "quality"] = QUALITY
    out.loc[given & ~ok, "note"] = "UPRN not in the loaded UPRN table"
    return out
