"""What changed on the map: accepted changes of associations and organisations (new, changed, closed), read from
the assets' history (``asset_versions``, issue 13), for a public page, an Atom feed and JSON. Never anything about
individuals: they are left out by the store's visibility rule for the public, and only the fields public anyway
(``privacy.PUBLIC_HISTORY_FIELDS``) carry values; who made a change and why is never included. Nothing imports
Flask.
"""

import json
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

from sqlalchemy import text

from asset_map.errors import InputError
from asset_map.privacy import PUBLIC_HISTORY_FIELDS
from asset_map.store.assets import parse_datetime, visibility_condition

KINDS = ("new", "changed", "closed")
DEFAULT_DAYS = 30
MAX_LIMIT = 1000
_CLOSED = ("closed", "temporarily closed")
# Bookkeeping that is not a change people follow: a verification alone, an erasure, an override record.
_SKIP_ACTIONS = ("verify", "erase", "override")


def parse_since(value, *, now=None):
    """The ``since`` parameter (ISO 8601 date or date-time); default the last 30 days."""
    now = now or datetime.now(timezone.utc)
    since = parse_datetime(value or None, "since") if value else now - timedelta(days=DEFAULT_DAYS)
    if since > now:
        raise InputError(f"Parameter 'since' has value {value!r}: it is in the future.")
    return since


def _kind(row):
    changes = row["changes"] or {}
    if row["action"] == "create" or (row["version"] == 1 and not changes):
        return "new"
    if row["action"] in ("close", "withdraw"):
        return "closed"
    status = changes.get("status")
    if status and status[1] in _CLOSED:
        return "closed"
    withdrawn = changes.get("withdrawn_at")
    if withdrawn and withdrawn[1]:
        return "closed"
    return "changed"


def _fields(changes):
    """{field: [old, new]} for public fields, {field: None} for the others (named, no values)."""
    out = {}
    for name, pair in sorted((changes or {}).items()):
        if name == "last_verified":
            continue
        if name == "geom":
            out["location"] = None
        elif name in PUBLIC_HISTORY_FIELDS:
            out[name] = pair
        else:
            out[name] = None
    return out


def feed(engine, *, since, districts=(), limit=200):
    """The accepted changes since ``since``, newest first: dicts with asset_id, version, at, kind, name, category,
    tier, district_code, district_name, fields."""
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise InputError(f"Parameter 'limit' must be between 1 and {MAX_LIMIT}.")
    privacy, params = visibility_condition("public", "a")
    where = [privacy, "v.at >= :since", "v.action <> ALL(:skip)",
             "(v.version = 1 OR (v.changes - 'last_verified') <> '{}'::jsonb)"]
    params.update(since=since, skip=list(_SKIP_ACTIONS), limit=int(limit))
    if districts:
        where.append("a.district_code = ANY(:districts)")
        params["districts"] = list(districts)
    sql = (f"SELECT v.asset_id, v.version, v.at, v.action, v.changes, a.name, a.category, a.tier, a.district_code, "
           f"d.name AS district_name FROM asset_versions v JOIN assets a ON a.id = v.asset_id "
           f"LEFT JOIN districts d ON d.code = a.district_code WHERE {' AND '.join(where)} "
           f"ORDER BY v.at DESC, v.asset_id DESC, v.version DESC LIMIT :limit")
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).mappings().all()
    return [{"asset_id": r["asset_id"], "version": r["version"], "at": r["at"].astimezone(timezone.utc),
             "kind": _kind(r), "name": r["name"], "category": r["category"], "tier": r["tier"],
             "district_code": r["district_code"], "district_name": r["district_name"],
             "fields": {} if _kind(r) == "new" else _fields(r["changes"])} for r in rows]


def _summary(item):
    if item["kind"] == "new":
        return f"New on the map: {item['name']}."
    if item["kind"] == "closed":
        return f"Closed or removed: {item['name']}."
    parts = []
    for name, pair in item["fields"].items():
        if pair is None:
            parts.append(f"{name} changed")
        else:
            old, new = pair
            parts.append(f"{name}: {_text(old)} -> {_text(new)}")
    return f"Changed: {item['name']} ({'; '.join(parts) or 'details'})."


def _text(value):
    if value in (None, "", []):
        return "(empty)"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def as_json(items, *, since, districts, link_for):
    return json.dumps({"since": since.isoformat(), "districts": list(districts),
                       "changes": [{**i, "at": i["at"].isoformat(), "summary": _summary(i),
                                    "link": link_for(i)} for i in items]},
                      ensure_ascii=False, default=str, indent=1)


def as_atom(items, *, since, districts, self_url, link_for, title="asset-map: what changed"):
    """An Atom 1.0 feed (RFC 4287) of the changes."""
    updated = (items[0]["at"] if items else since).isoformat()
    where = f" in {', '.join(districts)}" if districts else ""
    out = ['<?xml version="1.0" encoding="utf-8"?>', '<feed xmlns="http://www.w3.org/2005/Atom">',
           f"<title>{escape(title + where)}</title>", f"<id>{escape(self_url)}</id>",
           f'<link rel="self" href="{escape(self_url, {chr(34): "&quot;"})}"/>', f"<updated>{updated}</updated>",
           "<author><name>asset-map</name></author>"]
    for i in items:
        out += ["<entry>", f"<id>tag:asset-map,2026:asset-{i['asset_id']}-v{i['version']}</id>",
                f"<title>{escape(_summary(i))}</title>", f"<updated>{i['at'].isoformat()}</updated>",
                f'<link href="{escape(link_for(i), {chr(34): "&quot;"})}"/>',
                f'<category term="{i["kind"]}"/>',
                f"<summary>{escape(_summary(i))} District: {escape(i['district_name'] or '')}.</summary>",
                "</entry>"]
    out.append("</feed>")
    return "\n".join(out) + "\n"
