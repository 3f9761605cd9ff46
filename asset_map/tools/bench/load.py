"""Load: the app under gunicorn (as `asset-map serve` runs it) with a county of assets, loaded by 20 and 100
concurrent clients on loopback; requests/s, p50/p95/p99 latency, errors and server memory, then a soak that watches
memory over time.

References, measured in the same run against the same server: a static file (the floor of the stack: no database,
no template) and /healthz (one database round trip). Endpoints that are not in this build (the asset table, the
OGC items and the exports come with their own issues) are probed and skipped with a note, so this module measures
them as soon as they exist. ``run(ctx, endpoints=...)`` takes another list.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
from sqlalchemy import text

from asset_map.tools.bench import loadgen
from asset_map.tools.bench.core import Figure
from asset_map.tools.bench.data import load_county
from asset_map.tools.bench.serve import Server, get
from asset_map.config import load_settings
from asset_map.store.db import make_engine

AREA = "load"
SOAK_SECONDS = {"small": 15, "county": 300, "england": 300}
SOAK_WARMUP = 0.25      # the first quarter of the soak fills caches and pools; growth is measured after it
SOAK_CLIENTS = 20
MAX_GROWTH = 0.05       # "no memory growth": less than 5 % between the end of the warm-up and the end


@dataclass
class Endpoint:
    name: str
    candidates: list            # paths tried in order; "{bbox}" is filled in
    issue: str | None = None    # where it comes from, for the note when it is missing
    targets: dict = field(default_factory=dict)  # {clients: (min req/s, max p95 ms)}
    discover: object = None     # discover(base_url, bbox) -> path or None, tried after the candidates
    bbox_km: float | None = None  # a square bbox of this side at the view's centre instead of the whole view


def ogc_items_path(base_url, bbox, *, roots=("/ogc", "", "/api/ogc"), prefer=("assets", "organisations")):
    """The items path of a point collection, found the way an OGC API Features client finds it: the collections
    document and its links with rel="items"."""
    for root in roots:
        try:
            status, body, _ = get(f"{base_url}{root}/collections?f=json", timeout=30,
                                  headers={"Accept": "application/json"})
            collections = json.loads(body)["collections"] if status == 200 else []
        except (OSError, ValueError, KeyError, TypeError):
            continue
        ranked = sorted(collections, key=lambda c: (c.get("id") not in prefer, prefer.index(c["id"])
                                                    if c.get("id") in prefer else 0))
        for coll in ranked:
            href = next((ln["href"] for ln in coll.get("links", []) if ln.get("rel") == "items"
                         and "html" not in ln.get("type", "")), None)
            if href:
                parts = urlsplit(href)
                query = "&".join(q for q in parts.query.split("&") if q and not q.startswith(("bbox=", "limit=")))
                return f"{parts.path}?{query + '&' if query else ''}bbox={bbox}&limit=100"
    return None


STATIC = Endpoint("static file", ["/static/css/site.css"])
HEALTH = Endpoint("health check", ["/healthz"])
ENDPOINTS = [
    Endpoint("map page", ["/"]),
    Endpoint("asset table", ["/assets"], "#4"),
    Endpoint("map assets GeoJSON with bbox", ["/api/assets.geojson?bbox={bbox}"], "#4"),
    Endpoint("OGC items with bbox", [
        "/ogc/collections/assets/items?bbox={bbox}&limit=100",
        "/ogc/collections/organisations/items?bbox={bbox}&limit=100",
    ], "#5", targets={20: (800, 40)}, discover=ogc_items_path, bbox_km=1.4),
    Endpoint("export (GeoJSON)", [
        "/export/organisations.geojson", "/export/assets.geojson", "/exports/assets.geojson",
        "/export?format=geojson", "/api/export?format=geojson",
    ], "#5"),
]


def _bbox(engine):
    """A map view's worth of the county: the extent of its first district (EPSG:4326, lon/lat order)."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM districts "
            "WHERE code = (SELECT min(code) FROM districts)) s")).one()
    return ",".join(f"{v:.5f}" for v in row)


def square_bbox(bbox, km):
    """A ``km`` x ``km`` square (measured in EPSG:27700) at the centre of ``bbox`` (EPSG:4326), as the issue's
    OGC target is defined for a bbox of about 1.4 km."""
    from pyproj import Transformer

    minx, miny, maxx, maxy = (float(v) for v in bbox.split(","))
    to_bng = Transformer.from_crs(4326, 27700, always_xy=True)
    to_wgs = Transformer.from_crs(27700, 4326, always_xy=True)
    x, y = to_bng.transform((minx + maxx) / 2, (miny + maxy) / 2)
    half = km * 500
    (x0, x1), (y0, y1) = to_wgs.transform([x - half, x + half], [y - half, y + half])
    return f"{x0:.5f},{y0:.5f},{x1:.5f},{y1:.5f}"


def probe(base_url, endpoint, bbox):
    """The first candidate path answering 200, or None."""
    if endpoint.bbox_km:
        bbox = square_bbox(bbox, endpoint.bbox_km)
    paths = [p.replace("{bbox}", bbox) for p in endpoint.candidates]
    for path in paths:
        if get(base_url + path, timeout=120, headers=loadgen.HEADERS)[0] == 200:
            return path
    path = endpoint.discover(base_url, bbox) if endpoint.discover else None
    if path and get(base_url + path, timeout=120, headers=loadgen.HEADERS)[0] == 200:
        return path
    return None


