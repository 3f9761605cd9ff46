"""The map page and /healthz over the real pack."""

import json
import re

from asset_map.web.vendored import external_urls


def _features(html):
    return re.findall(r'"code": "(E0[0-9]{7})"', html)


def test_map_shows_districts_and_lsoa_2021_by_imd_2025(pack_client):
    res = pack_client.get("/")
    assert res.status_code == 200
    html = res.get_data(as_text=True)
    codes = _features(html)
    assert len([c for c in codes if c.startswith("E01")]) == 697
    assert len([c for c in codes if not c.startswith("E01")]) == 9
    assert "Index of Multiple Deprivation 2025" in html
    assert "1 (most deprived)" in html
    assert "Contains OS data (c) Crown copyright and database right" in html
    assert "English Indices of Deprivation 2019 and 2025" in html


def test_imd_2019_on_lsoa_2011_is_selectable(pack_client):
    html = pack_client.get("/?need=imd:2019").get_data(as_text=True)
    codes = _features(html)
    assert len([c for c in codes if c.startswith("E01")]) == 687
    assert "Index of Multiple Deprivation 2019" in html


def test_unknown_need_is_a_clear_400(pack_client):
    res = pack_client.get("/?need=imd:1999")
    assert res.status_code == 400
    assert "imd:1999 is not loaded" in res.get_data(as_text=True)


def test_page_references_no_outside_url_but_tiles(pack_app):
    html = pack_app.test_client().get("/").get_data(as_text=True)
    assert external_urls(html) == []
    assert "cdn" not in html.lower()


def test_page_with_tiles_names_only_the_tile_host(pack_db, tmp_path):
    from tests.conftest import make_app

    app = make_app(pack_db, tmp_path, TILES="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    html = app.test_client().get("/").get_data(as_text=True)
    assert "tile.openstreetmap.org/{z}/{x}/{y}.png" in html
    assert external_urls(html) == []


def test_healthz_reports_database_and_postgis(pack_client):
    res = pack_client.get("/healthz")
    assert res.status_code == 200
    body = json.loads(res.get_data())
    assert body["database"] == "ok" and body["postgis"].startswith("3.")


def test_healthz_is_503_with_a_reason_when_the_database_is_down(tmp_path):
    from tests.conftest import make_app

    app = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path)
    res = app.test_client().get("/healthz")
    assert res.status_code == 503
    assert res.get_json()["database"] == "unreachable"
    page = app.test_client().get("/")
    assert page.status_code == 503
    assert "Traceback" not in page.get_data(as_text=True)


def test_an_empty_database_still_serves_the_map(client):
    res = client.get("/")
    assert res.status_code == 200
    assert "leaflet" in res.get_data(as_text=True).lower()
