"""Confirm your listing: links sent through a real local SMTP server (aiosmtpd) and read as they arrive; confirm
sets last_verified through the edit core (history); a correction waits in the moderation queue; a link used twice,
expired or forged gets a polite answer; with no SMTP the messages go to the outbox."""

import re

from sqlalchemy import text

from tests.accounts import signed_in_client
from tests.community_data import community_app, community_engine, community_template, community_url  # noqa: F401
from tests.conftest import make_app
from tests.mailbox import inbox  # noqa: F401

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TAMWORTH = "E07000199"


def _give_tamworth_contacts(engine):
    """The pack's registers carry no e-mail: give Tamworth's libraries one each (as an officer would)."""
    with engine.begin() as conn:
        return [tuple(r) for r in conn.execute(text(
            "UPDATE assets SET email = lower(regexp_replace(name, '[^A-Za-z]+', '.', 'g')) || '@example.org' "
            "WHERE district_code = :d AND tier <> 'individual' RETURNING id, name, email"), {"d": TAMWORTH})]


def _links(inbox):
    return [re.search(r"(http://\S+/confirm/\S+)", m.get_content()).group(1) for _, m in inbox.messages]


def _send_all_stale(app, engine):
    organiser = signed_in_client(app, engine, "organiser")
    page = organiser.get(f"/districts/{TAMWORTH}/freshness").get_data(as_text=True)
    token = _CSRF.search(page).group(1)
    res = organiser.post("/moderation/confirmations", data={"csrf_token": token, "district": TAMWORTH, "stale": "1"})
    assert res.status_code == 200, res.get_data(as_text=True)[:1000]
    return organiser, res.get_data(as_text=True)


def test_confirm_links_arrive_and_confirm_once(community_url, tmp_path, community_engine, inbox):
    assets = _give_tamworth_contacts(community_engine)
    app = make_app(community_url, tmp_path, SMTP_URL=inbox.url, SITE_URL="http://localhost")
    organiser, page = _send_all_stale(app, community_engine)
    assert f"{len(assets)} sent by e-mail" in page
    assert sorted(r[0] for r, _ in inbox.messages) == sorted(a[2] for a in assets)
    _, first = inbox.messages[0]
    assert first["Subject"].startswith("Is the listing of") and "works once" in first.get_content()
    link = _links(inbox)[0].replace("http://localhost", "")
    public = app.test_client()
    listing = public.get(link)
    assert listing.status_code == 200 and "Yes, this is right" in listing.get_data(as_text=True)
    token = _CSRF.search(listing.get_data(as_text=True)).group(1)
    res = public.post(link, data={"csrf_token": token})
    assert res.status_code == 200 and "confirmed as right" in res.get_data(as_text=True)
    with community_engine.connect() as conn:
        cid = int(conn.execute(text("SELECT id FROM confirmations WHERE used_at IS NOT NULL")).scalar_one())
        asset_id, verified = conn.execute(text(
            "SELECT a.id, a.last_verified FROM assets a JOIN confirmations c ON c.asset_id = a.id WHERE c.id = :c"),
            {"c": cid}).one()
        last = conn.execute(text("SELECT action, actor FROM asset_versions WHERE asset_id = :i "
                                 "ORDER BY version DESC LIMIT 1"), {"i": asset_id}).one()
    assert verified is not None and last.action == "verify" and last.actor.startswith("listing contact")
    again = public.post(link, data={"csrf_token": token})
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    assert public.get(link).status_code == 410


def test_a_correction_waits_for_moderation_then_is_accepted(community_url, tmp_path, community_engine, inbox):
    _give_tamworth_contacts(community_engine)
    app = make_app(community_url, tmp_path, SMTP_URL=inbox.url, SITE_URL="http://localhost")
    organiser, _ = _send_all_stale(app, community_engine)
    link = _links(inbox)[1].replace("http://localhost", "")
    public = app.test_client()
    page = public.get(link).get_data(as_text=True)
    token = _CSRF.search(page).group(1)
    name = re.search(r'id="name" name="name" type="text" maxlength="200" value="([^"]*)"', page).group(1)
    category = re.search(r'name="category" value="([^"]*)"', page).group(1)
    res = public.post(link + "/correct", data={"csrf_token": token, "name": name, "category": category,
                                               "phone": "01827 475645"})
    assert res.status_code == 200 and "changes have been sent" in res.get_data(as_text=True)
    with community_engine.connect() as conn:
        sid, kind, asset_id = conn.execute(text("SELECT id, kind, asset_id FROM suggestions")).one()
        phone = conn.execute(text("SELECT phone FROM assets WHERE id = :i"), {"i": asset_id}).scalar()
    assert kind == "correction" and phone is None  # nothing reaches the map unreviewed
    mod_token = _CSRF.search(organiser.get(f"/moderation/{sid}").get_data(as_text=True)).group(1)
    assert organiser.post(f"/moderation/{sid}/accept", data={"csrf_token": mod_token}).status_code == 302
    with community_engine.connect() as conn:
        phone, verified = conn.execute(text("SELECT phone, last_verified FROM assets WHERE id = :i"),
                                       {"i": asset_id}).one()
    assert phone == "01827 475645" and verified is not None
    assert public.post(link + "/correct", data={"csrf_token": token, "name": "x"}).status_code == 410


