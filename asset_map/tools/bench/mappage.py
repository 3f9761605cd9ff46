"""Benchmark of the map page at 700 and 50,000 assets: initial page weight, server time to build it, and the time
until the asset markers are drawn in headless Chromium; against Folium pages that embed the same assets
(FastMarkerCluster at full size; MarkerCluster at a capped size, its build time extrapolated), measured in the
same run on the same data.

Run alone: ``python -m asset_map.tools.bench --only map``.
"""

import statistics
import threading
import time
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
from folium.plugins import FastMarkerCluster, MarkerCluster
from sqlalchemy import text

from asset_map import synth
from asset_map.tools.bench.core import BenchContext, Figure
from asset_map.config import load_settings
from asset_map.maps import features, page
from asset_map.reference.pack import load_pack
from asset_map.store import assets as store
from asset_map.store.db import make_engine

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MARKER_CLUSTER_CAP = 5_000
RUNS = 3
TARGET_PAGE_MB, TARGET_BUILD_S, TARGET_DRAWN_S = 1.0, 0.3, 1.5


def _placed(county):
    """The county's register rows placed at their own lon/lat (or their postcode), ready for ``store.upsert``."""
    frames = []
    postcodes = county.postcodes.set_index("postcode").geometry
    for name, rows in county.registers.items():
        rows = rows.copy()
        has_xy = (rows["lon"] != "") & (rows["lat"] != "")
        xy = gpd.GeoSeries(gpd.points_from_xy(pd.to_numeric(rows["lon"].where(has_xy)),
                                              pd.to_numeric(rows["lat"].where(has_xy))), index=rows.index, crs=4326)
        geom = xy.where(has_xy, gpd.GeoSeries(rows["postcode"].map(postcodes), index=rows.index, crs=4326))
        gdf = gpd.GeoDataFrame(rows, geometry=geom, crs=4326)
        gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].copy()
        gdf["register"], gdf["source_row"] = name, range(2, len(gdf) + 2)
        frames.append(gdf)
    gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    joined = gpd.sjoin(gdf, county.areas[["code", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated()]
    gdf["lsoa21_code"] = joined["code"].to_numpy()
    gdf["match_key"], gdf["geocode_method"], gdf["geocode_quality"] = gdf["source_key"], "coordinates", 1.0
    gdf["consent"] = gdf["consent"].map({"yes": True, "no": False}).astype(object)
    gdf["properties"], gdf["lsoa11_code"], gdf["area_flag"] = "{}", None, None
    for col in ("uprn", "last_verified"):
        gdf[col] = gdf[col].replace("", None)
    areas = county.areas.set_index("code")["district_code"]
    gdf["district_code"] = gdf["lsoa21_code"].map(areas)
    return gdf[store.WRITE_COLUMNS + ["geometry"]]


def _load_assets(engine, areas, n, workdir, *, reference):
    county = synth.generate(areas=areas, assets=n, seed=7)
    if reference:
        load_pack(engine, county.write(Path(workdir) / "county"))
    gdf = _placed(county)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM assets"))
        for name in gdf["register"].unique():
            store.ensure_register(conn, name)
        store.upsert(conn, gdf)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE assets"))  # as after an import: the planner knows the table's new size
    return gdf


class _Server:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        self._server.shutdown()


def _drawn_ms(browser, url, ready_js, *, timeout_ms=120_000):
    """Milliseconds from navigation start until ``ready_js`` is true (polled every animation frame)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(url, wait_until="commit", timeout=timeout_ms)
        page.wait_for_function(ready_js, timeout=timeout_ms, polling="raf")
        return page.evaluate("() => performance.now()")
    finally:
        page.close()


def _median(values):
    return statistics.median(values)


def _explorer_figures(engine, url, n, browser, workdir):
    from asset_map.web import create_app

    app = create_app({"DATABASE_URL": url, "VAR_DIR": str(workdir), "SECRET_KEY": "bench", "TILES": "none"})
    client = app.test_client()
    client.get("/")  # warm: engine, layer files, template compilation
    cold, times, size = [], [], 0
    for _ in range(5):
        page._CACHE.clear()  # boundaries and need drawn again, as after a reference load
        started = time.perf_counter()
        client.get("/")
        cold.append(time.perf_counter() - started)
    for _ in range(5):
        started = time.perf_counter()
        res = client.get("/")
        times.append(time.perf_counter() - started)
        size = len(res.get_data())
    api = client.get("/api/assets.geojson?zoom=10")
    server = _Server(app)
    ready = ("() => window.assetMapDrawnAt !== undefined "
             "&& document.querySelector('.leaflet-marker-pane .leaflet-marker-icon')")
    try:
        drawn, warm = [], []
        for _ in range(RUNS):
            features._CACHE.clear()  # no cached answer for this view: the database is asked
            drawn.append(_drawn_ms(browser, server.url + "/", ready))
        for _ in range(RUNS):
            warm.append(_drawn_ms(browser, server.url + "/", ready))
    finally:
        server.stop()
    return {"page_mb": size / 1e6, "build_s": _median(times), "cold_s": _median(cold), "drawn_s": _median(drawn) / 1000,
            "warm_drawn_s": _median(warm) / 1000,
            "api_mb": len(api.get_data()) / 1e6, "api_mode": api.get_json()["mode"]}


def _folium_reference(gdf, plugin, workdir, static_url):
    from asset_map.web import vendored as vendor

    vendor.use_local_assets(lambda rel: f"{static_url}/{rel}")
    xy = list(zip(gdf.geometry.y.round(6), gdf.geometry.x.round(6)))  # Leaflet order: lat, lon
    started = time.perf_counter()
    m = folium.Map(location=[52.8, -2.0], zoom_start=9, tiles=None, **{"maxZoom": 19})
    if plugin == "fast":
        FastMarkerCluster(xy).add_to(m)
    else:
        cluster = MarkerCluster().add_to(m)
        for (lat, lon), name in zip(xy, gdf["name"]):
            folium.Marker([lat, lon], popup=folium.Popup(str(name), parse_html=True)).add_to(cluster)
    html = m.get_root().render()
    seconds = time.perf_counter() - started
    path = Path(workdir) / f"reference-{plugin}-{len(xy)}.html"
    path.write_text(html, encoding="utf-8")
    return path, len(html.encode("utf-8")) / 1e6, seconds


def run(ctx: BenchContext) -> list[Figure]:
    from playwright.sync_api import sync_playwright

    from asset_map.web import create_app

    settings = load_settings({"DATABASE_URL": ctx.database_url})
    engine = make_engine(ctx.database_url, settings)
    sizes = ctx.sizes.get("map_assets", [700, 50_000])
    areas = ctx.sizes.get("areas", 700)
    figures, measured = [], {}
    workdir = Path(ctx.workdir)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            gdf = None
            for i, n in enumerate(sizes):
                gdf = _load_assets(engine, areas, n, workdir, reference=i == 0)
                measured[n] = _explorer_figures(engine, ctx.database_url, n, browser, workdir)
                measured[n]["assets"] = len(gdf)
            # References on the largest size's assets, served by the same app's static files.
            biggest = max(sizes)
            app = create_app({"DATABASE_URL": ctx.database_url, "VAR_DIR": str(workdir), "SECRET_KEY": "bench",
                              "TILES": "none"})
            server = _Server(app)
            try:
                fast_path, fast_mb, fast_build = _folium_reference(gdf, "fast", workdir, server.url + "/static")
                fast_drawn = _median([_drawn_ms(browser, fast_path.as_uri(),
                                                "() => document.querySelector('.marker-cluster')")
                                      for _ in range(RUNS)]) / 1000
                cap = min(MARKER_CLUSTER_CAP, len(gdf))
                mc_path, mc_mb, mc_build = _folium_reference(gdf.iloc[:cap], "markercluster", workdir,
                                                             server.url + "/static")
                mc_drawn = _drawn_ms(browser, mc_path.as_uri(), "() => document.querySelector('.marker-cluster')")
                mc_drawn /= 1000
            finally:
                server.stop()
        finally:
            browser.close()
    engine.dispose()
    scale = len(gdf) / cap
    fast_ref = f"Folium page embedding {len(gdf):,} points with FastMarkerCluster"
    mc_ref = (f"Folium page with MarkerCluster, measured at {cap:,} points and scaled x{scale:.0f} "
              f"to {len(gdf):,}")
    for n in sizes:
        got = measured[n]
        big = n == biggest
        figures += [
            Figure("map", f"map page weight (HTML), {got['assets']:,} assets", round(got["page_mb"], 3), "MB",
                   reference=fast_ref, reference_value=round(fast_mb, 3),
                   target=f"< {TARGET_PAGE_MB} MB at 50,000" if big else None,
                   met=got["page_mb"] < TARGET_PAGE_MB if big else None,
                   notes=f"MarkerCluster reference: {mc_mb * scale:.1f} MB (scaled). First GeoJSON response "
                         f"{got['api_mb']:.3f} MB ({got['api_mode']}); static JS/CSS are cacheable and shared "
                         "with the references."),
            Figure("map", f"server time to build the map page, {got['assets']:,} assets", round(got["build_s"], 3),
                   "s", reference=mc_ref if big else fast_ref,
                   reference_value=round(mc_build * scale, 2) if big else round(fast_build, 3),
                   target=f"< {TARGET_BUILD_S} s at 50,000" if big else None,
                   met=got["build_s"] < TARGET_BUILD_S if big else None,
                   notes=f"median of 5 (test client) with the boundary and need layers cached (they change only "
                         f"when reference data is loaded); when they must be drawn again (cold): "
                         f"{got['cold_s']:.3f} s. FastMarkerCluster page built in {fast_build:.2f} s, "
                         f"MarkerCluster {mc_build:.2f} s at {cap:,}"),
            Figure("map", f"time until markers are drawn in headless Chromium, {got['assets']:,} assets",
                   round(got["drawn_s"], 3), "s", reference=fast_ref, reference_value=round(fast_drawn, 3),
                   target=f"< {TARGET_DRAWN_S} s at 50,000" if big else None,
                   met=got["drawn_s"] < TARGET_DRAWN_S if big else None,
                   notes=f"median of {RUNS} from navigation start, the assets' answer computed by the database "
                         f"each time; when the same view was asked for before (cached answer): "
                         f"{got['warm_drawn_s']:.2f} s. MarkerCluster reference at {cap:,} points: {mc_drawn:.2f} s"),
        ]
    return figures
