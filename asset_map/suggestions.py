"""What the public suggests: a new asset, or a change to one, kept in ``suggestions`` until an organiser or officer
decides (asset_map.moderation). Nothing here is ever read by the map, the exports or the API.

Every field is plain text (asset_map.plaintext) with a length limit; the place is a postcode from the gazetteer or a
point clicked on a map, and must lie in a loaded district (within ``AREA_TOLERANCE_M``). Nothing imports Flask.
"""

import difflib
import re
from contextlib import nullcontext
from dataclasses import dataclass

from sqlalchemy import text

from asset_map import audit, plaintext
from asset_map.errors import FormInvalid, InputError, NotFound
from asset_map.reference.postcodes import normalise_postcode
from asset_map.registers.schema import taxonomy
from asset_map.vocabulary import STATUSES as ASSET_STATUSES

KINDS = ("new", "change", "correction")
STATUSES = ("waiting", "accepted", "merged", "rejected")
# (field, label, max length, multiline): the form's fields in the order it shows them.
FIELDS = (
    ("name", "the name of the place or group", 200, False),
    ("category", "what kind of place or group it is", 64, False),
    ("description", "what it is", 2000, True),
    ("offers", "what it offers", 500, False),
    ("address", "the address", 300, False),
    ("postcode", "the postcode", 10, False),
    ("email", "its e-mail address", 254, False),
    ("phone", "its phone number", 40, False),
    ("url", "its website", 500, False),
    ("contact", "how to contact it", 500, True),
    ("suggester_name", "your name", 120, False),
    ("suggester_contact", "your e-mail or phone", 254, False),
)
# What a change or correction may ask to empty (the "remove this" choice beside each optional field); a name, a
# kind and a postcode (the asset would lose its place) are never emptied.
CLEARABLE = ("description", "offers", "address", "email", "phone", "url")
ASSET_FIELDS = ("name", "tier", "category", "description", "offers", "address", "postcode", "email", "phone", "url")
DUPLICATE_RADIUS_M = 250
NEAR_BOX_DEG = (0.075, 0.045)  # about 5 km each way at English latitudes
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$")
_PHONE = re.compile(r"^[0-9 +()-]{6,40}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_NAME_WORDS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Place:
    lon: float
    lat: float
    district_code: str
    postcode: str | None


def category_choices():
    """[(tier label, [(category id, label)])] for the form: associations and organisations only (individuals offer
    themselves through their own form)."""
    tax = taxonomy()
    labels = {"association": "A group or network run by its members", "organisation": "An organisation or service"}
    return [(labels[tier], sorted(((cid, spec["label"]) for cid, spec in tax.categories.items()
                                   if spec["tier"] == tier), key=lambda c: c[1]))
            for tier in ("association", "organisation")]


def category_label(category):
    spec = taxonomy().categories.get(category or "")
    return spec["label"] if spec else "Not sure"


def parse(form):
    """The cleaned fields of a submitted form; FormInvalid listing every problem. ``form`` is any mapping."""
    values, problems = {}, {}
    for name, label, limit, multiline in FIELDS:
        try:
            values[name] = plaintext.clean(form.get(name), field=name, label=label, max_length=limit,
                                           multiline=multiline, required=name == "name")
        except InputError as err:
            problems[name] = err.user_message
    category = values.get("category")
    if category in (None, "not_sure"):
        values["category"], values["tier"] = None, None
    elif category in taxonomy().categories and taxonomy().categories[category]["tier"] != "individual":
        values["tier"] = taxonomy().categories[category]["tier"]
    else:
        problems["category"] = "Choose what kind of place or group it is from the list, or 'Not sure'."
    if values.get("url") and not _URL.match(values["url"]):
        problems["url"] = "Enter its website starting with https://, or leave it empty."
    check_contact(values, problems)
    values["offers"] = [o.strip().lower() for o in re.split(r"[;,\n]", values.get("offers") or "") if o.strip()][:20]
    values["cleared"] = _cleared(form, values)
    if problems:
        raise FormInvalid(problems)
    return values


def _cleared(form, values):
    """The fields the sender asks to empty (the ``clear`` boxes, "remove this"). Removing wins over what the field
    holds: a correction form comes filled with the current values, and ticking the box is the clearer intent."""
    asked = form.getlist("clear") if hasattr(form, "getlist") else form.get("clear") or []
    asked = [asked] if isinstance(asked, str) else list(asked)
    cleared = [f for f in CLEARABLE if f in asked]
    for name in cleared:
        values[name] = [] if name == "offers" else None
    return cleared


def check_contact(values, problems, *, whose="its", phone_example="01785 223344", tail=", or leave it empty"):
    """Add to ``problems`` what is wrong with the e-mail, phone and postcode of ``values``; normalises the
    postcode in place. Shared by every public form."""
    if values.get("email") and not _EMAIL.match(values["email"]):
        problems["email"] = f"Enter {whose} e-mail address like name@example.org{tail}."
    if values.get("phone") and not _PHONE.match(values["phone"]):
        problems["phone"] = f"Enter {whose} phone number in digits, like {phone_example}{tail}."
    if values.get("postcode"):
        normal = normalise_postcode(values["postcode"])
        if normal is None:
            problems["postcode"] = f"{values['postcode']!r} is not a UK postcode; enter one like ST16 2LP."
        values["postcode"] = normal


def _point(form):
    lon, lat = form.get("lon"), form.get("lat")
    if not lon or not lat:
        return None
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        return None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or lon != lon or lat != lat:
        return None
    return lon, lat


def locate(conn, form, postcode, *, tolerance_m=200):
    """Where the suggestion is: the point clicked on the map, else the postcode's point; it must lie in (or within
    ``tolerance_m`` of) a loaded district. FormInvalid otherwise, saying what to do."""
    point = _point(form)
    if point is None and postcode:
        row = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM postcodes WHERE postcode = :p"),
                           {"p": postcode}).first()
        if row is None:
            raise FormInvalid({"postcode": f"We cannot find {postcode} in our postcode list: check it, or click "
                                           "the place on the map instead."})
        point = (row[0], row[1])
    if point is None:
        raise FormInvalid({"where": "Tell us where it is: enter its postcode, or click the place on the map."})
    lon, lat = point
    district = district_at(conn, lon, lat, tolerance_m=tolerance_m)
    if district is None:
        names = ", ".join(r[0] for r in conn.execute(text("SELECT name FROM districts ORDER BY name"))) or "none"
        raise FormInvalid({"where": "That place is outside the area this map covers, so we cannot add it here. "
                                    f"The map covers: {names}."})
    return Place(lon, lat, district, postcode)


