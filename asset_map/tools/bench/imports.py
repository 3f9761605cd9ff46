"""Import benchmark: synthetic registers of 100,000 and 1,000,000 rows built from REAL pack postcodes (messy
spacing and case, some out of area, some invented) through the whole path (read, validate, geocode, assign
district and LSOAs, write), against two references measured in the same run: one query per row (a sample,
extrapolated) and a bare pandas normalise + merge.

Run alone: ``python -m asset_map.tools.bench --only import``.
"""

import glob
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from asset_map.tools.bench.core import BenchContext, Figure
from asset_map.config import PROJECT_DIR, load_settings
from asset_map.geocode import GeocodeContext, geocode
from asset_map.geocode import base as geocode_base
from asset_map.reference import load
from asset_map.reference.postcodes import normalise_postcodes
from asset_map.registers import importer

CATEGORIES = ["library", "School", "GP surgery", "community centre", "Faith Group", "sports club", "youth club",
              "village hall", "Food bank", "park", "business", "self-help group"]
PER_ROW_SAMPLE = 2000


def _pack():
    settings = load_settings()
    pack = Path(settings["REFERENCE_DIR"]) if settings["REFERENCE_DIR"] else \
        PROJECT_DIR.parent / "shared" / "data" / "staffordshire"
    return pack


def _load_reference(engine, pack):
    load.load_districts(engine, pack / "boundaries" / "districts.geojson")
    load.load_areas(engine, sorted(glob.glob(str(pack / "boundaries" / "lsoa2011" / "*.geojson"))), vintage=2011)
    load.load_areas(engine, pack / "boundaries" / "lsoa2021_imd2025.geojson", vintage=2021)
    for name in ("codepoint_open_2014.csv", "codepoint_open_2014_outside_area.csv"):
        load.load_postcodes(engine, pack / "postcodes" / name)


def make_register(pack, rows, path, seed=1):
    """A register of ``rows`` rows: 93% real in-area postcodes, 4% real ones outside the county, 3% invented
    (real sectors, units that do not exist, so they fall back to the sector); a third written carelessly."""
    rng = np.random.default_rng(seed)
    inside = pd.read_csv(pack / "postcodes" / "codepoint_open_2014.csv", usecols=["Postcode"], dtype=str)["Postcode"]
    outside = pd.read_csv(pack / "postcodes" / "codepoint_open_2014_outside_area.csv", usecols=["Postcode"],
                          dtype=str)["Postcode"]
    inside = normalise_postcodes(inside).dropna().to_numpy(dtype=object)
    outside = normalise_postcodes(outside).dropna().to_numpy(dtype=object)
    roll = rng.random(rows)
    postcode = inside[rng.integers(0, len(inside), rows)]
    out = roll >= 0.93
    postcode[out] = outside[rng.integers(0, len(outside), int(out.sum()))]
    invented = roll >= 0.97
    sectors = np.array([p[:-2] for p in inside[:5000]], dtype=object)
    units = np.array([f"{d}{a}{b}" for d in "0123456789" for a in "WXY" for b in "WXYZ"], dtype=object)
    postcode[invented] = sectors[rng.integers(0, len(sectors), int(invented.sum()))] + \
        np.array([u[1:] for u in units[rng.integers(0, len(units), int(invented.sum()))]], dtype=object)
    style = rng.integers(0, 6, rows)
    s = pd.Series(postcode, dtype=object)
    postcode = np.where(style == 0, s.str.lower(), np.where(style == 1, s.str.replace(" ", "", regex=False),
                        np.where(style == 2, s.str.replace(" ", "  ", regex=False), s))).astype(object)
    frame = pd.DataFrame({
        "source_key": np.char.add("B-", np.arange(rows).astype(str)),
        "name": np.char.add("Asset ", np.arange(rows).astype(str)),
        "category": np.array(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), rows)],
        "postcode": postcode,
        "status": np.where(rng.random(rows) < 0.95, "open", "closed"),
    })
    frame.to_csv(path, index=False)
    return path


def _per_row_rate(engine, postcodes):
    """Reference: one query per row, as a naive importer would (a sample, extrapolated)."""
    sample = postcodes[:PER_ROW_SAMPLE]
    with engine.connect() as conn:
        start = time.perf_counter()
        for pc in sample:
            conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM postcodes WHERE postcode = :p"), {"p": pc}).first()
        return len(sample) / (time.perf_counter() - start)


def _pandas_seconds(engine, raw):
    """Reference: seconds for a bare pandas normalise + merge of the same rows on an in-memory gazetteer (no
    validation, no areas, no write), so the ratio says what the whole path costs over the bare lookup."""
    with engine.connect() as conn:
        gaz = pd.DataFrame(conn.execute(text("SELECT postcode, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                                             "FROM postcodes")).all(), columns=["postcode", "lon", "lat"])
    start = time.perf_counter()
    frame = pd.DataFrame({"postcode": normalise_postcodes(raw)})
    frame.merge(gaz, on="postcode", how="left")
    return time.perf_counter() - start


def run(ctx: BenchContext):
    from asset_map.store.db import make_engine

    pack = _pack()
    engine = make_engine(ctx.database_url, load_settings())
    _load_reference(engine, pack)
    figures = []
    for rows in ctx.sizes.get("import_rows", [100_000]):
        path = make_register(pack, rows, Path(ctx.workdir) / f"register_{rows}.csv")
        raw = pd.read_csv(path, usecols=["postcode"], dtype=str)["postcode"]
        postcodes = normalise_postcodes(raw).dropna().tolist()
        per_row = _per_row_rate(engine, postcodes)
        pandas_seconds = _pandas_seconds(engine, raw)
        # The geocoding step alone, gazetteer read included (caches cleared first).
        geocode_base._SHARED.clear()
        frame = pd.DataFrame({"postcode": normalise_postcodes(raw).astype(object)})
        start = time.perf_counter()
        geocode(frame, GeocodeContext(engine=engine, settings={}), ("postcode",))
        geocode_rate = rows / (time.perf_counter() - start)
        ratio = geocode_rate / per_row
        figures.append(Figure("import", f"geocoding step, {rows:,} rows", round(geocode_rate), "rows/s",
                              reference="one query per row (sample of 2,000, extrapolated)",
                              reference_value=round(per_row), target=">= 25x reference", met=ratio >= 25,
                              notes=f"{ratio:.0f}x the per-row reference"))
        geocode_base._SHARED.clear()
        start = time.perf_counter()
        report = importer.import_register(engine, path, register=f"bench-{rows}", actor="bench")
        seconds = time.perf_counter() - start
        limit = 3.0 if rows <= 100_000 else 20.0
        figures.append(Figure("import", f"whole import, {rows:,} rows", round(seconds, 2), "s",
                              reference="bare pandas normalise + merge of the same rows (s)",
                              reference_value=round(pandas_seconds, 3), target=f"< {limit:g} s", met=seconds < limit,
                              notes=(f"{report.imported:,} imported, {report.quarantined:,} quarantined; steps: "
                                     + ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items()))))
        start = time.perf_counter()
        again = importer.import_register(engine, path, register=f"bench-{rows}", actor="bench")
        figures.append(Figure("import", f"re-import unchanged, {rows:,} rows", round(time.perf_counter() - start, 2),
                              "s", notes=f"{again.unchanged:,} unchanged, {again.inserted} inserted"))
    engine.dispose()
    return figures
