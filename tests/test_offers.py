"""Individuals offering their own skills: explicit, versioned consent stored with its date; contact only through
an organiser; every offer waits for an officer before it counts anywhere; a private link to see, change and
withdraw, waiting or accepted; withdrawal erases at once (issue 12's erasure); the public and organisers see the
person only as a protected count."""

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from asset_map import disclosure, offers, privacy
from tests.accounts import signed_in_client
from tests.community_data import community_app, community_engine, community_template, community_url  # noqa: F401

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LINK = re.compile(r'id="private-link" href="([^"]+)"')
PERSON = {"name": "Priya Helper", "offers": "reading with children, gardening", "category": "skill_share",
          "postcode": "B79 7DN", "contact_by": "email", "email": "priya@example.org",
          "consent": offers.CURRENT_WORDING}


def _token(client, path="/offer"):
    return _CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _offer(client, **extra):
    res = client.post("/offer", data={"csrf_token": _token(client), **PERSON, **extra})
    assert res.status_code == 200, res.get_data(as_text=True)[:2000]
    return _LINK.search(res.get_data(as_text=True)).group(1).replace("http://localhost", "")


def _person(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM assets WHERE register = :r"), {"r": offers.REGISTER}).mappings().all()


def _pending(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM pending_offers ORDER BY id")).mappings().all()


def _counted(engine):
    return sum(n for _code, _name, n in disclosure.individual_counts(engine, "district", districts=["E07000199"]))


def _accept(app, engine, offer_id=None):
    officer = signed_in_client(app, engine, "officer")
    offer_id = offer_id or _pending(engine)[-1]["id"]
    page = officer.get("/moderation/offers").get_data(as_text=True)
    res = officer.post(f"/moderation/offers/{offer_id}/accept", data={"csrf_token": _CSRF.search(page).group(1)})
    assert res.status_code == 302, res.get_data(as_text=True)[:2000]
    return officer


def test_an_offer_waits_for_an_officer_and_counts_nowhere_until_accepted(community_app, community_engine):
    client = community_app.test_client()
    page = client.get("/offer").get_data(as_text=True)
    assert offers.WORDINGS[offers.CURRENT_WORDING][:60] in page and offers.CURRENT_WORDING in page
    counted_before = _counted(community_engine)
    link = _offer(client)
    [waiting] = _pending(community_engine)
    assert waiting["status"] == "waiting" and waiting["consent_wording"] == offers.CURRENT_WORDING
    assert waiting["consent_at"] is not None and waiting["district_code"] == "E07000199"
    # Waiting: nobody's asset, so not counted, mapped, exported or reported on.
    assert _person(community_engine) == [] and _counted(community_engine) == counted_before
    with community_engine.connect() as conn:
        audit = conn.execute(text("SELECT details::text FROM audit_log WHERE action = 'offer'")).scalar_one()
    assert "Priya" not in audit and "priya@" not in audit
    organiser = signed_in_client(community_app, community_engine, "organiser")
    # Organisers learn only that an offer waits; the offers' page refuses them.
    queue = organiser.get("/moderation").get_data(as_text=True)
    assert "1 offer of help from people waits for a council officer" in queue
    assert organiser.get("/moderation/offers").status_code == 403
    for who in (client, organiser):
        for path in ("/api/assets.geojson", "/assets?tier=individual", "/export/assets.geojson",
                     "/api/individuals.geojson?district=E07000199", "/moderation", "/moderation/offers"):
            body = who.get(path).get_data(as_text=True)
            assert "Priya" not in body and "priya@example.org" not in body, path
    # The person sees everything held about them, and that it waits.
    mine = client.get(link).get_data(as_text=True)
    assert "Priya Helper" in mine and "priya@example.org" in mine and "Waiting for a council officer" in mine

    # An officer sees the offer with the person's fields and accepts it: now it is an individual, counted.
    officer = _accept(community_app, community_engine)
    [row] = _person(community_engine)
    assert row["tier"] == "individual" and row["consent"] is True and row["visibility"] == "restricted"
    assert row["consent_wording"] == offers.CURRENT_WORDING and row["consent_source"] == offers.SOURCE
    assert row["consent_at"] is not None and row["district_code"] == "E07000199" and row["lsoa21_code"]
    assert row["name"] == "Priya Helper" and row["properties"]["contact_by"] == "email"
    assert _counted(community_engine) == counted_before + 1
    [done] = _pending(community_engine)
    # The offer row keeps the link's key and the asset's id, no second copy of the person.
    assert done["status"] == "accepted" and done["asset_id"] == row["id"] and done["name"] is None
    assert done["email"] is None and done["geom"] is None and done["decided_by"]
    with community_engine.connect() as conn:
        decided = conn.execute(text("SELECT actor, details->>'asset' FROM audit_log "
                                    "WHERE action = 'offer-accept'")).one()
    assert decided[1] == str(row["id"]) and "officer" in decided[0]
    assert "Priya" not in officer.get("/moderation/offers").get_data(as_text=True)  # no longer waiting
    assert "Added" in client.get(link).get_data(as_text=True)
    for path in ("/api/assets.geojson", "/assets?tier=individual", "/moderation"):
        assert "Priya" not in organiser.get(path).get_data(as_text=True), path


def test_an_organiser_would_read_the_person_if_privacy_let_every_role_moderate(community_app, community_engine,
                                                                                monkeypatch):
    """The attack: an organiser opens the waiting offers. privacy.may_moderate_offers is what stops it."""
    _offer(community_app.test_client())
    organiser = signed_in_client(community_app, community_engine, "organiser")
    res = organiser.get("/moderation/offers")
    assert res.status_code == 403 and "Priya" not in res.get_data(as_text=True)
    monkeypatch.setattr(privacy, "may_moderate_offers", lambda role: True)
    body = organiser.get("/moderation/offers").get_data(as_text=True)
    assert "Priya Helper" in body and "priya@example.org" in body


def test_a_rejected_offer_is_erased_and_its_link_says_why(community_app, community_engine):
    client = community_app.test_client()
    link = _offer(client)
    officer = signed_in_client(community_app, community_engine, "officer")
    page = officer.get("/moderation/offers").get_data(as_text=True)
    assert "Priya Helper" in page and "priya@example.org" in page
    offer_id = _pending(community_engine)[0]["id"]
    res = officer.post(f"/moderation/offers/{offer_id}/reject",
                       data={"csrf_token": _CSRF.search(page).group(1), "reason": "we have no reading scheme here"})
    assert res.status_code == 302
    [row] = _pending(community_engine)
    assert row["status"] == "rejected" and row["name"] is None and row["email"] is None and row["offers"] is None
    assert _person(community_engine) == []
    res = client.get(link)
    assert res.status_code == 410 and "no reading scheme" in res.get_data(as_text=True)
    # Deciding twice is refused politely, and nothing changes.
    again = officer.post(f"/moderation/offers/{offer_id}/accept", data={"csrf_token": _CSRF.search(page).group(1)})
    assert again.status_code == 409 and _person(community_engine) == []


@pytest.mark.parametrize("change, field", [({"consent": ""}, "consent"), ({"contact_by": ""}, "contact_by"),
                                           ({"postcode": "B79 9ZZ"}, "postcode"), ({"email": ""}, "email"),
                                           ({"name": "<script>x</script>"}, "name")])
def test_no_consent_or_bad_fields_store_nothing(community_app, community_engine, change, field):
    client = community_app.test_client()
    res = client.post("/offer", data={"csrf_token": _token(client), **PERSON, **change})
    assert res.status_code == 400 and f'href="#{field}"' in res.get_data(as_text=True)
    assert _person(community_engine) == [] and _pending(community_engine) == []


def test_a_waiting_offer_changes_and_withdrawing_it_erases_at_once(community_app, community_engine):
    client = community_app.test_client()
    link = _offer(client)
    token = _token(client, link)
    res = client.post(link, data={"csrf_token": token, **PERSON, "offers": "fixing bikes"})
    assert res.status_code == 302
    assert _pending(community_engine)[0]["offers"] == ["fixing bikes"] and _person(community_engine) == []
    outbox = list((Path(community_app.config["ASSET_MAP"]["VAR_DIR"]) / "outbox").glob("*.eml"))
    assert len(outbox) == 1 and b"priya@example.org" in outbox[0].read_bytes()
    res = client.post(link + "/withdraw", data={"csrf_token": token})
    assert res.status_code == 200 and "has been withdrawn" in res.get_data(as_text=True)
    assert not outbox[0].exists()
    [row] = _pending(community_engine)
    assert row["status"] == "withdrawn" and row["withdrawn_at"] is not None
    assert all(row[f] is None for f in ("name", "email", "phone", "postcode", "offers", "description", "geom"))
    assert _person(community_engine) == []
    again = client.post(link + "/withdraw", data={"csrf_token": token})
    assert again.status_code == 410 and "was withdrawn on" in again.get_data(as_text=True)


def test_the_private_link_changes_and_withdraws_and_withdrawing_twice_is_polite(community_app, community_engine):
    client = community_app.test_client()
    link = _offer(client)
    _accept(community_app, community_engine)
    token = _token(client, link)
    res = client.post(link, data={"csrf_token": token, **PERSON, "offers": "fixing bikes"})
    assert res.status_code == 302
    assert _person(community_engine)[0]["offers"] == ["fixing bikes"]
    outbox = list((Path(community_app.config["ASSET_MAP"]["VAR_DIR"]) / "outbox").glob("*.eml"))
    assert len(outbox) == 1 and b"priya@example.org" in outbox[0].read_bytes()  # no SMTP set: the outbox
    res = client.post(link + "/withdraw", data={"csrf_token": token})
    assert res.status_code == 200 and "has been withdrawn" in res.get_data(as_text=True)
    assert not outbox[0].exists()  # the e-mail with their address and link is gone too
    [row] = _person(community_engine)
    assert row["erased_at"] is not None and row["name"] == "" and row["email"] is None and row["geom"] is None
    assert _pending(community_engine)[0]["status"] == "withdrawn"
    with community_engine.connect() as conn:
        dump = conn.execute(text("SELECT string_agg(details::text, ' ') FROM audit_log")).scalar_one()
    assert "Priya" not in dump
    again = client.post(link + "/withdraw", data={"csrf_token": token})
    assert again.status_code == 410 and "was withdrawn on" in again.get_data(as_text=True)
    assert client.get(link).status_code == 410


def test_a_forged_or_altered_link_is_refused(community_app, community_engine):
    client = community_app.test_client()
    link = _offer(client)
    assert client.get(link[:-3] + "abc").status_code == 404
    assert client.get("/offer/manage/not-a-token").status_code == 404
    other = offers._serializer("another secret").dumps([_pending(community_engine)[0]["id"], "k"])
    assert client.get(f"/offer/manage/{other}").status_code == 404


def test_the_key_check_is_what_stops_a_signed_link_for_someone_else(community_app, community_engine, monkeypatch):
    """Even a correctly signed link needs the entry's own key: with the key check off, it opens the entry."""
    client = community_app.test_client()
    _offer(client)
    victim = _pending(community_engine)[0]["id"]
    forged = offers._serializer("test").dumps([victim, "guessed key"])
    assert client.get(f"/offer/manage/{forged}").status_code == 404
    monkeypatch.setattr(offers.hmac, "compare_digest", lambda a, b: True)
    assert "Priya Helper" in client.get(f"/offer/manage/{forged}").get_data(as_text=True)


def test_subject_access_and_erasure_reach_a_waiting_offer(community_app, community_engine):
    """A person whose offer still waits for an officer is found, exported and erased by the admin's rights pages
    like any individual: their data is held though it is not yet an asset."""
    from tests.accounts import csrf_token

    link = _offer(community_app.test_client())
    [waiting] = _pending(community_engine)
    admin = signed_in_client(community_app, community_engine, "admin")
    page = admin.post("/admin/people", data={"csrf_token": csrf_token(admin), "email": "PRIYA@example.org"})
    body = page.get_data(as_text=True)
    assert f'name="offer_id" value="{waiting["id"]}"' in body and "Priya" not in body
    sar = admin.post("/admin/people/export", data={"csrf_token": csrf_token(admin), "offer_id": str(waiting["id"])})
    doc = sar.get_json()
    assert doc["assets"] == [] and doc["waiting_offers"][0]["name"] == "Priya Helper"
    assert [e["action"] for e in doc["audit_events"]] == ["offer"]
    done = admin.post("/admin/people/erase", data={"csrf_token": csrf_token(admin), "offer_id": str(waiting["id"]),
                                                   "reason": "erasure request", "confirm": "yes"},
                      follow_redirects=True)
    assert "1 waiting offer(s)" in done.get_data(as_text=True)
    [row] = _pending(community_engine)
    assert row["status"] == "withdrawn" and all(row[f] is None for f in ("name", "email", "postcode", "geom"))
    again = admin.post("/admin/people", data={"csrf_token": csrf_token(admin), "email": "priya@example.org"})
    assert "Nobody" in again.get_data(as_text=True) or 'name="offer_id"' not in again.get_data(as_text=True)
    gone = community_app.test_client().get(link)
    assert gone.status_code == 410
