"""The map explorer in headless Chromium: layers switch markers on and off, a filter in the URL limits them, a
hostile name shows as text, the keyboard reaches the controls, and no page logs a console error."""

import pytest
from sqlalchemy import text

from tests.browser import open_page, require_browser
from tests.conftest import make_app
from tests.explorer_data import HOSTILE, add_hand_made, synthetic_database

pytestmark = pytest.mark.browser

# What the page has drawn: markers held by the cluster group (by category), and what the map shows on screen
# (single markers plus the numbers on cluster icons), which add up to the same assets.
DRAWN = """() => {
  const held = window.assetMap.cluster.getLayers();
  const cats = {};
  held.forEach(m => { cats[m.options.category] = (cats[m.options.category] || 0) + (m.options.count || 1); });
  let onScreen = document.querySelectorAll('.leaflet-marker-pane .asset-marker').length;
  document.querySelectorAll('.leaflet-marker-pane .marker-cluster span').forEach(s => {
    onScreen += parseInt(s.textContent.replace(/,/g, ''), 10); });
  return {held: held.reduce((n, m) => n + (m.options.count || 1), 0), cats: cats, onScreen: onScreen};
}"""


@pytest.fixture(scope="module")
def synth_db(pg_server, template_db, tmp_path_factory):
    yield synthetic_database(pg_server, template_db, tmp_path_factory.mktemp("synth"), "am_explorer_browser")
    pg_server.drop("am_explorer_browser")


@pytest.fixture
def base_url(synth_db, tmp_path, live_server):
    require_browser()
    return live_server(make_app(synth_db, tmp_path))


def _popup_shown(view):
    view.page.wait_for_function("() => { const p = document.querySelector('.leaflet-popup'); "
                                "return p && getComputedStyle(p).opacity === '1'; }")


def _loaded(view):
    view.page.wait_for_selector("body[data-assets-loaded='1']")
    view.page.wait_for_timeout(300)  # the cluster group adds markers in chunks
    return view.page.evaluate(DRAWN)


def test_toggling_a_tier_changes_the_drawn_markers(base_url, artifacts):
    with open_page(base_url + "/") as view:
        before = _loaded(view)
        view.screenshot(artifacts / "explorer_all.png")
        group = view.page.locator(".asset-layer-control .leaflet-control-layers-group-name",
                                  has_text="Organisations").locator("xpath=..").locator(
            "input.leaflet-control-layers-group-selector")
        group.uncheck()
        view.page.wait_for_timeout(300)
        after = view.page.evaluate(DRAWN)
        view.screenshot(artifacts / "explorer_no_organisations.png")
        library = view.page.get_by_label("Library", exact=True)
        group.check()
        view.page.wait_for_timeout(200)
        # The keyboard reaches a category's checkbox and Space switches it.
        library.focus()
        view.page.keyboard.press("Space")
        view.page.wait_for_timeout(300)
        no_library = view.page.evaluate(DRAWN)
        status = view.page.inner_text("#map-status")
        shared = view.page.url
        assert view.console_errors == []
        assert view.external_requests == []
    with open_page(shared) as view:
        reopened = _loaded(view)
        library_box = view.page.get_by_label("Library", exact=True).is_checked()
        assert view.console_errors == []
    assert "off=library" in shared
    assert "library" not in reopened["cats"] and not library_box
    assert reopened["held"] == no_library["held"]
    assert before["held"] > 100 and before["onScreen"] == before["held"]
    assert "school" in before["cats"] and "faith_group" in before["cats"]
    assert after["held"] < before["held"]
    assert not {"school", "library", "business"} & set(after["cats"])
    assert after["cats"]["faith_group"] == before["cats"]["faith_group"]
    assert "library" not in no_library["cats"] and no_library["held"] == before["held"] - before["cats"]["library"]
    assert "assets in this part of the map" in status


def test_a_filter_in_the_url_limits_the_markers(base_url, synth_db, artifacts):
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    eng = make_engine(synth_db, load_settings())
    with eng.connect() as conn:
        libraries = conn.execute(text("SELECT count(*) FROM assets WHERE category = 'library' "
                                      "AND status IN ('open', 'temporarily closed')")).scalar()
    eng.dispose()
    with open_page(base_url + "/?category=library") as view:
        drawn = _loaded(view)
        selected = view.page.input_value("#f-category")
        view.screenshot(artifacts / "explorer_libraries.png")
        assert view.console_errors == []
    assert set(drawn["cats"]) == {"library"}
    assert drawn["held"] == libraries
    assert selected == "library"


