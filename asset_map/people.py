"""The rights of the person whose skills, time or passion a register records (UK GDPR articles 15 and 17): find
them, give them everything held about them (a subject access request, as JSON) and erase them.

Erasure clears an individual's personal fields (``asset_map.privacy.PERSONAL_FIELDS``, their point and small-area
codes) and keeps only what the audit needs: id, register, tier, category, district, when and why it was erased.
It also removes the person's rows from the quarantine, their values from the registers' saved import reports
(problem rows and duplicate pairs) and any file the app keeps that names them. Every step runs in the caller's
transaction: a failure half-way leaves everything as it was. The audit log records each find, export and erasure
with the asset ids and counts, never the personal data itself.

``erase_person(conn, asset_id, reason, actor)`` is what the importer calls when consent is withdrawn and what a
"withdraw my entry" link (issue 14) calls.
"""

import json
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import text

from asset_map import audit
from asset_map.errors import InputError, NotFound
from asset_map.privacy import PERSONAL_FIELDS
from asset_map.store import history

# What an erased individual keeps: enough to prove what was done, nothing that identifies the person.
KEPT_AFTER_ERASURE = ("id", "register", "source_row", "tier", "category", "district_code", "consent_at",
                      "consent_source", "consent_wording", "withdrawn_at", "erased_at", "erased_reason",
                      "created_at", "updated_at")
_ERASE_SET = (
    "name = '', description = NULL, offers = '{}', address = NULL, postcode = NULL, uprn = NULL, email = NULL, "
    "phone = NULL, url = NULL, source_key = NULL, properties = '{}', geom = NULL, lsoa11_code = NULL, "
    "lsoa21_code = NULL, area_flag = NULL, geocode_method = NULL, geocode_quality = NULL, last_verified = NULL, "
    "consent = FALSE, match_key = 'erased:' || id, withdrawn_at = COALESCE(withdrawn_at, now()), "
    "erased_at = now(), erased_reason = :reason, updated_at = now(), version = version + 1")
WAITING_OFFER = "offer waiting for an officer"   # what `find` says in place of a register for a waiting offer
_PERSON_COLUMNS = ("id", "register", "source_row", "source_key", "tier", "category", "name", "description", "offers",
                   "address", "postcode", "uprn", "email", "phone", "url", "status", "last_verified", "visibility",
                   "consent", "consent_at", "consent_source", "consent_wording", "district_code", "lsoa11_code",
                   "lsoa21_code", "geocode_method", "properties", "withdrawn_at", "erased_at", "erased_reason",
                   "created_at", "updated_at")


def erase_assets(conn, ids, *, reason, actor, action="person-erase", files_dir=None):
    """Erase the individuals ``ids`` (assets of tier individual) inside the caller's transaction. Returns
    {"erased": [ids], "quarantine_rows": n, "report_rows": n, "files": n}. Ids that are not individuals, or are
    already erased, are left alone (the caller checks, see ``erase``)."""
    ids = sorted({int(i) for i in ids})
    if not ids:
        return {"erased": [], "quarantine_rows": 0, "report_rows": 0, "files": 0}
    reason = str(reason or "erased")[:200]
    before = conn.execute(text(
        "SELECT id, register, source_row, source_key, name, postcode, email FROM assets "
        "WHERE id = ANY(:ids) AND tier = 'individual' AND erased_at IS NULL FOR UPDATE"), {"ids": ids}).mappings().all()
    if not before:
        return {"erased": [], "quarantine_rows": 0, "report_rows": 0, "files": 0}
    conn.execute(text(f"UPDATE assets SET {_ERASE_SET} WHERE id = ANY(:ids)"),
                 {"ids": [r["id"] for r in before], "reason": reason})
    # The history kept the values each version changed (names, contacts, points): they are emptied, the versions
    # themselves (who, when, which fields) stay with one more saying the person was erased. Overrides of the
    # person's fields are keyed by their name or source key: they go.
    stamp = history.Stamp(actor=actor, action="erase", reason=reason)
    for r in before:
        history.erase(conn, r["id"], stamp)
    conn.execute(text("DELETE FROM asset_overrides WHERE asset_id = ANY(:ids)"), {"ids": [r["id"] for r in before]})
    quarantine_rows = sum(_erase_quarantine(conn, r) for r in before)
    report_rows = _erase_from_reports(conn, before)
    files = _erase_files(before, files_dir)
    erased = [r["id"] for r in before]
    registers = sorted({r["register"] for r in before})
    audit.record(conn, actor=actor, action=action, target=",".join(registers)[:200], rows=len(erased),
                 details={"asset_ids": erased[:1000], "reason": reason, "quarantine_rows": quarantine_rows,
                          "report_rows": report_rows, "files": files})
    return {"erased": erased, "quarantine_rows": quarantine_rows, "report_rows": report_rows, "files": files}


