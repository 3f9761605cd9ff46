"""Councillors: attached to areas, land on their briefings after sign-in, and get a monthly e-mail with the PDFs
(through a real SMTP server on loopback, or the outbox when none is set)."""

from datetime import date

from click.testing import CliRunner
from sqlalchemy import text

from asset_map import mail
from asset_map.briefing import councillors
from asset_map.cli import cli
from asset_map.config import load_settings
from tests.accounts import make_user, sign_in
from tests.conftest import make_app
from tests.test_mail import smtp_server  # noqa: F401 - the fixture


def _cleanup(engine, email):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE email = :e"), {"e": email})


def test_councillor_signs_in_to_their_briefings(geo_db, geo_engine, tmp_path):
    email = "cllr.signin@example.org"  # its own account: the shared database may hold email_for("councillor")
    make_user(geo_engine, "councillor", email=email)
    try:
        assert councillors.attach(geo_engine, email, "pilot-neighbourhoods", ["PN-01"], actor="test") == 1
        assert councillors.attach(geo_engine, email, "pilot-neighbourhoods", ["PN-01"], actor="test") == 0
        app = make_app(geo_db[0], tmp_path)
        client = app.test_client()
        response = sign_in(client, email)
        assert response.status_code == 302 and response.headers["Location"].endswith("/briefings/mine")
        html = client.get("/briefings/mine").get_data(as_text=True)
        assert 'id="my-areas"' in html and "/briefings/pilot-neighbourhoods/PN-01" in html
        # Somebody else (the public) has no "your areas".
        assert 'id="my-areas"' not in app.test_client().get("/briefings").get_data(as_text=True)
        result = CliRunner().invoke(cli, ["councillors", "attach", email, "divisions", "NOPE"],
                                    env={"ASSET_MAP_DATABASE_URL": geo_db[0]})
        assert result.exit_code == 1 and "has no area NOPE" in result.output
    finally:
        _cleanup(geo_engine, email)


def test_monthly_email_with_pdfs_then_not_again(geo_engine, tmp_path, smtp_server):  # noqa: F811
    url, inbox = smtp_server
    email = "cllr.monthly@example.org"
    make_user(geo_engine, "councillor", email=email)
    try:
        councillors.attach(geo_engine, email, "pilot-neighbourhoods", ["PN-01"], actor="test")
        councillors.attach(geo_engine, email, "divisions", ["D057"], actor="test")
        settings = load_settings({"SMTP_URL": url, "VAR_DIR": str(tmp_path), "MAIL_FROM": "briefings@example.org"})
        results = councillors.send_monthly(geo_engine, settings, today=date(2026, 12, 1))
        assert (email, "sent") in results
        (_, rcpts, msg), = [m for m in inbox.messages if m[1] == [email]]
        assert "December 2026" in msg["Subject"]
        names = sorted(p.get_filename() for p in msg.iter_attachments())
        assert names == ["divisions-D057.pdf", "pilot-neighbourhoods-PN-01.pdf"]
        assert all(p.get_content().startswith(b"%PDF") for p in msg.iter_attachments())
        body = msg.get_body(("plain",)).get_content()
        assert "Tamworth town centre" in body and "changes since 1 November 2026" in body
        again = councillors.send_monthly(geo_engine, settings, today=date(2026, 12, 2))
        assert (email, "skipped: already sent this month") in again
        # With no SMTP server set, the same e-mail waits in the outbox for an officer.
        offline = load_settings({"SMTP_URL": "", "VAR_DIR": str(tmp_path)})
        assert (email, "outbox") in councillors.send_monthly(geo_engine, offline, today=date(2027, 1, 1))
        assert [i.to for i in mail.outbox(offline)] == [email]
    finally:
        _cleanup(geo_engine, email)