def test_hostile_name_shows_as_text_in_the_popup(base_url, artifacts):
    with open_page(base_url + "/?q=onerror") as view:
        dialogs = []
        view.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        drawn = _loaded(view)
        # As a keyboard user would: the marker takes focus and Enter opens its popup.
        marker = view.page.locator(".leaflet-marker-pane .asset-marker")
        marker.focus()
        label = marker.get_attribute("title")
        view.page.keyboard.press("Enter")
        view.page.wait_for_selector(".leaflet-popup-content .asset-popup")
        title = view.page.inner_text(".leaflet-popup-content h2")
        body = view.page.inner_text(".leaflet-popup-content")
        images = view.page.locator(".leaflet-popup-content img").count()
        _popup_shown(view)
        view.screenshot(artifacts / "explorer_hostile_popup.png")
        assert view.console_errors == []
    assert drawn["held"] == 1
    assert label == HOSTILE + " (stale)"
    assert title == HOSTILE
    assert images == 0 and dialogs == []
    assert "stale" in body and "2020-01-01" in body


def test_assets_table_uses_govuk_styles_without_the_transport_font(base_url, artifacts):
    with open_page(base_url + "/assets?q=onerror&status=all") as view:
        requests = []
        view.page.on("request", lambda r: requests.append(r.url))
        view.page.reload(wait_until="load")
        cell = view.page.inner_text("tbody th")
        family = view.page.evaluate("() => getComputedStyle(document.querySelector('h1')).fontFamily")
        view.page.keyboard.press("Tab")
        focused = view.page.evaluate("() => document.activeElement.textContent.trim()")
        view.screenshot(artifacts / "assets_table.png")
        assert view.console_errors == []
        assert view.external_requests == []
    assert cell == HOSTILE
    assert "arial" in family.lower() and "transport" not in family.lower()
    assert not [u for u in requests if "/assets/fonts/" in u]
    assert focused == "Skip to main content"


