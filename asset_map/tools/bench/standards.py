"""Standards (issue 15): the Open Referral UK feed, CQL2 filtering and the OGC items against pygeoapi, on a county
of 100,000 synthetic assets served by gunicorn as `asset-map serve` runs it, loaded by 20 clients on loopback.

- ``/oruk/services`` pages of 50 (pages 1-20 in turn): p95 latency, target < 60 ms; reference /healthz. Again with
  the feed's answer cache off (``FEED_CACHE_MB=0``), no target: what a first reader of each page costs.
- A CQL2 filter against the same selection by simple query parameters (category and district): cost ratio
  (simple req/s over filter req/s), target < 1.5.
- The same OGC items request (bbox, 100 features) against pygeoapi 0.21.0 serving the same table from the same
  database with the same workers and threads: throughput ratio, target >= 6. pygeoapi is installed into a virtual
  environment of its own under the benchmark's cache (``ASSET_MAP_VAR_DIR``/bench), never into the project's.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import make_url, text

from asset_map.config import load_settings
from asset_map.store.db import make_engine
from asset_map.tools.bench import loadgen
from asset_map.tools.bench.core import Figure
from asset_map.tools.bench.data import load_county, settle
from asset_map.tools.bench.serve import Server, free_port, get

AREA = "standards"
ASSETS = 100_000
CLIENTS = 20
PYGEOAPI = "pygeoapi==0.21.0"
PYGEOAPI_EXTRAS = ["psycopg2-binary", "geoalchemy2", "gunicorn"]
COLUMNS = ["name", "tier", "category", "description", "offers", "address", "postcode", "url", "status",
           "last_verified", "district_code", "lsoa11_code", "lsoa21_code", "register", "updated_at"]


def _pygeoapi_env(cache):
    """A virtual environment with pygeoapi (made once, kept in the benchmark cache); its bin directory."""
    venv = Path(cache) / "pygeoapi-0.21.0"
    bin_dir = venv / "bin"
    if not (bin_dir / "pygeoapi").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "--quiet", "--disable-pip-version-check", PYGEOAPI,
                        *PYGEOAPI_EXTRAS], check=True, timeout=900)
    return bin_dir


def _pygeoapi_config(path, port, database_url, workdir):
    url = make_url(database_url)
    props = "\n".join(f"          - {c}" for c in COLUMNS)
    path.write_text(f"""server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 100, max_items: 10000}}
  map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png", attribution: OSM}}
logging:
  level: ERROR
metadata:
  identification: {{title: bench, description: bench, keywords: [bench], keywords_type: theme,
                   terms_of_service: "https://example.org", url: "https://example.org"}}
  license: {{name: CC-BY 4.0, url: "https://creativecommons.org/licenses/by/4.0/"}}
  provider: {{name: bench, url: "https://example.org"}}
  contact: {{name: bench, position: bench, address: x, city: x, stateorprovince: x, postalcode: x, country: x,
            phone: x, fax: x, email: bench@example.org, url: "https://example.org", hours: x, instructions: x,
            role: pointOfContact}}
resources:
  assets:
    type: collection
    title: assets
    description: the asset-map assets table
    keywords: [assets]
    extents:
      spatial: {{bbox: [-180, -90, 180, 90], crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}
    providers:
      - type: feature
        name: PostgreSQL
        data: {{host: {url.host}, port: {url.port}, dbname: {url.database}, user: {url.username},
               password: "{url.password or ''}", search_path: [public]}}
        id_field: id
        table: assets
        geom_field: geom
        properties:
{props}
""")


class _Pygeoapi:
    """pygeoapi under gunicorn with the same workers and threads as asset-map's server."""

    def __init__(self, bin_dir, database_url, workdir, settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config, oas = workdir / "pygeoapi.yml", workdir / "pygeoapi-openapi.yml"
        _pygeoapi_config(config, self.port, database_url, workdir)
        env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(oas)}
        subprocess.run([str(bin_dir / "pygeoapi"), "openapi", "generate", str(config), "--output-file", str(oas)],
                       env=env, check=True, capture_output=True, timeout=300)
        self.log = open(workdir / "pygeoapi.log", "w")
        self.proc = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", str(settings["WORKERS"]),
             "--threads", str(settings["THREADS"]), "--worker-class", "gthread", "pygeoapi.flask_app:APP"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log)

    def __enter__(self):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pygeoapi exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if get(self.url + "/collections/assets?f=json", timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"pygeoapi did not start; see {self.log.name}")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _selection(engine):
    """A common category and a district with many of them, and the bbox of that district (EPSG:4326)."""
    with engine.connect() as conn:
        category, district = conn.execute(text(
            "SELECT category, district_code FROM assets WHERE tier <> 'individual' AND visibility = 'public' "
            "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1")).one()
        bbox = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                                 "ST_Extent(geom) AS e FROM districts WHERE code = :d) s"), {"d": district}).one()
    return category, district, ",".join(f"{v:.5f}" for v in bbox)


