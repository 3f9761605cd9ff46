"""Issue 16, national scale on one box: England's reference data loads, vector tiles against GeoJSON, the map's
first view of the country, the asset table by keyset, map latency while large exports run, and idle memory.

One database for all of them: the synthetic country (``areas`` and ``assets`` of the scale; at England scale
33,755 areas and 1,000,000 assets), its areas renamed to the real LSOA 2021 codes of the pack's IMD 2025 file when
there are as many, so that the real England file is what ``load need`` reads. Every figure has a reference measured
in the same run: ogr2ogr and COPY for the loads, the same boxes served as GeoJSON for the tiles, the page with its
polygons inline for the first view, OFFSET paging for the table, the same requests without exports running, and a
bare gunicorn + Flask app (and the start-up of the app before this issue) for memory.
"""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from sqlalchemy import text

from asset_map import synth
from asset_map.tools.bench import loadgen
from asset_map.tools.bench.core import BenchContext, Figure
from asset_map.tools.bench.data import AS_OF, placed_assets
from asset_map.tools.bench.serve import Server, free_port, get
from asset_map.config import default_reference_dir, load_settings
from asset_map.reference import load as reference_load
from asset_map.store import assets as store
from asset_map.store.db import make_engine

AREA = "national"
IMD_2025 = Path("deprivation") / "imd2025_england_lsoa21.csv.gz"  # in the reference pack
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
CLIENTS = 20
VIEW_W, VIEW_H = 1280, 800
EXPORTS = 5
EXPORT_ROUNDS = 3  # windows with exports running, each between two without
FRESH_PAGES = 200
# What a serving process of the app before issue 16 imported at start-up (asset_map.web and its blueprints).
TODAY_IMPORTS = ("geopandas", "pandas", "numpy", "folium", "folium.plugins", "scipy.spatial", "pyogrio", "pyproj",
                 "shapely", "pyarrow")


# -- data ----------------------------------------------------------------------------------------------------------


def _imd_2025():
    """The pack's IMD 2025 file for all England (ASSET_MAP_REFERENCE_DIR, or the pack beside the project), or None."""
    pack = default_reference_dir(load_settings())
    path = pack / IMD_2025 if pack else None
    return path if path is not None and path.is_file() else None


def _real_codes(n):
    """The first ``n`` LSOA 2021 codes of the pack's IMD 2025 England file, or None without the pack."""
    if _imd_2025() is None:
        return None
    with gzip.open(_imd_2025(), "rt", encoding="utf-8-sig") as fh:
        codes = sorted(line.split(",", 1)[0] for line in list(fh)[1:])
    return codes[:n] if len(codes) >= n else None


def _load(ctx, engine):
    """Load the synthetic country; returns (figures, notes about the data, bbox)."""
    sizes, workdir = ctx.sizes, Path(ctx.workdir)
    started = time.perf_counter()
    county = synth.generate(areas=sizes["areas"], assets=sizes["assets"], seed=1, as_of=AS_OF)
    gen_s = time.perf_counter() - started
    real = _real_codes(len(county.areas))
    if real:
        rename = dict(zip(county.areas["code"], real))
        county.areas["code"] = county.areas["code"].map(rename)
        county.need["area_code"] = county.need["area_code"].map(rename)
    out = county.write(workdir / "country")
    reference_load.load_districts(engine, out / "districts.geojson")
    started = time.perf_counter()
    reference_load.load_areas(engine, [out / "areas_2021.geojson"], vintage=2021)
    areas_s = time.perf_counter() - started
    need_file = _imd_2025() if real else out / "need_imd2025.csv"
    started = time.perf_counter()
    reference_load.load_need(engine, need_file, indicator="imd", vintage=2025)
    need_s = time.perf_counter() - started
    # Postcodes are not loaded: nothing measured here looks one up, and a million of them take minutes.
    started = time.perf_counter()
    gdf = placed_assets(county)
    with engine.begin() as conn:
        for name in gdf["register"].unique():
            store.ensure_register(conn, name)
        written = store.upsert(conn, gdf)
    assets_s = time.perf_counter() - started
    print(f"  set-up: generated {gen_s:.0f} s, areas {areas_s:.0f} s, need {need_s:.0f} s, assets {assets_s:.0f} s",
          flush=True)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        bbox = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                 "(SELECT ST_Extent(geom) AS e FROM districts) s")).one()
        n_need = conn.execute(text("SELECT count(*) FROM need_indicators WHERE indicator = 'imd'")).scalar()
    ctx.notes.append(f"synthetic country: {len(county.areas):,} areas ({'real LSOA 2021 codes, the pack' if real else 'synthetic codes, no pack'}"
                     f"), {written:,} assets; generated in {gen_s:.1f} s, assets placed and written in {assets_s:.1f} s")
    ref_areas, ref_need = _load_references(ctx, out / "areas_2021.geojson", need_file)
    figures = [
        Figure(AREA, f"asset-map load areas, {len(county.areas):,} LSOA 2021 areas (GeoJSON)", round(areas_s, 2), "s",
               reference="ogr2ogr -f PostgreSQL of the same file into a bare table" if ref_areas else None,
               reference_value=round(ref_areas, 2) if ref_areas else None,
               target="load areas + load need < 60 s", met=areas_s + need_s < 60),
        Figure(AREA, f"asset-map load need, IMD 2025 {'England file' if real else 'synthetic file'} "
               f"({n_need:,} areas kept)", round(need_s, 2), "s",
               reference="COPY of the same CSV into a bare table" if ref_need else None,
               reference_value=round(ref_need, 3) if ref_need else None,
               target="load areas + load need < 60 s", met=areas_s + need_s < 60),
        Figure(AREA, f"synthetic generator, {len(county.areas):,} areas and {sizes['assets']:,} assets", round(gen_s, 1),
               "s"),
    ]
    return figures, bbox


