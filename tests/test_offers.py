"""Individuals offering their own skills: explicit, versioned consent stored with its date; contact only through
an organiser; a private link to see, change and withdraw; withdrawal erases at once (issue 12's erasure); the
public and organisers see the person only as a protected count."""

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from asset_map import offers
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


def test_an_offer_is_stored_with_its_consent_and_shown_to_nobody_public(community_app, community_engine):
    client = community_app.test_client()
    page = client.get("/offer").get_data(as_text=True)
    assert offers.WORDINGS[offers.CURRENT_WORDING][:60] in page and offers.CURRENT_WORDING in page
    link = _offer(client)
    [row] = _person(community_engine)
    assert row["tier"] == "individual" and row["consent"] is True and row["visibility"] == "restricted"
    assert row["consent_wording"] == offers.CURRENT_WORDING and row["consent_source"] == offers.SOURCE
    assert row["consent_at"] is not None and row["district_code"] == "E07000199" and row["lsoa21_code"]
    with community_engine.connect() as conn:
        audit = conn.execute(text("SELECT details::text FROM audit_log WHERE action = 'offer'")).scalar_one()
    assert "Priya" not in audit and "priya@" not in audit
    organiser = signed_in_client(community_app, community_engine, "organiser")
    for who in (client, organiser):
        for path in ("/api/assets.geojson", "/assets?tier=individual", "/export/assets.geojson",
                     "/api/individuals.geojson?district=E07000199", "/moderation"):
            body = who.get(path).get_data(as_text=True)
            assert "Priya" not in body and "priya@example.org" not in body, path
    # The person sees everything held about them.
    mine = client.get(link).get_data(as_text=True)
    assert "Priya Helper" in mine and "priya@example.org" in mine and "reading with children" in mine


@pytest.mark.parametrize("change, field", [({"consent": ""}, "consent"), ({"contact_by": ""}, "contact_by"),
                                           ({"postcode": "B79 9ZZ"}, "postcode"), ({"email": ""}, "email"),
                                           ({"name": "<script>x</script>"}, "name")])
def test_no_consent_or_bad_fields_store_nothing(community_app, community_engine, change, field):
    client = community_app.test_client()
    res = client.post("/offer", data={"csrf_token": _token(client), **PERSON, **change})
    assert res.status_code == 400 and f'href="#{field}"' in res.get_data(as_text=True)
    assert _person(community_engine) == []


def test_the_private_link_changes_and_withdraws_and_withdrawing_twice_is_polite(community_app, community_engine):
    client = community_app.test_client()
    link = _offer(client)
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
    with community_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM offer_keys")).scalar_one() == 0
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
    other = offers._serializer("another secret").dumps([_person(community_engine)[0]["id"], "k"])
    assert client.get(f"/offer/manage/{other}").status_code == 404


def test_the_key_check_is_what_stops_a_signed_link_for_someone_else(community_app, community_engine, monkeypatch):
    """Even a correctly signed link needs the entry's own key: with the key check off, it opens the entry."""
    client = community_app.test_client()
    _offer(client)
    victim = _person(community_engine)[0]["id"]
    forged = offers._serializer("test").dumps([victim, "guessed key"])
    assert client.get(f"/offer/manage/{forged}").status_code == 404
    monkeypatch.setattr(offers.hmac, "compare_digest", lambda a, b: True)
    assert "Priya Helper" in client.get(f"/offer/manage/{forged}").get_data(as_text=True)
