"""Bulk reads of personal data are exports (token scope, audit), shareable outputs carry no individual, and the
smaller holes of issue 12: need= in legends, OGC temporal extent per role, OGC links from PUBLIC_URL."""

import json

import geopandas as gpd
import pytest
from shapely.geometry import Point
from sqlalchemy import text

from asset_map import gaps
from asset_map.api import ogc
from asset_map.config import load_settings
from asset_map.store import assets
from tests.accounts import bearer, signed_in_client
from tests.conftest import make_app
from tests.export_data import STAFFORD, export_db, export_engine  # noqa: F401 - fixtures

BULK = ["/assets.csv?tier=individual", "/ogc/collections/individual-points/items?f=json",
        f"/gaps/report.csv?district={STAFFORD}&need=imd:2025", "/export/individual-points.csv"]


def _exports(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT actor, target, rows, details FROM audit_log WHERE action = 'export' "
                                 "ORDER BY id")).all()


@pytest.fixture
def xapp(export_db, tmp_path):  # noqa: F811
    return make_app(export_db, tmp_path)


@pytest.mark.parametrize("path", BULK)
def test_a_read_token_cannot_take_a_bulk_read(xapp, export_engine, path):  # noqa: F811
    res = xapp.test_client().get(path, headers=bearer(export_engine, "officer", scope="read"))
    assert res.status_code == 403 and "scope" in res.get_data(as_text=True)


@pytest.mark.parametrize("path", BULK)
def test_every_bulk_read_by_an_export_token_is_audited(xapp, export_engine, path):  # noqa: F811
    before = len(_exports(export_engine))
    res = xapp.test_client().get(path, headers=bearer(export_engine, "officer", scope="export"))
    assert res.status_code == 200
    res.get_data()
    logged = _exports(export_engine)
    assert len(logged) == before + 1
    actor, target, rows, details = logged[-1]
    assert actor.startswith("officer@example.org (token") and rows is not None and rows >= 0
    assert "token_id" in details or details.get("role") == "officer"
    assert "Volunteer" not in json.dumps(details)  # what and how many, never the data


def test_gap_reports_carry_no_individual_for_any_role(xapp, export_engine, export_db, tmp_path):  # noqa: F811
    with export_engine.connect() as conn:
        secrets = [r for row in conn.execute(text("SELECT name, email FROM assets WHERE tier = 'individual'"))
                   for r in row]
    assert secrets
    for role in ("public", "officer"):
        client = signed_in_client(xapp, export_engine, role)
        for fmt in ("html", "csv", "geojson"):
            body = client.get(f"/gaps/report.{fmt}?district={STAFFORD}&need=imd:2025").get_data(as_text=True)
            assert not [s for s in secrets if s in body], (role, fmt)
        page = client.get(f"/gaps?run=1&district={STAFFORD}&need=imd:2025").get_data(as_text=True)
        assert not [s for s in secrets if s in page], role
    request = gaps.GapRequest.from_args({"district": STAFFORD, "need": "imd:2025", "tier": "individual"})
    officer = gaps.run(export_engine, request, role="officer")
    html = gaps.standalone_html(officer, load_settings({"TILES": "none"}))
    assert officer.inputs["assets_used"] == 0 and not [s for s in secrets if s in html]


def test_need_in_a_legend_cannot_run_script(xapp):
    res = xapp.test_client().get("/?need=</script><script>alert(1)</script>:2025")
    assert res.status_code == 400
    assert "<script>alert(1)" not in res.get_data(as_text=True)


def test_ogc_links_use_the_public_url_when_set(export_db, tmp_path):  # noqa: F811
    app = make_app(export_db, tmp_path, PUBLIC_URL="https://maps.example.org/")
    doc = app.test_client().get("/ogc/collections?f=json", headers={"Host": "evil.example"}).get_json()
    hrefs = [link["href"] for c in doc["collections"] for link in c["links"]]
    assert hrefs and all(h.startswith("https://maps.example.org/") for h in hrefs)
    plain = make_app(export_db, tmp_path).test_client().get("/ogc/collections?f=json").get_json()
    assert plain["links"][0]["href"].startswith("http://localhost/ogc")


def test_the_temporal_extent_counts_only_what_the_caller_may_see(engine):
    rows = []
    for i, (tier, day) in enumerate([("association", "2020-01-01"), ("individual", "2010-06-01"),
                                     ("association", "2021-12-31")]):
        row = {c: None for c in assets.WRITE_COLUMNS}
        row.update(register="t", source_row=i, match_key=f"k{i}", tier=tier, category="volunteer", name=f"n{i}",
                   offers="", status="open", visibility="public", consent=True, last_verified=day,
                   properties="{}", geometry=Point(-2.1, 52.8))
        rows.append(row)
    with engine.begin() as conn:
        assets.ensure_register(conn, "t")
        assets.upsert(conn, gpd.GeoDataFrame(rows, geometry="geometry", crs=4326))
    from asset_map.api import layers

    layer = layers.get(engine, "assets", "public")
    public = ogc.collection(engine, layer, base="http://x/ogc", role="public")["extent"]["temporal"]["interval"]
    officer = ogc.collection(engine, layer, base="http://x/ogc", role="officer")["extent"]["temporal"]["interval"]
    assert public == [["2020-01-01T00:00:00Z", "2021-12-31T00:00:00Z"]]
    assert officer == [["2010-06-01T00:00:00Z", "2021-12-31T00:00:00Z"]]
