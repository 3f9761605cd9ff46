"""As an officer in headless Chromium: draw a pilot neighbourhood in Tamworth with the polygon tool, save it, see
its assets; a two-point outline gets a clear message; the briefing page and the map of the area render."""

import pytest
from sqlalchemy import text

from tests.accounts import PASSWORD, email_for, make_user
from tests.browser import open_page
from tests.conftest import make_app

pytestmark = pytest.mark.browser

# Corners of a neighbourhood around Tamworth's centre (lat, lon), clockwise; clicked on the map.
CORNERS = [(52.6425, -1.7040), (52.6425, -1.6810), (52.6290, -1.6810), (52.6290, -1.7040)]


def _click_latlng(session, lat, lon):
    x, y = session.page.evaluate(
        "([lat, lon]) => { const p = window.assetMapDraw.map.latLngToContainerPoint([lat, lon]);"
        " const r = document.getElementById('draw-map').getBoundingClientRect(); return [r.x + p.x, r.y + p.y]; }",
        [lat, lon])
    session.page.mouse.click(x, y)


def test_officer_draws_a_neighbourhood(geo_db, geo_engine, tmp_path, live_server, artifacts):
    with geo_engine.connect() as conn:
        from asset_map.users import find_user

        if find_user(conn, email_for("officer")) is None:
            make_user(geo_engine, "officer")
    base = live_server(make_app(geo_db[0], tmp_path, COOKIE_SECURE=0))
    try:
        with open_page(f"{base}/sign-in?next=/geographies/draw", width=1200, height=1300) as session:
            page = session.page
            page.fill("#email", email_for("officer"))
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector(".leaflet-draw-draw-polygon")
            page.evaluate("window.assetMapDraw.map.setView([52.6357, -1.6925], 14, {animate: false})")
            page.click(".leaflet-draw-draw-polygon")
            for lat, lon in CORNERS + CORNERS[:1]:  # the first corner again closes the outline
                _click_latlng(session, lat, lon)
                page.wait_for_timeout(150)
            page.wait_for_function("document.getElementById('draw-geometry').value.length > 0")
            assert "Outline drawn with 4 points" in page.inner_text("#draw-status")
            page.fill("#draw-code", "PN-02")
            page.fill("#draw-name", "Browser-drawn town centre")
            session.screenshot(artifacts / "draw-neighbourhood.png")
            page.click("#draw-save")
            page.wait_for_url("**/geographies/pilot-neighbourhoods")
            banner = page.inner_text(".govuk-notification-banner")
            assert "Saved Browser-drawn town centre as area PN-02" in banner
            assert "assets inside" in banner
            session.screenshot(artifacts / "draw-neighbourhood-saved.png")
            # A two-point outline (what a double click on a line would send) is refused with a plain message.
            page.goto(f"{base}/geographies/draw")
            page.evaluate("document.getElementById('draw-geometry').value = JSON.stringify({type: 'Polygon', "
                          "coordinates: [[[-1.70, 52.64], [-1.68, 52.64], [-1.70, 52.64]]]})")
            page.fill("#draw-code", "PN-03")
            page.fill("#draw-name", "Too thin")
            page.click("#draw-save")
            page.wait_for_selector("#draw-error")
            assert "2 distinct points; an area needs at least three" in page.inner_text("#draw-error")
            session.screenshot(artifacts / "draw-two-points.png")
            # The refused form comes back with status 400, which Chromium logs; nothing else may be logged.
            assert [e for e in session.console_errors if "status of 400" not in e] == []
            assert session.external_requests == []
        with geo_engine.connect() as conn:
            wkt, links = conn.execute(text(
                "SELECT ST_AsText(ST_Envelope(geom)), (SELECT count(*) FROM asset_areas WHERE geography = "
                "'pilot-neighbourhoods' AND area_code = 'PN-02') FROM geography_areas WHERE code = 'PN-02'")).one()
            drawn_by = conn.execute(text("SELECT actor FROM audit_log WHERE action = 'geography-draw' "
                                         "AND target = 'pilot-neighbourhoods:PN-02'")).scalar()
        assert links >= 8 and drawn_by == email_for("officer")
        assert "-1.70" in wkt and "52.64" in wkt  # where it was drawn, in lon/lat
        with open_page(f"{base}/briefings/pilot-neighbourhoods/PN-02", width=1100, height=2600) as session:
            assert "Browser-drawn town centre: briefing" in session.page.inner_text("h1")
            session.screenshot(artifacts / "briefing-page-PN-02.png")
            assert session.console_errors == [] and session.external_requests == []
        with open_page(f"{base}/?area=pilot-neighbourhoods:PN-02", width=1200, height=800) as session:
            # The map fits the area, outlines it, and asks the API for its assets only.
            session.page.wait_for_function("document.querySelectorAll('.leaflet-marker-icon, "
                                           ".leaflet-interactive').length > 3")
            session.page.wait_for_timeout(500)
            session.screenshot(artifacts / "map-area-PN-02.png")
            zoom = session.page.evaluate("Object.values(window).find(v => v && v._zoom !== undefined && "
                                         "v.getBounds)?.getZoom() ?? null")
            assert zoom is None or zoom >= 13
            assert session.console_errors == [] and session.external_requests == []
    finally:
        with geo_engine.begin() as conn:
            conn.execute(text("DELETE FROM geography_areas WHERE geography = 'pilot-neighbourhoods' "
                              "AND code IN ('PN-02', 'PN-03')"))
            conn.execute(text("DELETE FROM asset_areas WHERE geography = 'pilot-neighbourhoods' "
                              "AND area_code IN ('PN-02', 'PN-03')"))
