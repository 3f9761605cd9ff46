"""Individuals who offer their own skills, time or knowledge ("I can help with ..."): their entry, their consent
and their private link to see, change or withdraw it at any time.

- Consent is explicit and recorded with the entry (issue 12's fields): ``consent_at`` (the date), ``consent_source``
  (this form) and ``consent_wording`` (the version of the statement the person agreed to, one of ``WORDINGS``). A new
  wording gets a new version; old versions stay here so every record can show what was agreed.
- The person is contacted only through an organiser (their e-mail or phone is stored as an officer-only field and
  never published). The public, and organisers, see individuals only as protected counts.
- Every public write is moderated: an offer waits in ``pending_offers`` until an officer accepts it (only then is it
  an individual asset, and so a protected count, an input of the gap report and a row of officers' exports) or
  rejects it. Who may moderate offers and what they see of them is privacy.py's: officers and admins, with the
  person's fields; organisers only learn how many wait.
- The private link is signed (itsdangerous, salt ``offer-link``) and carries the offer's id and a random key whose
  SHA-256 is stored with the offer; it sees, changes and withdraws the entry whether it waits or was accepted.
  Withdrawing erases the person's data at once (an accepted entry through issue 12's ``people.erase_person``), so
  the link then only says the entry is gone.

Nothing imports Flask.
"""

import hashlib
import hmac
import json
import secrets
import uuid

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import text

from asset_map import audit, people, plaintext, privacy
from asset_map.errors import AssetMapError, FormInvalid, InputError, NotFound
from asset_map.registers.schema import taxonomy
from asset_map.store import partitions

REGISTER = "individual-offers"
SOURCE = "offer form"
# The consent statements people have agreed to, by version; the newest is what the form shows.
WORDINGS = {
    "offer-2026-11": (
        "I agree that asset-map may keep what I have written here, my name and my contact details, so that community "
        "organisers and council officers in my district can get in touch with me about what I have offered. My "
        "details will never be shown to the public: the public map shows only how many people in an area offer "
        "help, never who. I can see, change or withdraw my entry at any time with my private link; withdrawing "
        "deletes my details at once."),
}
CURRENT_WORDING = "offer-2026-11"
CONTACT_CHOICES = {"email": "By e-mail, through an organiser", "phone": "By phone, through an organiser"}
SALT = "offer-link"


class Withdrawn(AssetMapError):
    """The entry behind a private link has been withdrawn already."""

    status = 410


def category_choices():
    tax = taxonomy()
    return sorted(((cid, spec["label"]) for cid, spec in tax.categories.items() if spec["tier"] == "individual"),
                  key=lambda c: c[1])


def parse(form):
    """The cleaned fields of the offer form; FormInvalid listing every problem."""
    from asset_map.suggestions import check_contact

    problems, values = {}, {}
    for name, label, limit, multiline, required in (
            ("name", "your name", 120, False, True),
            ("offers", "what you can help with", 500, True, True),
            ("description", "anything else about your offer", 1000, True, False),
            ("postcode", "your postcode", 10, False, True),
            ("email", "your e-mail address", 254, False, False),
            ("phone", "your phone number", 40, False, False)):
        try:
            values[name] = plaintext.clean(form.get(name), field=name, label=label, max_length=limit,
                                           multiline=multiline, required=required)
        except InputError as err:
            problems[name] = err.user_message
    category = form.get("category") or "skill_share"
    if category not in dict(category_choices()):
        problems["category"] = "Choose how you would like to help from the list."
    values["category"] = category
    contact = form.get("contact_by") or ""
    if contact not in CONTACT_CHOICES:
        problems["contact_by"] = "Choose how an organiser may contact you."
    values["contact_by"] = contact
    if contact == "email" and not values.get("email"):
        problems.setdefault("email", "Enter your e-mail address, so an organiser can contact you.")
    if contact == "phone" and not values.get("phone"):
        problems.setdefault("phone", "Enter your phone number, so an organiser can contact you.")
    check_contact(values, problems, whose="your", phone_example="07700 900123", tail="")
    if form.get("consent") != CURRENT_WORDING:
        problems["consent"] = "To be on the map you need to agree to the statement. If you do not, nothing is kept."
    if problems:
        raise FormInvalid(problems)
    values["offers"] = [o.strip() for o in values["offers"].replace("\n", ",").split(",") if o.strip()][:20]
    return values


