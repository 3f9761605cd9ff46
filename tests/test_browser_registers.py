"""Issue 13's "Done when", in headless Chromium, as a new officer: upload the pack's real libraries_2023.csv, map its
columns, read the preview, import it in the background, fix the quarantined row on the map, add a community centre by
clicking the map, verify an asset, edit an imported asset and re-import the register without losing the edit, roll
the register back, and see each step in the asset's history and in the audit log. Screenshots in tests/artifacts.

The database is the pack without the 2021 NSPL extract, so the gazetteer (Code-Point 2014) does not know TF9 4NX:
Loggerheads Library (a Staffordshire library with a Shropshire postcode) is quarantined, as it would be for a
council with an older gazetteer, and the officer places it on the map.
"""

import threading

import pytest
from sqlalchemy import text

from asset_map import jobs
from tests.accounts import PASSWORD, make_user
from tests.browser import ARTIFACTS, open_page, require_browser
from tests.conftest import copied_database, engine_over, make_app

pytestmark = pytest.mark.browser
FILE = "libraries_2023.csv"
LOGGERHEADS = (-2.4005, 52.9215)     # lon, lat of Loggerheads Library (Newcastle-under-Lyme)
RISING_BROOK = (-2.1265, 52.7985)    # a community centre in Stafford


@pytest.fixture
def served(pg_server, pack_db, tmp_path, live_server):
    require_browser()
    with copied_database(pg_server, pack_db.rsplit("/", 1)[1]) as url, engine_over(url) as engine:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM postcodes WHERE source = 'nspl'"))
        app = make_app(url, tmp_path)
        make_user(engine, "officer")
        make_user(engine, "admin")
        yield live_server(app), engine, app.config["ASSET_MAP"]


def _sign_in(view, base, role):
    view.page.goto(base + "/sign-in")
    view.page.fill("#email", f"{role}@example.org")
    view.page.fill("#password", PASSWORD)
    view.page.click("button[type=submit]")
    view.page.wait_for_load_state("load")


def _click_map_at(view, lon, lat):
    """Click the page's small map where (lon, lat) is (Leaflet wants [lat, lon])."""
    view.page.wait_for_selector("#point-map[data-ready='1']")
    point = view.page.evaluate(f"() => {{ window.pointMap.setView([{lat}, {lon}], 15); "
                               f"const p = window.pointMap.latLngToContainerPoint([{lat}, {lon}]); "
                               "return [p.x, p.y]; }")
    view.page.locator("#point-map").click(position={"x": point[0], "y": point[1]})


def _import_in_background(view, settings, shot):
    """Confirm the preview, let a worker take the job (as `asset-map worker` would), and wait for the page."""
    view.page.click("#confirm-import")
    view.page.wait_for_selector("#jobs")
    worker = threading.Thread(target=jobs.work, args=(settings,), kwargs={"wait": False})
    worker.start()
    worker.join(timeout=120)
    view.page.reload()
    view.page.wait_for_selector(".job-succeeded", timeout=30000)
    view.screenshot(ARTIFACTS / shot)


def _upload_and_preview(view, base, path, *, new=True):
    view.page.goto(base + "/registers/upload" + ("" if new else "?register=libraries_2023"))
    if new:
        view.page.fill("#new_register", "libraries_2023")
    view.page.set_input_files("#file", str(path))
    view.page.click("#upload")
    view.page.wait_for_selector("#save-mapping")


