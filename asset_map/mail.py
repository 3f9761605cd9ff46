"""E-mail: one way to send a message, whatever sends it (monthly briefings, confirm-your-listing e-mails, ...).

    from asset_map import mail
    msg = mail.Message(to=["cllr@example.org"], subject="Your briefing", text="...", html="<p>...</p>",
                       attachments=[mail.Attachment("briefing.pdf", "application/pdf", pdf_bytes)])
    outcome = mail.send(msg, settings)          # Outcome(status="sent" | "outbox", message_id, path)

With ``ASSET_MAP_SMTP_URL`` set, ``send`` delivers through that server (smtp:// with STARTTLS when the server
offers it, smtps:// for TLS from the start; user and password from the URL). With none set, the message is written
as an RFC 5322 ``.eml`` file to the outbox folder (``<VAR_DIR>/outbox``), where an officer lists them
(``outbox(settings)``, ``asset-map mail outbox``) and sends them by hand (``send_outbox``, ``asset-map mail send``:
each sent file moves to ``outbox/sent/``). A delivery that fails also lands in the outbox, so nothing is lost.

Nothing here imports Flask or the database; callers audit what they send.
"""

import email.policy
import email.utils
import hashlib
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from asset_map.errors import ConfigError, InputError

log = logging.getLogger(__name__)
OUTBOX = "outbox"
TIMEOUT_S = 20


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Message:
    to: list
    subject: str
    text: str
    html: str | None = None
    attachments: list = field(default_factory=list)
    reply_to: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: str                  # "sent" or "outbox"
    message_id: str
    path: Path | None = None     # the outbox file, when written there
    error: str | None = None     # why delivery failed, when it fell back to the outbox


@dataclass(frozen=True)
class OutboxItem:
    path: Path
    to: str
    subject: str
    date: str
    size: int


def build(message, sender):
    """The message as an EmailMessage (text, optional HTML alternative, attachments)."""
    if not message.to:
        raise InputError("An e-mail needs at least one recipient.")
    for address in message.to:
        if "@" not in str(address) or any(c in str(address) for c in "\r\n"):
            raise InputError(f"{str(address)[:100]!r} is not an e-mail address.")
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(message.to)
    msg["Subject"] = message.subject.replace("\r", " ").replace("\n", " ")
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "localhost"
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    if message.reply_to:
        msg["Reply-To"] = message.reply_to
    msg.set_content(message.text)
    if message.html:
        msg.add_alternative(message.html, subtype="html")
    for a in message.attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename)
    return msg


def send(message, settings):
    """Deliver ``message`` through SMTP_URL, or write it to the outbox when none is set (or delivery fails)."""
    msg = build(message, settings["MAIL_FROM"])
    if not settings.get("SMTP_URL"):
        return Outcome("outbox", msg["Message-ID"], _to_outbox(msg, settings))
    try:
        deliver(msg, settings["SMTP_URL"])
    except (OSError, smtplib.SMTPException) as err:
        # Never lose a message: it waits in the outbox for an officer (or the next run) to send.
        log.warning("mail to %s not delivered (%s); kept in the outbox", msg["To"], type(err).__name__)
        return Outcome("outbox", msg["Message-ID"], _to_outbox(msg, settings), error=_safe_error(err))
    return Outcome("sent", msg["Message-ID"])


def deliver(msg, url):
    """Send one EmailMessage through the SMTP server at ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("ASSET_MAP_SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465.")
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(parts.hostname, port, timeout=TIMEOUT_S, context=context)
    else:
        client = smtplib.SMTP(parts.hostname, port, timeout=TIMEOUT_S)
    with client:
        client.ehlo()
        if parts.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(msg)


def _safe_error(err):
    # The URL (with its password) is never part of an error we keep or show.
    return f"{type(err).__name__}: {str(err)[:200]}"


def outbox_dir(settings):
    return Path(settings["VAR_DIR"]) / OUTBOX


def _to_outbox(msg, settings):
    folder = outbox_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    data = msg.as_bytes()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{stamp}-{hashlib.sha256(data).hexdigest()[:12]}.eml"
    path.write_bytes(data)
    path.chmod(0o600)  # messages may name people and carry briefings meant for them
    return path


def outbox(settings):
    """The messages waiting in the outbox, oldest first."""
    folder = outbox_dir(settings)
    items = []
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        with path.open("rb") as fh:
            headers = BytesParser(policy=email.policy.default).parse(fh, headersonly=True)
        items.append(OutboxItem(path, str(headers["To"] or ""), str(headers["Subject"] or ""),
                                str(headers["Date"] or ""), path.stat().st_size))
    return items


def send_outbox(settings, names=None):
    """Send the outbox's messages (all, or those whose file names are in ``names``) through SMTP_URL; each sent
    file moves to outbox/sent/. Returns [(file name, "sent" or the error)]."""
    if not settings.get("SMTP_URL"):
        raise ConfigError("Set ASSET_MAP_SMTP_URL to send the outbox (e.g. smtp://mail.example.org:587).")
    sent_dir = outbox_dir(settings) / "sent"
    results = []
    for item in outbox(settings):
        if names and item.path.name not in names:
            continue
        with item.path.open("rb") as fh:
            msg = BytesParser(policy=email.policy.SMTP).parse(fh)
        try:
            deliver(msg, settings["SMTP_URL"])
        except (OSError, smtplib.SMTPException) as err:
            results.append((item.path.name, _safe_error(err)))
            continue
        sent_dir.mkdir(parents=True, exist_ok=True)
        item.path.rename(sent_dir / item.path.name)
        results.append((item.path.name, "sent"))
    return results