def erase_person(conn, asset_id, reason, actor):
    """Erase one individual inside the caller's transaction (a "withdraw my entry" link, the importer). NotFound
    when ``asset_id`` is not a stored, not yet erased individual: nothing is changed."""
    done = erase_assets(conn, [asset_id], reason=reason, actor=actor)
    if not done["erased"]:
        msg = f"There is no individual with id {asset_id} to erase (unknown, not an individual, or already erased)."
        raise NotFound(msg)
    return done


def erase(engine, asset_ids, *, offer_ids=(), reason, actor, files_dir=None):
    """Erase these individuals (and offers of theirs still waiting for an officer) in one transaction: every id
    must be a stored individual or a waiting offer, or nothing changes."""
    from asset_map.offers import EMPTIED  # offers erase people through this module

    ids = sorted({int(i) for i in asset_ids})
    offer_ids = sorted({int(i) for i in offer_ids})
    if not ids and not offer_ids:
        raise InputError("Give at least one asset id to erase (see `asset-map people find`).")
    with engine.begin() as conn:
        done = erase_assets(conn, ids, reason=reason, actor=actor, files_dir=files_dir)
        missing = sorted(set(ids) - set(done["erased"]))
        if missing:
            msg = (f"No individual to erase with id {', '.join(map(str, missing))} (unknown, not an individual, or "
                   "already erased); nothing was changed.")
            raise NotFound(msg)  # raised inside the transaction: everything above is rolled back
        done["offers"] = [r[0] for r in conn.execute(text(
            f"UPDATE pending_offers SET {EMPTIED}, status = 'withdrawn', withdrawn_at = now(), updated_at = now() "
            "WHERE id = ANY(:o) AND status = 'waiting' RETURNING id"), {"o": offer_ids})]
        missing = sorted(set(offer_ids) - set(done["offers"]))
        if missing:
            msg = f"No offer {', '.join(map(str, missing))} is waiting to be erased; nothing was changed."
            raise NotFound(msg)
        if done["offers"]:
            audit.record(conn, actor=actor, action="person-erase", target=None, rows=len(done["offers"]),
                         details={"offer_ids": done["offers"], "reason": reason})
    return done


def _erase_quarantine(conn, person):
    """Quarantined rows of the same register that are this person's: the same source key, or the same name and
    postcode, or the same e-mail (rows quarantined before personal fields were scrubbed)."""
    conds, params = [], {"r": person["register"]}
    if person["source_key"]:
        conds.append("row->'fields'->>'source_key' = :k")
        params["k"] = person["source_key"]
    if person["email"]:
        conds.append("lower(row->'fields'->>'email') = lower(:e)")
        params["e"] = person["email"]
    if person["name"]:
        conds.append("(lower(btrim(row->'fields'->>'name')) = lower(btrim(:n)) AND "
                     "upper(replace(coalesce(row->'fields'->>'postcode', ''), ' ', '')) = "
                     "upper(replace(coalesce(:p, ''), ' ', '')))")
        params.update(n=person["name"], p=person["postcode"])
    if not conds:
        return 0
    return conn.execute(text(f"DELETE FROM quarantine WHERE register = :r AND ({' OR '.join(conds)})"),
                        params).rowcount


