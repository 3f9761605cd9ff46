"""The issue's "Done when" path in headless Chromium, on the real Staffordshire pack and its library registers:
a resident suggests a youth club from the map and offers a skill with consent; an organiser accepts the club after
seeing it is not a duplicate and sees the person only as a count; confirm links go to Tamworth's stale libraries
through a local SMTP server; one is confirmed and another corrected, the correction accepted; Tamworth's freshness
rises; the person withdraws from their private link and is gone everywhere. The person's offer waits for an officer
(who sees the person's fields) before it counts anywhere; the organiser learns only that it waits. Screenshots in
tests/artifacts."""

import re

import pytest
from sqlalchemy import text

from tests.accounts import PASSWORD, email_for, make_user
from tests.browser import open_page, require_browser
from tests.community_data import community_engine, community_template, community_url  # noqa: F401
from tests.conftest import make_app
from tests.mailbox import inbox  # noqa: F401

pytestmark = pytest.mark.browser
TAMWORTH = "E07000199"


def _headline(page):
    return page.inner_text("#headline")


def test_the_community_keeps_its_own_map(community_url, community_engine, tmp_path, live_server, inbox, artifacts):
    require_browser()
    with community_engine.begin() as conn:
        # The pack's registers carry no e-mail addresses: an officer adds each library's contact.
        conn.execute(text("UPDATE assets SET email = lower(regexp_replace(name, '[^A-Za-z]+', '.', 'g')) || "
                          "'@example.org' WHERE district_code = :d AND tier <> 'individual'"), {"d": TAMWORTH})
        stale_before = conn.execute(text("SELECT count(*) FROM assets WHERE district_code = :d AND "
                                         "last_verified IS NULL"), {"d": TAMWORTH}).scalar_one()
    make_user(community_engine, "organiser")
    make_user(community_engine, "officer")
    app = make_app(community_url, tmp_path, SMTP_URL=inbox.url)
    base = live_server(app)
    app.config["ASSET_MAP"]["SITE_URL"] = base

    # -- a resident suggests a youth club from the map (Glascote, Tamworth) ------------------------------------
    with open_page(base + "/#map=16/52.62750/-1.66700") as view:
        page = view.page
        page.wait_for_function("() => document.getElementById('suggest-here').href.includes('lat=')")
        page.click("#suggest-here")
        page.wait_for_selector("#point-map[data-ready='1']")
        assert page.input_value("#lat").startswith("52.62")
        page.fill("#name", "Glascote Youth Club")
        page.select_option("#category", "youth_club")
        page.fill("#description", "Tuesday and Thursday evenings for 11 to 16 year olds, in the church hall.")
        page.fill("#offers", "activities, a safe space")
        page.fill("#suggester_name", "Sam Resident")
        # The resident moves the point a little by clicking the map.
        page.click("#point-map", position={"x": 330, "y": 170})
        view.screenshot(artifacts / "community-1-suggest.png")
        page.click("button:has-text('Send suggestion')")
        page.wait_for_selector("text=Your suggestion has been sent")

        # -- and offers a skill with consent -------------------------------------------------------------------
        page.goto(base + "/offer")
        page.fill("#name", "Priya Helper")
        page.fill("#offers", "reading with children, gardening")
        page.fill("#postcode", "B77 2ED")
        page.check("#contact_by-email")
        page.fill("#email", "priya@example.org")
        page.click("button:has-text('Offer my help')")
        assert "agree to the statement" in page.inner_text(".govuk-error-summary")  # no consent, nothing kept
        page.check("#consent-agree")
        view.screenshot(artifacts / "community-2-offer.png")
        page.click("button:has-text('Offer my help')")
        private_link = page.get_attribute("#private-link", "href")
        # The one error is the form answered 400 without consent, as it should be.
        assert [e for e in view.console_errors if "status of 400" not in e] == []
        assert view.external_requests == []
    with community_engine.connect() as conn:
        # The offer waits for an officer: it is nobody's asset yet.
        assert conn.execute(text("SELECT consent_wording FROM pending_offers WHERE name = 'Priya Helper' "
                                 "AND status = 'waiting'")).scalar_one()
        assert conn.execute(text("SELECT count(*) FROM assets WHERE name = 'Priya Helper'")).scalar_one() == 0
    # The private link also arrived by e-mail.
    assert any("Priya" not in m["Subject"] and private_link in m.get_content() for _, m in inbox.messages)

    # -- an organiser checks the club is not a duplicate and accepts it; the person is only a count ----------
    with open_page(base + "/sign-in") as view:
        page = view.page
        page.fill("#email", email_for("organiser"))
        page.fill("#password", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.goto(base + "/moderation")
        assert re.search(r"Moderation\s*1", page.inner_text("#moderation-link"))
        # The organiser learns that an offer waits, not who made it.
        waiting = page.inner_text("#offers-waiting")
        assert "1 offer of help from people waits for a council officer" in waiting and "Priya" not in waiting
        assert "Priya" not in page.inner_text("main")
        page.click("text=Glascote Youth Club")
        page.wait_for_selector("#point-map[data-ready='1']")
        assert "No asset with a similar name" in page.inner_text("#no-duplicates")
        assert "Glascote Library" in page.inner_text("#nearest")
        view.screenshot(artifacts / "community-3-moderation.png", )
        page.click("#accept button")
        page.wait_for_selector("text=accepted: it is on the map")

        # -- an officer, who may see people, checks the offer and accepts it; only then is it counted ----------
        officer = page.context.browser.new_context().new_page()
        officer.goto(base + "/sign-in")
        officer.fill("#email", email_for("officer"))
        officer.fill("#password", PASSWORD)
        officer.click("button:has-text('Sign in')")
        officer.goto(base + "/moderation/offers")
        card = officer.inner_text("#offers")
        assert "Priya Helper" in card and "priya@example.org" in card and "reading with children" in card
        officer.screenshot(path=str(artifacts / "community-3b-offer-moderation.png"))
        officer.click("#offers .offer-accept button")
        officer.wait_for_selector("text=shown to the public only as a count")
        officer.context.close()
        page.goto(base + f"/districts/{TAMWORTH}")
        body = page.inner_text("main")
        assert "Priya" not in body and "fewer than" in body
        view.screenshot(artifacts / "community-4-district-count.png")

        # -- confirm links to Tamworth's stale libraries through the local SMTP server ---------------------
        page.goto(base + f"/districts/{TAMWORTH}/freshness")
        before = _headline(page)
        page.click("#send-all")
        page.wait_for_selector("#results")
        assert f"{stale_before} sent by e-mail" in page.inner_text("#summary")
        links = [re.search(r"(http://\S+/confirm/\S+)", m.get_content()).group(1) for _, m in inbox.messages
                 if "/confirm/" in m.get_content()]
        assert len(links) == stale_before

        # The contact of one confirms; the contact of another corrects (a fresh browser: no sign-in).
        public = page.context.browser.new_context().new_page()
        public.goto(links[0])
        public.click("button:has-text('Yes, this is right')")
        public.wait_for_selector("text=confirmed as right")
        public.goto(links[0])
        assert "already used" in public.inner_text("main")
        public.goto(links[1])
        public.click("text=Something has changed")
        public.fill("#phone", "01827 475645")
        public.screenshot(path=str(artifacts / "community-5-correct.png"))
        public.click("button:has-text('Send the changes')")
        public.wait_for_selector("text=Your changes have been sent")

        # The organiser accepts the correction.
        page.goto(base + "/moderation")
        page.click("tr:has-text('Correction from its contact') th a")
        assert "01827 475645" in page.inner_text("#diff")
        page.click("#accept button")
        page.wait_for_selector("text=accepted")

        # Tamworth's freshness rises.
        page.goto(base + f"/districts/{TAMWORTH}/freshness")
        after = _headline(page)
        assert after != before and "Confirm links sent" in page.inner_text("#activity")
        assert re.search(r"Answered\s*2", page.inner_text("#activity"))
        view.screenshot(artifacts / "community-6-freshness.png")

    # -- the person withdraws from their private link and is gone everywhere --------------------------------
    with open_page(private_link) as view:
        page = view.page
        assert "Priya Helper" in page.inner_text("#entry") or page.input_value("#name") == "Priya Helper"
        page.click("#withdraw button")
        page.wait_for_selector("text=Your entry has been withdrawn")
        view.screenshot(artifacts / "community-7-withdrawn.png")
        page.goto(private_link)
        assert "was withdrawn on" in page.inner_text("main")
    with community_engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM assets WHERE name = 'Priya Helper' OR email = "
                                 "'priya@example.org'")).scalar_one()
        counted = conn.execute(text("SELECT count(*) FROM assets WHERE tier = 'individual' AND consent IS TRUE "
                                    "AND withdrawn_at IS NULL")).scalar_one()
    assert left == 0 and counted == 0