def _load_references(ctx, areas_file, need_file):
    url = ctx.database_url.replace("postgresql+psycopg://", "postgresql://")
    ref_areas = ref_need = None
    if shutil.which("ogr2ogr"):
        from sqlalchemy.engine import make_url

        u = make_url(url)
        pg = f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username}"
        started = time.perf_counter()
        done = subprocess.run(["ogr2ogr", "-f", "PostgreSQL", pg, str(areas_file), "-nln", "bench_ref_areas",
                               "-lco", "GEOMETRY_NAME=geom", "-nlt", "PROMOTE_TO_MULTI", "-overwrite"],
                              capture_output=True, check=False)
        if done.returncode == 0:
            ref_areas = time.perf_counter() - started
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        opener = gzip.open if str(need_file).endswith(".gz") else open
        with opener(need_file, "rb") as fh:
            header = fh.readline().decode("utf-8-sig").strip().split(",")
            cols = ", ".join(f'"c{i}" text' for i in range(len(header)))
            conn.execute(f"CREATE TABLE bench_ref_need ({cols})")
            started = time.perf_counter()
            with conn.cursor().copy("COPY bench_ref_need FROM STDIN WITH (FORMAT csv)") as copy:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
            ref_need = time.perf_counter() - started
        conn.execute("DROP TABLE IF EXISTS bench_ref_need")
        conn.execute("DROP TABLE IF EXISTS bench_ref_areas")
    return ref_areas, ref_need


# -- tiles ---------------------------------------------------------------------------------------------------------


def _tile(lon, lat, z):
    import math

    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _tile_bounds(x, y, z):
    import math

    n = 2 ** z

    def lat(yy):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * yy / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def pan_and_zoom(bbox, *, count=200, mirrored=False):
    """Views from the whole country down to a street: at each zoom from 6 the 256-px need tiles covering a
    1280 x 800 window around a point that drifts across the country (5 x 4 tiles), until ``count`` tiles; returns
    (need tile paths, asset tile paths of each view's middle 2 x 2, one (zoom, bbox) per view). ``mirrored``: the
    point drifts the other way, to other streets."""
    minx, miny, maxx, maxy = bbox
    views, tiles, asset_tiles = [], [], []
    z = 6
    sign = -1 if mirrored else 1
    while len(tiles) < count:
        t = min((z - 6) / 9, 1)
        lon = minx + (maxx - minx) * (0.5 + sign * (0.3 * t - 0.15))
        lat = miny + (maxy - miny) * (0.5 + sign * (0.2 * t - 0.1))
        cx, cy = _tile(lon, lat, z)
        xs, ys = range(cx - 2, cx + 3), range(cy - 2, cy + 2)
        west, south, _, _ = _tile_bounds(xs[0], ys[-1], z)
        _, _, east, north = _tile_bounds(xs[-1], ys[0], z)
        views.append((z, (west, south, east, north)))
        tiles += [f"/tiles/need/{z}/{x}/{y}.mvt?need=imd:2025" for x in xs for y in ys]
        asset_tiles += [f"/tiles/assets/{z}/{x}/{y}.mvt" for x in (cx - 1, cx) for y in (cy - 1, cy)]
        z = min(z + 1, 18)
    return tiles[:count], asset_tiles, views


