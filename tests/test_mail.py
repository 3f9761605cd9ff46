"""asset_map.mail against a real SMTP server on loopback (aiosmtpd), reading what arrives; and the outbox."""

import email
import email.policy
import socket

import pytest

from asset_map import mail
from asset_map.errors import ConfigError, InputError


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield f"smtp://127.0.0.1:{controller.port}", inbox
    controller.stop()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(tmp_path, url=""):
    return {"SMTP_URL": url, "MAIL_FROM": "asset-map <briefings@example.org>", "VAR_DIR": str(tmp_path)}


def _message():
    return mail.Message(to=["cllr@example.org"], subject="Your monthly briefing", text="Plain words",
                        html="<p>Rich words</p>",
                        attachments=[mail.Attachment("briefing.pdf", "application/pdf", b"%PDF-1.7 test")])


def test_sent_through_smtp_arrives_whole(tmp_path, smtp_server):
    url, inbox = smtp_server
    outcome = mail.send(_message(), _settings(tmp_path, url))
    assert outcome.status == "sent" and outcome.path is None
    (sender, rcpts, msg), = inbox.messages
    assert sender == "briefings@example.org" and rcpts == ["cllr@example.org"]
    assert msg["Subject"] == "Your monthly briefing" and msg["Message-ID"] == outcome.message_id
    assert msg.get_body(("plain",)).get_content().strip() == "Plain words"
    assert "Rich words" in msg.get_body(("html",)).get_content()
    (pdf,) = list(msg.iter_attachments())
    assert pdf.get_filename() == "briefing.pdf" and pdf.get_content() == b"%PDF-1.7 test"
    assert not (tmp_path / "outbox").exists()


def test_no_smtp_writes_the_outbox_and_an_officer_sends_it(tmp_path, smtp_server):
    outcome = mail.send(_message(), _settings(tmp_path))
    assert outcome.status == "outbox" and outcome.path.parent == tmp_path / "outbox"
    (item,) = mail.outbox(_settings(tmp_path))
    assert item.to == "cllr@example.org" and item.subject == "Your monthly briefing"
    with pytest.raises(ConfigError, match="ASSET_MAP_SMTP_URL"):
        mail.send_outbox(_settings(tmp_path))
    url, inbox = smtp_server
    assert mail.send_outbox(_settings(tmp_path, url)) == [(item.path.name, "sent")]
    assert mail.outbox(_settings(tmp_path)) == [] and (tmp_path / "outbox" / "sent" / item.path.name).exists()
    (_, rcpts, msg), = inbox.messages
    assert rcpts == ["cllr@example.org"] and msg["Message-ID"] == outcome.message_id


def test_failed_delivery_keeps_the_message(tmp_path):
    outcome = mail.send(_message(), _settings(tmp_path, f"smtp://user:secret@127.0.0.1:{_free_port()}"))
    assert outcome.status == "outbox" and outcome.path.exists()
    assert "secret" not in (outcome.error or "")


def test_bad_recipients_and_header_injection_refused(tmp_path):
    with pytest.raises(InputError):
        mail.send(mail.Message(to=["nobody"], subject="x", text="x"), _settings(tmp_path))
    with pytest.raises(InputError):
        mail.send(mail.Message(to=["a@example.org\r\nBcc: evil@example.org"], subject="x", text="x"),
                  _settings(tmp_path))
    outcome = mail.send(mail.Message(to=["a@example.org"], subject="Hi\r\nBcc: evil@example.org", text="x"),
                        _settings(tmp_path))
    assert b"\r\nBcc:" not in outcome.path.read_bytes()
