"""Exports and OGC API benchmarks at ``export_assets`` assets (100,000), each against a reference in the same run:

- GeoJSON download of every asset through our endpoint (gunicorn, streamed) vs ``ogr2ogr -f GeoJSON`` from the same
  table (target: at least its MB/s) and vs PostGIS writing one GeoJSON row per feature through COPY (the ceiling);
  time to first byte.
- ``/ogc/collections/organisations/items?bbox=<about 1.4 km>&limit=100`` under ``load_clients`` (20) concurrent
  clients for ``load_seconds`` with wrk on loopback (target: >= 800 requests/s, p95 < 40 ms, no errors), vs a minimal
  WSGI endpoint running the same SQL without Flask under the same gunicorn settings.

Run alone: ``python -m asset_map.tools.bench --only export``.
``ASSET_MAP_BENCH_WORKERS`` / ``ASSET_MAP_BENCH_THREADS`` change the gunicorn layout of both servers (default 4 x 1: one request per process at a time, no GIL contention).
"""

import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from asset_map.tools.bench.core import Figure

WORKERS = int(os.environ.get("ASSET_MAP_BENCH_WORKERS", 4))
THREADS = int(os.environ.get("ASSET_MAP_BENCH_THREADS", 1))
BBOX_KM = 1.4
_TIERS = "(ARRAY['association','organisation'])[1 + (i % 2)]"
_CATEGORIES = ("(ARRAY['community_run_library','sports_club','faith_group','youth_club','library','school',"
               "'gp_practice','park'])[1 + (i % 8)]")


def _seed(url, workdir, n_assets, areas):
    """A synthetic county (reference data through the real loaders) and ``n_assets`` public assets placed inside
    its districts by PostGIS (deterministic)."""
    from asset_map import synth
    from asset_map.reference.pack import load_pack
    from asset_map.store import partitions
    from asset_map.store.db import make_engine

    engine = make_engine(url)
    county = synth.generate(areas=areas, assets=200, seed=7, as_of=date(2025, 6, 1))
    load_pack(engine, county.write(Path(workdir) / "county"))
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(text("INSERT INTO registers (name) VALUES ('bench') ON CONFLICT DO NOTHING"))
        partitions.ensure(conn, "bench")
        conn.execute(text(
            f"INSERT INTO assets (register, source_row, match_key, tier, category, name, description, offers, "
            f"address, postcode, url, status, last_verified, visibility, geom) "
            f"SELECT 'bench', i, 'k' || i, {_TIERS}, {_CATEGORIES}, 'Asset number ' || i, "
            f"'A community asset used for benchmarks, with a description of ordinary length.', "
            f"ARRAY['time','buildings/space'], i || ' High Street, Synthshire', 'ZY1 ' || (i % 9) || 'AB', "
            f"'https://example.org/' || i, 'open', DATE '2024-01-01' + (i % 700)::int, 'public', p.geom "
            f"FROM (SELECT row_number() OVER () AS i, d.geom FROM (SELECT (ST_Dump(ST_GeneratePoints("
            f"ST_Union(geom), :n, 42))).geom FROM districts) d) p"), {"n": n_assets})
        conn.execute(text("UPDATE assets s SET district_code = a.district_code, lsoa21_code = a.code FROM areas a "
                          "WHERE ST_Intersects(a.geom, s.geom)"))
        conn.execute(text("ANALYZE"))
        extent = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                                   "FROM (SELECT ST_Extent(geom) AS e FROM assets) x")).one()
        count = conn.execute(text("SELECT count(*) FROM assets")).scalar()
    engine.dispose()
    return tuple(extent), count


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(app_spec, url, workdir, port):
    """gunicorn on loopback with our server settings (gthread), access log off so it does not weigh on the run."""
    env = dict(os.environ, ASSET_MAP_DATABASE_URL=url, ASSET_MAP_VAR_DIR=str(workdir),
               ASSET_MAP_POOL_SIZE=str(THREADS + 1), ASSET_MAP_BENCH_URL=url)
    cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(WORKERS), "--threads", str(THREADS),
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", app_spec]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    msg = f"gunicorn did not start: {proc.stderr.read().decode()[-2000:]}"
    raise RuntimeError(msg)


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _download(port, path):
    """(bytes, seconds, seconds to first byte) of one streamed download."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    first = None
    total = 0
    while True:
        chunk = resp.read1(1 << 20)
        if not chunk:
            break
        if first is None:
            first = time.perf_counter() - start
        total += len(chunk)
    elapsed = time.perf_counter() - start
    if resp.status != 200:
        msg = f"GET {path} answered {resp.status}"
        raise RuntimeError(msg)
    conn.close()
    return total, elapsed, first


def _ogr2ogr(url, out):
    """ogr2ogr from the same table, writing RFC 7946 GeoJSON with 7 decimals (what our export writes)."""
    m = re.match(r".*://(?P<user>[^@:]+)@(?P<host>[^:/]+):(?P<port>\d+)/(?P<db>\w+)", url)
    pg = f"PG:host={m['host']} port={m['port']} user={m['user']} dbname={m['db']}"
    sql = ("SELECT id, name, tier, category, description, offers, address, postcode, url, status, last_verified, "
           "district_code, lsoa11_code, lsoa21_code, register, updated_at, geom FROM assets ORDER BY id")
    start = time.perf_counter()
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(out), pg, "-sql", sql, "-lco", "RFC7946=YES",
                    "-lco", "COORDINATE_PRECISION=7", "-lco", "ID_FIELD=id"], check=True, capture_output=True)
    return out.stat().st_size, time.perf_counter() - start


def _copy(url):
    """PostGIS writing one GeoJSON row per feature through COPY: the practical ceiling."""
    import psycopg

    from asset_map.api import layers
    from asset_map.api.geojson import feature_sql
    from asset_map.api.rows import select_sql

    from psycopg.sql import Literal

    layer = layers.get(None, "assets")
    sql, params = select_sql(layer, None, fields=feature_sql(layer))
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    total = 0
    with psycopg.connect(dsn) as pconn:
        # COPY takes no parameters: inline them as quoted literals.
        sql = re.sub(r"(?<!:):(\w+)", lambda m: Literal(params[m[1]]).as_string(pconn) if m[1] in params
                     else m[0], sql)
    start = time.perf_counter()
    with psycopg.connect(dsn) as pconn, pconn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT") as copy:
        for block in copy:
            total += len(block)
    return total, time.perf_counter() - start


_WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"p50\\": %%f, \\"p95\\": %%f, \\"p99\\": %%f, \\"requests\\": %%d, " ..
    "\\"seconds\\": %%f, \\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, \\"status\\": %%d, \\"timeout\\": %%d}\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.duration / 1e6, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
"""


