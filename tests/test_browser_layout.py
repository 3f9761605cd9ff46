"""The one layout, in headless Chromium on the real pack and its real library registers: every page has the same
header and footer, a user reaches every part from the map, axe-core finds no serious or critical problem on any page
at 1400 and 375 pixels wide, text pages fit 320 pixels, the map works without JavaScript (as a table) and with the
keyboard in order. Screenshots of every page at both widths go to tests/artifacts/layout/."""

import uuid

import pytest

from asset_map.config import find_reference_pack, load_settings
from asset_map.store.db import make_engine
from asset_map.web.vendored import DEFAULT_DIR
from tests.accounts import PASSWORD, email_for, make_user
from tests.browser import open_page, require_browser
from tests.conftest import make_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = DEFAULT_DIR / "axe-core" / "axe.min.js"
TAMWORTH = "E07000199"
WIDTHS = (1400, 375)
SECTIONS = ["Map", "Assets", "Districts", "Gap reports", "Briefings", "Downloads and API"]
PUBLIC_PAGES = {
    "map": "/",
    "assets": f"/assets?district={TAMWORTH}",
    "near": "/near?postcode=B79+7DN",
    "districts": "/districts",
    "district": f"/districts/{TAMWORTH}",
    "gaps": "/gaps",
    "gap-report": f"/gaps?district={TAMWORTH}&category=library&run=1",
    "downloads": "/downloads",
    "ogc": "/ogc?f=html",
    "ogc-collections": "/ogc/collections?f=html",
    "ogc-items": "/ogc/collections/organisations/items?f=html&limit=5",
    "licence": "/about/data",
    "privacy": "/privacy",
    "accessibility": "/accessibility",
    "sign-in": "/sign-in",
    "not-found": "/no-such-page",
}
SIGNED_IN_PAGES = {"officer": {"registers": "/registers", "register": "/registers/libraries_staffordshire"},
                   "admin": {"audit": "/admin/audit", "users": "/admin/users"}}
TEXT_PAGES = ("assets", "districts", "gaps", "downloads", "licence", "privacy", "accessibility", "sign-in",
              "ogc-collections", "gap-report")