def _place(conn, postcode, tolerance_m):
    """The postcode's point and its areas; FormInvalid if it is unknown or outside the districts."""
    from asset_map.suggestions import district_at

    row = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM postcodes WHERE postcode = :p"),
                       {"p": postcode}).first()
    if row is None:
        raise FormInvalid({"postcode": f"We cannot find {postcode} in our postcode list; check it, please."})
    lon, lat = row
    district = district_at(conn, lon, lat, tolerance_m=tolerance_m)
    if district is None:
        raise FormInvalid({"postcode": f"{postcode} is outside the area this map covers, so we cannot add you here."})
    areas = dict(conn.execute(text(
        "SELECT vintage, code FROM areas WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
        {"x": lon, "y": lat}).all())
    return lon, lat, district, areas.get(2011), areas.get(2021)


def _serializer(secret):
    return URLSafeSerializer(secret, salt=SALT)


def _hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


# What a waiting offer holds about the person; emptied when it is accepted (the asset holds it then), rejected or
# withdrawn (people.erase empties it too, on an erasure request).
PERSONAL = ("name", "description", "offers", "postcode", "email", "phone", "contact_by", "geom", "lsoa11_code",
            "lsoa21_code")
EMPTIED = ", ".join(f"{f} = NULL" for f in PERSONAL)


def offer(engine, form, *, secret, ip=None, tolerance_m=200):
    """Keep a person's offer with their consent until an officer accepts it; returns (offer id, private token).
    A waiting offer is nobody's asset: it is not counted, mapped, exported or reported on."""
    values = parse(form)
    key = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        lon, lat, district, lsoa11, lsoa21 = _place(conn, values["postcode"], tolerance_m)
        offer_id = conn.execute(text(
            "INSERT INTO pending_offers (key_hash, district_code, lsoa11_code, lsoa21_code, category, name, "
            "description, offers, postcode, email, phone, contact_by, consent_at, consent_wording, geom) VALUES "
            "(:h, :d, :l11, :l21, :cat, :name, :descr, :offers, :pc, :email, :phone, :by, CURRENT_DATE, :wording, "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
            {"h": _hash(key), "d": district, "l11": lsoa11, "l21": lsoa21, "cat": values["category"],
             "name": values["name"], "descr": values["description"], "offers": values["offers"],
             "pc": values["postcode"], "email": values["email"], "phone": values["phone"],
             "by": values["contact_by"], "wording": CURRENT_WORDING, "x": lon, "y": lat}).scalar_one()
        # The audit log holds the id and district, never the person's details.
        audit.record(conn, actor="the person (offer form)", action="offer", target=f"offer:{offer_id}",
                     details={"district": district, "consent_wording": CURRENT_WORDING, "ip": ip})
    return offer_id, _serializer(secret).dumps([offer_id, key])


def _resolve(conn, token, secret, *, lock=False):
    """The offer's row (id, status, asset_id) for a private link; InputError for a forged or damaged link,
    Withdrawn once withdrawn or not accepted."""
    try:
        offer_id, key = _serializer(secret).loads(token)
        offer_id = int(offer_id)
    except (BadSignature, ValueError, TypeError) as err:
        raise InputError("This link is not valid: it may have been copied incompletely. Use the whole link from "
                         "the page or e-mail you were given.", status=404) from err
    row = conn.execute(text("SELECT id, status, asset_id, key_hash, withdrawn_at, reason FROM pending_offers "
                            "WHERE id = :i" + (" FOR UPDATE" if lock else "")), {"i": offer_id}).first()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(str(key))):
        raise InputError("This link is not valid. Use the whole link from the page or e-mail you were given.",
                         status=404)
    if row.status == "withdrawn":
        when = f" on {row.withdrawn_at:%d %B %Y}" if row.withdrawn_at else ""
        raise Withdrawn(f"This entry was withdrawn{when}. Nothing about you is kept on asset-map, so there is "
                        "nothing more to do.")
    if row.status == "rejected":
        why = f" ({row.reason})" if row.reason else ""
        raise Withdrawn(f"An officer could not add this offer to the map{why}. Nothing about you is kept on "
                        "asset-map; you are welcome to offer again.")
    return row


def view(engine, token, *, secret):
    """What is held about the person behind the link (everything: it is theirs); ``pending`` while an officer has
    not yet accepted it."""
    with engine.connect() as conn:
        row = _resolve(conn, token, secret)
        if row.status == "waiting":
            out = dict(conn.execute(text(
                "SELECT id, name, category, description, offers, postcode, email, phone, district_code, consent_at, "
                "consent_wording, contact_by, created_at, updated_at FROM pending_offers WHERE id = :i"),
                {"i": row.id}).mappings().one())
            out["consent_source"] = SOURCE
        else:
            out = dict(conn.execute(text(
                "SELECT id, name, category, description, offers, postcode, email, phone, district_code, "
                "consent_at, consent_source, consent_wording, properties, created_at, updated_at FROM assets "
                "WHERE id = :i"), {"i": row.asset_id}).mappings().one())
            out["contact_by"] = (out.pop("properties") or {}).get("contact_by")
    out["pending"] = row.status == "waiting"
    out["wording_text"] = WORDINGS.get(out["consent_wording"], "")
    return out


def change(engine, token, form, *, secret, ip=None, tolerance_m=200):
    """The person changes their entry, waiting or accepted (the same checks as the form; consent is asked again
    with the current wording and its date recorded). Returns the offer's id."""
    values = parse(form)
    with engine.begin() as conn:
        row = _resolve(conn, token, secret, lock=True)
        lon, lat, district, lsoa11, lsoa21 = _place(conn, values["postcode"], tolerance_m)
        params = {"name": values["name"], "cat": values["category"], "descr": values["description"],
                  "offers": values["offers"], "pc": values["postcode"], "email": values["email"],
                  "phone": values["phone"], "x": lon, "y": lat, "d": district, "l11": lsoa11, "l21": lsoa21,
                  "wording": CURRENT_WORDING}
        if row.status == "waiting":
            conn.execute(text(
                "UPDATE pending_offers SET name = :name, category = :cat, description = :descr, offers = :offers, "
                "postcode = :pc, email = :email, phone = :phone, contact_by = :by, "
                "geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326), district_code = :d, lsoa11_code = :l11, "
                "lsoa21_code = :l21, consent_at = CURRENT_DATE, consent_wording = :wording, updated_at = now() "
                "WHERE id = :i"), {**params, "i": row.id, "by": values["contact_by"]})
            target = f"offer:{row.id}"
        else:
            conn.execute(text(
                "UPDATE assets SET name = :name, category = :cat, description = :descr, offers = :offers, "
                "postcode = :pc, email = :email, phone = :phone, geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326), "
                "district_code = :d, lsoa11_code = :l11, lsoa21_code = :l21, consent_at = CURRENT_DATE, "
                "consent_wording = :wording, last_verified = CURRENT_DATE, "
                "properties = properties || CAST(:props AS jsonb), updated_at = now() WHERE id = :i"),
                {**params, "i": row.asset_id, "props": json.dumps({"contact_by": values["contact_by"]})})
            target = f"asset:{row.asset_id}"
        audit.record(conn, actor="the person (private link)", action="offer-change", target=target,
                     details={"district": district, "consent_wording": CURRENT_WORDING, "ip": ip})
    return row.id


def withdraw(engine, token, *, secret, ip=None, settings=None):
    """Erase the person's entry at once, waiting or accepted (an accepted one through issue 12's erasure); with
    ``settings``, also the e-mails to them still in the outbox (their address and private link). The link then
    only says the entry is gone; a second withdrawal raises Withdrawn with a polite message."""
    with engine.begin() as conn:
        row = _resolve(conn, token, secret, lock=True)
        if row.status == "waiting":
            email = conn.execute(text("SELECT email FROM pending_offers WHERE id = :i"), {"i": row.id}).scalar()
        else:
            email = conn.execute(text("SELECT email FROM assets WHERE id = :i"), {"i": row.asset_id}).scalar()
            people.erase_person(conn, row.asset_id, "withdrawn by the person with their private link",
                                "the person (private link)")
        conn.execute(text(f"UPDATE pending_offers SET {EMPTIED}, status = 'withdrawn', withdrawn_at = now(), "
                          "updated_at = now() WHERE id = :i"), {"i": row.id})
        files = _erase_outbox(settings, email) if settings and email else 0
        audit.record(conn, actor="the person (private link)", action="offer-withdraw", target=f"offer:{row.id}",
                     details={"ip": ip, "outbox_files": files, "asset": row.asset_id, "was": row.status})
    return row.id


# -- moderation: what privacy.py lets each role see of waiting offers --------------------------------------------
def waiting_count(engine_or_conn, district=None):
    """How many offers wait for an officer (a number: what organisers may know of them)."""
    from asset_map.suggestions import connected

    with connected(engine_or_conn) as conn:
        return conn.execute(text("SELECT count(*) FROM pending_offers WHERE status = 'waiting' "
                                 "AND (CAST(:d AS text) IS NULL OR district_code = :d)"), {"d": district}).scalar_one()


def waiting(engine, role, district=None, limit=100):
    """The waiting offers with what ``role`` may see of them (privacy.offer_fields_for), oldest first."""
    privacy.check_may_moderate_offers(role)
    fields = privacy.offer_fields_for(role)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, district_code, category, created_at, name, description, offers, postcode, email, phone, "
            "contact_by, consent_at, consent_wording FROM pending_offers WHERE status = 'waiting' "
            "AND (CAST(:d AS text) IS NULL OR district_code = :d) ORDER BY created_at, id LIMIT :n"),
            {"d": district, "n": limit}).mappings().all()
    return [{k: v for k, v in r.items() if k in fields} for r in rows]


