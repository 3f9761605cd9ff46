"""The load benchmark end to end at a tiny size: gunicorn, wrk (or the Python generator), figures, soak."""

import pytest

from asset_map.tools.bench import load
from asset_map.tools.bench.core import SCALES, BenchContext


@pytest.mark.slow
def test_load_module_measures_what_exists_and_notes_what_does_not(db_url, tmp_path):
    sizes = {**SCALES["small"], "areas": 30, "assets": 300, "load_seconds": 1, "load_clients": [4],
             "soak_seconds": 4}
    ctx = BenchContext(scale="small", sizes=sizes, database_url=db_url, workdir=tmp_path)
    endpoints = [load.Endpoint("map page", ["/"]), load.Endpoint("not built yet", ["/nowhere"], "#99"),
                 load.Endpoint("bbox health", ["/healthz?bbox={bbox}"], targets={4: (0.001, 100_000)})]
    figures = {f.name: f for f in load.run(ctx, endpoints=endpoints)}

    # On a busy machine a map page can take longer than the 1 s run: only the cheap endpoints must have answered.
    page = figures["map page `/`, 4 clients: throughput"]
    assert page.reference == "health check at 4 clients" and page.reference_value > page.value
    assert figures["map page `/`, 4 clients: errors"].value == 0
    assert figures["health check `/healthz`, 4 clients: throughput"].reference == "static file at 4 clients"
    bbox = next(f for name, f in figures.items() if name.startswith("bbox health `/healthz?bbox=-")
                and name.endswith("throughput"))
    assert bbox.value > 0 and bbox.target == ">= 0.001 req/s" and bbox.met is True
    assert figures["server memory (RSS, master + workers) after the 4-client runs"].value > 50
    soak = next(f for name, f in figures.items() if name.startswith("soak: server memory growth"))
    assert soak.reference_value > 50 and soak.met is not None
    assert figures["soak: errors"].value == 0
    assert any("not built yet: no answer at /nowhere in this build (comes with #99)" in n for n in ctx.notes)
    assert any("300 synthetic assets" in n or "synthetic assets in 30 areas" in n for n in ctx.notes)


def test_ogc_items_are_found_through_the_collections_document(live_server):
    from flask import Flask

    app = Flask(__name__)

    @app.get("/ogc/collections")
    def collections():
        def coll(cid):
            return {"id": cid, "links": [
                {"rel": "items", "type": "text/html", "href": f"http://x/ogc/collections/{cid}/items?f=html"},
                {"rel": "items", "type": "application/geo+json",
                 "href": f"http://x/ogc/collections/{cid}/items?f=json&limit=10"}]}
        return {"collections": [coll("districts"), coll("organisations")]}

    base = live_server(app)
    assert load.ogc_items_path(base, "-2,52,-1,53") == \
        "/ogc/collections/organisations/items?f=json&bbox=-2,52,-1,53&limit=100"
    assert load.ogc_items_path(base, "-2,52,-1,53", roots=("/nowhere",)) is None
