"""The moderation queue: who may see it, what a moderator sees (map, nearest assets, likely duplicates, the
difference field by field), and each decision (accept, edit then accept, merge, reject), audited, once."""

import re

import pytest
from sqlalchemy import text

from asset_map import moderation, suggestions
from asset_map.errors import InputError
from tests.accounts import signed_in_client
from tests.community_data import community_app, community_engine, community_template, community_url  # noqa: F401

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client, path):
    return _CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _suggest(engine, **fields):
    form = {"name": "Glascote Youth Club", "category": "youth_club", "postcode": "B77 2ED",
            "suggester_name": "Sam Resident"} | fields
    return suggestions.submit(engine, form, kind=fields.pop("kind", "new"), asset_id=fields.pop("asset_id", None))


def _asset(engine, name):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM assets WHERE name = :n AND withdrawn_at IS NULL"),
                            {"n": name}).scalar_one()


def test_the_queue_is_for_organisers_and_officers(community_app, community_engine):
    _suggest(community_engine)
    public = community_app.test_client()
    res = public.get("/moderation")
    assert res.status_code == 302 and "/sign-in" in res.headers["Location"]
    assert public.get("/moderation/1").status_code == 302
    # The header shows no count to the public, and the count to a moderator.
    assert "moderation-link" not in public.get("/assets").get_data(as_text=True)
    organiser = signed_in_client(community_app, community_engine, "organiser")
    page = organiser.get("/moderation").get_data(as_text=True)
    assert "Glascote Youth Club" in page and "Sam Resident" not in page
    assert re.search(r'id="moderation-link"[^>]*>Moderation <strong[^>]*>1<', organiser.get("/assets").get_data(
        as_text=True))


def test_a_suggestion_next_to_a_library_of_the_same_name_is_a_likely_duplicate(community_app, community_engine):
    sid = _suggest(community_engine, name="Glascote library", category="community_run_library")
    organiser = signed_in_client(community_app, community_engine, "organiser")
    page = organiser.get(f"/moderation/{sid}").get_data(as_text=True)
    duplicates = page[page.index('id="duplicates"'):page.index('id="nearest"')]
    assert "Glascote Library" in duplicates and "same postcode" in duplicates
    assert "Sam Resident" in page  # the moderator may ask the suggester


def test_a_youth_club_is_not_a_duplicate_of_the_library_down_the_road(community_app, community_engine):
    sid = _suggest(community_engine, postcode="", lat="52.6339", lon="-1.6958")
    suggestion = suggestions.get(community_engine, sid)
    found = suggestions.checks(community_engine, suggestion, role="organiser")
    assert found["duplicates"] == [] and found["nearest"]
    assert all(r["tier"] != "individual" for r in found["nearest"])


def test_a_change_shows_the_difference_field_by_field(community_app, community_engine):
    asset_id = _asset(community_engine, "Glascote Library")
    sid = suggestions.submit(community_engine, {"name": "Glascote Library", "category": "community_run_library",
                                                "phone": "01827 475645", "url": "https://glascote.example.org"},
                             kind="change", asset_id=asset_id)
    organiser = signed_in_client(community_app, community_engine, "organiser")
    page = organiser.get(f"/moderation/{sid}").get_data(as_text=True)
    diff = page[page.index('id="diff"'):page.index("Likely duplicates")]
    assert "phone" in diff and "01827 475645" in diff and "(empty)" in diff and "name" not in diff.split("<tbody")[1]


def test_reject_needs_a_reason_is_audited_and_happens_once(community_app, community_engine):
    sid = _suggest(community_engine)
    organiser = signed_in_client(community_app, community_engine, "organiser")
    token = _token(organiser, f"/moderation/{sid}")
    res = organiser.post(f"/moderation/{sid}/reject", data={"csrf_token": token, "reason": ""})
    assert res.status_code == 400 and "Enter a reason" in res.get_data(as_text=True)
    res = organiser.post(f"/moderation/{sid}/reject", data={"csrf_token": token, "reason": "<b>spam</b> spam"})
    assert res.status_code == 302
    with community_engine.connect() as conn:
        row = conn.execute(text("SELECT status, reason, decided_by, suggester_name FROM suggestions")).one()
        event = conn.execute(text("SELECT actor, details FROM audit_log WHERE action = 'moderation'")).one()
    assert tuple(row) == ("rejected", "spam spam", "organiser@example.org", None)
    assert event.actor == "organiser@example.org" and event.details["decision"] == "rejected"
    again = organiser.post(f"/moderation/{sid}/reject", data={"csrf_token": token, "reason": "again"})
    assert again.status_code == 409 and "already been decided" in again.get_data(as_text=True)
    with pytest.raises(InputError):
        moderation.reject(community_engine, sid, "x", actor="t")