def _fetch_all(base, paths, clients=CLIENTS):
    """Every path once, by ``clients`` threads; returns (latencies in ms, bytes, errors, wall seconds)."""
    todo = list(paths)
    lock = threading.Lock()
    lat, sizes, errors = [], [], []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                path = todo.pop(0)
            status, body, seconds = get(base + path, headers={"Accept-Encoding": "gzip"}, timeout=60)
            with lock:
                lat.append(seconds * 1000)
                sizes.append(len(body))
                if status >= 400:
                    errors.append(f"{status} {path}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return np.array(lat), sum(sizes), errors, time.perf_counter() - started


def _server_settings(ctx, folder="server"):
    """The settings of the bench's app server (Server(..., workdir/folder)): where it keeps its downloads."""
    return load_settings({"DATABASE_URL": ctx.database_url, "VAR_DIR": str(Path(ctx.workdir) / folder)})


def _prepare_figures(ctx, engine):
    """The tile tables built once after a load (maps.tile_prep): their build time is what the fast tiles cost; and
    the popular public downloads made ahead of time (api.kept.prepare), as the import worker does after a load, into
    the server's folder, so that the exports section measures sending them."""
    from asset_map.api import kept

    figures = _tile_prep_figures(engine)
    started = time.perf_counter()
    made = kept.prepare(engine, _server_settings(ctx), force=True)
    took = time.perf_counter() - started
    files = "; ".join(f"{layer}.{fmt} {path.stat().st_size / 1e6:.0f} MB (gzip "
                      f"{kept.gzipped(path).stat().st_size / 1e6:.0f} MB) in {secs:.1f} s"
                      for layer, fmt, path, secs, _ in made)
    figures.append(Figure(AREA, "popular public downloads made ahead of time after the load (assets GeoJSON and CSV "
                          "with their gzip copies, nice 19)", round(took, 1), "s",
                          notes=f"{files}; the import worker makes them after each import and checks every 5 "
                                "minutes; no visitor waits for them"))
    return figures


def _tile_prep_figures(engine):
    from asset_map.maps import tile_prep

    started = time.perf_counter()
    rows = tile_prep.refresh(engine, force=True)
    prep_s = time.perf_counter() - started
    with engine.connect() as conn:
        took = dict(conn.execute(text("SELECT what, seconds FROM tile_prep")).all())
    return [Figure(AREA, "tile tables prepared after the load (area shapes per zoom band, public asset counts per "
                   "grid cell)", round(prep_s, 1), "s",
                   notes=f"shapes {rows['shapes']:,} rows in {took.get('shapes', 0):.1f} s, asset cells "
                         f"{rows['assets']:,} rows in {took.get('assets', 0):.1f} s; run once per load or import, "
                         "and again in the background when a tile finds them out of date")]


def _tiles_figures(srv, bbox, workdir):
    paths, asset_paths, views = pan_and_zoom(bbox)
    # A cold cache, not a cold server: the mirrored pan and zoom first (other tiles, the same kinds), so that each
    # worker has imported what tiles need and opened its database connections, as a server that has been up a while
    # has when new data empties its cache. Without this the first tiles measured a worker's start.
    warm_paths, warm_assets, _ = pan_and_zoom(bbox, mirrored=True)
    _fetch_all(srv.url, warm_paths + warm_assets)
    shutil.rmtree(Path(workdir) / "server" / "tiles", ignore_errors=True)  # cold cache
    lat, nbytes, errors, wall = _fetch_all(srv.url, paths)
    warm, _, _, warm_wall = _fetch_all(srv.url, paths)
    alat, abytes, aerrors, awall = _fetch_all(srv.url, asset_paths)
    awarm, _, _, _ = _fetch_all(srv.url, asset_paths)
    geo = [f"/ogc/collections/need-imd-2025/items?bbox={w:.5f},{s:.5f},{e:.5f},{n:.5f}&limit=10000&f=json"
           for _, (w, s, e, n) in views]
    glat, gbytes, gerrors, gwall = _fetch_all(srv.url, geo)
    ageo = [f"/api/assets.geojson?bbox={w:.5f},{s:.5f},{e:.5f},{n:.5f}&zoom={z}" for z, (w, s, e, n) in views]
    aglat, agbytes, _, agwall = _fetch_all(srv.url, ageo)
    p95, gp95, ap95 = (float(np.percentile(v, 95)) for v in (lat, glat, alat))
    return [
        Figure(AREA, f"need tiles, pan and zoom z{views[0][0]}-z{views[-1][0]} ({len(paths)} tiles, cold cache), "
               f"p95 at {CLIENTS} clients", round(p95, 1), "ms",
               reference=f"the same {len(views)} views' boxes as GeoJSON (OGC need items), p95",
               reference_value=round(gp95, 1), target="< 100 ms", met=p95 < 100 and not errors,
               notes=f"tiles: {len(paths) / wall:,.0f} tiles/s ({len(views) / wall:.2f} views/s), "
                     f"{nbytes / 1e6:.2f} MB, p50 {np.percentile(lat, 50):.1f} ms, max {lat.max():.0f} ms, "
                     f"{len(errors)} errors; cached (second pass) p95 {np.percentile(warm, 95):.1f} ms; GeoJSON: "
                     f"{len(views) / gwall:.2f} views/s, {gbytes / 1e6:.2f} MB, {len(gerrors)} errors"),
        Figure(AREA, "need tiles: views per second over the pan-and-zoom sequence (cold)", round(len(views) / wall, 2),
               "views/s", reference="the same views as GeoJSON (OGC need items)",
               reference_value=round(len(views) / gwall, 2),
               notes=f"bytes: tiles {nbytes / 1e6:.2f} MB vs GeoJSON {gbytes / 1e6:.2f} MB (as sent, gzip)"),
        Figure(AREA, f"asset tiles along the same views ({len(asset_paths)} tiles, cold), p95 at {CLIENTS} clients",
               round(ap95, 1), "ms", reference="the same views from the map API (GeoJSON), p95",
               reference_value=round(float(np.percentile(aglat, 95)), 1), target="< 100 ms",
               met=ap95 < 100 and not aerrors,
               notes=f"tiles {abytes / 1e6:.2f} MB, {len(aerrors)} errors, p50 {np.percentile(alat, 50):.1f} ms; "
                     f"cached (second pass) p95 {np.percentile(awarm, 95):.1f} ms; map API {agbytes / 1e6:.2f} MB"),
    ]


# -- first view in a browser ---------------------------------------------------------------------------------------


def _first_view(url, browser, ready):
    page = browser.new_page(viewport={"width": VIEW_W, "height": VIEW_H})
    total = [0]

    def on_response(res):
        try:
            total[0] += int(res.headers.get("content-length") or len(res.body()))
        except Exception:  # noqa: BLE001 - a response that went away has no size to count
            pass

    page.on("response", on_response)
    started = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=120_000)
    page.wait_for_function(ready, timeout=120_000, polling=50)
    drawn = page.evaluate("() => performance.now()")
    seconds = time.perf_counter() - started
    page.wait_for_timeout(300)
    page.close()
    return total[0] / 1e6, drawn / 1000, seconds


