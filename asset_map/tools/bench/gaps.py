"""Benchmark: gap analysis end to end (load from PostGIS, measures, classes, results written) at county scale (about
700 areas, 10,000 assets) and England scale (33,755 areas, 1,000,000 assets), against references measured in the
same run on the same data in memory:

- KD-tree pairs within 1,600 m plus 2SFCA with PySAL ``access`` (the core of the supply measure);
- geopandas ``sjoin`` of the asset points to the areas (the core of "assets inside").

Targets (issue #6): county under 1 s, England under 15 s end to end. Run alone with
``python -m asset_map.tools.bench --scale england --only gap``.
"""

import io
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text

from asset_map.tools.bench.core import BenchContext, Figure

TARGETS = {700: 1.0, 33_755: 15.0}


def _place(county):
    """Register rows -> asset rows with a point: their own lon/lat, else their postcode's point (unknown
    postcodes dropped, as the importer would quarantine them)."""
    pcs = county.postcodes
    key = pcs["postcode"].str.replace(" ", "", regex=False).str.upper()
    lon_by_pc = dict(zip(key, pcs.geometry.x))
    lat_by_pc = dict(zip(key, pcs.geometry.y))
    frames = []
    for name, rows in county.registers.items():
        pc = rows["postcode"].str.replace(r"\s+", "", regex=True).str.upper()
        lon = pd.to_numeric(rows["lon"].replace("", np.nan)).fillna(pc.map(lon_by_pc))
        lat = pd.to_numeric(rows["lat"].replace("", np.nan)).fillna(pc.map(lat_by_pc))
        out = pd.DataFrame({"register": name, "match_key": rows["source_key"], "tier": rows["tier"],
                            "category": rows["category"], "name": rows["name"],
                            "offers": "{" + rows["offers"].str.replace("; ", ",", regex=False) + "}",
                            "status": rows["status"], "visibility": rows["visibility"], "lon": lon, "lat": lat})
        frames.append(out[out["lon"].notna() & out["lat"].notna()])
    return pd.concat(frames, ignore_index=True)


def _load(engine, county, workdir):
    """The synthetic county into the store: reference data by the loaders, assets by one COPY (setup, untimed)."""
    from asset_map.reference import load
    from asset_map.store import partitions

    folder = Path(workdir) / f"gap-synth-{len(county.areas)}"
    folder.mkdir(parents=True, exist_ok=True)
    county.districts.to_file(folder / "districts.geojson", driver="GeoJSON", engine="pyogrio",
                             layer_options={"COORDINATE_PRECISION": 7})
    county.areas.to_file(folder / "areas_2021.geojson", driver="GeoJSON", engine="pyogrio",
                         layer_options={"COORDINATE_PRECISION": 7})
    county.need.to_csv(folder / "need_imd2025.csv", index=False,
                       columns=["area_code", "indicator", "vintage", "score", "rank", "decile"])
    with engine.begin() as conn:
        for table in ("assets", "registers", "need_indicators", "areas", "districts", "reference_loads"):
            conn.execute(text(f"DELETE FROM {table}"))
    load.load_districts(engine, folder / "districts.geojson")
    load.load_areas(engine, folder / "areas_2021.geojson", vintage=2021)
    load.load_need(engine, folder / "need_imd2025.csv", indicator="imd", vintage=2025)
    placed = _place(county)
    placed["geom"] = "SRID=4326;POINT(" + placed["lon"].map(repr) + " " + placed["lat"].map(repr) + ")"
    cols = ["register", "match_key", "tier", "category", "name", "offers", "status", "visibility", "geom"]
    buf = io.StringIO()
    placed[cols].to_csv(buf, index=False, header=False)
    with engine.begin() as conn:
        for name in county.registers:
            conn.execute(text("INSERT INTO registers (name, version, imported_at) VALUES (:n, 1, now())"),
                         {"n": name})
            partitions.ensure(conn, name)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            with cur.copy(f"COPY assets ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buf.getvalue())
            # As autovacuum would soon after a load: fresh statistics for the planner.
            cur.execute("ANALYZE assets; ANALYZE areas; ANALYZE need_indicators; ANALYZE registers")
        raw.commit()
    finally:
        raw.close()
    return placed


def _references(county, placed):
    """The two in-memory references on the same areas and points, in seconds."""
    from access import fca
    from scipy.spatial import cKDTree

    areas_m = county.areas.to_crs(27700)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(placed["lon"], placed["lat"]), crs=4326)
    t = time.perf_counter()
    c = areas_m.geometry.centroid
    origins = np.column_stack([c.x, c.y])
    pts_m = pts.to_crs(27700)
    sites = np.column_stack([pts_m.geometry.x, pts_m.geometry.y])
    found = cKDTree(sites).sparse_distance_matrix(cKDTree(origins), 1600, output_type="ndarray")
    cost = pd.DataFrame({"origin": found["j"], "dest": found["i"], "cost": found["v"]})
    demand = pd.DataFrame({"geoid": np.arange(len(origins)), "demand": areas_m["population"].astype(float)})
    supply = pd.DataFrame({"supply": np.ones(len(sites))}, index=pd.RangeIndex(len(sites), name="asset"))
    fca.two_stage_fca(demand, supply, cost, max_cost=1600, demand_index="geoid", demand_name="demand",
                      supply_name="supply")
    kdtree_2sfca = time.perf_counter() - t
    t = time.perf_counter()
    gpd.sjoin(pts, county.areas[["code", "geometry"]], how="left", predicate="within")
    sjoin = time.perf_counter() - t
    return kdtree_2sfca, sjoin, len(cost)