def _waiting_row(conn, offer_id):
    row = conn.execute(text("SELECT * FROM pending_offers WHERE id = :i FOR UPDATE"),
                       {"i": offer_id}).mappings().first()
    if row is None:
        raise NotFound(f"There is no offer {offer_id}.")
    if row["status"] != "waiting":
        raise InputError(f"Offer {offer_id} is no longer waiting (it was {row['status']}); nothing was changed.",
                         status=409)
    return row


def accept(engine, offer_id, *, actor, role, ip=None):
    """An officer accepts a waiting offer: it becomes an individual asset (restricted, consent as the person gave
    it); the offer row keeps only the link's key and the asset's id. Returns the asset's id."""
    privacy.check_may_moderate_offers(role)
    with engine.begin() as conn:
        row = _waiting_row(conn, offer_id)
        conn.execute(text("INSERT INTO registers (name, source_file, kind) VALUES (:n, :f, 'manual') "
                          "ON CONFLICT (name) DO NOTHING"),
                     {"n": REGISTER, "f": "offered by the people themselves on asset-map"})
        partitions.ensure(conn, REGISTER)
        source_key = f"offer-{uuid.uuid4().hex[:16]}"
        asset_id = conn.execute(text(
            "INSERT INTO assets (register, source_key, match_key, tier, category, name, description, offers, postcode, "
            "email, phone, status, last_verified, visibility, consent, consent_at, consent_source, consent_wording, "
            "geom, geocode_method, geocode_quality, district_code, lsoa11_code, lsoa21_code, properties) "
            "SELECT :r, :sk, :mk, 'individual', category, name, description, coalesce(offers, '{}'), postcode, email, "
            "phone, 'open', CURRENT_DATE, 'restricted', TRUE, consent_at, :src, consent_wording, geom, 'postcode', "
            "0.8, district_code, lsoa11_code, lsoa21_code, jsonb_build_object('contact_by', contact_by) "
            "FROM pending_offers WHERE id = :i RETURNING id"),
            {"r": REGISTER, "sk": source_key, "mk": "k:" + source_key, "src": SOURCE, "i": offer_id}).scalar_one()
        conn.execute(text(f"UPDATE pending_offers SET {EMPTIED}, status = 'accepted', asset_id = :a, "
                          "decided_at = now(), decided_by = :by, updated_at = now() WHERE id = :i"),
                     {"a": asset_id, "by": actor, "i": offer_id})
        audit.record(conn, actor=actor, action="offer-accept", target=f"offer:{offer_id}",
                     details={"asset": asset_id, "district": row["district_code"], "ip": ip})
    return asset_id