def _first_view_figures(ctx, srv, ref_srv):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        ctx.notes.append("first view: Chromium not installed; skipped")
        return []
    tiled = ("() => !!document.body && document.body.getAttribute('data-tiles-loaded') === '1' "
             "&& document.body.getAttribute('data-assets-loaded') === '1'")
    inline = ("() => !!document.body && document.body.getAttribute('data-assets-loaded') === '1' "
              "&& document.querySelectorAll('path.leaflet-interactive').length > 0")
    # A worker's first map page imports folium and pandas and compiles folium's templates (seconds on this machine;
    # they are loaded lazily for the idle-memory target): that is timed on its own, then every worker is warmed so
    # that the figure is the first view a user gets from a running server.
    started = time.perf_counter()
    get(srv.url + "/", timeout=120)
    first_page_s = time.perf_counter() - started
    _fetch_all(srv.url, ["/"] * 16, clients=4)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            runs = [_first_view(srv.url + "/", browser, tiled) for _ in range(3)]
            shutil.rmtree(Path(ctx.workdir) / "server" / "tiles", ignore_errors=True)
            cold = _first_view(srv.url + "/", browser, tiled)
            try:
                ref = _first_view(ref_srv.url + "/", browser, inline)
            except Exception as err:  # noqa: BLE001 - the reference may not finish at all at England scale
                ref = (float("nan"), float("nan"), float("nan"))
                ctx.notes.append(f"first view reference (polygons in the page) did not finish: {err}")
        finally:
            browser.close()
    mb = float(np.median([r[0] for r in runs]))
    drawn = float(np.median([r[1] for r in runs]))
    return [
        Figure(AREA, "map's first view of the country: bytes transferred (page, scripts, tiles, assets)",
               round(mb, 3), "MB", reference="the same page with the polygons in it (before issue 16)",
               reference_value=round(ref[0], 2), target="< 1 MB", met=mb < 1,
               notes=f"median of 3; with a cold tile cache: {cold[0]:.3f} MB"),
        Figure(AREA, "map's first view of the country: drawn in headless Chromium (tiles and assets)",
               round(drawn, 3), "s", reference="the same page with the polygons in it", reference_value=round(ref[1], 2),
               target="< 1.5 s", met=drawn < 1.5,
               notes=f"median of 3 from navigation start, server workers warmed; cold tile cache: {cold[1]:.2f} s; "
                     f"a worker's first map page (folium and pandas imported then): {first_page_s:.1f} s"),
    ]