# axe-core's findings of impact serious or critical, with the first elements each one names. The map's drawing
# (hundreds of area paths, no text) is left out; its controls, legend and key are checked.
AXE_RUN = """async () => {
  const r = await axe.run({exclude: [['.leaflet-map-pane']]}, {resultTypes: ['violations']});
  return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' @ ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""
CHROME = """() => ({
  header: document.querySelectorAll('header .govuk-service-navigation').length,
  footer: document.querySelectorAll('footer.govuk-footer').length,
  sections: [...document.querySelectorAll('.govuk-service-navigation__item a')].map(a => a.textContent.trim()),
  current: [...document.querySelectorAll('.govuk-service-navigation__item--active a')].map(a => a.textContent.trim()),
  footerLinks: [...document.querySelectorAll('footer a')].map(a => a.textContent.trim()),
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
})"""


@pytest.fixture(scope="module")
def site(pg_server, pack_db, tmp_path_factory, live_server_module):
    """A copy of the pack's database with its two council library registers imported by the app's own importer,
    served live."""
    from sqlalchemy import text

    from asset_map.registers.importer import import_register
    from asset_map.store.db import dispose_engines

    require_browser()
    pack = find_reference_pack()
    source = pack_db.rsplit("/", 1)[1]
    dispose_engines()
    with pg_server.admin().connect() as conn:  # a template database must have no other sessions
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d "
                          "AND pid <> pg_backend_pid()"), {"d": source})
    name = f"am_layout_{uuid.uuid4().hex[:8]}"
    url = pg_server.create(name, template=source)
    eng = make_engine(url, load_settings())
    for file in ("libraries_staffordshire.csv", "libraries_stoke.csv"):
        import_register(eng, pack / "registers" / file, register=file.removesuffix(".csv"))
    make_user(eng, "officer")
    make_user(eng, "admin")
    eng.dispose()
    app = make_app(url, tmp_path_factory.mktemp("layout"), COOKIE_SECURE=0)
    yield live_server_module(app)
    dispose_engines()
    pg_server.drop(name)


@pytest.fixture(scope="module")
def live_server_module():
    from tests.conftest import LiveServer

    servers = []

    def start(app):
        server = LiveServer(app)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def _visit(view, base, path):
    view.page.goto(base + path, wait_until="load")
    if path == "/" or path.startswith("/?"):
        view.page.wait_for_selector("body[data-assets-loaded='1']")
    return view.page.evaluate(CHROME)


def _sign_in(view, base, role):
    view.page.goto(base + "/sign-in")
    view.page.fill("#email", email_for(role))
    view.page.fill("#password", PASSWORD)
    view.page.click("form[action='/sign-in'] button[type=submit]")
    view.page.wait_for_load_state("load")


def _check_pages(view, base, pages, width, artifacts, found):
    view.page.set_viewport_size({"width": width, "height": 900})
    for key, path in pages.items():
        chrome = _visit(view, base, path)
        assert chrome["header"] == 1 and chrome["footer"] == 1, (key, chrome)
        assert chrome["sections"][:6] == SECTIONS, (key, chrome["sections"])
        assert {"Data sources and licence", "Privacy notice", "Accessibility statement"} <= set(chrome["footerLinks"])
        view.screenshot(artifacts / "layout" / f"{key}-{width}.png")
        problems = view.page.evaluate(AXE_RUN)
        if problems:
            found[f"{key} at {width}px"] = problems
    return found


def test_every_page_has_the_layout_and_no_serious_accessibility_problem(site, artifacts):
    found = {}
    with open_page(site + "/sign-in") as view:
        view.page.add_init_script(path=str(AXE))
        for width in WIDTHS:
            _check_pages(view, site, PUBLIC_PAGES, width, artifacts, found)
            for role, pages in SIGNED_IN_PAGES.items():
                _sign_in(view, site, role)
                _check_pages(view, site, pages, width, artifacts, found)
                view.page.click("form[action='/sign-out'] button")
                view.page.wait_for_load_state("load")
        # The one error a browser reports is the 404 status of the page that is not found, which is the point.
        assert [e for e in view.console_errors if "/no-such-page" not in e] == []
        assert view.external_requests == []
    assert found == {}


def test_the_axe_check_can_fail(site):
    """The same check finds a serious problem when a page has one (an image without alternative text)."""
    with open_page(site + "/privacy") as view:
        view.page.add_init_script(path=str(AXE))
        view.page.reload()
        view.page.evaluate("() => { const i = document.createElement('img'); i.src = '/static/x.png';"
                           " document.querySelector('main').appendChild(i); }")
        assert any(p.startswith("image-alt") for p in view.page.evaluate(AXE_RUN))


def test_every_part_is_reached_from_the_map_and_marked_current(site):
    with open_page(site + "/") as view:
        view.page.wait_for_selector("body[data-assets-loaded='1']")
        links = view.page.evaluate("() => [...document.querySelectorAll('.govuk-service-navigation__item a')]"
                                   ".map(a => [a.textContent.trim(), a.href])")
        assert [label for label, _ in links] == SECTIONS
        for label, href in links[1:]:
            view.page.goto(href)
            assert view.page.evaluate(CHROME)["current"] == [label], label
        # Signed in, the officer's and the admin's sections appear too.
        _sign_in(view, site, "admin")
        sections = view.page.evaluate(CHROME)["sections"]
        assert sections[:6] == SECTIONS and "Registers" in sections and "Admin" in sections
        view.page.click(".govuk-service-navigation__list >> text='Registers'")
        view.page.wait_for_url("**/registers")
        assert "libraries_staffordshire" in view.page.inner_text("main")


def test_text_pages_fit_a_320_pixel_screen(site, artifacts):
    with open_page(site + "/privacy", width=320) as view:
        for key in TEXT_PAGES:
            chrome = _visit(view, site, PUBLIC_PAGES[key])
            assert chrome["overflow"] <= 0, f"{key} scrolls sideways by {chrome['overflow']} px"
        view.screenshot(artifacts / "layout" / "gap-report-320.png")


def test_without_javascript_the_map_shows_the_table_and_a_note(site, artifacts):
    with open_page(site + f"/?district={TAMWORTH}", javascript=False) as view:
        view.page.wait_for_url("**/assets?**")
        text = view.page.inner_text("main")
        assert "The map needs JavaScript" in text and "Tamworth Library" in text
        assert view.page.evaluate(CHROME)["header"] == 1
        view.screenshot(artifacts / "layout" / "map-without-javascript.png")


def test_the_keyboard_reaches_the_header_then_the_filters_then_the_map(site):
    with open_page(site + "/") as view:
        view.page.wait_for_selector("body[data-assets-loaded='1']")
        order = []
        for _ in range(12):
            view.page.keyboard.press("Tab")
            order.append(view.page.evaluate("() => { const e = document.activeElement;"
                                            " return (e.textContent || e.id || e.name || '').trim().slice(0, 30); }"))
        assert order[0] == "Skip to main content" and order[1] == "asset-map"
        assert order[2:8] == SECTIONS and order[8] == "Sign in"
        assert order[9] == "Search and filters" and order[10] == "postcode"


def test_on_a_phone_the_filters_fold_away_above_the_map(site, artifacts):
    with open_page(site + "/", width=375, height=740) as view:
        view.page.wait_for_selector("body[data-assets-loaded='1']")
        assert view.page.evaluate("() => document.getElementById('map-panel').open") is False
        box = view.page.locator(".map-frame").bounding_box()
        assert box["width"] >= 370 and box["height"] >= 400
        view.page.click("#map-panel summary")
        assert view.page.is_visible("#f-district")
        view.screenshot(artifacts / "layout" / "map-phone-filters-open.png")
