"""Decisions on suggestions: accept (a new asset in its district's manual register, or a change of the asset it is
about, kept in the asset's history), edit then accept, merge into an existing asset, reject with a reason. Every
decision is audited; a suggestion is decided once (a second decision gets a clear answer).

Assets are only ever written through the asset edit core (issue 13, ``asset_map.registers.edits``): the three small
functions ``_create``, ``_change`` and ``verify`` below are the only places that call it. Nothing imports Flask.
"""

from datetime import date

from sqlalchemy import text

from asset_map import audit, plaintext, suggestions
from asset_map.errors import FormInvalid, InputError, NotFound

DECISIONS = ("accept", "merge", "reject")
# What a moderator may edit before accepting (the asset's own fields; the suggester's details never reach an asset).
EDITABLE = ("name", "category", "description", "offers", "address", "postcode", "email", "phone", "url")


def _edits():
    from asset_map.registers import edits

    return edits


def _text_fields(values):
    """Asset fields as the text values the edit core takes (offers ';'-joined)."""
    out = {}
    for name in ("tier", *EDITABLE):
        value = values.get(name)
        if value in (None, "", []):
            continue
        out[name] = "; ".join(value) if isinstance(value, (list, tuple)) else str(value)
    return out


def _create(engine, fields, *, lon, lat, actor, role, reason):
    """A new asset in its district's manual register, through the edit core; returns its id."""
    # The moderator has just checked it: it is verified as of today.
    asset_id, _warnings = _edits().create_asset(
        engine, {**fields, "lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "status": "open",
                 "last_verified": date.today().isoformat()},
        actor=actor, role=role, reason=reason)
    return asset_id


def _change(engine, asset_id, changes, *, actor, role, reason, action="edit"):
    """Change an existing asset through the edit core (its history keeps the old values); returns the version."""
    edits = _edits()
    with engine.connect() as conn:
        version = edits.read(conn, asset_id)["version"]
    new_version, _warnings = edits.update_asset(engine, asset_id, changes, version=version, actor=actor, role=role,
                                                reason=reason, action=action)
    return new_version


def verify(engine, asset_id, *, actor, role, reason):
    """Mark the asset checked today through the edit core (kept in its history); returns the version."""
    edits = _edits()
    with engine.connect() as conn:
        version = edits.read(conn, asset_id)["version"]
    new_version, _warnings = edits.verify_asset(engine, asset_id, version=version, actor=actor, role=role,
                                                reason=reason)
    return new_version


def edited_values(suggestion, form):
    """The suggestion's fields with a moderator's edits (plain text, the same checks as the public form)."""
    merged = {name: suggestion.get(name) for name in EDITABLE}
    if isinstance(merged.get("offers"), list):
        merged["offers"] = ", ".join(merged["offers"])
    for name in EDITABLE:
        if name in form:
            merged[name] = form.get(name)
    # The sender's "remove this" stands unless the moderator writes a value into the emptied field.
    merged["clear"] = [f for f in suggestion.get("cleared") or () if merged.get(f) in (None, "", [])]
    merged["category"] = merged.get("category") or "not_sure"
    values = suggestions.parse(merged)
    if values["category"] is None:
        raise FormInvalid({"category": "Choose what kind of asset this is before accepting it."})
    return values


def _lock_waiting(conn, suggestion_id):
    row = conn.execute(text("SELECT id, status FROM suggestions WHERE id = :i FOR UPDATE"),
                       {"i": int(suggestion_id)}).first()
    if row is None:
        raise NotFound(f"There is no suggestion {int(suggestion_id)}.")
    if row.status != "waiting":
        msg = f"Suggestion {row.id} has already been decided ({row.status}); nothing was changed."
        raise InputError(msg, status=409)