@pytest.mark.slow
def test_tamworth_libraries_over_imd_with_community_run_filter(engine, pack, tmp_path, live_server, artifacts):
    """The issue's 'done when': the real pack, Tamworth's three libraries (as the county lists them), the
    organiser filters to community-run ones, opens a popup, and the shared URL gives the same in /assets."""
    require_browser()
    from asset_map.reference.pack import load_pack

    load_pack(engine, pack)
    with engine.connect() as conn:
        at = {pc: (x, y) for pc, x, y in conn.execute(text(
            "SELECT postcode, ST_X(geom), ST_Y(geom) FROM postcodes WHERE postcode IN ('B79 7DN', 'B77 2ED', "
            "'B77 5LF')"))}
    add_hand_made(engine, [
        ("tam", "Tamworth Library", "organisation", "library", *at["B79 7DN"],
         {"address": "Corporation Street, Tamworth", "postcode": "B79 7DN", "district_code": "E07000199",
          "url": "https://www.staffordshire.gov.uk/Libraries/branchlibraries/TamworthLibrary/TamworthLibrary.aspx"}),
        ("gla", "Glascote Library", "association", "community_run_library", *at["B77 2ED"],
         {"address": "Caledonian, Tamworth", "postcode": "B77 2ED", "district_code": "E07000199",
          "offers": "knowledge;buildings/space"}),
        ("wil", "Wilnecote Library", "association", "community_run_library", *at["B77 5LF"],
         {"address": "Wilnecote High School, Tinkers Green Road, Tamworth", "postcode": "B77 5LF",
          "district_code": "E07000199", "last_verified": "2024-05-01"}),
    ])
    base = live_server(make_app(str(engine.url.render_as_string(hide_password=False)), tmp_path))
    with open_page(base + "/?district=E07000199") as view:
        everything = _loaded(view)
        view.screenshot(artifacts / "tamworth_libraries.png")
        choropleth = view.page.locator("path.leaflet-interactive").count()
        view.page.select_option("#f-category", "community_run_library")
        view.page.click("button[type=submit]")
        filtered = _loaded(view)
        shared = view.page.url
        view.page.evaluate("() => { const m = window.assetMap.cluster.getLayers().find(m => "
                           "m.options.title.startsWith('Wilnecote')); "
                           "window.assetMap.cluster.zoomToShowLayer(m, () => m.openPopup()); }")
        _popup_shown(view)
        popup = view.page.inner_text(".leaflet-popup-content")
        view.screenshot(artifacts / "tamworth_community_run_popup.png")
        assert view.console_errors == []
        # Postcode search moves the map in place and puts the postcode in the address bar.
        view.page.evaluate("() => { window.stillHere = true; }")
        view.page.fill("#postcode", "b79 7dn")
        view.page.press("#postcode", "Enter")
        view.page.wait_for_selector(".leaflet-tooltip >> text=B79 7DN")
        view.page.wait_for_function("() => window.assetMap.map.getZoom() === 15")
        in_place = view.page.evaluate("() => window.stillHere === true")
        with_postcode = view.page.url
        view.page.fill("#postcode", "SW1A 1AA")
        view.page.press("#postcode", "Enter")
        view.page.wait_for_function("() => document.getElementById('map-status').textContent.includes('SW1A 1AA')")
        invalid = view.page.get_attribute("#postcode", "aria-invalid")
        view.screenshot(artifacts / "tamworth_postcode_search.png")
    assert in_place and "postcode=B79+7DN" in with_postcode and invalid == "true"
    with open_page(shared.replace("/?", "/assets?").split("#")[0]) as view:
        names = view.page.locator("tbody th").all_inner_texts()
        view.screenshot(artifacts / "tamworth_community_run_table.png")
    assert everything["cats"] == {"library": 1, "community_run_library": 2}
    assert choropleth > 40  # Tamworth's LSOAs and its outline; the rest of the county is not drawn
    assert "category=community_run_library" in shared and "district=E07000199" in shared
    assert filtered["cats"] == {"community_run_library": 2}
    assert "Wilnecote Library" in popup and "Associations and networks" in popup and "stale" in popup
    assert sorted(names) == ["Glascote Library", "Wilnecote Library"]
    # What is near Tamworth Library's postcode: itself first, then the community-run ones, in metres.
    near = make_app(str(engine.url.render_as_string(hide_password=False)), tmp_path).test_client().get(
        "/near?postcode=B79 7DN&category=library,community_run_library").get_data(as_text=True)
    metres = [int(v.split('"')[0]) for v in near.split('data-metres="')[1:]]
    assert near.index("Tamworth Library") < near.index("Glascote Library")
    assert metres[0] == 0 and len(metres) == 3 and 1000 < metres[1] < 6000


def test_individuals_layer_shows_counts_only(base_url, artifacts):
    with open_page(base_url + "/") as view:
        _loaded(view)
        view.page.get_by_label("Individuals per area", exact=False).check()
        view.page.wait_for_selector(".asset-count")
        labels = view.page.locator(".asset-count").all_inner_texts()
        titles = view.page.eval_on_selector_all(".asset-count-marker", "els => els.map(e => e.title)")
        view.screenshot(artifacts / "explorer_individual_counts.png")
        assert view.console_errors == []
    assert labels and all(label == "<5" or int(label) >= 5 for label in labels)
    assert any("fewer than 5" in t for t in titles) or all(int(label) >= 5 for label in labels)


def test_near_and_district_pages_draw_without_errors(base_url, synth_db, artifacts):
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    eng = make_engine(synth_db, load_settings())
    with eng.connect() as conn:
        postcode = conn.execute(text("SELECT postcode FROM postcodes ORDER BY postcode LIMIT 1 OFFSET 40")).scalar()
        code = conn.execute(text("SELECT code FROM districts ORDER BY code LIMIT 1")).scalar()
    eng.dispose()
    with open_page(f"{base_url}/near?postcode={postcode}&limit=5") as view:
        _loaded(view)
        numbered = view.page.locator(".asset-nearest").all_inner_texts()
        rows = view.page.locator("tbody tr").count()
        view.screenshot(artifacts / "near_postcode.png")
        assert view.console_errors == []
    with open_page(f"{base_url}/districts/{code}") as view:
        drawn = _loaded(view)
        caption = view.page.inner_text("caption >> nth=0")
        view.screenshot(artifacts / "district_page.png")
        assert view.console_errors == []
    assert numbered == ["1", "2", "3", "4", "5"] and rows == 5
    assert drawn["held"] > 0 and "decile" in caption
