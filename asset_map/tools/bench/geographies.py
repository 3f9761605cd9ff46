"""Benchmark: any geography and briefings (issue #19), against references measured in the same run.

1. 9,000 ward polygons (a Voronoi tessellation of the synthetic county, written as a GeoPackage in British National
   Grid) loaded with ``asset-map load geography`` end to end, and 1,000,000 asset points assigned to them; the
   reference is the importer's district assignment (``registers.areas.assign``) of the same points. Target: loading
   the wards and assigning the assets (end to end; the in-memory assignment alone is reported too) within 2x of the
   district assignment.
2. Briefings: ~60 divisions (dissolved from the county's LSOAs) loaded, then one briefing rendered to PDF (target
   < 3 s, warm; the first one in a process also pays WeasyPrint's font set-up, reported too) and every division's
   briefing written to a folder (target < 3 minutes for 60); the reference is the county's gap analysis, which every
   briefing run reads once.

Run alone: ``python -m asset_map.tools.bench --scale county --only geographies``.
"""

import os
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text

from asset_map.tools.bench.core import BenchContext, Figure

WARDS = 9_000
DIVISIONS = 60
ASSETS = {"small": 100_000, "county": 1_000_000, "england": 1_000_000}
BRIEFINGS = {"small": 20, "county": DIVISIONS, "england": DIVISIONS}


def _wards(districts, n, seed=19):
    """``n`` Voronoi cells of random seeds inside the districts, clipped to them, in EPSG:27700."""
    county = shapely.union_all(districts.to_crs(27700).geometry.values)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = county.bounds
    xs = rng.uniform(minx, maxx, n * 3)
    ys = rng.uniform(miny, maxy, n * 3)
    inside = shapely.contains_xy(county, xs, ys)
    seeds = shapely.multipoints(np.column_stack([xs[inside][:n], ys[inside][:n]]))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=county))
    cells = shapely.intersection(cells, county)
    cells = cells[~shapely.is_empty(cells)]
    return gpd.GeoDataFrame({"WD24CD": [f"W{i:07d}" for i in range(len(cells))],
                             "WD24NM": [f"Ward {i + 1}" for i in range(len(cells))]},
                            geometry=cells, crs=27700)