def reject(engine, offer_id, reason, *, actor, role, ip=None):
    """An officer rejects a waiting offer with a reason the person will read on their link; what it held about
    the person is erased at once (nothing is kept of an offer not taken up)."""
    privacy.check_may_moderate_offers(role)
    reason = plaintext.clean(reason, field="reason", label="the reason", max_length=500, multiline=True,
                             required=True)
    with engine.begin() as conn:
        row = _waiting_row(conn, offer_id)
        conn.execute(text(f"UPDATE pending_offers SET {EMPTIED}, status = 'rejected', reason = :why, "
                          "decided_at = now(), decided_by = :by, updated_at = now() WHERE id = :i"),
                     {"why": reason, "by": actor, "i": offer_id})
        audit.record(conn, actor=actor, action="offer-reject", target=f"offer:{offer_id}",
                     details={"district": row["district_code"], "ip": ip})


def _erase_outbox(settings, email):
    """Delete the outbox's messages (waiting or sent by hand) addressed to ``email``; returns how many."""
    from email.parser import BytesHeaderParser
    from email.policy import default

    from asset_map import mail

    folder = mail.outbox_dir(settings)
    removed = 0
    for path in [*folder.glob("*.eml"), *(folder / "sent").glob("*.eml")] if folder.is_dir() else []:
        with path.open("rb") as fh:
            to = str(BytesHeaderParser(policy=default).parse(fh)["To"] or "")
        if to.strip().lower() == email.strip().lower():
            path.unlink()
            removed += 1
    return removed
