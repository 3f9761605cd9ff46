"""Confirm your listing: an organiser or officer sends the contact of an association or organisation a link to
confirm its details (``last_verified`` is set through the asset edit core, kept in the asset's history) or to correct
them (the correction goes to the moderation queue as a suggestion of kind ``correction``).

A link is signed (itsdangerous, salt ``confirm-listing``: it opens nothing else), carries only the row's id and a
random nonce, expires after ``CONFIRM_LINK_DAYS`` and works once. Mail goes through asset_map.mail (SMTP, or the
outbox when none is set). Nothing imports Flask.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import text

from asset_map import audit, moderation, suggestions
from asset_map.errors import AssetMapError, InputError, NotFound

SALT = "confirm-listing"
TIERS = ("association", "organisation")


class LinkGone(AssetMapError):
    """A confirm link that was used already, has expired, or whose asset is gone."""

    status = 410


@dataclass(frozen=True)
class Sent:
    asset_id: int
    name: str
    outcome: str                # "sent", "outbox", or why nothing was sent
    confirmation_id: int | None = None


def _serializer(secret):
    return URLSafeTimedSerializer(secret, salt=SALT)


def stale_with_contact(engine, district, *, months=12, today=None):
    """Ids of the district's open associations and organisations not verified within ``months`` that have an e-mail
    to ask, never verified first."""
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(
            "SELECT id FROM assets WHERE district_code = :d AND tier = ANY(:t) AND withdrawn_at IS NULL "
            "AND status <> 'closed' AND email IS NOT NULL AND email <> '' AND (last_verified IS NULL OR "
            "last_verified < (CAST(:today AS date) - make_interval(months => :m))) "
            "ORDER BY last_verified NULLS FIRST, name, id"),
            {"d": district, "t": list(TIERS), "m": int(months),
             "today": today or datetime.now(timezone.utc).date()})]


def send(engine, asset_ids, *, secret, settings, link_for, actor, role):
    """Send a confirm link to the contact of each asset; ``link_for(token)`` makes the absolute URL. Returns a
    ``Sent`` per asset (assets without an e-mail, individuals and withdrawn ones are skipped, with the reason)."""
    from asset_map import mail

    days = int(settings.get("CONFIRM_LINK_DAYS", 30))
    out = []
    for asset_id in dict.fromkeys(int(a) for a in asset_ids):
        asset = suggestions.current_asset(engine, asset_id, role=role)
        if asset is None or asset["tier"] not in TIERS:
            out.append(Sent(asset_id, "", "not an association or organisation on the map"))
            continue
        if not asset.get("email"):
            out.append(Sent(asset_id, asset["name"], "no e-mail address to send to"))
            continue
        nonce = secrets.token_hex(16)
        with engine.begin() as conn:
            cid = conn.execute(text(
                "INSERT INTO confirmations (asset_id, district_code, email, nonce, sent_by, expires_at, delivery) "
                "VALUES (:a, :d, :e, :n, :by, now() + make_interval(days => :days), 'pending') RETURNING id"),
                {"a": asset_id, "d": asset["district_code"], "e": asset["email"], "n": nonce, "by": actor,
                 "days": days}).scalar_one()
        link = link_for(_serializer(secret).dumps({"c": cid, "n": nonce}))
        message = mail.Message(to=[asset["email"]], subject=f"Is the listing of {asset['name']} still right?",
                               text=_letter(asset, link, days))
        outcome = mail.send(message, settings)
        with engine.begin() as conn:
            conn.execute(text("UPDATE confirmations SET delivery = :s, outbox_file = :f WHERE id = :i"),
                         {"s": outcome.status, "f": str(outcome.path) if outcome.path else None, "i": cid})
            audit.record(conn, actor=actor, action="confirm-send", target=f"asset:{asset_id}",
                         details={"confirmation": cid, "delivery": outcome.status, "district": asset["district_code"]})
        out.append(Sent(asset_id, asset["name"], outcome.status, cid))
    return out


def _letter(asset, link, days):
    lines = ["Hello,", "",
             f"asset-map lists {asset['name']} on its community map, so that people nearby can find it. Please check "
             "that what we show is still right:", ""]
    for label, key in (("Name", "name"), ("Address", "address"), ("Postcode", "postcode"), ("Phone", "phone"),
                       ("E-mail", "email"), ("Website", "url"), ("Description", "description")):
        if asset.get(key):
            lines.append(f"  {label}: {asset[key]}")
    lines += ["", "Confirm it is right, or tell us what has changed, here (the link works once, for "
              f"{days} days):", "", link, "",
              "If you are not the right person to ask, please ignore this message.", "", "asset-map"]
    return "\n".join(lines)


def resolve(engine_or_conn, token, *, secret, max_age_days=30, lock=False):
    """The confirmation row and its asset for a link; InputError (404) if forged, LinkGone if used, expired or
    the asset is gone."""
    try:
        data = _serializer(secret).loads(token, max_age=max_age_days * 86400)
        cid, nonce = int(data["c"]), str(data["n"])
    except SignatureExpired as err:
        raise LinkGone("This link has expired. Links to confirm a listing work for "
                       f"{max_age_days} days; ask the organiser who sent it for a new one.") from err
    except (BadSignature, KeyError, TypeError, ValueError) as err:
        raise InputError("This link is not valid: it may have been copied incompletely. Use the whole link from "
                         "the e-mail.", status=404) from err
    sql = text("SELECT * FROM confirmations WHERE id = :i" + (" FOR UPDATE" if lock else ""))
    row = engine_or_conn.execute(sql, {"i": cid}).mappings().first()
    if row is None or not secrets.compare_digest(row["nonce"], nonce):
        raise InputError("This link is not valid. Use the whole link from the e-mail.", status=404)
    if row["used_at"] is not None:
        what = "confirm the listing" if row["outcome"] == "confirmed" else "send a correction"
        raise LinkGone(f"This link was already used on {row['used_at']:%d %B %Y} to {what}. Thank you: there is "
                       "nothing more to do.")
    if row["expires_at"] < datetime.now(timezone.utc):
        raise LinkGone("This link has expired; ask the organiser who sent it for a new one.")
    return dict(row)


def listing(engine, token, *, secret, max_age_days=30):
    """(confirmation, the asset as the public sees it) for the confirm page."""
    with engine.connect() as conn:
        row = resolve(conn, token, secret=secret, max_age_days=max_age_days)
    asset = suggestions.current_asset(engine, row["asset_id"], role="organiser")
    if asset is None:
        raise LinkGone("This listing is no longer on the map, so there is nothing to confirm.")
    return row, asset


def confirm(engine, token, *, secret, max_age_days=30, ip=None):
    """The contact says the listing is right: ``last_verified`` = today through the edit core (in the asset's
    history); the link is used up."""
    with engine.begin() as conn:
        row = resolve(conn, token, secret=secret, max_age_days=max_age_days, lock=True)
        actor = f"listing contact ({row['email']})"
        try:
            moderation.verify(engine, row["asset_id"], actor=actor, role="officer",
                               reason=f"confirmed by its contact (confirmation {row['id']})")
        except NotFound as err:
            raise LinkGone("This listing is no longer on the map, so there is nothing to confirm.") from err
        _used(conn, row, "confirmed", actor, ip)
    return row["asset_id"]


def correct(engine, token, form, *, secret, max_age_days=30, ip=None, tolerance_m=200):
    """The contact sends corrections: they wait in the moderation queue (kind ``correction``); the link is used
    up. Returns the suggestion's id."""
    with engine.begin() as conn:
        row = resolve(conn, token, secret=secret, max_age_days=max_age_days, lock=True)
        suggestion_id = suggestions.submit(engine, form, kind="correction", asset_id=row["asset_id"],
                                           confirmation_id=row["id"], ip=ip, tolerance_m=tolerance_m)
        _used(conn, row, "corrected", f"listing contact ({row['email']})", ip)
    return suggestion_id


