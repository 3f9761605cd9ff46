"""A real browser loads the map: the polygons are drawn and the console is clean."""

import pytest

from tests.browser import open_page, require_browser

pytestmark = pytest.mark.browser


def test_map_draws_districts_and_lsoas_without_console_errors(pack_app, live_server, artifacts):
    require_browser()
    url = live_server(pack_app)
    with open_page(url + "/") as view:
        view.page.wait_for_selector("path.leaflet-interactive")
        drawn = view.page.eval_on_selector_all("path.leaflet-interactive", "els => els.length")
        legend = view.page.inner_text(".asset-map-legend")
        attribution = view.page.inner_text(".leaflet-control-attribution")
        view.screenshot(artifacts / "map_imd2025.png")
        assert view.console_errors == []
        assert view.external_requests == []
    assert drawn == 697 + 9
    assert "most deprived" in legend
    assert "Crown copyright" in attribution