def test_decisions_need_csrf(community_app, community_engine):
    sid = _suggest(community_engine)
    organiser = signed_in_client(community_app, community_engine, "organiser")
    assert organiser.post(f"/moderation/{sid}/reject", data={"reason": "spam"}).status_code == 400
    assert suggestions.get(community_engine, sid)["status"] == "waiting"


def _history(engine, asset_id):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version, action, actor, changes, reason FROM asset_versions "
                                 "WHERE asset_id = :i ORDER BY version"), {"i": asset_id}).mappings().all()


def test_accepting_a_new_asset_puts_it_in_the_district_manual_register_with_history(community_app,
                                                                                  community_engine):
    sid = _suggest(community_engine, postcode="", lat="52.6339", lon="-1.6958", description="Fridays 6-8pm")
    organiser = signed_in_client(community_app, community_engine, "organiser")
    token = _token(organiser, f"/moderation/{sid}")
    res = organiser.post(f"/moderation/{sid}/accept", data={"csrf_token": token})
    assert res.status_code == 302
    with community_engine.connect() as conn:
        asset = conn.execute(text("SELECT id, register, name, tier, category, district_code, status FROM assets "
                                  "WHERE name = 'Glascote Youth Club'")).mappings().one()
        status, result = conn.execute(text("SELECT status, result_asset_id FROM suggestions")).one()
    assert asset["register"] == "manual-E07000199" and asset["tier"] == "association"
    assert (status, result) == ("accepted", asset["id"])
    [created] = _history(community_engine, asset["id"])
    assert created["action"] == "create" and created["actor"] == "organiser@example.org"
    # Now on the public map.
    public = community_app.test_client().get("/api/assets.geojson?q=Glascote%20Youth").get_data(as_text=True)
    assert "Glascote Youth Club" in public


def test_edit_then_accept_uses_the_moderators_values(community_app, community_engine):
    sid = _suggest(community_engine, category="not_sure", name="glascote yth club")
    organiser = signed_in_client(community_app, community_engine, "organiser")
    token = _token(organiser, f"/moderation/{sid}")
    res = organiser.post(f"/moderation/{sid}/accept", data={"csrf_token": token, "name": "glascote yth club"})
    assert res.status_code == 400 and "Choose what kind of asset" in res.get_data(as_text=True)
    res = organiser.post(f"/moderation/{sid}/accept", data={"csrf_token": token, "name": "Glascote Youth Club",
                                                              "category": "youth_club", "phone": "01827 000111"})
    assert res.status_code == 302
    with community_engine.connect() as conn:
        row = conn.execute(text("SELECT name, category, phone FROM assets WHERE register LIKE 'manual-%'")).one()
    assert tuple(row) == ("Glascote Youth Club", "youth_club", "01827 000111")


def test_accepting_a_change_overrides_the_imported_asset_and_keeps_the_old_value(community_app, community_engine):
    asset_id = _asset(community_engine, "Glascote Library")
    sid = suggestions.submit(community_engine, {"name": "Glascote Library", "category": "community_run_library",
                                                "phone": "01827 475645"}, kind="change", asset_id=asset_id)
    moderation.accept(community_engine, sid, actor="officer@example.org", role="officer")
    with community_engine.connect() as conn:
        phone = conn.execute(text("SELECT phone FROM assets WHERE id = :i"), {"i": asset_id}).scalar_one()
        override = conn.execute(text("SELECT field, value FROM asset_overrides WHERE asset_id = :i AND "
                                     "revoked_at IS NULL"), {"i": asset_id}).all()
    assert phone == "01827 475645" and ("phone", "01827 475645") in [tuple(o) for o in override]
    last = _history(community_engine, asset_id)[-1]
    assert last["action"] == "edit" and last["changes"]["phone"][1] == "01827 475645"
    assert "suggestion" in last["reason"]


def test_merging_fills_what_the_asset_lacks_and_nothing_else(community_app, community_engine):
    asset_id = _asset(community_engine, "Glascote Library")
    sid = _suggest(community_engine, name="Glascote library", category="community_run_library",
                   phone="01827 475645", address="Somewhere else")
    organiser = signed_in_client(community_app, community_engine, "organiser")
    token = _token(organiser, f"/moderation/{sid}")
    res = organiser.post(f"/moderation/{sid}/merge", data={"csrf_token": token, "asset_id": asset_id})
    assert res.status_code == 302
    with community_engine.connect() as conn:
        phone, address = conn.execute(text("SELECT phone, address FROM assets WHERE id = :i"), {"i": asset_id}).one()
        status = conn.execute(text("SELECT status FROM suggestions")).scalar_one()
        n = conn.execute(text("SELECT count(*) FROM assets WHERE name ILIKE 'glascote library'")).scalar_one()
    assert phone == "01827 475645" and address != "Somewhere else" and status == "merged" and n == 1


