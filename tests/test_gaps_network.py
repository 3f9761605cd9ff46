"""Gap reports by walking distance on the real pack's Tamworth libraries, over a synthetic street grid laid on
Tamworth (no real OpenStreetMap extract is available offline) with a river crossed by a bridge every 3 km."""

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pyproj import Transformer

from asset_map import gaps
from asset_map.cli import cli
from asset_map.config import load_settings
from asset_map.errors import InputError
from asset_map.store import network
from asset_map.store.db import make_engine

from tests.network_data import TAMWORTH


@pytest.fixture(scope="module")
def walk_report(walk_db):
    eng = make_engine(walk_db[0], load_settings())
    req = gaps.GapRequest.from_args({"district": [TAMWORTH], "category": ["library"], "distance": "walk",
                                     "catchment": "15min"})
    yield eng, gaps.run(eng, req)
    eng.dispose()


def test_walk_report_measures_along_the_streets(walk_report):
    eng, result = walk_report
    f = result.frame
    p = result.request.params
    assert p.distance == "walk" and p.catchment_m == pytest.approx(1_200)  # 15 min at 4.8 km/h
    assert result.inputs["parameters"]["catchment_minutes"] == 15
    assert result.inputs["network"]["source"].startswith("synthetic street grid")
    ok = f["network_status"] == "ok"
    assert ok.sum() >= 0.9 * len(f)
    # A walk is never shorter than the straight line, and the river makes some much longer.
    assert (f.loc[ok, "network_ratio"] >= 1 - 1e-9).all()
    assert f.loc[ok, "network_ratio"].max() > 1.5
    assert (f.loc[ok, "origin_snap_m"] < 100).all()
    # Libraries elsewhere in Staffordshire are far from this grid: left out on the network, and counted.
    assert result.inputs["network"]["assets_off_network"] > 30
    assert result.inputs["network"]["assets_snapped"] >= 2


def test_nearest_library_by_walking_matches_networkx(walk_report):
    """An independent calculation: networkx's Dijkstra on the stored graph, origin and library snapped by hand."""
    eng, result = walk_report
    net, _ = network.read(eng, "walk")
    g = nx.Graph()
    g.add_weighted_edges_from(zip(net.u.tolist(), net.v.tolist(), net.length.tolist()))
    libs = result.assets
    to_m = Transformer.from_crs(4326, 27700, always_xy=True)
    lx, ly = to_m.transform(libs["lon"].to_numpy(), libs["lat"].to_numpy())
    node_xy = net.xy()

    def snap(x, y):
        d = np.hypot(node_xy[:, 0] - x, node_xy[:, 1] - y)
        return int(d.argmin()), float(d.min())

    lib_nodes = [snap(x, y) for x, y in zip(lx, ly)]
    f = result.frame[result.frame["network_status"] == "ok"].head(12)
    for _, row in f.iterrows():
        o, o_snap = snap(row["origin_x"], row["origin_y"])
        dist = nx.single_source_dijkstra_path_length(g, o)
        best = min(dist[n] + s for n, s in lib_nodes if s <= 500 and n in dist) + o_snap
        assert row["nearest_library_m"] == pytest.approx(best, abs=0.5)


