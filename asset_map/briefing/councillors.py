"""Councillors and their areas: who is attached to which areas (of any geography), what they see on sign-in, and
the monthly briefing e-mail (through asset_map.mail: SMTP, or the outbox when none is set).

Run the monthly e-mail from cron on the 1st of each month, e.g.

    15 7 1 * *  cd /srv/asset-map && .venv/bin/asset-map briefing --send-monthly

Each councillor gets one e-mail with a short summary per area and the PDF briefings attached; a run records one
``briefing-send`` audit event per e-mail, and a second run the same month sends again only with ``--force``.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text

from asset_map import audit, mail
from asset_map.briefing import batch, data, render
from asset_map.errors import InputError, NotFound
from asset_map.users import find_user, normalise_email


@dataclass(frozen=True)
class AreaRef:
    geography: str
    code: str
    name: str
    label: str


def attach(engine, email, geography, codes, *, actor):
    """Attach a user to areas of a geography (idempotent). Returns the number newly attached."""
    with engine.begin() as conn:
        user = find_user(conn, email)
        if user is None:
            raise NotFound(f"There is no user {normalise_email(email)}; add one with asset-map users add.")
        known = {r[0] for r in conn.execute(text("SELECT code FROM geography_areas WHERE geography = :g"),
                                            {"g": geography})}
        missing = [c for c in codes if c not in known]
        if missing:
            raise InputError(f"Geography {geography!r} has no area {', '.join(missing[:10])}.")
        added = 0
        for code in codes:
            added += conn.execute(text(
                "INSERT INTO councillor_areas (user_id, geography, area_code) VALUES (:u, :g, :c) "
                "ON CONFLICT DO NOTHING"), {"u": user.id, "g": geography, "c": code}).rowcount
        audit.record(conn, actor=actor, action="councillor-attach", target=user.email, rows=added,
                     details={"geography": geography, "codes": list(codes)})
    return added


def detach(engine, email, geography, codes, *, actor):
    with engine.begin() as conn:
        user = find_user(conn, email)
        if user is None:
            raise NotFound(f"There is no user {normalise_email(email)}.")
        removed = conn.execute(text("DELETE FROM councillor_areas WHERE user_id = :u AND geography = :g "
                                    "AND area_code = ANY(:c)"), {"u": user.id, "g": geography,
                                                                 "c": list(codes)}).rowcount
        audit.record(conn, actor=actor, action="councillor-attach", target=user.email, rows=-removed,
                     details={"geography": geography, "detached": list(codes)})
    return removed


def areas_of(engine, user_id):
    """[AreaRef] attached to a user, by geography and code."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.geography, c.area_code, g.name, s.label FROM councillor_areas c "
            "JOIN geography_areas g ON g.geography = c.geography AND g.code = c.area_code "
            "JOIN geographies s ON s.name = c.geography WHERE c.user_id = :u ORDER BY c.geography, c.area_code"),
            {"u": int(user_id)}).all()
    return [AreaRef(*r) for r in rows]


def attachments(engine):
    """[(email, role, [AreaRef])] of every user with areas, by e-mail."""
    with engine.connect() as conn:
        users = conn.execute(text("SELECT DISTINCT u.id, u.email, u.role FROM users u JOIN councillor_areas c "
                                  "ON c.user_id = u.id ORDER BY u.email")).all()
    return [(email, role, areas_of(engine, uid)) for uid, email, role in users]


def send_monthly(engine, settings, *, today=None, force=False, progress=None):
    """E-mail every attached user their areas' briefings for the month before ``today``. Returns
    [(email, outcome status or 'skipped: already sent this month')]."""
    today = today or date.today()
    since = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    month = f"{today:%Y-%m}"
    results = []
    shared = {}
    for email, role, areas in attachments(engine):
        if not force and _sent(engine, email, month):
            results.append((email, "skipped: already sent this month"))
            continue
        if role not in shared:
            shared[role] = data.county(engine, settings, role=role, today=today, since=since)
        docs = [batch.document(engine, shared[role], a.geography, a.code) for a in areas]
        message = mail.Message(
            to=[email], subject=f"Your asset-map briefing for {today:%B %Y}: "
                                f"{', '.join(a.name for a in areas[:3])}{' ...' if len(areas) > 3 else ''}",
            text=_text(docs, settings, since), html=None,
            attachments=[mail.Attachment(f"{batch.file_stem(a.geography, a.code)}.pdf", "application/pdf", d.pdf)
                         for a, d in zip(areas, docs)])
        outcome = mail.send(message, settings)
        with engine.begin() as conn:
            audit.record(conn, actor="briefing-monthly", action="briefing-send", target=email, rows=len(docs),
                         details={"month": month, "status": outcome.status, "areas": [f"{a.geography}:{a.code}"
                                                                                      for a in areas]})
        results.append((email, outcome.status))
        if progress:
            progress(email)
    return results


def _sent(engine, email, month):
    with engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT 1 FROM audit_log WHERE action = 'briefing-send' AND target = :t AND details->>'month' = :m "
            "LIMIT 1"), {"t": email, "m": month}).scalar())


def _text(docs, settings, since):
    site = settings["SITE_URL"].rstrip("/")
    lines = [f"Your areas' briefings, with changes since {render.day(since)}, are attached as PDFs.", ""]
    for d in docs:
        b = d.briefing
        ch = b["changes"]["counts"]
        lines += [f"{b['name']} ({b['geography_label']} {b['code']})",
                  f"  {b['tiers'][0][2]} associations, {b['tiers'][1][2]} organisations, individuals: "
                  f"{b['individuals']}",
                  f"  {len(b['gaps'])} priority gaps; {render.pct(b['freshness']['share_12m'])} verified in the last "
                  f"12 months; {ch['new']} new, {ch['updated']} updated, {ch['withdrawn']} withdrawn",
                  f"  {site}/briefings/{b['geography']}/{b['code']}", ""]
    lines.append("Sign in to see which records need checking. You receive this because an officer attached you to "
                 "these areas in asset-map.")
    return "\n".join(lines)