# -- the table -----------------------------------------------------------------------------------------------------


def _table_figures(srv, engine, seconds):
    from asset_map.maps import table
    from asset_map.store import keyset
    from asset_map.store.assets import AssetFilter

    total, _ = table.count(engine, AssetFilter(), role="public")
    middle = max(1, total // table.PAGE_SIZE // 2)
    where, params = AssetFilter().where(role="public")
    with engine.connect() as conn:
        name, row_id = conn.execute(text(f"SELECT a.name, a.id FROM assets a WHERE {where} "
                                         "ORDER BY a.name, a.id OFFSET :o LIMIT 1"),
                                    {**params, "o": (middle - 1) * table.PAGE_SIZE - 1}).one()
    cursor = keyset.encode_cursor(name, row_id)
    pages = {"first": "/assets", "middle": f"/assets?after={cursor}&page={middle}", "last": "/assets?last=1"}
    figures = []
    offset_ref = loadgen.run(srv.url, [f"/assets?page={middle}"], clients=CLIENTS, seconds=max(3, seconds // 2),
                             timeout_s=60)
    for label, path in pages.items():
        res = loadgen.run(srv.url, [path], clients=CLIENTS, seconds=seconds, timeout_s=60)
        figures.append(Figure(
            AREA, f"/assets at {total:,} assets, {label} page, p95 at {CLIENTS} clients", round(res.p95_ms, 1), "ms",
            reference=f"the middle page by OFFSET (page={middle:,}), p95", reference_value=round(offset_ref.p95_ms, 1),
            target="< 100 ms", met=res.p95_ms < 100 and res.errors == 0,
            notes=f"the same address again and again: after each process's first, its kept page; {res.summary()}"))
    # Pages no process has drawn yet: readers walking on from the middle, each page asked for once.
    walk, after = [], cursor
    for n in range(FRESH_PAGES):
        step = table.page(engine, AssetFilter(), after=after)
        after = step.cursors["next"]
        walk.append(f"/assets?after={after}&page={middle + n + 2}")
    figures.append(_ogc_deep_page(srv))
    lat, _, errors, wall = _fetch_all(srv.url, walk)
    p95 = float(np.percentile(lat, 95))
    figures.append(Figure(
        AREA, f"/assets at {total:,} assets, {FRESH_PAGES} pages drawn afresh (each asked for once), p95 at "
        f"{CLIENTS} clients", round(p95, 1), "ms", reference=f"the middle page by OFFSET (page={middle:,}), p95",
        reference_value=round(offset_ref.p95_ms, 1), target="< 100 ms", met=p95 < 100 and not errors,
        notes=f"{len(walk) / wall:.0f} pages/s, p50 {np.percentile(lat, 50):.1f} ms, {len(errors)} errors"))
    return figures


def _ogc_deep_page(srv):
    """A page deep in a national layer as a client following next links gets it (after=, the id index) against the
    same page by offset (which counts every row before it), one request at a time, median of 3."""
    base = "/ogc/collections/organisations/items?limit=1000"
    deep = json.loads(get(srv.url + base, timeout=120)[1])["numberMatched"] // 2000 * 1000
    status, body, _ = get(srv.url + f"{base}&offset={deep - 1000}", timeout=120)
    nxt = next(link["href"] for link in json.loads(body)["links"] if link["rel"] == "next")
    by_link = nxt[nxt.index("/ogc/"):]
    timed, statuses = {}, set()
    for label, path in (("link", by_link), ("offset", f"{base}&offset={deep}")):
        runs = [get(srv.url + path, timeout=120) for _ in range(3)]
        statuses |= {f"{label} {r[0]}" for r in runs}
        timed[label] = float(np.median([r[2] * 1000 for r in runs]))
    return Figure(AREA, f"OGC items, the page at offset {deep:,} of organisations by its next link (after=), one "
                  "client", round(timed["link"], 1), "ms", reference="the same page by offset",
                  reference_value=round(timed["offset"], 1),
                  notes=f"QGIS and GDAL page through a layer by its next links; statuses: {', '.join(sorted(statuses))}")


# -- exports under load --------------------------------------------------------------------------------------------


def _exports_figures(ctx, srv, bbox, seconds):
    """The map's p95 while EXPORTS clients download the national GeoJSON, against the same without: windows of each
    kind taken in turn (without, with, without, ... with, without), so that the machine's drift (other work comes and
    goes: two windows without exports a minute apart differed by 2x) weighs on both sides alike."""
    minx, miny, maxx, maxy = bbox
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    box = f"{cx - 0.05:.4f},{cy - 0.03:.4f},{cx + 0.05:.4f},{cy + 0.03:.4f}"
    paths = {"map page": "/", "map API": f"/api/assets.geojson?bbox={box}&zoom=13",
             "OGC items": f"/ogc/collections/organisations/items?bbox={box}&limit=100"}
    # Every worker warmed as the first-view section does (a worker's first map page imports folium and pandas):
    # run alone (ASSET_MAP_BENCH_SECTIONS=exports), the reference's p95 was that import, 7.5-9.2 s instead of 0.3 s.
    _fetch_all(srv.url, ["/"] * 16, clients=4)
    kept_note = _kept_note(ctx)
    without, loaded, outcomes = {k: [] for k in paths}, {k: [] for k in paths}, []

    def window(into):
        for k, p in paths.items():
            into[k].append(loadgen.run(srv.url, [p], clients=CLIENTS, seconds=seconds, timeout_s=30))

    window(without)
    for _ in range(EXPORT_ROUNDS):
        stop = threading.Event()

        def exporter(stop=stop):
            while not stop.is_set():
                status, size, took = _download(srv.url + "/export/assets.geojson", stop)
                outcomes.append((status, size, took))
                if status != 200:
                    stop.wait(1)

        threads = [threading.Thread(target=exporter, daemon=True) for _ in range(EXPORTS)]
        for th in threads:
            th.start()
        time.sleep(2)
        window(loaded)
        stop.set()
        for th in threads:
            th.join(60)
        os.sync()  # the downloads' files written out, so the next window is not measured against their writeback
        window(without)
    done = [o for o in outcomes if o[0] == 200]
    busy = sum(1 for o in outcomes if o[0] == 503)
    left = [o for o in outcomes if o[0] == -1]
    cut = [o for o in outcomes if o[0] not in (200, 503, -1)]
    note = (f"{EXPORTS} clients downloading /export/assets.geojson in a loop: {len(done)} finished "
            f"({np.mean([o[1] for o in done]) / 1e6 if done else 0:.0f} MB each, "
            f"{np.mean([o[1] / o[2] for o in done]) / 1e6 if done else 0:.0f} MB/s), {len(left)} left when their "
            f"window ended ({np.mean([o[1] for o in left]) / 1e6 if left else 0:.0f} MB each by then, "
            f"{np.mean([o[1] / o[2] for o in left]) / 1e6 if left else 0:.1f} MB/s), {busy} polite 503s, {len(cut)} "
            f"failed or cut short; the file was {kept_note}")
    out = []
    for k in paths:
        ref = float(np.mean([r.p95_ms for r in without[k]]))
        under = float(np.mean([r.p95_ms for r in loaded[k]]))
        ratio = under / ref if ref else float("nan")
        out.append(Figure(AREA, f"{k} p95 at {CLIENTS} clients while {EXPORTS} large exports run",
                          round(under, 1), "ms",
                          reference=f"the same without exports (windows in turn: mean p95 of {len(without[k])} "
                                    f"without, {len(loaded[k])} with)",
                          reference_value=round(ref, 1), target="within 10 % (ratio <= 1.10)",
                          met=ratio <= 1.10, notes=f"{note}; p95 without: "
                                                   f"{', '.join(f'{r.p95_ms:.1f}' for r in without[k])} ms; with: "
                                                   f"{', '.join(f'{r.p95_ms:.1f}' for r in loaded[k])} ms; last with: "
                                                   f"{loaded[k][-1].summary()}; last without: "
                                                   f"{without[k][-1].summary()}"))
    out.append(_while_made(ctx, srv, paths["map API"], float(np.mean([r.p95_ms for r in without["map API"]])),
                           seconds))
    return out


def _kept_note(ctx):
    from asset_map.api import kept
    from asset_map.api.exporter import Export

    settings = _server_settings(ctx)
    engine = make_engine(ctx.database_url, settings)
    try:
        job = Export.make(engine, "assets", "geojson", {}, role="public", actor="bench", settings=settings)
        return "kept before the section (made ahead of time)" if kept.path_of(job).is_file() else \
            "NOT kept before the section: the first download made it"
    finally:
        engine.dispose()


def _while_made(ctx, srv, path, base_p95, seconds):
    """Map API p95 while the national GeoJSON is made ahead of time (as the worker does after an import, nice 19),
    into a folder of its own, against the same without."""
    from asset_map.api import kept

    settings = _server_settings(ctx, "prepare-under-load")
    engine = make_engine(ctx.database_url, settings)
    made = []
    worker = threading.Thread(target=lambda: made.extend(kept.prepare(engine, settings, which=[("assets", "geojson")],
                                                                      force=True)))
    worker.start()
    time.sleep(1)
    res = loadgen.run(srv.url, [path], clients=CLIENTS, seconds=seconds, timeout_s=30)
    during = worker.is_alive()
    worker.join()
    engine.dispose()
    shutil.rmtree(Path(settings["VAR_DIR"]) / "exports", ignore_errors=True)
    took = made[0][3] if made else float("nan")
    return Figure(AREA, f"map API p95 at {CLIENTS} clients while the national GeoJSON is made ahead of time",
                  round(res.p95_ms, 1), "ms", reference="the same without exports (mean p95 of the windows without)",
                  reference_value=round(base_p95, 1),
                  notes=f"made by api.kept.prepare at nice 19 (thread and database backend) in {took:.0f} s, "
                        f"{'still making at the end of the run' if during else 'FINISHED BEFORE THE RUN ENDED'}; "
                        f"{res.summary()}")


def _download(url, stop=None):
    """(status, bytes received, seconds) of one download read in 1 MB pieces and thrown away (five clients holding
    whole national files took gigabytes from the machine being measured); a download cut short is status 0, one
    left by the client when ``stop`` was set -1."""
    import http.client
    import urllib.error
    import urllib.request

    started, size = time.perf_counter(), 0
    try:
        with urllib.request.urlopen(url, timeout=600) as res:
            while piece := res.read(1 << 20):
                size += len(piece)
                if stop is not None and stop.is_set():
                    return -1, size, time.perf_counter() - started
            status = res.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (http.client.HTTPException, OSError) as err:
        print(f"  export download failed after {size:,} bytes: {err!r}", flush=True)
        status = 0
    return status, size, time.perf_counter() - started


# -- memory --------------------------------------------------------------------------------------------------------


class _Gunicorn:
    """gunicorn with an app factory of this module (the references), same workers and threads as the app. Its
    output goes to ``workdir/gunicorn.log``, and a server that does not start says why (the log's last lines)."""

    def __init__(self, factory, database_url, workdir, workers, threads):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "gunicorn.log"
        env = {**os.environ, "ASSET_MAP_DATABASE_URL": database_url, "ASSET_MAP_VAR_DIR": str(workdir),
               "ASSET_MAP_SECRET_KEY": "bench", "ASSET_MAP_TILES": "none"}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers),
                                          "--threads", str(threads), "-b", f"127.0.0.1:{self.port}",
                                          f"asset_map.tools.bench.national:{factory}()"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)

    def __enter__(self):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if get(self.url + "/healthz", timeout=5)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        lines = self.log.read_text(errors="replace").strip().splitlines()
        # gunicorn's own lines start with a [timestamp]; the cause (a traceback's last line) does not.
        cause = [line for line in lines if not line.startswith("[")][-2:] or lines[-3:]
        msg = f"gunicorn {self.url} did not start (see {self.log}): {' | '.join(cause)}"
        raise RuntimeError(msg)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __exit__(self, *exc):
        self.stop()