def test_cli_walk_report_says_which_distance(walk_db, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", walk_db[0])
    out = tmp_path / "r.html"
    got = CliRunner().invoke(cli, ["gap-report", "--district", TAMWORTH, "--category", "library", "--distance",
                                   "walk", "--catchment", "15min", "-o", str(out), "--csv", str(tmp_path / "r.csv"),
                                   "--geojson", str(tmp_path / "r.geojson")])
    assert got.exit_code == 0, got.output
    html = out.read_text()
    assert "walking distance along the street network" in html and "Network / straight line" in html
    csv = pd.read_csv(tmp_path / "r.csv")
    assert {"network_ratio", "straight_mean_m", "origin_snap_m", "assets_within", "network_status"} <= set(csv)
    doc = json.loads((tmp_path / "r.geojson").read_text())
    assert doc["asset_map"]["parameters"]["distance"] == "walk"
    assert doc["asset_map"]["network"]["mode"] == "walk"


def test_unreachable_and_bad_catchments_are_clear(walk_db):
    eng = make_engine(walk_db[0], load_settings())
    try:
        for catchment in ("0", "1000000", "0min"):
            with pytest.raises(InputError, match="Catchment must be between"):
                gaps.GapRequest.from_args({"district": [TAMWORTH], "category": ["library"], "distance": "walk",
                                           "catchment": catchment})
        with pytest.raises(InputError, match="No drive network is loaded"):
            gaps.run(eng, gaps.GapRequest.from_args({"district": [TAMWORTH], "category": ["library"],
                                                     "distance": "drive"}))
        # Lichfield has no network here: its areas are off the network, never given a straight-line value.
        req = gaps.GapRequest.from_args({"district": ["E07000194"], "category": ["library"], "distance": "walk"})
        f = gaps.run(eng, req).frame
        assert (f["network_status"] == "off network").mean() > 0.8
        off = f["network_status"] == "off network"
        assert f.loc[off, "nearest_library_m"].isna().all() and f.loc[off, "network_ratio"].isna().all()
    finally:
        eng.dispose()


@pytest.mark.slow
def test_dask_local_cluster_report_is_byte_identical(walk_db):
    from distributed import LocalCluster

    from asset_map import compute

    eng = make_engine(walk_db[0], load_settings())
    req = gaps.GapRequest.from_args({"district": [TAMWORTH, "E07000194"], "category": ["library"],
                                     "distance": "walk", "catchment": "15min"})
    local = gaps.run(eng, req)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
                      dashboard_address=None) as cluster:
        settings = {**load_settings(), "DASK_SCHEDULER": cluster.scheduler_address}
        try:
            remote = gaps.run(eng, req, settings=settings)
        finally:
            compute.close_clients()
    assert gaps.csv_text(remote) == gaps.csv_text(local)
    assert gaps.geojson_text(remote) == gaps.geojson_text(local)
    assert local.inputs["network"]["partitions"] == 2
    eng.dispose()


def test_web_form_offers_walking_and_makes_the_report(walk_db, tmp_path):
    from tests.conftest import make_app

    client = make_app(walk_db[0], tmp_path).test_client()
    form = client.get("/gaps").get_data(as_text=True)
    assert "walking along the streets (synthetic street grid (tamworth-grid.osm.pbf))" in form
    assert '<option value="drive"  disabled>' in form  # no drive network loaded
    query = f"district={TAMWORTH}&category=library&distance=walk&catchment=15min"
    page = client.get(f"/gaps?{query}&run=1")
    assert page.status_code == 200, page.data[:400]
    text = page.get_data(as_text=True)
    assert "walking distance along the street network" in text and "15 minutes at 4.8 km/h" in text
    assert "Where the network and the straight line disagree" in text
    csv = client.get(f"/gaps/report.csv?{query}")
    assert csv.status_code == 200 and b"network_ratio" in csv.data.splitlines()[0]
    assert client.get(f"/gaps/report.csv?{query}").data == csv.data


@pytest.mark.browser
def test_web_walk_report_shows_the_detour_layer(walk_db, tmp_path, live_server, artifacts):
    from tests.browser import open_page, require_browser
    from tests.conftest import make_app

    require_browser()
    url = live_server(make_app(walk_db[0], tmp_path, TILES="none"))
    query = f"district={TAMWORTH}&category=library&distance=walk&catchment=15min"
    with open_page(f"{url}/gaps?{query}&run=1", height=1600) as view:
        view.page.wait_for_selector("path.leaflet-interactive")
        view.page.check('.leaflet-control-layers label:has-text("Network / straight line") input')
        view.page.uncheck('.leaflet-control-layers label:has-text("Need and supply (areas)") input')
        view.page.locator(".gap-map").scroll_into_view_if_needed()
        legends = view.page.inner_text(".gap-map")
        view.screenshot(artifacts / "gap_report_tamworth_walk_ratio.png")
        assert view.console_errors == [] and view.external_requests == []
    assert "2 or more (a barrier)" in legends