def test_a_correction_can_ask_for_a_field_to_be_emptied(community_url, tmp_path, community_engine, inbox):
    """The contact ticks "remove this" beside the e-mail: the moderator sees it as cleared, accepting empties it
    through the edit core, and the history keeps the old address."""
    _give_tamworth_contacts(community_engine)
    app = make_app(community_url, tmp_path, SMTP_URL=inbox.url, SITE_URL="http://localhost")
    organiser, _ = _send_all_stale(app, community_engine)
    link = _links(inbox)[0].replace("http://localhost", "")
    public = app.test_client()
    page = public.get(link).get_data(as_text=True)
    assert 'id="email-clear" name="clear" type="checkbox" value="email"' in page
    name = re.search(r'id="name" name="name" type="text" maxlength="200" value="([^"]*)"', page).group(1)
    email = re.search(r'id="email" name="email" type="email" maxlength="254" value="([^"]*)"', page).group(1)
    category = re.search(r'name="category" value="([^"]*)"', page).group(1)
    res = public.post(link + "/correct", data={"csrf_token": _CSRF.search(page).group(1), "name": name,
                                               "category": category, "email": email, "clear": "email"})
    assert res.status_code == 200 and "changes have been sent" in res.get_data(as_text=True)
    with community_engine.connect() as conn:
        sid, asset_id, cleared = conn.execute(text("SELECT id, asset_id, cleared FROM suggestions")).one()
    assert cleared == ["email"]
    shown = organiser.get(f"/moderation/{sid}").get_data(as_text=True)
    diff = shown[shown.index('id="diff"'):shown.index("Likely duplicates")]
    assert email in diff and "cleared" in diff
    assert organiser.post(f"/moderation/{sid}/accept", data={"csrf_token": _CSRF.search(shown).group(1)}
                          ).status_code == 302
    with community_engine.connect() as conn:
        now = conn.execute(text("SELECT email FROM assets WHERE id = :i"), {"i": asset_id}).scalar()
        old = conn.execute(text("SELECT changes->'email'->>0 FROM asset_versions WHERE asset_id = :i "
                                "AND changes ? 'email' ORDER BY version DESC LIMIT 1"), {"i": asset_id}).scalar()
    assert not now and old == email


def test_expired_and_forged_links_get_a_polite_answer(community_url, tmp_path, community_engine, inbox):
    _give_tamworth_contacts(community_engine)
    app = make_app(community_url, tmp_path, SMTP_URL=inbox.url, SITE_URL="http://localhost")
    _send_all_stale(app, community_engine)
    link = _links(inbox)[0].replace("http://localhost", "")
    public = app.test_client()
    with community_engine.begin() as conn:
        conn.execute(text("UPDATE confirmations SET expires_at = now() - interval '1 second'"))
    res = public.get(link)
    assert res.status_code == 410 and "expired" in res.get_data(as_text=True)
    assert public.get(link[:-4] + "AAAA").status_code == 404
    assert "not valid" in public.get("/confirm/forged.token.here").get_data(as_text=True)
    # A private link of an individual's offer is signed with another purpose: it opens no listing.
    from asset_map import offers

    other = offers._serializer("test").dumps({"c": 1, "n": "x"})
    assert public.get(f"/confirm/{other}").status_code == 404


def test_the_signature_is_what_stops_a_forged_link(community_url, tmp_path, community_engine, inbox, monkeypatch):
    """With the signature unchecked, a link made up from a row's id and nonce would confirm the listing."""
    from itsdangerous import URLSafeTimedSerializer

    from asset_map import confirmations

    _give_tamworth_contacts(community_engine)
    app = make_app(community_url, tmp_path, SMTP_URL=inbox.url, SITE_URL="http://localhost")
    _send_all_stale(app, community_engine)
    with community_engine.connect() as conn:
        cid, nonce = conn.execute(text("SELECT id, nonce FROM confirmations ORDER BY id LIMIT 1")).one()
    forged = URLSafeTimedSerializer("attacker's key", salt=confirmations.SALT).dumps({"c": cid, "n": nonce})
    public = app.test_client()
    assert public.get(f"/confirm/{forged}").status_code == 404
    monkeypatch.setattr(confirmations, "_serializer", lambda secret: URLSafeTimedSerializer("attacker's key",
                                                                                           salt=confirmations.SALT))
    assert public.get(f"/confirm/{forged}").status_code == 200


def test_without_smtp_the_links_wait_in_the_outbox(community_url, tmp_path, community_engine):
    assets = _give_tamworth_contacts(community_engine)
    app = make_app(community_url, tmp_path)
    _, page = _send_all_stale(app, community_engine)
    assert "for an officer to send by hand" in page
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == len(assets) and b"/confirm/" in files[0].read_bytes()
    with community_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM confirmations WHERE delivery = 'outbox'")).scalar_one() == len(
            assets)
    # Listed for an officer to send by hand (organisers may not read other people's mail).
    assert signed_in_client(app, community_engine, "organiser").get("/moderation/outbox").status_code == 403
    officer = signed_in_client(app, community_engine, "officer")
    listing = officer.get("/moderation/outbox").get_data(as_text=True)
    assert files[0].name in listing and assets[0][2] in listing or assets[1][2] in listing
    eml = officer.get(f"/moderation/outbox/{files[0].name}")
    assert eml.status_code == 200 and eml.mimetype == "message/rfc822" and b"/confirm/" in eml.data
    assert officer.get("/moderation/outbox/..%2Fsecret_key").status_code in (400, 404)
    assert officer.get("/moderation/outbox/secret_key").status_code == 404