def test_a_change_can_clear_a_field_shown_as_cleared_applied_empty_and_kept_in_history(community_app,
                                                                                       community_engine):
    asset_id = _asset(community_engine, "Glascote Library")
    with community_engine.connect() as conn:
        address = conn.execute(text("SELECT address FROM assets WHERE id = :i"), {"i": asset_id}).scalar_one()
    assert address  # the register gives the library an address
    public = community_app.test_client()
    form = public.get(f"/suggest?asset={asset_id}").get_data(as_text=True)
    assert 'id="address-clear" name="clear" type="checkbox" value="address"' in form
    assert 'id="postcode-clear"' not in form  # the asset would lose its place
    # The sender ticks "remove this" (what the field still holds does not matter) and adds a phone.
    res = public.post("/suggest", data={"csrf_token": _CSRF.search(form).group(1), "asset": str(asset_id),
                                        "name": "Glascote Library", "category": "community_run_library",
                                        "address": address, "clear": ["address", "postcode", "name"],
                                        "phone": "01827 475645"})
    assert res.status_code in (200, 302), res.get_data(as_text=True)[:1500]
    with community_engine.connect() as conn:
        sid, cleared = conn.execute(text("SELECT id, cleared FROM suggestions")).one()
    assert cleared == ["address"]  # only what may be emptied
    organiser = signed_in_client(community_app, community_engine, "organiser")
    page = organiser.get(f"/moderation/{sid}").get_data(as_text=True)
    diff = page[page.index('id="diff"'):page.index("Likely duplicates")]
    assert "address" in diff and address in diff and "cleared" in diff and "01827 475645" in diff
    assert organiser.post(f"/moderation/{sid}/accept", data={"csrf_token": _CSRF.search(page).group(1)}
                          ).status_code == 302
    with community_engine.connect() as conn:
        now = conn.execute(text("SELECT address, phone FROM assets WHERE id = :i"), {"i": asset_id}).one()
    assert not now.address and now.phone == "01827 475645"
    last = _history(community_engine, asset_id)[-1]
    assert last["changes"]["address"][0] == address and not last["changes"]["address"][1]


def test_without_remove_this_an_empty_field_changes_nothing(community_app, community_engine):
    asset_id = _asset(community_engine, "Glascote Library")
    sid = suggestions.submit(community_engine, {"name": "Glascote Library", "category": "community_run_library",
                                                "address": ""}, kind="change", asset_id=asset_id)
    assert suggestions.checks(community_engine, suggestions.get(community_engine, sid), role="organiser")["diff"] == []


def test_the_queue_opens_on_a_machine_booted_moments_ago(community_app, community_engine, monkeypatch):
    # The monotonic clock counts from boot: a cache stamped "at 0" once looked fresh for its whole TTL, and the
    # queue failed (KeyError) on every request for the first five minutes of a new machine.
    from asset_map.web import community

    _suggest(community_engine)
    community_app.extensions.pop("asset_map.community_bounds", None)
    monkeypatch.setattr(community.time, "monotonic", lambda: 12.0)
    organiser = signed_in_client(community_app, community_engine, "organiser")
    res = organiser.get("/moderation")
    assert res.status_code == 200 and "Glascote Youth Club" in res.get_data(as_text=True)


def test_the_kept_queue_changes_as_soon_as_a_suggestion_does(community_app, community_engine, monkeypatch):
    """Queue pages are kept in memory under the community change stamp: a new suggestion, or one decided, shows at
    once. Kept under the map's stamps only (the protection off), the queue would go on showing the old list."""
    from asset_map.store import change_stamps
    from asset_map.web import moderation as routes

    organiser = signed_in_client(community_app, community_engine, "organiser")
    first = _suggest(community_engine, name="Belgrave Chess Club")
    assert "Belgrave Chess Club" in organiser.get("/moderation").get_data(as_text=True)
    _suggest(community_engine, name="Wilnecote Walking Group")
    with community_engine.begin() as conn:
        conn.execute(text("UPDATE suggestions SET status = 'rejected', reason = 'test' WHERE id = :i"), {"i": first})
    page = organiser.get("/moderation").get_data(as_text=True)
    assert "Wilnecote Walking Group" in page and "Belgrave Chess Club" not in page

    real = change_stamps.StampedCache
    monkeypatch.setattr(routes, "StampedCache", lambda *a, **k: real(*a, **{**k, "families": ("reference",)}))
    community_app.extensions.pop("asset_map.moderation_queues")
    assert "Wilnecote Walking Group" in organiser.get("/moderation").get_data(as_text=True)
    _suggest(community_engine, name="Amington Allotment Society")
    assert "Amington Allotment Society" not in organiser.get("/moderation").get_data(as_text=True)