def _end_to_end(engine, workdir):
    """What a user waits for: read from PostGIS, measure, classify, write CSV and GeoJSON."""
    from asset_map import gaps

    request = gaps.GapRequest.from_args({"need": "imd:2025"})
    timings = {}
    t = time.perf_counter()
    result = gaps.run(engine, request, role="officer", timings=timings)
    t_out = time.perf_counter()
    (Path(workdir) / "gaps.csv").write_text(gaps.csv_text(result), encoding="utf-8")
    (Path(workdir) / "gaps.geojson").write_text(gaps.geojson_text(result), encoding="utf-8")
    end = time.perf_counter()
    timings["write CSV + GeoJSON"] = end - t_out
    return end - t, timings, result


def run(ctx: BenchContext):
    from asset_map import synth
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    engine = make_engine(ctx.database_url, {**load_settings(), "STATEMENT_TIMEOUT_MS": 600_000})
    figures = []
    for n_areas, n_assets in ctx.sizes["gap"]:
        county = synth.generate(areas=n_areas, assets=n_assets, seed=1)
        placed = _load(engine, county, ctx.workdir)
        _end_to_end(engine, ctx.workdir)  # warm: first connection, caches, imports
        seconds, timings, result = _end_to_end(engine, ctx.workdir)
        ref_fca, ref_sjoin, pairs = _references(county, placed)
        label = f"{n_areas:,} areas, {len(placed):,} assets"
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
        target = TARGETS.get(n_areas)
        figures.append(Figure(
            area="gap", name=f"gap report end to end (PostGIS -> measures -> classes -> CSV + GeoJSON), {label}",
            value=round(seconds, 3), unit="s", reference="KD-tree pairs within 1,600 m + 2SFCA (PySAL access)",
            reference_value=round(ref_fca, 3), target=f"< {target:g} s" if target else None,
            met=(seconds < target) if target else None,
            notes=f"{stages}; {pairs:,} pairs within 1,600 m; {len(result.frame):,} areas reported; "
                  f"x{seconds / ref_fca:.1f} the 2SFCA reference"))
        figures.append(Figure(
            area="gap", name=f"gap report end to end vs point-in-polygon reference, {label}",
            value=round(seconds, 3), unit="s", reference="geopandas sjoin of the points to the areas",
            reference_value=round(ref_sjoin, 3), notes=f"x{seconds / ref_sjoin:.1f} the sjoin reference"))
        del county, placed, result
    engine.dispose()
    return figures