def _decided(conn, suggestion_id, status, *, actor, reason=None, asset_id=None, details=None, ip=None):
    # The suggester's own details are kept only while somebody might need to ask them about it.
    conn.execute(text("UPDATE suggestions SET status = :s, decided_at = now(), decided_by = :a, reason = :r, "
                      "result_asset_id = :aid, suggester_name = NULL, suggester_contact = NULL WHERE id = :i"),
                 {"s": status, "a": actor, "r": reason, "aid": asset_id, "i": int(suggestion_id)})
    audit.record(conn, actor=actor, action="moderation", target=f"suggestion {int(suggestion_id)}",
                 details={"decision": status, "asset_id": asset_id, "reason": reason, "ip": ip, **(details or {})})
    if status in ("accepted", "merged"):
        conn.execute(text("UPDATE confirmations SET details = details || CAST(:d AS jsonb) WHERE id = "
                          "(SELECT confirmation_id FROM suggestions WHERE id = :i)"),
                     {"d": f'{{"correction_{status}": true}}', "i": int(suggestion_id)})


def accept(engine, suggestion_id, form=None, *, actor, role, ip=None):
    """Accept the suggestion, with the moderator's edits in ``form``: a new asset, or the change applied to the
    asset it is about. Returns the asset id."""
    suggestion = suggestions.get(engine, suggestion_id)
    values = edited_values(suggestion, form or {})
    reason = f"suggestion {suggestion['id']} accepted"
    with engine.begin() as conn:
        _lock_waiting(conn, suggestion_id)
        if suggestion["kind"] == "new":
            asset_id = _create(engine, _text_fields(values), lon=suggestion["lon"], lat=suggestion["lat"],
                               actor=actor, role=role, reason=reason)
            fields = sorted(_text_fields(values))
        else:
            asset_id = suggestion["asset_id"]
            current = suggestions.current_asset(engine, asset_id, role=role)
            if current is None:
                raise NotFound("The asset this suggestion is about is no longer on the map; reject it instead.")
            # A field the sender asked to empty is written as "" (the edit core empties it; history keeps the old).
            changes = {name: _text_fields({name: new}).get(name, "")
                       for name, _old, new in suggestions.differences(current, values)
                       if name in EDITABLE or name == "tier"}
            if changes:
                _change(engine, asset_id, changes, actor=actor, role=role, reason=reason)
            if suggestion["kind"] == "correction":
                # The contact answered the confirm link: the corrected listing is checked as of today.
                verify(engine, asset_id, actor=actor, role=role, reason=reason)
            fields = sorted(changes)
        _decided(conn, suggestion_id, "accepted", actor=actor, asset_id=asset_id, ip=ip,
                 details={"kind": suggestion["kind"], "fields": fields})
    return asset_id


def merge(engine, suggestion_id, asset_id, *, actor, role, ip=None):
    """The suggestion is an asset already on the map: fill that asset's empty fields from the suggestion (its
    history keeps the change) and close the suggestion as merged. Returns the fields filled."""
    suggestion = suggestions.get(engine, suggestion_id)
    try:
        asset_id = int(asset_id)
    except (TypeError, ValueError) as err:
        raise InputError("Choose the asset to merge this suggestion into.") from err
    current = suggestions.current_asset(engine, asset_id, role=role)
    if current is None:
        raise NotFound(f"There is no asset {asset_id} on the map to merge into.")
    fill = {name: value for name, value in _text_fields(suggestion).items()
            if name in EDITABLE and name != "category" and current.get(name) in (None, "", [])}
    with engine.begin() as conn:
        _lock_waiting(conn, suggestion_id)
        if fill:
            _change(engine, asset_id, fill, actor=actor, role=role,
                    reason=f"suggestion {suggestion['id']} merged")
        _decided(conn, suggestion_id, "merged", actor=actor, asset_id=asset_id, ip=ip,
                 details={"fields": sorted(fill)})
    return sorted(fill)


def reject(engine, suggestion_id, reason, *, actor, ip=None):
    reason = plaintext.clean(reason, field="reason", label="a reason", max_length=500, required=True)
    with engine.begin() as conn:
        _lock_waiting(conn, suggestion_id)
        _decided(conn, suggestion_id, "rejected", actor=actor, reason=reason, ip=ip)
