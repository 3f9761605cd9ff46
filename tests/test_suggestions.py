"""Suggestions from the public: the form, its checks (place, size, HTML, honeypot, CSRF, rate limit), and that
nothing reaches the map before a moderator decides. Real pack, real library registers."""

import re

import pytest
from sqlalchemy import text

from asset_map import plaintext, suggestions
from asset_map.errors import FormInvalid
from tests.community_data import community_app, community_engine, community_template, community_url  # noqa: F401

TAMWORTH_PC = "B79 7DN"
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>'
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client, path="/suggest"):
    return _CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _form(client, **extra):
    data = {"csrf_token": _token(client), "name": "Glascote Youth Club", "category": "youth_club",
            "description": "Tuesday and Thursday evenings for 11-16s.", "postcode": TAMWORTH_PC}
    data.update(extra)
    return data


def _count(engine, where="TRUE"):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM suggestions WHERE {where}")).scalar_one()


def test_plaintext_strips_markup_and_encoded_markup():
    assert plaintext.clean(HOSTILE + "Club", field="name", max_length=100) == "Club"
    assert plaintext.clean("&lt;script&gt;x&lt;/script&gt;Hall & Co", field="name", max_length=100) == "Hall & Co"
    assert plaintext.clean("a\x00b\u202ec", field="name", max_length=10) == "abc"
    with pytest.raises(FormInvalid.__mro__[1]):
        plaintext.clean("x" * 201, field="name", max_length=200)


def test_a_suggestion_is_stored_waiting_and_never_shown(community_app, community_engine):
    client = community_app.test_client()
    page = client.get("/suggest")
    assert page.status_code == 200 and 'name="website_address"' in page.get_data(as_text=True)
    before = community_engine.connect().execute(text("SELECT count(*) FROM assets")).scalar_one()
    res = client.post("/suggest", data=_form(client, suggester_name="Sam Resident", suggester_contact="sam@example.org"))
    assert res.status_code == 302 and "/suggest/thanks" in res.headers["Location"]
    with community_engine.connect() as conn:
        row = conn.execute(text("SELECT status, kind, district_code, tier, category, suggester_name FROM suggestions")
                           ).mappings().one()
        assert dict(row) == {"status": "waiting", "kind": "new", "district_code": "E07000199",
                             "tier": "association", "category": "youth_club", "suggester_name": "Sam Resident"}
        assert conn.execute(text("SELECT count(*) FROM assets")).scalar_one() == before
        audit = conn.execute(text("SELECT details FROM audit_log WHERE action = 'suggestion'")).scalar_one()
    assert "Sam" not in str(audit) and audit["district"] == "E07000199"
    # Not on the map, in the table, the API or the exports.
    for path in ("/api/assets.geojson?q=Glascote%20Youth", "/assets?q=Glascote+Youth", "/export/assets.csv?q=Youth"):
        assert "Glascote Youth Club" not in client.get(path).get_data(as_text=True), path


def test_script_and_html_in_every_field_is_stored_as_plain_text(community_app, community_engine):
    client = community_app.test_client()
    data = _form(client)
    for name, *_ in suggestions.FIELDS:
        if name not in ("postcode", "category", "email", "phone", "url"):
            data[name] = HOSTILE + f"plain {name}"
    res = client.post("/suggest", data=data)
    assert res.status_code == 302
    with community_engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM suggestions")).mappings().one()
    for name, *_ in suggestions.FIELDS:
        if row[name] and isinstance(row[name], str):
            assert "<" not in row[name] and "alert" not in row[name], (name, row[name])