def _erase_from_reports(conn, people):
    """Blank the values of the people's rows in their registers' saved import reports, and drop duplicate pairs
    naming them. Returns how many entries changed."""
    changed = 0
    by_register = {}
    for p in people:
        by_register.setdefault(p["register"], set()).add(p["source_row"])
    # Only the reports that can name them: their registers' own, and those listing pairs with their registers.
    reports = conn.execute(text(
        "SELECT name, report FROM registers WHERE report IS NOT NULL AND (name = ANY(:r) OR EXISTS ("
        "SELECT 1 FROM jsonb_array_elements(COALESCE(report->'duplicates', '[]')) d "
        "WHERE d->>'other_register' = ANY(:r)))"), {"r": sorted(by_register)}).all()
    for name, report in reports:
        rows = by_register.get(name, set())
        problems = report.get("problems") or []
        n = 0
        for problem in problems:
            if problem.get("row") in rows and problem.get("value") not in ("", None):
                problem["value"] = ""
                n += 1
        pairs = report.get("duplicates") or []
        kept = [d for d in pairs if d.get("source_row") not in rows
                and d.get("other_row") not in by_register.get(d.get("other_register"), set())]
        n += len(pairs) - len(kept)
        if n:
            report["problems"], report["duplicates"] = problems, kept
            conn.execute(text("UPDATE registers SET report = CAST(:rep AS jsonb) WHERE name = :n"),
                         {"rep": json.dumps(report, default=str), "n": name})
            changed += n
    return changed


def _erase_files(people, files_dir):
    """Files the app keeps that could name a person. The app keeps none today (exports stream, GeoPackages are
    deleted once sent, import reports live in the database), so this checks ``files_dir`` (the var dir's
    ``tmp``) for leftovers naming the person's e-mail and removes them."""
    if not files_dir:
        return 0
    folder = Path(files_dir)
    if not folder.is_dir():
        return 0
    needles = [p["email"].encode() for p in people if p["email"]]
    removed = 0
    for path in folder.iterdir():
        if not path.is_file() or path.stat().st_size > 50_000_000 or not needles:
            continue
        data = path.read_bytes()
        if any(n in data for n in needles):
            path.unlink()
            removed += 1
    return removed


# -- find and subject access -----------------------------------------------------------------------------------
def find(engine, *, email=None, name=None, postcode=None, source_key=None, actor="cli"):
    """Individuals matching an e-mail, a name and postcode, or a source key (exact, case and spacing aside), as
    dicts of id, register, source row, category, district and whether erased. Audited (the query's kind, not its
    values)."""
    conds, params = [], {}
    if email:
        conds.append("lower(email) = lower(btrim(:e))")
        params["e"] = str(email)
    if source_key:
        conds.append("source_key = btrim(:k)")
        params["k"] = str(source_key)
    if name:
        if not postcode:
            raise InputError("Find by name needs a postcode too (--name NAME --postcode POSTCODE).")
        conds.append("(lower(btrim(name)) = lower(btrim(:n)) AND "
                     "replace(upper(postcode), ' ', '') = replace(upper(:p), ' ', ''))")
        params.update(n=str(name), p=str(postcode))
    if not conds:
        raise InputError("Find a person by --email, by --name with --postcode, or by --source-key.")
    with engine.begin() as conn:
        rows = conn.execute(text(
            f"SELECT id, register, source_row, category, district_code, consent_source, erased_at FROM assets "
            f"WHERE tier = 'individual' AND ({' OR '.join(conds)}) ORDER BY id"), params).mappings().all()
        # An offer waiting for an officer is the person's data too, though not yet an asset (it has no source key).
        offer_conds = [c for c in conds if "source_key" not in c]
        offers = conn.execute(text(
            f"SELECT id AS offer_id, category, district_code FROM pending_offers "
            f"WHERE status = 'waiting' AND ({' OR '.join(offer_conds)}) ORDER BY id"),
            params).mappings().all() if offer_conds else []
        audit.record(conn, actor=actor, action="person-find", target=None, rows=len(rows) + len(offers),
                     details={"by": sorted(k for k, v in (("email", email), ("name+postcode", name),
                                                          ("source_key", source_key)) if v),
                              "asset_ids": [r["id"] for r in rows], "offer_ids": [o["offer_id"] for o in offers]})
    return [dict(r) for r in rows] + [{"id": None, "register": WAITING_OFFER, "source_row": None,
                                       "consent_source": "form", "erased_at": None, **o} for o in offers]


