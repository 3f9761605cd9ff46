"""What disclosure control costs the map API (issue 12): requests per second of the map's two data requests, the
individuals' protected counts (``/api/individuals.geojson``: fixed table, every area listed, suppression and
rounding) and the assets of a view (``/api/assets.geojson``), with the protection on against the same app with it
switched off (``DISCLOSURE_CONTROL=0``: suppression only, as before), in the same run, requests interleaved so the
machine's noise falls on both alike. Target: the protection costs under 10 % of the map API's throughput.

Measured in process with Flask's test client (the network is not measured), as the anonymous public.
"""

import statistics
import time

from asset_map.tools.bench.core import Figure
from asset_map.tools.bench.data import load_county

_ROUNDS = 7
_PER_ROUND = 15


def _rps(client, paths):
    """Requests per second for one pass over ``paths`` repeated _PER_ROUND times."""
    start = time.perf_counter()
    for _ in range(_PER_ROUND):
        for path in paths:
            res = client.get(path)
            assert res.status_code == 200, (path, res.status_code)
            res.get_data()
    return _PER_ROUND * len(paths) / (time.perf_counter() - start)


def _compare(on, off, paths):
    """Median requests/s of each app over interleaved rounds (after a warm-up)."""
    _rps(on, paths)
    _rps(off, paths)
    a, b = [], []
    for i in range(_ROUNDS):
        first, second = (on, off) if i % 2 == 0 else (off, on)
        x, y = _rps(first, paths), _rps(second, paths)
        (a, b)[first is off].append(x)
        (a, b)[second is off].append(y)
    return statistics.median(a), statistics.median(b)


def run(ctx):
    from sqlalchemy import text

    from asset_map.store.db import make_engine
    from asset_map.web import create_app

    engine = make_engine(ctx.database_url)
    _, written, _ = load_county(engine, ctx.workdir, areas=ctx.sizes.get("areas", 700),
                                assets_n=ctx.sizes.get("assets", 10_000))
    with engine.connect() as conn:
        district = conn.execute(text("SELECT code FROM districts ORDER BY code LIMIT 1")).scalar()
        people = conn.execute(text("SELECT count(*) FROM assets WHERE tier = 'individual' AND consent")).scalar()
        minx, miny, maxx, maxy = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM districts "
            "WHERE code = :d) s"), {"d": district}).one()
    engine.dispose()
    config = {"DATABASE_URL": ctx.database_url, "VAR_DIR": str(ctx.workdir), "SECRET_KEY": "bench", "TILES": "none",
              "TESTING": 1}
    on = create_app({**config, "DISCLOSURE_CONTROL": 1}).test_client()
    off = create_app({**config, "DISCLOSURE_CONTROL": 0}).test_client()
    bbox = f"{minx:.5f},{miny:.5f},{maxx:.5f},{maxy:.5f}"
    individuals = ["/api/individuals.geojson", f"/api/individuals.geojson?district={district}",
                   f"/api/individuals.geojson?geography=district&offer=skills"]
    view = [f"/api/assets.geojson?bbox={bbox}&zoom=12", f"/api/individuals.geojson?bbox={bbox}"]
    ind_on, ind_off = _compare(on, off, individuals)
    map_on, map_off = _compare(on, off, view)
    size = f"{ctx.sizes.get('areas', 700):,} areas, {written:,} assets ({people:,} consenting individuals)"
    return [
        Figure("privacy", f"individuals' counts API with disclosure control, {size}", round(ind_on, 1), "req/s",
               reference="the same requests with the protection off (suppression only)",
               reference_value=round(ind_off, 1), target=">= 0.9x reference (costs < 10 %)",
               met=ind_on >= 0.9 * ind_off,
               notes="whole county, one district, district x offer table; median of 7 interleaved rounds"),
        Figure("privacy", f"map API for one district's view (assets + individuals' counts), {size}", round(map_on, 1),
               "req/s", reference="the same requests with the protection off (suppression only)",
               reference_value=round(map_off, 1), target=">= 0.9x reference (costs < 10 %)",
               met=map_on >= 0.9 * map_off, notes="anonymous; median of 7 interleaved rounds"),
    ]
