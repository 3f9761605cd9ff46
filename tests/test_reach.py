"""Who can reach an asset: isochrones from the API (with the asset's own privacy rule), the asset page partial and
the "who can reach this" layer of the main map, on the pack's Tamworth libraries over a synthetic street grid."""

import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from asset_map.api import isochrones as iso
from asset_map.config import load_settings
from asset_map.store.db import make_engine
from tests.accounts import signed_in_client
from tests.conftest import make_app
from tests.network_data import add_asset


@pytest.fixture(scope="module")
def reach(walk_db):
    """(url, engine, library id and point, an individual's id, a restricted asset's id, a far asset's id)."""
    eng = make_engine(walk_db[0], load_settings())
    with eng.connect() as conn:
        lib = conn.execute(text("SELECT id, name, ST_X(geom), ST_Y(geom) FROM assets WHERE name = 'Tamworth Library'"
                                )).one()
    lon, lat = lib[2], lib[3]
    person = add_asset(eng, name="A. Person (skills)", tier="individual", visibility="public", lon=lon + 0.002,
                       lat=lat, consent=True)
    restricted = add_asset(eng, name="Restricted Hall", tier="organisation", visibility="restricted",
                           lon=lon - 0.002, lat=lat)
    far = add_asset(eng, name="Farm Library", tier="organisation", visibility="public", lon=lon, lat=lat - 0.3)
    yield {"url": walk_db[0], "engine": eng, "library": lib[0], "point": (lon, lat), "person": person,
           "restricted": restricted, "far": far}
    eng.dispose()


def test_isochrones_grow_with_time_and_hold_the_asset(reach):
    doc = iso.isochrones(reach["engine"], reach["library"])
    feats = doc["features"]
    assert [f["properties"]["minutes"] for f in feats] == [15, 10, 5]
    assert [f["properties"]["metres"] for f in feats] == [1200, 800, 400]
    areas = [f["properties"]["area_km2"] for f in feats]
    assert areas[0] > areas[1] > areas[2] > 0
    polys = [shapely.geometry.shape(f["geometry"]) for f in feats]
    point = shapely.Point(reach["point"])
    assert all(p.contains(point) for p in polys)
    # 15 minutes' walk at 4.8 km/h is 1,200 m along the streets: nothing 1,300 m away as the crow flies.
    to_m = Transformer.from_crs(4326, 27700, always_xy=True)
    x, y = to_m.transform(*reach["point"])
    ring = shapely.Point(x, y).buffer(1_300).exterior
    to_ll = Transformer.from_crs(27700, 4326, always_xy=True)
    far_ring = shapely.transform(ring, lambda xy: __import__("numpy").column_stack(to_ll.transform(xy[:, 0],
                                                                                                    xy[:, 1])))
    assert not polys[0].intersects(far_ring)
    assert doc["asset_map"]["network"]["source"].startswith("synthetic street grid")


def test_api_follows_the_assets_own_privacy_rule(reach, tmp_path, monkeypatch):
    app = make_app(reach["url"], tmp_path)
    public = app.test_client()
    ok = public.get(f"/api/assets/{reach['library']}/isochrones.geojson")
    assert ok.status_code == 200 and ok.mimetype == "application/geo+json"
    assert len(ok.get_json()["features"]) == 3
    for hidden in ("person", "restricted"):
        got = public.get(f"/api/assets/{reach[hidden]}/isochrones.geojson")
        assert got.status_code == 404
        assert public.get(f"/assets/{reach[hidden]}/reach").status_code == 404
    # Hidden reads exactly like missing: nothing tells the public an individual is there.
    missing = public.get("/api/assets/999999999/isochrones.geojson").get_json()
    hidden = public.get(f"/api/assets/{reach['person']}/isochrones.geojson").get_json()
    assert missing["description"].replace("999999999", "N") == hidden["description"].replace(str(reach["person"]),
                                                                                              "N")
    officer = signed_in_client(app, reach["engine"], "officer")
    assert officer.get(f"/api/assets/{reach['person']}/isochrones.geojson").status_code == 200
    # The rule is what protects: with the visibility rule switched off the public would get the individual.
    from asset_map.store import assets as store_assets

    monkeypatch.setattr(store_assets, "visibility_condition", lambda role, alias="a": ("TRUE", {}))
    assert public.get(f"/api/assets/{reach['person']}/isochrones.geojson").status_code == 200


def test_bad_requests_are_clear(reach, tmp_path):
    client = make_app(reach["url"], tmp_path).test_client()
    far = client.get(f"/api/assets/{reach['far']}/isochrones.geojson")
    assert far.status_code == 422 and "from the nearest street" in far.get_json()["description"]
    drive = client.get(f"/api/assets/{reach['library']}/isochrones.geojson?mode=drive")
    assert drive.status_code == 404 and "No drive network is loaded" in drive.get_json()["description"]
    for q in ("minutes=0", "minutes=abc", "minutes=500", "mode=boat", "speed=fast"):
        assert client.get(f"/api/assets/{reach['library']}/isochrones.geojson?{q}").status_code == 400, q


@pytest.mark.browser
def test_asset_page_and_main_map_show_who_can_reach_a_library(reach, tmp_path, live_server, artifacts):
    from tests.browser import open_page, require_browser

    require_browser()
    url = live_server(make_app(reach["url"], tmp_path, TILES="none"))
    with open_page(f"{url}/assets/{reach['library']}/reach", height=900) as view:
        view.page.wait_for_selector(".asset-reach-map[data-drawn]")
        assert view.page.get_attribute(".asset-reach-map", "data-drawn") == "1"
        rows = view.page.inner_text(".asset-reach-table tbody")
        polys = view.page.eval_on_selector_all(".asset-reach-map path.leaflet-interactive", "els => els.length")
        view.screenshot(artifacts / "reach_tamworth_library_page.png")
        assert view.console_errors == [] and view.external_requests == []
    assert polys == 3 and "15 minutes" in rows and "1,200 m" in rows
    # The asset's own page (issue 13) carries the same section.
    with open_page(f"{url}/assets/{reach['library']}", height=1800) as view:
        view.page.wait_for_selector(".asset-reach-map[data-drawn]")
        drawn = view.page.get_attribute(".asset-reach-map", "data-drawn")
        view.page.locator(".asset-reach").scroll_into_view_if_needed()
        view.screenshot(artifacts / "reach_tamworth_library_asset_page.png")
        assert view.console_errors == []
    assert drawn == "1"
    lon, lat = reach["point"]
    with open_page(f"{url}/?category=library#map=15/{lat}/{lon}", height=900) as view:
        marker = view.page.wait_for_selector('.asset-marker[title^="Tamworth Library"]')
        marker.click()
        view.page.click(".reach-button")
        view.page.wait_for_selector(".reach-key")
        key = view.page.inner_text(".reach-key")
        view.screenshot(artifacts / "reach_tamworth_library_map.png")
        assert view.console_errors == []
    assert "Who can reach Tamworth Library" in key and "15 min walk" in key