def district_at(conn, lon, lat, *, tolerance_m=200):
    """The district holding (lon, lat) EPSG:4326, else the nearest within ``tolerance_m`` metres (EPSG:27700), else
    None."""
    params = {"lon": lon, "lat": lat, "tol": float(tolerance_m)}
    code = conn.execute(text("SELECT code FROM districts WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, "
                             ":lat), 4326)) ORDER BY code LIMIT 1"), params).scalar()
    if code is None and tolerance_m > 0:
        code = conn.execute(text(
            "WITH p AS (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 27700) AS g) "
            "SELECT code FROM districts, p WHERE ST_DWithin(ST_Transform(geom, 27700), p.g, :tol) "
            "ORDER BY ST_Distance(ST_Transform(geom, 27700), p.g) LIMIT 1"), params).scalar()
    return code


def submit(engine, form, *, kind="new", asset_id=None, confirmation_id=None, ip=None, tolerance_m=200):
    """Store a suggestion from a submitted form; returns its id. Every problem is a FormInvalid, and then nothing
    is stored. The audit log gets the id and the district, never the suggester's details."""
    if kind not in KINDS:
        raise ValueError(kind)
    values = parse(form)
    with engine.begin() as conn:
        current = None
        if asset_id is not None:
            current = conn.execute(text("SELECT id, district_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM assets "
                                        "WHERE id = :i AND withdrawn_at IS NULL AND tier <> 'individual'"),
                                   {"i": int(asset_id)}).mappings().first()
            if current is None:
                raise NotFound("That asset is not on the map (any more), so it cannot be changed.")
        if current is not None and not _point(form) and not values["postcode"]:
            place = Place(current["lon"], current["lat"], current["district_code"], None)
        else:
            place = locate(conn, form, values["postcode"], tolerance_m=tolerance_m)
        cols = [name for name, *_ in FIELDS] + ["tier", "cleared"]
        if current is None:
            values["cleared"] = []  # a new asset has nothing to empty
        new_id = conn.execute(text(
            f"INSERT INTO suggestions (kind, asset_id, confirmation_id, district_code, geom, {', '.join(cols)}) "
            f"VALUES (:kind, :asset_id, :confirmation_id, :district, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), "
            f"{', '.join(':' + c for c in cols)}) RETURNING id"),
            {**{c: values.get(c) for c in cols}, "kind": kind, "asset_id": asset_id,
             "confirmation_id": confirmation_id, "district": place.district_code, "lon": place.lon,
             "lat": place.lat}).scalar_one()
        audit.record(conn, actor="anonymous", action="suggestion", target=f"suggestion {new_id}",
                     details={"kind": kind, "asset_id": asset_id, "district": place.district_code, "ip": ip})
    return new_id