def bare():
    """Reference: a Flask app that answers /healthz and nothing else."""
    from flask import Flask

    app = Flask(__name__)
    app.get("/healthz")(lambda: {"status": "ok"})
    return app


def today():
    """Reference: the app as it started before issue 16, importing what its modules imported at start-up."""
    import importlib

    for name in TODAY_IMPORTS:
        importlib.import_module(name)
    from asset_map.web import create_app, vendored

    app = create_app()
    import folium  # noqa: F401 - as before: folium's asset lists pointed at our files at start-up

    vendored.use_local_assets(lambda rel: f"{app.static_url_path}/{rel}")
    return app


def _memory(pid):
    master = psutil.Process(pid)
    procs = [master, *master.children(recursive=True)]
    rss = pss = 0
    for p in procs:
        info = p.memory_full_info()
        rss += info.rss
        pss += info.pss
    return rss / 2**20, pss / 2**20, len(procs)


def _idle(url, pid):
    for _ in range(8):
        get(url + "/healthz", timeout=10)
    time.sleep(2)
    return _memory(pid)


def _memory_figures(ctx, seconds):
    settings = load_settings()
    workers, threads = settings["WORKERS"], settings["THREADS"]
    work = Path(ctx.workdir)
    with _Gunicorn("bare", ctx.database_url, work / "bare", workers, threads) as srv:
        bare_rss, bare_pss, _ = _idle(srv.url, srv.proc.pid)
    paths = ["/api/assets.geojson?zoom=8", "/healthz"]
    with _Gunicorn("today", ctx.database_url, work / "today", workers, threads) as before, \
            Server(ctx.database_url, work / "ours") as srv:
        today_rss, today_pss, _ = _idle(before.url, before.proc.pid)
        ours_rss, ours_pss, n = _idle(srv.url, srv.proc.pid)
        # Steady state, not start-up: ours loads heavy modules on a worker's first request instead of at start-up
        # (that is where its memory went), so every worker of both is warmed before the rounds.
        for url in (before.url, srv.url):
            _fetch_all(url, paths * 16, clients=8)
        # Throughput interleaved, round by round, so that the machine's other load falls on both alike.
        today_runs, ours_runs = [], []
        for _ in range(3):
            today_runs.append(loadgen.run(before.url, paths, clients=CLIENTS, seconds=seconds))
            ours_runs.append(loadgen.run(srv.url, paths, clients=CLIENTS, seconds=seconds))
    today_load = sorted(today_runs, key=lambda r: r.rps)[1]
    ours_load = sorted(ours_runs, key=lambda r: r.rps)[1]
    layout = f"{workers} workers x {threads} threads ({n} processes with the master)"
    return [
        Figure(AREA, f"idle server memory, RSS of master + workers, {layout}", round(ours_rss, 1), "MB",
               reference="the app's start-up before issue 16, same layout", reference_value=round(today_rss, 1),
               target="<= 50 % (ratio <= 0.50)", met=ours_rss <= 0.5 * today_rss,
               notes=f"bare gunicorn + Flask app, same layout: {bare_rss:.0f} MB RSS ({ours_rss / bare_rss:.2f}x)"),
        Figure(AREA, f"idle server memory, PSS (shared pages counted once), {layout}", round(ours_pss, 1), "MB",
               reference="the app's start-up before issue 16, same layout", reference_value=round(today_pss, 1),
               target="<= 50 % (ratio <= 0.50)", met=ours_pss <= 0.5 * today_pss,
               notes=f"bare gunicorn + Flask app: {bare_pss:.0f} MB PSS ({ours_pss / bare_pss:.2f}x)"),
        Figure(AREA, "throughput, map API + /healthz round-robin, after the memory changes", round(ours_load.rps, 1),
               "req/s", reference="the app's start-up before issue 16", reference_value=round(today_load.rps, 1),
               target="no loss (ratio >= 0.95)", met=ours_load.rps >= 0.95 * today_load.rps,
               notes=f"median of 3 interleaved rounds; ours {ours_load.summary()}; before {today_load.summary()}"),
    ]