def _used(conn, row, outcome, actor, ip):
    conn.execute(text("UPDATE confirmations SET used_at = now(), outcome = :o WHERE id = :i"),
                 {"o": outcome, "i": row["id"]})
    audit.record(conn, actor=actor, action="confirm", target=f"asset:{row['asset_id']}",
                 details={"confirmation": row["id"], "outcome": outcome, "ip": ip})


def counts(engine, district=None, *, since=None):
    """Confirm links sent, answered (confirmed or corrected) and still open, in a district (or all)."""
    where, params = "TRUE", {}
    if district:
        where, params["d"] = "district_code = :d", district
    if since:
        where += " AND sent_at >= :since"
        params["since"] = since
    with engine.connect() as conn:
        row = conn.execute(text(
            f"SELECT count(*) AS sent, count(*) FILTER (WHERE outcome = 'confirmed') AS confirmed, "
            f"count(*) FILTER (WHERE outcome = 'corrected') AS corrected, "
            f"count(*) FILTER (WHERE used_at IS NULL AND expires_at > now()) AS open, "
            f"count(*) FILTER (WHERE used_at IS NULL AND expires_at <= now()) AS expired, "
            f"count(*) FILTER (WHERE delivery = 'outbox') AS in_outbox FROM confirmations WHERE {where}"),
            params).mappings().one()
    out = dict(row)
    out["answered"] = out["confirmed"] + out["corrected"]
    return out