def waiting_count(engine_or_conn, districts=None):
    """Suggestions waiting for a decision (in ``districts`` when given), from the per-district counts a trigger
    keeps (migration 0020)."""
    sql = "SELECT coalesce(sum(waiting), 0) FROM suggestion_waiting"
    params = {}
    if districts:
        sql += " WHERE district_code = ANY(:d)"
        params["d"] = list(districts)
    with connected(engine_or_conn) as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def connected(engine_or_conn):
    """A connection from an engine (closed after), or the connection given (left open): a page that asks several
    things asks them on one connection."""
    if hasattr(engine_or_conn, "execute"):
        return nullcontext(engine_or_conn)
    return engine_or_conn.connect()


def waiting_by_district(engine_or_conn):
    """[(district code, name, waiting)] for every district with a suggestion waiting, most waiting first."""
    with connected(engine_or_conn) as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT w.district_code, coalesce(d.name, w.district_code), w.waiting FROM suggestion_waiting w "
            "LEFT JOIN districts d ON d.code = w.district_code WHERE w.waiting > 0 "
            "ORDER BY w.waiting DESC, w.district_code"))]


_COLUMNS = ("s.id, s.kind, s.asset_id, s.status, s.district_code, s.tier, s.category, s.name, s.description, "
            "s.offers, s.address, s.postcode, s.email, s.phone, s.url, s.contact, s.suggester_name, "
            "s.suggester_contact, s.confirmation_id, s.decided_at, s.decided_by, s.reason, s.result_asset_id, "
            "s.created_at, s.cleared, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat")


def queue(engine_or_conn, *, district=None, limit=25, offset=0, total=None):
    """(total, rows) of waiting suggestions, oldest first, optionally of one district; ``total`` when the caller
    knows it already (from ``waiting_by_district``) saves counting again."""
    where, params = "s.status = 'waiting'", {"limit": int(limit), "offset": int(offset)}
    if district:
        where += " AND s.district_code = :d"
        params["d"] = district
    with connected(engine_or_conn) as conn:
        if total is None:
            total = conn.execute(text(f"SELECT count(*) FROM suggestions s WHERE {where}"), params).scalar_one()
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM suggestions s WHERE {where} "
                                 "ORDER BY s.created_at, s.id LIMIT :limit OFFSET :offset"), params).mappings().all()
    return total, [dict(r) for r in rows]


def get(engine_or_conn, suggestion_id):
    sql = text(f"SELECT {_COLUMNS} FROM suggestions s WHERE s.id = :i")
    if hasattr(engine_or_conn, "connect") and not hasattr(engine_or_conn, "execute"):
        with engine_or_conn.connect() as conn:
            row = conn.execute(sql, {"i": int(suggestion_id)}).mappings().first()
    else:
        row = engine_or_conn.execute(sql, {"i": int(suggestion_id)}).mappings().first()
    if row is None:
        raise NotFound(f"There is no suggestion {int(suggestion_id)}.")
    return dict(row)


def _name_key(name):
    return " ".join(w for w in _NAME_WORDS.split(str(name or "").lower()) if w and w not in ("the", "and"))


def similar_names(a, b):
    """Two names that are probably the same place: equal after normalising, one inside the other, or close."""
    ka, kb = _name_key(a), _name_key(b)
    if not ka or not kb:
        return False
    return ka == kb or (min(len(ka), len(kb)) >= 6 and (ka in kb or kb in ka)) or \
        difflib.SequenceMatcher(None, ka, kb).ratio() >= 0.8


