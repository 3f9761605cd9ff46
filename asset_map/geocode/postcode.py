"""Postcode: the gazetteer's point for the normalised postcode; else the centroid of its postcode sector, with a
lower quality and a note saying so.

The gazetteer is read once per import (``ctx.cache``) and joined in pandas on the distinct postcodes of the file
(registers repeat postcodes), so a million rows cost a hash lookup each, not a query.
"""

import numpy as np
import pandas as pd

from asset_map.geocode.base import empty, reference_cached

NAME = "postcode"
QUALITY = 0.8
SECTOR_QUALITY = 0.4


def gazetteer(ctx):
    """(postcode index, lon, lat, sector index, sector lon, sector lat, description), read once."""
    return reference_cached(ctx, "gazetteer", _build)


def _build(engine):
    with engine.connect() as conn, conn.connection.driver_connection.cursor(binary=True) as cur:
        # Tuples straight from the driver, in binary (no text to parse for each number): SQLAlchemy's Row objects
        # cost more than the query.
        cur.execute("SELECT postcode, ST_X(geom), ST_Y(geom) FROM postcodes")
        gaz = pd.DataFrame.from_records(cur.fetchall(), columns=["postcode", "lon", "lat"])
        cur.execute("SELECT source, min(vintage) FROM postcodes GROUP BY source ORDER BY source")
        sources = cur.fetchall()
    # A sector is the postcode less its last two letters: "ST16 2DH" -> "ST16 2". Its centroid is the mean of
    # its postcodes' points; at a sector's size (a few km) the mean of degrees is as good as one in metres.
    gaz["sector"] = gaz["postcode"].str.slice(0, -2)
    sectors = gaz.groupby("sector")[["lon", "lat"]].mean()
    return {
        "index": pd.Index(gaz["postcode"]), "lon": gaz["lon"].to_numpy(), "lat": gaz["lat"].to_numpy(),
        "sector_index": pd.Index(sectors.index), "sector_lon": sectors["lon"].to_numpy(),
        "sector_lat": sectors["lat"].to_numpy(),
        "described": ", ".join(f"{s} {v}" if v else s for s, v in sources) or "none loaded",
    }


def locate(frame, ctx):
    out = empty(frame)
    if "postcode" not in frame or ctx.engine is None:
        return out
    codes, uniques = pd.factorize(frame["postcode"])
    if not len(uniques):
        return out
    gaz = gazetteer(ctx)
    uniques = pd.Index(uniques.astype(str))
    pos = gaz["index"].get_indexer(uniques)
    sector_pos = gaz["sector_index"].get_indexer(uniques.str.slice(0, -2))
    exact = pos >= 0
    by_sector = ~exact & (sector_pos >= 0)
    u_lon = np.where(exact, gaz["lon"][pos], np.where(by_sector, gaz["sector_lon"][sector_pos], np.nan))
    u_lat = np.where(exact, gaz["lat"][pos], np.where(by_sector, gaz["sector_lat"][sector_pos], np.nan))
    u_quality = np.where(exact, QUALITY, np.where(by_sector, SECTOR_QUALITY, np.nan))
    u_method = np.where(exact, NAME, "postcode_sector").astype(object)
    u_note = np.full(len(uniques), None, dtype=object)
    u_note[by_sector] = [f"postcode {u} is not in the gazetteer ({gaz['described']}); placed at the centre of "
                         f"sector {u[:-2]}" for u in uniques[by_sector]]
    u_note[~exact & ~by_sector] = [f"postcode {u} is not in the gazetteer ({gaz['described']}) and neither is its "
                                   f"sector" for u in uniques[~exact & ~by_sector]]
    # factorize gives -1 for missing postcodes: one extra slot of "nothing" answers them.
    pad = np.append
    out["lon"] = pad(u_lon, np.nan)[codes]
    out["lat"] = pad(u_lat, np.nan)[codes]
    out["quality"] = pad(u_quality, np.nan)[codes]
    # Kept as Python objects (an explicit dtype, so pandas does not convert a million of them to its "str" type):
    # geocode() merges them into object arrays anyway.
    out["method"] = pd.Series(pad(u_method, None)[codes], index=out.index, dtype=object)
    out["note"] = pd.Series(pad(u_note, None)[codes], index=out.index, dtype=object)
    return out
