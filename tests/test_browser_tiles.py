"""A real browser draws the need choropleth and the district outlines from vector tiles (the England-scale path):
the page carries no polygons, the tiles arrive as MVT, a click on an area opens its popup."""

import re

import pytest

from tests.browser import open_page, require_browser
from tests.conftest import make_app
from tests.explorer_data import synthetic_database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def synth_db(pg_server, template_db, tmp_path_factory):
    yield synthetic_database(pg_server, template_db, tmp_path_factory.mktemp("synth"), "am_tiles_browser")


def test_choropleth_is_drawn_from_vector_tiles(synth_db, tmp_path, live_server, artifacts):
    require_browser()
    # The synthetic county has 60 areas: a threshold of 10 sends it down the national (tiled) path.
    app = make_app(synth_db, tmp_path, MAP_INLINE_AREAS=10)
    base = live_server(app)
    html = app.test_client().get("/").get_data(as_text=True)
    assert re.findall(r'"code": "E01', html) == []  # no polygon in the page
    with open_page(base + "/#map=11/52.78/-2.07") as view:
        tiles = []
        view.page.on("response", lambda r: tiles.append((r.url, r.status, r.headers.get("content-type"),
                                                         r.headers.get("content-encoding")))
                     if "/tiles/" in r.url or "/api/" in r.url else None)
        view.page.reload()
        view.page.wait_for_selector("body[data-tiles-loaded='1']")
        view.page.wait_for_selector("body[data-assets-loaded='1']")
        canvases = view.page.eval_on_selector_all(".leaflet-tile-container canvas, .leaflet-pane canvas",
                                                  "els => els.length")
        # The assets are tiles too: none came from the map API. They are put aside for the click on an area.
        view.page.evaluate("() => window.assetMap.map.removeLayer(window.assetMap.assetTiles)")
        # The middle of the map is inside the county: its pixel has the choropleth's colour, not the background.
        box = view.page.locator(".leaflet-container").bounding_box()
        view.page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
        view.page.wait_for_selector(".leaflet-popup-content .asset-popup dl", timeout=5000)
        popup = view.page.inner_text(".leaflet-popup-content")
        legend = view.page.inner_text(".asset-map-legend")
        control = view.page.inner_text(".asset-layer-control")
        view.page.wait_for_timeout(400)  # the popup fades in
        view.screenshot(artifacts / "map_tiles_choropleth.png")
        assert view.console_errors == []
        assert view.external_requests == []
    assert [t for t in tiles if "/tiles/assets/" in t[0]]
    assert not [t for t in tiles if "/api/assets" in t[0]]
    need = [t for t in tiles if "/tiles/need/" in t[0]]
    assert need and all(status == 200 and ctype == "application/vnd.mapbox-vector-tile" for _, status, ctype, _ in need)
    # Sent gzipped (the browser takes gzip), and drawn: the popup below comes from the tiles' features.
    assert any(encoding == "gzip" for *_, encoding in need)
    assert any("/tiles/districts/" in t[0] for t in tiles)
    assert canvases > 0
    assert "Decile" in popup and "E01" in popup
    assert "most deprived" in legend
    assert "Index of Multiple Deprivation 2025" in control and "District boundaries" in control


def test_assets_are_drawn_from_tiles_with_popups_and_no_individuals(synth_db, tmp_path, live_server):
    """At England scale the assets come from /tiles/assets (VectorGrid): a click on one opens its popup, a group
    zooms in, and what the public is sent never holds an individual."""
    import mapbox_vector_tile
    from sqlalchemy import create_engine, text

    require_browser()
    app = make_app(synth_db, tmp_path, MAP_INLINE_AREAS=10)
    base = live_server(app)
    eng = create_engine(synth_db)
    with eng.connect() as conn:
        name, lon, lat = conn.execute(text(
            "SELECT name, ST_X(geom), ST_Y(geom) FROM assets WHERE tier = 'organisation' AND visibility = 'public' "
            "AND status = 'open' AND withdrawn_at IS NULL AND name NOT LIKE '<%' ORDER BY id LIMIT 1")).one()
    eng.dispose()
    with open_page(base + f"/#map=19/{lat:.6f}/{lon:.6f}") as view:
        urls = []
        view.page.on("response", lambda r: urls.append(r.url) if "/tiles/assets/" in r.url else None)
        view.page.reload()
        view.page.wait_for_selector("body[data-assets-loaded='1']")
        assert view.page.get_attribute("body", "data-assets-mode") == "tiles"
        box = view.page.locator(".leaflet-container").bounding_box()
        view.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        view.page.wait_for_selector(".leaflet-popup-content .asset-popup", timeout=5000)
        popup = view.page.inner_text(".leaflet-popup-content")
        assert view.console_errors == []
    assert name in popup and "Details and history" in popup
    # The same tile URLs the browser was sent, fetched again as the public.
    client = app.test_client()
    bodies = [client.get("/" + u.split("://", 1)[1].split("/", 1)[1]).data for u in urls]
    tiers = {f["properties"].get("tier") for body in bodies if body
             for f in mapbox_vector_tile.decode(body).get("assets", {"features": []})["features"]}
    assert tiers and "individual" not in tiers