def bbox_paths(extent, n=200, seed=5, km=BBOX_KM, collection="organisations"):
    """Items requests over ``n`` boxes of about ``km`` x ``km`` inside the extent (degrees from km at its latitude)."""
    import math

    rng = random.Random(seed)
    minx, miny, maxx, maxy = extent
    lat = (miny + maxy) / 2
    dlat = km / 111.32
    dlon = km / (111.32 * math.cos(math.radians(lat)))
    out = []
    for _ in range(n):
        x = rng.uniform(minx, maxx - dlon)
        y = rng.uniform(miny, maxy - dlat)
        out.append(f"/ogc/collections/{collection}/items?bbox={x:.5f},{y:.5f},{x + dlon:.5f},{y + dlat:.5f}"
                   f"&limit=100")
    return out


def _wrk(port, paths, seconds, clients, workdir):
    script = Path(workdir) / "items.lua"
    script.write_text(_WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    done = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", str(script),
                           f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True)
    stats = json.loads(done.stdout.split("JSON ", 1)[1].splitlines()[0])
    stats["rps"] = stats["requests"] / stats["seconds"]
    stats["errors"] = sum(stats[k] for k in ("connect", "read", "write", "status", "timeout"))
    return stats


def minimal_app(environ, start_response):
    """The reference endpoint: the same items SQL run with psycopg straight from WSGI (no Flask, no parsing)."""
    import threading

    import psycopg
    from urllib.parse import parse_qs

    from asset_map.api import layers, ogc

    local = minimal_app.__dict__.setdefault("local", threading.local())
    if not hasattr(local, "conn"):
        local.conn = psycopg.connect(os.environ["ASSET_MAP_BENCH_URL"].replace("postgresql+psycopg://",
                                                                               "postgresql://"), autocommit=True)
        layer = layers.get(None, "organisations")
        src, params = layer.source(ogc.AssetFilter(bbox=(0, 0, 1, 1)), role="public")
        sql = (f"SELECT coalesce(string_agg(f, ','), '') FROM (SELECT {ogc.feature_sql(layer)} AS f {src} "
               f"ORDER BY g.id LIMIT 100) x")
        local.params = params
        local.sql = re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    bbox = [float(v) for v in qs["bbox"][0].split(",")]
    params = dict(local.params, f_minx=bbox[0], f_miny=bbox[1], f_maxx=bbox[2], f_maxy=bbox[3])
    features = local.conn.execute(local.sql, params).fetchone()[0]
    body = f'{{"type":"FeatureCollection","features":[{features}]}}'.encode()
    start_response("200 OK", [("Content-Type", "application/geo+json"), ("Content-Length", str(len(body)))])
    return [body]


