"""Community pages under load: the suggestion form (/suggest) and the moderation queue (/moderation, its district
pages, and one suggestion with its nearest assets and likely duplicates) at 20 clients, with 100,000 assets and
10,000 suggestions waiting, served by gunicorn as `asset-map serve` runs it.

Reference, measured in the same run against the same server: /healthz (one database round trip). The target is
the issue's, for the form and the queue: p95 under 100 ms at 20 clients; one suggestion's page is reported beside
them without a target. Moderators are identified by an organiser's API token (a GET with a
bearer token goes through the same role check as a signed-in session).
"""

import time
from urllib.request import urlopen

from sqlalchemy import text

from asset_map import users
from asset_map.config import load_settings
from asset_map.store.db import make_engine
from asset_map.tools.bench import loadgen
from asset_map.tools.bench.core import Figure
from asset_map.tools.bench.data import load_county, settle
from asset_map.tools.bench.serve import Server

AREA = "community"
ASSETS = 100_000
WAITING = 10_000
CLIENTS = 20
TARGET_P95_MS = 100.0


def seed_suggestions(engine, n):
    """``n`` waiting suggestions next to existing associations and organisations (new ones, and every fifth a
    change to the asset it sits by), spread over the districts and the last weeks."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO suggestions (kind, asset_id, status, district_code, tier, category, name, description, "
            "postcode, suggester_name, geom, created_at) "
            "SELECT CASE WHEN rn % 5 = 0 THEN 'change' ELSE 'new' END, CASE WHEN rn % 5 = 0 THEN id END, 'waiting', "
            "district_code, tier, category, 'Suggested ' || name, 'A benchmark suggestion', postcode, 'Bench', "
            "ST_Translate(geom, 0.0004, 0.0003), now() - make_interval(secs => rn * 60) "
            "FROM (SELECT a.*, row_number() OVER (ORDER BY a.id) AS rn FROM assets a "
            "WHERE a.tier <> 'individual' AND a.geom IS NOT NULL AND a.district_code IS NOT NULL) x WHERE rn <= :n"),
            {"n": int(n)})
        conn.execute(text("ANALYZE suggestions"))
        return conn.execute(text("SELECT count(*) FROM suggestions WHERE status = 'waiting'")).scalar_one()


def _settle(url, timeout_s=120):
    """Wait until the server answers /healthz promptly again: requests left over from the run before (a load run
    stops waiting at its end, the server does not) would otherwise be counted against the next one. On a busy
    machine the warm-up's slow pages kept every worker busy into the reference run, which then counted 0 requests."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        started = time.monotonic()
        with urlopen(url + "/healthz", timeout=timeout_s) as res:
            res.read()
        if time.monotonic() - started < 0.5:
            return


def _figure(name, result, reference, *, targeted=True):
    """``targeted``: the issue's target applies (the form and the queue); a suggestion's own page is reported
    against the same reference without one."""
    met = result.p95_ms < TARGET_P95_MS and result.errors == 0
    return Figure(AREA, f"{name}, {CLIENTS} clients, {ASSETS:,} assets, {WAITING:,} waiting", result.p95_ms,
                  "ms p95", reference="/healthz p95, same server and run", reference_value=reference.p95_ms,
                  target=f"p95 < {TARGET_P95_MS:.0f} ms" if targeted else None, met=met if targeted else None,
                  notes=f"{result.summary()}; {result.p95_ms / max(reference.p95_ms, 0.01):.1f}x the reference p95")


def run(ctx):
    engine = make_engine(ctx.database_url, load_settings())
    _county, written, seconds = load_county(engine, ctx.workdir, areas=ctx.sizes.get("areas", 700),
                                            assets_n=ASSETS, seed=14)
    ctx.notes.append(f"community: {written:,} assets loaded in {seconds:.0f} s")
    waiting = seed_suggestions(engine, WAITING)
    settle(engine)
    with engine.connect() as conn:
        districts = [r[0] for r in conn.execute(text(
            "SELECT district_code FROM suggestions WHERE status = 'waiting' GROUP BY 1 ORDER BY count(*) DESC"))]
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM suggestions WHERE status = 'waiting' ORDER BY id LIMIT 200"))]
    users.add_user(engine, "bench-organiser@example.org", "benchmark password 1", "organiser", actor="bench")
    token, _ = users.create_token(engine, "bench-organiser@example.org", scope="read", actor="bench")
    engine.dispose()
    moderator = {"Authorization": f"Bearer {token}"}
    seconds = ctx.sizes.get("load_seconds", 10)
    queue_paths = ["/moderation"] + [f"/moderation?district={d}" for d in districts] + \
        [f"/moderation?district={districts[0]}&page={p}" for p in (2, 10, 40)]
    detail_paths = [f"/moderation/{i}" for i in ids]
    figures = []
    with Server(ctx.database_url, ctx.workdir / "community-server") as server:
        # Warm every worker: its pool, and the modules a page loads on first use (a second or more of CPU each,
        # which a short warm-up left to the measured runs, and their tails).
        for paths in (["/healthz"], ["/suggest"], queue_paths, detail_paths):
            loadgen.run(server.url, paths, clients=CLIENTS, seconds=3, headers=moderator)
        _settle(server.url)
        reference = loadgen.run(server.url, ["/healthz"], clients=CLIENTS, seconds=seconds)
        _settle(server.url)
        form = loadgen.run(server.url, ["/suggest"], clients=CLIENTS, seconds=seconds)
        _settle(server.url)
        queue = loadgen.run(server.url, queue_paths, clients=CLIENTS, seconds=seconds, headers=moderator)
        _settle(server.url)
        detail = loadgen.run(server.url, detail_paths, clients=CLIENTS, seconds=seconds, headers=moderator)
    figures.append(_figure("suggestion form (GET /suggest)", form, reference))
    figures.append(_figure("moderation queue (/moderation, by district, paged)", queue, reference))
    # 200 different suggestions at 20 clients: each is drawn afresh (its nearest assets and likely duplicates are
    # asked of the store every time), which is what a moderator opening one costs.
    figures.append(_figure("one suggestion with nearest assets and duplicates (/moderation/<id>)", detail, reference,
                           targeted=False))
    ctx.notes.append(f"community: {waiting:,} suggestions waiting in {len(districts)} districts; "
                     f"reference /healthz {reference.summary()}")
    return figures