def _figures(label, path, res, ref, clients, targets):
    rps_target, p95_target = targets.get(clients, (None, None))
    ref_name = f"{ref[0]} at {clients} clients" if ref else None
    head = f"{label} `{path}`, {clients} clients"
    extra = f"p50 {res.p50_ms:.1f} ms, p99 {res.p99_ms:.1f} ms, max {res.max_ms:.0f} ms; {res.requests:,} requests"
    return [
        Figure(AREA, f"{head}: throughput", round(res.rps, 1), "req/s", ref_name,
               round(ref[1].rps, 1) if ref else None, f">= {rps_target} req/s" if rps_target else None,
               res.rps >= rps_target if rps_target else None, extra),
        Figure(AREA, f"{head}: p95 latency", round(res.p95_ms, 1), "ms", ref_name,
               round(ref[1].p95_ms, 1) if ref else None, f"< {p95_target} ms" if p95_target else None,
               res.p95_ms < p95_target if p95_target else None, extra),
        Figure(AREA, f"{head}: errors", res.errors, "errors", "requests sent", res.requests, "0", res.errors == 0,
               f"{res.tool}, {res.seconds:.0f} s"),
    ]


def _soak(ctx, paths, seconds):
    """Load a mix of the endpoints with workers never recycled, sampling the server's memory every second."""
    with Server(ctx.database_url, ctx.workdir / "soak", MAX_REQUESTS=0, WORKER_MAX_MB=0) as srv:
        samples, stop = [], threading.Event()

        def sample():
            started = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - started, srv.rss_mb()))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        res = loadgen.run(srv.url, paths, clients=SOAK_CLIENTS, seconds=seconds, timeout_s=30)
        stop.set()
        sampler.join()
    t = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    after = t >= seconds * SOAK_WARMUP
    warm, end = float(rss[after][0]), float(np.median(rss[-3:]))
    slope = float(np.polyfit(t[after], rss[after], 1)[0] * 60) if after.sum() > 2 else float("nan")
    growth = (end - warm) / warm
    name = f"soak: server memory growth over {seconds} s of mixed load ({len(paths)} endpoints, {SOAK_CLIENTS} clients)"
    notes = (f"RSS {warm:.0f} MB after the {seconds * SOAK_WARMUP:.0f} s warm-up, {end:.0f} MB at the end, trend "
             f"{slope:+.1f} MB/min; workers not recycled (MAX_REQUESTS=0, WORKER_MAX_MB=0); {res.summary()}")
    return [
        Figure(AREA, name, round(end - warm, 1), "MB", "server RSS after the warm-up", round(warm, 1),
               f"< {MAX_GROWTH * 100:.0f} % of the reference (ratio < {MAX_GROWTH})", growth < MAX_GROWTH, notes),
        Figure(AREA, "soak: errors", res.errors, "errors", "requests sent", res.requests, "0", res.errors == 0,
               res.tool),
    ]


def run(ctx, endpoints=None):
    endpoints = ENDPOINTS if endpoints is None else endpoints
    sizes, settings = ctx.sizes, load_settings()
    seconds = int(sizes["load_seconds"])
    ref_seconds = max(1, seconds // 3)  # references are quick, steady endpoints: a third of the time will do
    engine = make_engine(ctx.database_url, settings)
    _, written, took = load_county(engine, ctx.workdir, areas=sizes["areas"], assets_n=sizes["assets"])
    bbox = _bbox(engine)
    engine.dispose()
    ctx.notes.append(f"{written:,} synthetic assets in {sizes['areas']:,} areas loaded in {took:.1f} s; server: "
                     f"gunicorn gthread, {settings['WORKERS']} workers x {settings['THREADS']} threads, pool "
                     f"{settings['POOL_SIZE']}+{settings['POOL_SIZE']} per worker; load tool: "
                     f"{'wrk' if loadgen.wrk_path() else 'Python threads (wrk not installed)'}, loopback, requests "
                     f"with Accept-Encoding: gzip.")
    figures = []
    with Server(ctx.database_url, ctx.workdir / "server") as srv:
        idle = srv.rss_mb()
        found = []
        for ep in endpoints:
            path = probe(srv.url, ep, bbox)
            if path:
                found.append((ep, path))
            else:
                ctx.notes.append(f"{ep.name}: no answer at {', '.join(ep.candidates)} in this build"
                                 + (f" (comes with {ep.issue}); skipped." if ep.issue else "; skipped."))
        for clients in sizes["load_clients"]:
            static = loadgen.run(srv.url, STATIC.candidates, clients=clients, seconds=ref_seconds)
            health = loadgen.run(srv.url, HEALTH.candidates, clients=clients, seconds=ref_seconds)
            figures += _figures(STATIC.name, STATIC.candidates[0], static, None, clients, {})
            figures += _figures(HEALTH.name, HEALTH.candidates[0], health, (STATIC.name, static), clients, {})
            for ep, path in found:
                res = loadgen.run(srv.url, [path], clients=clients, seconds=seconds, timeout_s=30)
                figures += _figures(ep.name, path, res, (HEALTH.name, health), clients, ep.targets)
            figures.append(Figure(AREA, f"server memory (RSS, master + workers) after the {clients}-client runs",
                                  round(srv.rss_mb(), 1), "MB", "idle server after start", round(idle, 1)))
    soak_paths = [p for _, p in found] or HEALTH.candidates
    figures += _soak(ctx, soak_paths, int(sizes.get("soak_seconds") or SOAK_SECONDS.get(ctx.scale, seconds * 2)))
    return figures