def checks(engine_or_conn, suggestion, *, role):
    """What a moderator needs to decide: the nearest assets (straight line, metres in EPSG:27700), the likely
    duplicates among them and by postcode, and for a change or correction the asset as it is now with the fields
    that differ. Individuals are never among them below officer (the store's visibility rule). One connection for
    the three questions."""
    from asset_map.maps import near as near_
    from asset_map.store.assets import AssetFilter

    # Within about 5 km only: nothing farther is a duplicate, and the box lets the spatial index stop early (a
    # register of individuals, none of which a moderator below officer may see, would otherwise be walked whole).
    lon, lat = suggestion["lon"], suggestion["lat"]
    box = (max(lon - NEAR_BOX_DEG[0], -180), max(lat - NEAR_BOX_DEG[1], -90), min(lon + NEAR_BOX_DEG[0], 180),
           min(lat + NEAR_BOX_DEG[1], 90))
    flt = AssetFilter(status=ASSET_STATUSES, bbox=box)
    with connected(engine_or_conn) as conn:
        nearest = near_.nearest(conn, suggestion["lon"], suggestion["lat"], flt, role=role, limit=8, records=True)
        duplicates = _duplicates(conn, suggestion, nearest, role)
        current, diff = None, []
        if suggestion.get("asset_id"):
            current = current_asset(conn, suggestion["asset_id"], role=role)
            if current is not None:
                diff = differences(current, suggestion)
    return {"nearest": nearest, "duplicates": list(duplicates.values()), "current": current, "diff": diff}


def _duplicates(conn, suggestion, nearest, role):
    """{asset id: asset with ``why``}: similar names nearby, and the same postcode."""
    from asset_map.store.assets import visibility_condition

    duplicates = {}
    for row in nearest:
        if row["id"] == suggestion.get("asset_id"):
            continue
        if row["distance_m"] <= DUPLICATE_RADIUS_M and similar_names(row["name"], suggestion["name"]):
            duplicates[row["id"]] = {**row, "why": f"a similar name {row['distance_m']:.0f} m away"}
    if not suggestion.get("postcode"):
        return duplicates
    privacy, _ = visibility_condition(role, "a")
    # A postcode covers a few streets: searching within ~2 km of the point first lets the spatial index
    # do the work (there is no index on postcodes of assets).
    for row in conn.execute(text(
            "SELECT a.id, a.name, a.category, a.address, a.postcode, a.status, a.district_code "
            "FROM assets a WHERE a.geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 0.03) "
            f"AND a.postcode = :p AND a.withdrawn_at IS NULL AND {privacy} ORDER BY a.name LIMIT 20"),
            {"p": suggestion["postcode"], "lon": suggestion["lon"], "lat": suggestion["lat"]}).mappings():
        why = f"the same postcode, {row['postcode']}"
        if row["id"] in duplicates:
            duplicates[row["id"]]["why"] += f"; {why}"
        elif row["id"] != suggestion.get("asset_id"):
            duplicates[row["id"]] = {**dict(row), "why": why}
    return duplicates


def current_asset(engine_or_conn, asset_id, *, role):
    from asset_map.store.assets import visibility_condition

    privacy, _ = visibility_condition(role, "a")
    with connected(engine_or_conn) as conn:
        row = conn.execute(text(
            f"SELECT a.id, {', '.join('a.' + f for f in ASSET_FIELDS)}, a.status, a.last_verified, a.register, "
            f"a.district_code, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat FROM assets a "
            f"WHERE a.id = :i AND {privacy}"), {"i": int(asset_id)}).mappings().first()
    return dict(row) if row else None


def differences(current, suggestion):
    """[(field, now, suggested)] for each asset field the suggestion changes: empty suggested fields change
    nothing, unless the sender asked to empty them (``cleared``), when suggested is None (shown as "cleared")."""
    out = []
    cleared = set(suggestion.get("cleared") or ())
    for name in ASSET_FIELDS:
        new = suggestion.get(name)
        if new in (None, "", []):
            if name in cleared and current.get(name) not in (None, "", []):
                out.append((name, current.get(name), None))
            continue
        old = current.get(name)
        if name == "offers":
            old, new = sorted(old or []), sorted(new)
        if (old or None) != (new or None):
            out.append((name, old, new))
    return out