# -- run -----------------------------------------------------------------------------------------------------------


def _section(ctx, name, fn, *args):
    """One group of figures; a failure is noted and the others still run (they take long at England scale).
    ``ASSET_MAP_BENCH_SECTIONS`` (comma-separated: prepare, tiles, first view, table, exports, memory) runs only
    those (without prepare, the first tile to find the tile tables out of date starts their rebuild)."""
    only = os.environ.get("ASSET_MAP_BENCH_SECTIONS")
    if only and name not in {w.strip() for w in only.split(",")}:
        return []
    started = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as err:  # noqa: BLE001 - reported in the notes, never fatal to the other sections
        import traceback

        traceback.print_exc()
        ctx.notes.append(f"{name}: FAILED ({type(err).__name__}: {str(err)[:200]})")
        return []
    for f in out:
        print(f"  [{f.area}] {f.name}: {f.value} {f.unit} (ref {f.reference_value}) met={f.met}", flush=True)
    ctx.notes.append(f"{name}: {time.perf_counter() - started:.0f} s")
    return out



def run(ctx: BenchContext) -> list[Figure]:
    seconds = min(int(ctx.sizes.get("load_seconds", 10)), 10)
    # No statement timeout for the set-up's bulk loads on a busy machine; the servers keep the default.
    engine = make_engine(ctx.database_url, load_settings({"DATABASE_URL": ctx.database_url,
                                                          "STATEMENT_TIMEOUT_MS": 0}))
    figures, bbox = _load(ctx, engine)
    figures += _section(ctx, "prepare", _prepare_figures, ctx, engine)
    ctx.notes.append(f"machine: {psutil.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start "
                     "(shared with other work)")
    # Tiles for the map at any scale (at England scale that is the default anyway).
    with Server(ctx.database_url, Path(ctx.workdir) / "server", MAP_INLINE_AREAS=0) as srv:
        figures += _section(ctx, "tiles", _tiles_figures, srv, bbox, ctx.workdir)
        with Server(ctx.database_url, Path(ctx.workdir) / "inline", MAP_INLINE_AREAS=10**9) as ref_srv:
            figures += _section(ctx, "first view", _first_view_figures, ctx, srv, ref_srv)
        figures += _section(ctx, "table", _table_figures, srv, engine, seconds)
        figures += _section(ctx, "exports", _exports_figures, ctx, srv, bbox, seconds)
    engine.dispose()
    figures += _section(ctx, "memory", _memory_figures, ctx, seconds)
    ctx.notes.append(f"load average {os.getloadavg()[0]:.1f} at the end")
    return figures