@pytest.mark.parametrize("extra, field, words", [
    ({"postcode": "", "lat": "", "lon": ""}, "where", "Tell us where it is"),
    ({"postcode": "", "lat": "48.8566", "lon": "2.3522"}, "where", "outside the area this map covers"),
    ({"postcode": "B79 9ZZ"}, "postcode", "cannot find B79 9ZZ"),
    ({"postcode": "QQ1"}, "postcode", "is not a UK postcode"),
    ({"name": ""}, "name", "Enter the name"),
    ({"name": "x" * 5000}, "name", "too long"),
    ({"category": "rocket_base"}, "category", "Choose what kind"),
    ({"email": "not an address"}, "email", "e-mail address"),
])
def test_bad_suggestions_get_a_polite_answer_and_store_nothing(community_app, community_engine, extra, field, words):
    client = community_app.test_client()
    res = client.post("/suggest", data=_form(client, **extra))
    body = res.get_data(as_text=True)
    assert res.status_code == 400
    assert "There is a problem" in body and words in body and f'href="#{field}"' in body
    assert _count(community_engine) == 0


def test_a_point_on_the_map_places_it_without_a_postcode(community_app, community_engine):
    client = community_app.test_client()
    # Tamworth town centre, clicked on the map.
    res = client.post("/suggest", data=_form(client, postcode="", lat="52.6339", lon="-1.6958"))
    assert res.status_code == 302
    assert _count(community_engine, "district_code = 'E07000199' AND postcode IS NULL") == 1


def test_honeypot_and_missing_csrf_store_nothing(community_app, community_engine):
    client = community_app.test_client()
    res = client.post("/suggest", data=_form(client, website_address="http://spam.example"))
    assert res.status_code == 302  # the robot is told nothing
    data = _form(client)
    data.pop("csrf_token")
    assert client.post("/suggest", data=data).status_code == 400
    assert _count(community_engine) == 0


def test_the_honeypot_is_what_stops_the_robot(community_app, community_engine, monkeypatch):
    """The protection can fail: with the honeypot check off, the robot's suggestion is stored."""
    from asset_map.web import community

    monkeypatch.setattr(community, "_robot", lambda: False)
    client = community_app.test_client()
    client.post("/suggest", data=_form(client, website_address="http://spam.example"))
    assert _count(community_engine) == 1


def test_many_suggestions_from_one_address_are_paused_politely(community_url, tmp_path, community_engine):
    from tests.conftest import make_app

    # Per hour, not per minute: on a slow machine 40 requests may take a minute, and the window would slide.
    app = make_app(community_url, tmp_path, PUBLIC_WRITE_LIMIT="5 per hour")
    client = app.test_client()
    token = _token(client)
    codes = [client.post("/suggest", data={"csrf_token": token, "name": f"Club {i}", "postcode": TAMWORTH_PC,
                                           "category": "youth_club"}).status_code for i in range(40)]
    assert codes[:5] == [302] * 5 and set(codes[5:]) == {429}
    last = client.post("/suggest", data={"csrf_token": token, "name": "x", "postcode": TAMWORTH_PC})
    assert "paused them" in last.get_data(as_text=True) and last.headers.get("Retry-After")
    assert _count(community_engine) == 5
    # Another address is not affected, and reading the form is never limited.
    other = app.test_client()
    assert other.get("/suggest").status_code == 200
    assert other.post("/suggest", data=_form(other), environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 302


def test_a_change_to_an_asset_starts_from_it(community_app, community_engine):
    with community_engine.connect() as conn:
        asset_id, name = conn.execute(text("SELECT id, name FROM assets WHERE name = 'Glascote Library'")).one()
    client = community_app.test_client()
    page = client.get(f"/suggest?asset={asset_id}").get_data(as_text=True)
    assert f"Suggest a change to {name}" in page and 'value="B77 2ED"' in page
    res = client.post("/suggest", data={"csrf_token": _token(client), "asset": asset_id, "name": name,
                                        "category": "community_run_library", "phone": "01827 475645"})
    assert res.status_code == 302
    with community_engine.connect() as conn:
        kind, aid, district = conn.execute(text("SELECT kind, asset_id, district_code FROM suggestions")).one()
    assert (kind, aid, district) == ("change", asset_id, "E07000199")