def _run(url, paths, seconds):
    for path in paths[:3]:  # warm: plans prepared, pools filled, and a wrong path is caught before the run
        status, body, _ = get(url + path, timeout=120, headers=loadgen.HEADERS)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
    return loadgen.run(url, paths, clients=CLIENTS, seconds=seconds, timeout_s=30)


def _extra(res):
    return f"p50 {res.p50_ms:.1f} ms, p95 {res.p95_ms:.1f} ms, p99 {res.p99_ms:.1f} ms; {res.summary()}"


def run(ctx):
    settings = load_settings()
    seconds = int(ctx.sizes["load_seconds"])
    engine = make_engine(ctx.database_url, settings)
    _, written, took = load_county(engine, ctx.workdir, areas=ctx.sizes["areas"], assets_n=ASSETS)
    settle(engine)
    category, district, bbox = _selection(engine)
    with engine.connect() as conn:
        services = conn.execute(text("SELECT sum(GREATEST(cardinality(offers), 1)) FROM assets WHERE tier <> "
                                     "'individual' AND visibility = 'public' AND status IN ('open', "
                                     "'temporarily closed')")).scalar()
    engine.dispose()
    ctx.notes.append(f"standards: {written:,} synthetic assets ({services:,} ORUK services) loaded in {took:.1f} s; "
                     f"{CLIENTS} clients, {seconds} s per run; gunicorn {settings['WORKERS']} workers x "
                     f"{settings['THREADS']} threads for asset-map and for pygeoapi.")
    figures = []
    oruk = [f"/oruk/services?page={p}&per_page=50" for p in range(1, 21)]
    simple = f"/ogc/collections/assets/items?category={category}&district_code={district}&limit=100"
    cql = ("/ogc/collections/assets/items?limit=100&filter-lang=cql2-text&filter="
           + quote(f"category = '{category}' AND district_code = '{district}'"))
    items = f"/ogc/collections/assets/items?bbox={bbox}&limit=100"
    with Server(ctx.database_url, ctx.workdir / "server") as srv:
        health = _run(srv.url, ["/healthz"], max(1, seconds // 2))
        # Steady state: a partner's crawler reads the same pages over and over, so every worker has them.
        _run(srv.url, oruk, max(1, seconds // 3))
        res = _run(srv.url, oruk, seconds)
        figures.append(Figure(AREA, f"/oruk/services pages of 50 (pages 1-20), {CLIENTS} clients, {ASSETS:,} assets: "
                              "p95 latency", round(res.p95_ms, 1), "ms", f"/healthz p95 at {CLIENTS} clients",
                              round(health.p95_ms, 1), "< 60 ms", res.p95_ms < 60,
                              f"{_extra(res)}; /healthz: {health.summary()}"))
    # The same pages with the feed's answer cache off: what a first reader of each page costs.
    with Server(ctx.database_url, ctx.workdir / "server-cold", FEED_CACHE_MB=0) as srv:
        cold = _run(srv.url, oruk, seconds)
        cold_health = _run(srv.url, ["/healthz"], max(1, seconds // 2))
        figures.append(Figure(AREA, f"/oruk/services pages of 50 (pages 1-20), answer cache off, {CLIENTS} clients, "
                              f"{ASSETS:,} assets: p95 latency", round(cold.p95_ms, 1), "ms",
                              f"/healthz p95 at {CLIENTS} clients", round(cold_health.p95_ms, 1), None, None,
                              f"{_extra(cold)}; /healthz: {cold_health.summary()}"))
    with Server(ctx.database_url, ctx.workdir / "server") as srv:
        base = _run(srv.url, [simple], seconds)
        filtered = _run(srv.url, [cql], seconds)
        cost = base.rps / filtered.rps if filtered.rps else float("inf")
        figures.append(Figure(AREA, f"OGC items by a CQL2 filter (category and district), {CLIENTS} clients: cost "
                              "ratio (simple req/s / filter req/s)", round(cost, 2), "x",
                              "the same selection by query parameters, req/s", round(base.rps, 1), "< 1.5x",
                              cost < 1.5, f"filter: {_extra(filtered)}; simple: {_extra(base)}"))
        ours = _run(srv.url, [items], seconds)
    try:
        bin_dir = _pygeoapi_env(Path(settings["VAR_DIR"]) / "bench")
        with _Pygeoapi(bin_dir, ctx.database_url, ctx.workdir / "pygeoapi", settings) as pg:
            theirs = _run(pg.url, [items.replace("/ogc", "") + "&f=json"], seconds)
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        ctx.notes.append(f"standards: pygeoapi could not be run ({err}); the comparison is skipped.")
        return figures
    ratio = ours.rps / theirs.rps if theirs.rps else float("inf")
    figures.append(Figure(AREA, f"OGC items, bbox of a district, 100 features, {CLIENTS} clients: throughput ratio "
                          "asset-map / pygeoapi 0.21.0 (same table, same database)", round(ratio, 1), "x",
                          "pygeoapi 0.21.0 req/s", round(theirs.rps, 1), ">= 6x", ratio >= 6,
                          f"asset-map: {_extra(ours)}; pygeoapi: {_extra(theirs)}"))
    return figures