def _points(districts, n, seed=20):
    """``n`` distinct random points over the districts' extent (EPSG:4326), a few outside every district."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = districts.total_bounds
    return rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)


def _store_points(engine, lon, lat):
    """The points as assets of one register, by COPY (setup, untimed)."""
    import io

    from asset_map.store import partitions

    frame = pd.DataFrame({"register": "bench", "match_key": np.arange(len(lon)).astype(str), "tier": "organisation",
                          "category": "library", "name": "x",
                          "geom": "SRID=4326;POINT(" + pd.Series(lon).map(repr) + " " + pd.Series(lat).map(repr)
                                  + ")"})
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO registers (name, version, imported_at) VALUES ('bench', 1, now()) "
                          "ON CONFLICT DO NOTHING"))
        partitions.ensure(conn, "bench")
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy("COPY assets (register, match_key, tier, category, name, geom) "
                                           "FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buf.getvalue())
        raw.commit()
    finally:
        raw.close()


def _wards_figures(engine, ctx, districts):
    from asset_map.registers import areas
    from asset_map.store import geographies

    n_assets = ASSETS.get(ctx.scale, ASSETS["small"])
    wards = _wards(districts, WARDS)
    path = Path(ctx.workdir) / "wards.gpkg"
    wards.to_file(path, driver="GPKG")
    lon, lat = _points(districts, n_assets)
    layers = areas.load_boundaries(engine)
    district_layer = {"district": layers["district"]}
    areas.assign(lon[:1000], lat[:1000], district_layer)  # warm
    t = time.perf_counter()
    assigned = areas.assign(lon, lat, district_layer)
    reference = time.perf_counter() - t
    polys = gpd.read_file(path).to_crs(4326).geometry.to_numpy()
    t = time.perf_counter()
    pt, _ = geographies._inside(lon, lat, polys)
    inside = time.perf_counter() - t
    _store_points(engine, lon, lat)
    t = time.perf_counter()
    done = geographies.load(engine, "wards", path, actor="bench")
    whole = time.perf_counter() - t
    label = f"{len(wards):,} wards, {n_assets:,} assets"
    in_district = int(pd.notna(assigned["district_code"]).sum())
    return [
        Figure(area="geography", name=f"assign assets to wards (point in polygon, in memory), {label}",
               value=round(inside, 3), unit="s", reference="the importer's district assignment of the same points "
               "(registers.areas.assign)", reference_value=round(reference, 3), target="<= 2x reference",
               met=inside <= 2 * reference,
               notes=f"x{inside / reference:.2f} the reference; {len(pt):,} links; {in_district:,} points in a "
                     f"district"),
        Figure(area="geography", name=f"asset-map load geography end to end (GeoPackage in EPSG:27700 -> checked "
               f"-> stored -> every asset linked), {label}", value=round(whole, 3), unit="s",
               reference="the importer's district assignment of the same points", reference_value=round(reference, 3),
               target="<= 2x reference", met=whole <= 2 * reference,
               notes=f"x{whole / reference:.2f} the reference; {done['assets_linked']:,} links written; stages: "
                     + ", ".join(f"{k} {v:.1f} s" for k, v in done["timings"].items())
                     + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
    ]


def _divisions(county_areas, n):
    """About ``n`` divisions dissolved from the LSOAs, by position within each district."""
    gdf = county_areas.to_crs(27700)
    gdf = gdf.assign(x=gdf.geometry.centroid.x)
    per = max(1, round(len(gdf) / n))
    parts = []
    for district, group in gdf.groupby("district_code", sort=True):
        group = group.sort_values(["x", "code"])
        k = max(1, round(len(group) / per))
        group = group.assign(part=np.minimum(np.arange(len(group)) * k // len(group), k - 1))
        merged = group.dissolve(by="part", as_index=False)
        merged["district"] = district
        parts.append(merged[["district", "part", "geometry"]])
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame({"code": [f"D{i + 1:03d}" for i in range(len(out))],
                             "name": [f"Division {i + 1}" for i in range(len(out))]},
                            geometry=out.geometry.buffer(0).to_numpy(), crs=27700)


def _briefing_figures(engine, ctx, county):
    from asset_map import gaps
    from asset_map.briefing import batch, data
    from asset_map.config import load_settings
    from asset_map.store import geographies

    settings = load_settings()
    path = Path(ctx.workdir) / "divisions.gpkg"
    _divisions(county.areas, DIVISIONS).to_file(path, driver="GPKG")
    geographies.load(engine, "divisions", path, actor="bench")
    codes = [a["code"] for a in geographies.areas(engine, "divisions")]
    t = time.perf_counter()
    gaps.run(engine, gaps.GapRequest.from_args({"need": "imd:2025"}), role="public")
    reference = time.perf_counter() - t
    t = time.perf_counter()
    shared = data.county(engine, settings, role="councillor")
    shared_s = time.perf_counter() - t
    t = time.perf_counter()
    batch.document(engine, shared, "divisions", codes[0])
    cold = time.perf_counter() - t
    t = time.perf_counter()
    doc = batch.document(engine, shared, "divisions", codes[1])
    warm = time.perf_counter() - t
    n = min(len(codes), BRIEFINGS.get(ctx.scale, DIVISIONS))
    out = Path(ctx.workdir) / "briefings"
    t = time.perf_counter()
    shared_all = data.county(engine, settings, role="councillor")
    batch.write_all(engine, shared_all, "divisions", out, codes=codes[:n])
    every = time.perf_counter() - t
    return [
        Figure(area="briefing", name="one briefing: build, map image, A4 HTML and PDF (warm process)",
               value=round(warm, 3), unit="s", reference="the county's gap analysis (gaps.run)",
               reference_value=round(reference, 3), target="< 3 s", met=warm < 3,
               notes=f"first in a process {cold:.2f} s (WeasyPrint and matplotlib set-up); shared county inputs "
                     f"{shared_s:.2f} s, read once per run; {len(doc.pdf):,} bytes; x{warm / reference:.2f} the "
                     f"reference; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
        # The target is 3 minutes for 60 divisions, i.e. 3 s a briefing; the dissolve makes about 60.
        Figure(area="briefing", name=f"every briefing of {n} divisions to a folder (asset-map briefing --all)",
               value=round(every, 3), unit="s", reference="the county's gap analysis (gaps.run)",
               reference_value=round(reference, 3), target="< 3 s per briefing (180 s for 60)",
               met=every / n < 3,
               notes=f"{every / n:.2f} s per briefing, one process; x{every / reference:.1f} the reference; load "
                     f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
                     + ("" if n == len(codes) else f"; {n} of {len(codes)} at this scale (--scale county for all)")),
    ]


def run(ctx: BenchContext):
    from asset_map.tools.bench import data as bench_data
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    engine = make_engine(ctx.database_url, {**load_settings(), "STATEMENT_TIMEOUT_MS": 1_200_000})
    county, _, _ = bench_data.load_county(engine, Path(ctx.workdir), areas=700, assets_n=10_000)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    districts = county.districts
    figures = _briefing_figures(engine, ctx, county)
    figures += _wards_figures(engine, ctx, districts)
    engine.dispose()
    return figures