def export(engine, asset_ids, *, offer_ids=(), actor="cli"):
    """Everything held about these individuals, in every table, as a JSON-able dict (a subject access request):
    their asset rows, quarantined rows, the saved import reports' rows about them, their offers still waiting for
    an officer, and the audit events that name their asset or offer ids. Audited without the data."""
    ids = sorted({int(i) for i in asset_ids})
    offer_ids = sorted({int(i) for i in offer_ids})
    if not ids and not offer_ids:
        raise InputError("Give at least one asset id to export (see `asset-map people find`).")
    cols = ", ".join(c if c != "offers" else "offers" for c in _PERSON_COLUMNS)
    with engine.begin() as conn:
        people = conn.execute(text(
            f"SELECT {cols}, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM assets "
            "WHERE id = ANY(:ids) AND tier = 'individual' ORDER BY id"), {"ids": ids}).mappings().all()
        waiting = conn.execute(text(
            "SELECT id, status, created_at, updated_at, category, district_code, name, description, offers, postcode, "
            "email, phone, contact_by, consent_at, consent_wording, ST_X(geom) AS lon, ST_Y(geom) AS lat "
            "FROM pending_offers WHERE id = ANY(:o) AND status = 'waiting' ORDER BY id"),
            {"o": offer_ids}).mappings().all()
        missing = sorted(set(ids) - {p["id"] for p in people})
        if missing:
            msg = f"No individual with id {', '.join(map(str, missing))}."
            raise NotFound(msg)
        missing = sorted(set(offer_ids) - {w["id"] for w in waiting})
        if missing:
            msg = f"No offer {', '.join(map(str, missing))} is waiting."
            raise NotFound(msg)
        quarantined, reports = [], []
        for p in people:
            quarantined += _quarantine_of(conn, p)
            reports += _report_rows_of(conn, p)
        versions = conn.execute(text(
            "SELECT asset_id, version, at, actor, action, changes, reason FROM asset_versions "
            "WHERE asset_id = ANY(:ids) ORDER BY asset_id, version"), {"ids": ids}).mappings().all()
        events = conn.execute(text(
            "SELECT id, at, actor, action, target, rows FROM audit_log WHERE details->'asset_ids' @> "
            "ANY(SELECT to_jsonb(ARRAY[i]) FROM unnest(CAST(:ids AS bigint[])) i) "
            "OR target = ANY(CAST(:targets AS text[])) ORDER BY id"),
            {"ids": ids, "targets": [f"offer:{o}" for o in offer_ids]}).mappings().all()
        audit.record(conn, actor=actor, action="person-export", target=None, rows=len(people) + len(waiting),
                     details={"asset_ids": ids, "offer_ids": offer_ids, "quarantine_rows": len(quarantined),
                              "report_rows": len(reports)})
    return _jsonable({
        "exported_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "what": "Everything asset-map holds about this person (UK GDPR article 15).",
        "assets": [dict(p) for p in people],
        "quarantine": quarantined,
        "import_reports": reports,
        "history": [dict(v) for v in versions],
        "waiting_offers": [dict(w) for w in waiting],
        "audit_events": [dict(e) for e in events],
        "personal_fields": list(PERSONAL_FIELDS),
    })


def _quarantine_of(conn, person):
    conds, params = [], {"r": person["register"]}
    for key, field in (("source_key", "source_key"), ("email", "email")):
        if person[key]:
            conds.append(f"lower(row->'fields'->>'{field}') = lower(:{key})")
            params[key] = person[key]
    if person["source_row"] is not None:
        conds.append("source_row = :row")
        params["row"] = person["source_row"]
    if not conds:
        return []
    rows = conn.execute(text(f"SELECT source_row, row, problems, created_at FROM quarantine WHERE register = :r "
                             f"AND ({' OR '.join(conds)})"), params).mappings().all()
    return [dict(r) for r in rows]


def _report_rows_of(conn, person):
    report = conn.execute(text("SELECT report FROM registers WHERE name = :r"),
                          {"r": person["register"]}).scalar() or {}
    row = person["source_row"]
    return [{"register": person["register"], **p} for p in report.get("problems") or [] if p.get("row") == row]


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
