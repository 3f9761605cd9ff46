"""A district's freshness: shares verified within 3/6/12 months (issue 19's computation) by tier and category,
the stale list (contacts only for signed-in roles), confirm links sent and answered, suggestions waiting, a chart,
a CSV, and the same figures in a gap report's inputs. Real pack: Tamworth's library registers."""

from datetime import date, timedelta

from sqlalchemy import text

from asset_map import suggestions
from asset_map.maps import freshness
from asset_map.store.assets import AssetFilter
from tests.accounts import signed_in_client
from tests.community_data import community_app, community_engine, community_template, community_url  # noqa: F401

TAMWORTH = "E07000199"


def test_freshness_rises_when_an_asset_is_verified(community_engine):
    before = freshness.district(community_engine, TAMWORTH)
    assert before["overall"]["assets"] > 0 and before["overall"]["verified_12m"] == 0
    with community_engine.begin() as conn:
        conn.execute(text("UPDATE assets SET last_verified = :d WHERE id = (SELECT min(id) FROM assets WHERE "
                          "district_code = :c)"), {"d": date.today() - timedelta(days=40), "c": TAMWORTH})
    after = freshness.district(community_engine, TAMWORTH)
    assert after["overall"]["verified_3m"] == 1 and after["overall"]["share_12m"] > 0
    assert len(after["stale"]) == len(before["stale"]) - 1
    assert "<svg" in after["chart"] and "3 months" in after["chart"]


def test_the_page_shows_contacts_only_to_signed_in_roles(community_app, community_engine):
    with community_engine.begin() as conn:
        conn.execute(text("UPDATE assets SET email = 'glascote@example.org' WHERE name = 'Glascote Library'"))
    suggestions.submit(community_engine, {"name": "Youth Club", "category": "youth_club", "postcode": "B77 2ED"})
    public = community_app.test_client().get(f"/districts/{TAMWORTH}/freshness").get_data(as_text=True)
    assert "Glascote Library" in public and "glascote@example.org" not in public and "send-confirmations" not in public
    organiser = signed_in_client(community_app, community_engine, "organiser")
    page = organiser.get(f"/districts/{TAMWORTH}/freshness").get_data(as_text=True)
    assert "glascote@example.org" in page and 'id="send-confirmations"' in page
    start = page.index('id="activity"')
    activity = page[start:page.index("Download", start)]  # the header's "Downloads and API" comes before it
    assert "Suggestions waiting</dt><dd class=\"govuk-summary-list__value\">1<" in activity


def test_csv_has_the_table(community_app):
    res = community_app.test_client().get(f"/districts/{TAMWORTH}/freshness.csv")
    lines = res.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert res.status_code == 200 and lines[0].startswith("district,tier,category,assets,verified_3m,share_3m")
    assert lines[-1].startswith(f"{TAMWORTH},all,all,")


def test_a_gap_report_records_how_fresh_its_assets_were(community_engine):
    from asset_map import gaps

    request = gaps.GapRequest.from_args({"district": TAMWORTH, "category": "library", "need": "imd:2019"})
    result = gaps.run(community_engine, request)
    f = result.inputs["freshness"]
    assert f["assets"] == result.inputs["assets_used"] and f["verified_12m"] == 0 and f["never_verified"] > 0
    assert f == freshness.summary(community_engine, AssetFilter(category=("library",)))