def test_done_when_the_officer_path_end_to_end(served, pack):
    base, engine, settings = served
    with open_page(base + "/sign-in", width=1280, height=1000) as view:
        _sign_in(view, base, "officer")

        # Upload and map the columns: the shipped mapping for this file name is proposed, with sample values.
        _upload_and_preview(view, base, pack / "registers" / FILE)
        assert "libraries_2023.yaml" in view.page.inner_text("#mapping-source")
        assert view.page.locator("select[data-column='name']").input_value() == "name"
        view.screenshot(ARTIFACTS / "registers-1-mapping.png")
        view.page.click("#save-mapping")

        # The preview: counts, the quarantined row and its reason, a map of the placed rows; nothing written yet.
        view.page.wait_for_selector("#preview-counts")
        counts = view.page.inner_text("#preview-counts")
        assert "New assets\t73" in counts and "Quarantined (cannot be placed)\t1" in counts
        assert "TF9 4NX" in view.page.content()
        view.page.wait_for_selector("#point-map .leaflet-interactive")
        view.screenshot(ARTIFACTS / "registers-2-preview.png")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM assets")).scalar() == 0

        _import_in_background(view, settings, "registers-3-imported.png")
        assert "73 written" in view.page.inner_text("#jobs + table, #jobs ~ table")

        # Fix the quarantined row on the map.
        view.page.click("#quarantine-link")
        view.page.click("#quarantine a:has-text('Fix')")
        assert "TF9 4NX" in view.page.inner_text("#problems")
        _click_map_at(view, *LOGGERHEADS)
        assert view.page.input_value("#lon") != ""
        view.page.fill("#reason", "placed at the library; TF9 postcode not in our gazetteer")
        view.page.locator("#problems").scroll_into_view_if_needed()
        view.screenshot(ARTIFACTS / "registers-4-quarantine-fix.png")
        view.page.click("#retry")
        view.page.wait_for_selector("h1")
        assert "Loggerheads" in view.page.inner_text("h1")
        assert "Newcastle-under-Lyme" in view.page.content()
        loggerheads_url = view.page.url

        # Add a community centre by clicking the map, then verify it.
        view.page.goto(base + "/assets/new")
        view.page.fill("#name", "Rising Brook Community Centre")
        view.page.select_option("#category", "community_centre")
        # District outlines give the click something to go by even without base-map tiles.
        view.page.wait_for_selector("#point-map[data-districts='1']")
        view.page.evaluate("() => window.pointMap.setView([52.80, -2.13], 12)")
        view.screenshot(ARTIFACTS / "registers-5a-pick-map.png")
        _click_map_at(view, *RISING_BROOK)
        view.screenshot(ARTIFACTS / "registers-5-add-asset.png")
        view.page.click("#save")
        view.page.wait_for_selector("#verify")
        assert "manual-E07000197" in view.page.content()
        view.page.click("#verify")
        view.page.wait_for_selector(".govuk-notification-banner")
        assert "checked today" in view.page.content()
        view.screenshot(ARTIFACTS / "registers-6-added-and-verified.png")

        # Edit an imported asset, then import the register again: the edit stays.
        with engine.connect() as conn:
            audley = conn.execute(text("SELECT id FROM assets WHERE name = 'Audley Library'")).scalar()
        view.page.goto(f"{base}/assets/{audley}/edit")
        view.page.fill("#name", "Audley Community Library")
        view.page.fill("#reason", "renamed by the community group")
        view.page.click("#save")
        view.page.wait_for_selector(".govuk-notification-banner")
        _upload_and_preview(view, base, pack / "registers" / FILE, new=False)
        assert "saved mapping of register libraries_2023" in view.page.inner_text("#mapping-source")
        view.page.click("#save-mapping")
        view.page.wait_for_selector("#preview-counts")
        counts = view.page.inner_text("#preview-counts")
        assert "New assets\t0" in counts and "Quarantined (cannot be placed)\t0" in counts
        _import_in_background(view, settings, "registers-7-reimported.png")
        view.page.goto(f"{base}/assets/{audley}")
        assert "Audley Community Library" in view.page.inner_text("h1")
        assert "Kept through re-imports" in view.page.content()
        view.page.goto(loggerheads_url)
        assert "Loggerheads" in view.page.inner_text("h1")

        # Roll the register back to its first import: the edit is undone, as a new version.
        view.page.goto(base + "/registers/libraries_2023")
        view.page.locator("form.rollback button").last.click()
        view.page.wait_for_selector(".govuk-notification-banner")
        assert "Rolled back" in view.page.content()
        view.screenshot(ARTIFACTS / "registers-8-rolled-back.png")
        view.page.goto(f"{base}/assets/{audley}")
        assert "Audley Library" == view.page.inner_text("h1").strip()
        history = view.page.inner_text("#history + table")
        for action in ("import", "edit", "rollback"):
            assert action in history
        view.screenshot(ARTIFACTS / "registers-9-history.png")
        assert view.console_errors == []

        # The audit log (an admin's page) has every step.
        view.page.context.clear_cookies()
        _sign_in(view, base, "admin")
        view.page.goto(base + "/admin/audit")
        log = view.page.inner_text("main")
        for action in ("upload", "mapping-save", "import-queued", "import", "quarantine-fix", "asset-create",
                       "asset-verify", "asset-edit", "rollback"):
            assert action in log, action
        view.screenshot(ARTIFACTS / "registers-10-audit.png")