def _median(items, key):
    ordered = sorted(items, key=key)
    return ordered[len(ordered) // 2]


ROUNDS = 3


def run(ctx):
    """Both servers stay up and the measurements are interleaved in rounds (medians reported), since the machine is
    shared and its load drifts during a run."""
    n = ctx.sizes["export_assets"]
    seconds = ctx.sizes["load_seconds"]
    clients = ctx.sizes["load_clients"][0]
    workdir = Path(ctx.workdir) / "exports"
    workdir.mkdir(parents=True, exist_ok=True)
    extent, count = _seed(ctx.database_url, workdir, n, ctx.sizes["areas"])
    paths = bbox_paths(extent)
    ours_port, ref_port = _free_port(), _free_port()
    ours_proc = _serve("asset_map.web:create_app()", ctx.database_url, workdir, ours_port)
    ref_proc = _serve("asset_map.tools.bench.exports:minimal_app", ctx.database_url, workdir, ref_port)
    try:
        for port in (ours_port, ref_port):  # every worker connected, statements prepared
            _wrk(port, paths, 2, clients, workdir)
        downloads, ogrs, copies, ours_load, ref_load = [], [], [], [], []
        for _ in range(ROUNDS):
            downloads.append(_download(ours_port, "/export/assets.geojson"))
            ogrs.append(_ogr2ogr(ctx.database_url, workdir / "ogr.geojson"))
            copies.append(_copy(ctx.database_url))
        for _ in range(ROUNDS):
            ours_load.append(_wrk(ours_port, paths, seconds, clients, workdir))
            ref_load.append(_wrk(ref_port, paths, seconds, clients, workdir))
    finally:
        _stop(ours_proc)
        _stop(ref_proc)
    size, ours, _ = _median(downloads, key=lambda d: d[1])
    first = _median(downloads, key=lambda d: d[2])[2]
    ogr_size, ogr = _median(ogrs, key=lambda d: d[1])
    copy_size, copy = _median(copies, key=lambda d: d[1])
    ours_mbs, ogr_mbs, copy_mbs = size / ours / 1e6, ogr_size / ogr / 1e6, copy_size / copy / 1e6
    rounds = f"median of {ROUNDS} interleaved rounds"
    figures = [
        Figure("export", f"GeoJSON download of {count:,} assets through /export (streamed)", round(ours_mbs, 1),
               "MB/s", reference=f"ogr2ogr -f GeoJSON -lco RFC7946=YES, same table ({ogr_size / 1e6:.1f} MB in "
               f"{ogr:.2f} s)", reference_value=round(ogr_mbs, 1), target=">= ogr2ogr's MB/s",
               met=ours_mbs >= ogr_mbs, notes=f"{size / 1e6:.1f} MB in {ours:.2f} s; {rounds}"),
        Figure("export", f"GeoJSON download of {count:,} assets as a share of COPY (one GeoJSON row per feature)",
               round(ours_mbs / copy_mbs, 2), "ratio", reference=f"COPY ... TO STDOUT ({copy_size / 1e6:.1f} MB in "
               f"{copy:.2f} s, {copy_mbs:.1f} MB/s)", reference_value=1.0, notes="the practical ceiling"),
        Figure("export", "GeoJSON download: time to first byte", round(first * 1000, 1), "ms",
               reference="whole download", reference_value=round(ours * 1000), target="streaming from the first byte",
               met=first < 0.1 * ours, notes=rounds),
    ]
    mine = _median(ours_load, key=lambda r: r["rps"])
    ref = _median(ref_load, key=lambda r: r["rps"])
    p95 = _median(ours_load, key=lambda r: r["p95"])["p95"]
    errors = sum(r["errors"] for r in ours_load)
    with create_engine(ctx.database_url, poolclass=NullPool).connect() as conn:
        per_box = conn.execute(text(
            "SELECT count(*) FROM assets WHERE tier = 'organisation' AND geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326)"),
            dict(zip("abcd", [float(v) for v in paths[0].split("bbox=")[1].split("&")[0].split(",")]))).scalar()
    note = (f"{clients} clients, {seconds} s per round, {rounds}, wrk on loopback, gunicorn {WORKERS} workers x "
            f"{THREADS} threads; {BBOX_KM} km boxes ({per_box} features in the first), limit=100")
    figures += [
        Figure("ogc", f"OGC items, bbox {BBOX_KM} km, limit 100, {count:,} assets", round(mine["rps"]), "req/s",
               reference="minimal WSGI endpoint, same SQL, no Flask", reference_value=round(ref["rps"]),
               target=">= 800 req/s", met=mine["rps"] >= 800, notes=note),
        Figure("ogc", "OGC items p95 latency", round(p95, 1), "ms", reference="minimal WSGI endpoint p95",
               reference_value=round(_median(ref_load, key=lambda r: r["p95"])["p95"], 1), target="< 40 ms",
               met=p95 < 40, notes=f"p50 {mine['p50']:.1f} ms, p99 {mine['p99']:.1f} ms"),
        Figure("ogc", "OGC items errors", errors, "requests", target="0", met=errors == 0,
               notes=f"{sum(r['requests'] for r in ours_load):,} requests in all rounds"),
    ]
    ctx.notes.append(f"exports: load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return figures
