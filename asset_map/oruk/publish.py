"""The Open Referral UK 3.0 API (HSDS-UK) over the store: associations and organisations only, never individuals.

An asset is an ORUK organisation; each of its offers is a service ("Kinver Library: buildings/space"), or the asset
itself is its one service when it lists no offers; its point is a physical location (WGS84, the UPRN as external
identifier) and its category, offers and district are taxonomy terms (``taxonomies``). Empty optional fields are
left out. What each role sees is the store's rule (``AssetFilter.where``, ``sees_contacts``): the public gets no
restricted assets and no e-mail addresses.

Nothing here knows Flask: functions take the engine, the role, plain arguments and return dicts.
"""

import math
from dataclasses import dataclass, replace
from datetime import timezone

from sqlalchemy import text

from asset_map.errors import InputError, NotFound
from asset_map.maps.near import lookup_postcode
from asset_map.oruk import ids, taxonomies
from asset_map.privacy import sees_contacts
from asset_map.store import changes
from asset_map.store.assets import DEFAULT_STATUSES, AssetFilter

VERSION = "3.0"
PROFILE = "https://openreferraluk.org/"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000
MAX_PROXIMITY_M = 100_000
# HSDS service status for each asset status (withdrawn assets are never listed).
STATUS = {"open": "active", "temporarily closed": "temporarily closed", "closed": "defunct"}
_SEARCH_MAX = 200
_TOTALS = {}        # (assets change stamp, count SQL, parameters) -> total items
_TOTALS_KEPT = 512


@dataclass(frozen=True)
class ServiceQuery:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    flt: AssetFilter = AssetFilter(tier=taxonomies.PUBLIC_TIERS)
    offer: str | None = None          # only the service of this offer
    offers_only: bool = False         # only services that are offers (the offers taxonomy)
    empty: bool = False               # a term or taxonomy that selects nothing
    near: tuple | None = None         # (lon, lat, metres)


def _int(args, name, default, low, high):
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip())
    except ValueError as err:
        msg = f"Parameter '{name}' has value {str(raw)[:40]!r}: expected a whole number."
        raise InputError(msg) from err
    if not low <= value <= high:
        msg = f"Parameter '{name}' has value {value}: expected between {low} and {high}."
        raise InputError(msg)
    return value


def _number(args, name):
    raw = args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(str(raw).strip())
    except ValueError as err:
        msg = f"Parameter '{name}' has value {str(raw)[:40]!r}: expected a number."
        raise InputError(msg) from err
    if not math.isfinite(value):
        msg = f"Parameter '{name}' has value {str(raw)[:40]!r}: expected a finite number."
        raise InputError(msg)
    return value


def paging(args):
    return (_int(args, "page", 1, 1, 10**6), _int(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE))


def parse_services(engine, args, *, with_location=False):
    """Validate the standard filters of ``/services`` (and ``/service_at_locations``, which adds ``postcode`` and
    ``proximity``). Ages, times and days are accepted and checked, but assets carry no age limits or opening hours,
    so they select every service (the services are open to all)."""
    page, per_page = paging(args)
    for name in ("minimum_age", "maximum_age"):
        value = _number(args, name)
        if value is not None and not 0 <= value <= 150:
            msg = f"Parameter '{name}' has value {value:g}: expected an age between 0 and 150."
            raise InputError(msg)
    search = str(args.get("search") or "").strip()[:_SEARCH_MAX] or None
    q = ServiceQuery(page=page, per_page=per_page, flt=AssetFilter(tier=taxonomies.PUBLIC_TIERS, q=search))
    term_id, taxonomy_id = args.get("taxonomy_term_id"), args.get("taxonomy_id")
    if term_id:
        q = _with_term(engine, q, str(term_id))
    if taxonomy_id:
        found = [t for t in taxonomies.taxonomies(engine) if t.id == str(taxonomy_id)]
        if not found:
            q = replace(q, empty=True)
        elif found[0].key == taxonomies.OFFERS:
            q = replace(q, offers_only=True)
        elif found[0].terms and found[0].terms[0].match[0] == "categories":
            cats = tuple(c for t in found[0].terms for c in t.match[1])
            q = replace(q, flt=replace(q.flt, category=cats))
    if with_location and args.get("postcode"):
        place = lookup_postcode(engine, args["postcode"])
        metres = _number(args, "proximity")
        metres = 1_000.0 if metres is None else metres
        if not 0 < metres <= MAX_PROXIMITY_M:
            msg = f"Parameter 'proximity' has value {metres:g}: expected metres between 1 and {MAX_PROXIMITY_M}."
            raise InputError(msg)
        q = replace(q, near=(place["lon"], place["lat"], metres))
    elif with_location and args.get("proximity"):
        raise InputError("Parameter 'proximity' needs a 'postcode' to measure from.")
    return q


def _with_term(engine, q, term_id):
    for tax in taxonomies.taxonomies(engine):
        for term in tax.terms:
            if term.id != term_id:
                continue
            kind, value = term.match
            if kind == "category":
                return replace(q, flt=replace(q.flt, category=(value,)))
            if kind == "categories":
                return replace(q, flt=replace(q.flt, category=value))
            if kind == "tier":
                return replace(q, flt=replace(q.flt, tier=(value,)))
            if kind == "offer":
                return replace(q, offer=value, flt=replace(q.flt, offer=(value,)))
            if kind == "district":
                return replace(q, flt=replace(q.flt, district=(value,)))
    return replace(q, empty=True)


# -- SQL ---------------------------------------------------------------------------------------------------------
# One row per service: the asset's offers with their 1-based ordinal, or ordinal 0 for an asset without offers.
_SERVICES = ("CROSS JOIN LATERAL (SELECT 0::bigint AS n, NULL::text AS offer WHERE COALESCE(cardinality(a.offers), 0) = 0 "
             "UNION ALL SELECT u.n, u.offer FROM unnest(a.offers) WITH ORDINALITY AS u(offer, n)) o")
_ASSET_COLUMNS = ", ".join(f"a.{c}" for c in ("id", "offers", "name", "description", "url", "email", "status",
                                                "updated_at", "category", "tier", "address", "postcode", "uprn",
                                                "district_code", "geom"))
_COLUMNS = ("a.id, o.n, o.offer, a.name, a.description, a.url, {email} AS email, a.status, a.updated_at, a.category, "
            "a.tier, a.address, a.postcode, a.uprn, a.district_code, d.name AS district_name, "
            "round(ST_X(a.geom)::numeric, 7)::float AS lon, round(ST_Y(a.geom)::numeric, 7)::float AS lat")


def _where(q, role):
    where, params = q.flt.where(role=role, alias="a")
    # Individuals never appear in ORUK, whatever the role (they are people, not services).
    where += " AND a.tier IN ('association', 'organisation') AND a.geom IS NOT NULL"
    service = []
    if q.offer:
        service.append("o.offer = :s_offer")
        params["s_offer"] = q.offer
    elif q.offers_only:
        service.append("o.n > 0")
        where += " AND cardinality(a.offers) > 0"
    if q.near:
        lon, lat, metres = q.near
        # Metres on the spheroid (geography), with the GiST index on the points doing the first cut in degrees.
        where += (" AND a.geom && ST_Expand(ST_SetSRID(ST_MakePoint(:n_lon, :n_lat), 4326), :n_deg) "
                  "AND ST_DWithin(a.geom::geography, ST_SetSRID(ST_MakePoint(:n_lon, :n_lat), 4326)::geography, :n_m)")
        params.update(n_lon=lon, n_lat=lat, n_m=metres, n_deg=metres / 60_000 + 0.01)
    return where, service, params


def _count_sql(q, where):
    if q.offer:
        return f"SELECT count(*) FROM assets a WHERE {where}"
    if q.offers_only:
        return f"SELECT COALESCE(sum(cardinality(a.offers)), 0) FROM assets a WHERE {where}"  # offers > 0 in where
    return f"SELECT COALESCE(sum(GREATEST(COALESCE(cardinality(a.offers), 0), 1)), 0) FROM assets a WHERE {where}"


def _rows(engine, q, role, *, one=None):
    """(total, rows) of the query's page, or of the one service ``(asset id, ordinal)``."""
    where, service, params = _where(q, role)
    email = "a.email" if sees_contacts(role) else "NULL::text"
    cols = _COLUMNS.format(email=email)
    conds = " AND ".join([where, *service])
    if one is not None:
        where += " AND a.id = :one_id"
        service.append("o.n = :one_n")
        params.update(one_id=one[0], one_n=one[1])
    # Every selected asset gives at least one service, so a page's services come from the first offset + limit
    # assets in id order: those are read by the (tier, id) index of each partition, one tier at a time (a
    # partition of individuals then costs nothing), and only they are unnested and sorted.
    by_tier = " UNION ALL ".join(f"(SELECT {_ASSET_COLUMNS} FROM assets a WHERE {where} AND a.tier = '{tier}' "
                                 f"ORDER BY a.id LIMIT :alim)" for tier in taxonomies.PUBLIC_TIERS)
    sql = (f"WITH a AS ({by_tier} ORDER BY id LIMIT :alim) "
           f"SELECT {cols} FROM a {_SERVICES} LEFT JOIN districts d ON d.code = a.district_code "
           f"{'WHERE ' + ' AND '.join(service) if service else ''} ORDER BY a.id, o.n LIMIT :lim OFFSET :off")
    params.update(lim=q.per_page, off=(q.page - 1) * q.per_page, alim=q.page * q.per_page)
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).mappings().all()
        if one is not None or q.empty:
            return len(rows), rows
        if q.page == 1 and len(rows) < q.per_page:
            return len(rows), rows  # the whole result is on this page: no need to count
        count_sql = _count_sql(q, where) if not q.near else f"SELECT count(*) FROM assets a {_SERVICES} WHERE {conds}"
        # Counting every service costs more than the page: the total is kept until the assets change (the change
        # stamp that database triggers move on every write to assets).
        count_params = {k: v for k, v in params.items() if k not in ("lim", "off", "alim")}
        key = (changes.stamps(conn)["assets"], count_sql, repr(sorted(count_params.items())))
        total = _TOTALS.get(key)
        if total is None:
            total = int(conn.execute(text(count_sql), count_params).scalar())
            if len(_TOTALS) >= _TOTALS_KEPT:
                _TOTALS.pop(next(iter(_TOTALS)))
            _TOTALS[key] = total
    return total, rows


# -- JSON --------------------------------------------------------------------------------------------------------
def _iso(ts):
    return ts.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z") if ts else None


def _drop_empty(d):
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


def _service_name(row):
    return row["name"] if not row["offer"] else f"{row['name']}: {row['offer']}"


def _service_basic(row, base=None):
    org_id = ids.asset_uuid("organization", row["id"])
    out = {"id": ids.asset_uuid("service", row["id"], row["n"]), "organization_id": org_id,
           "name": _service_name(row), "description": row["description"], "url": row["url"],
           "email": row["email"], "status": STATUS.get(row["status"], "inactive"),
           "last_modified": _iso(row["updated_at"])}
    return _drop_empty(out)


def _organization(row):
    description = row["description"] or _category_label(row)
    return _drop_empty({"id": ids.asset_uuid("organization", row["id"]), "name": row["name"],
                        "description": description, "website": row["url"], "email": row["email"]})


def _category_label(row):
    terms = taxonomies.category_terms(row["category"])
    label = terms[0][1].name if terms else row["category"]
    return f"{label} ({row['tier']})"


def _attribute(link_id, link_type, tax, term, ordinal):
    term_json = _drop_empty({"id": term.id, "name": term.name, "description": term.description,
                             "parent_id": term.parent_id, "taxonomy": tax.name, "taxonomy_id": tax.id,
                             "term_uri": term.uri, "term": term.code})
    return {"id": ids.named_uuid("attribute", link_id, term.id, ordinal), "link_id": link_id,
            "link_type": link_type, "taxonomy_term_id": term.id, "taxonomy_term": term_json}


def _address(row, location_id):
    if not row["address"] or not row["postcode"]:
        return []
    parts = [p.strip() for p in str(row["address"]).split(",") if p.strip() and p.strip() != row["postcode"]]
    if not parts:
        return []
    city = parts[-1] if len(parts) > 1 else (row["district_name"] or "")
    first = ", ".join(parts[:-1]) if len(parts) > 1 else parts[0]
    return [{"id": ids.asset_uuid("address", row["id"]), "location_id": location_id, "address_1": first,
             "city": city, "state_province": row["district_name"] or city, "postal_code": row["postcode"],
             "country": "GB", "address_type": "physical"}]


def _location(row, *, full):
    location_id = ids.asset_uuid("location", row["id"])
    out = {"id": location_id, "location_type": "physical", "name": row["name"],
           "latitude": row["lat"], "longitude": row["lon"]}
    if row["uprn"]:
        out.update(external_identifier=str(row["uprn"]), external_identifier_type="uprn")
    if full:
        out["addresses"] = _address(row, location_id)
        if row["district_code"] and row["district_name"]:
            tax = taxonomies.districts_taxonomy()
            out["attributes"] = [_attribute(location_id, "location", tax,
                                            taxonomies.district_term(row["district_code"], row["district_name"]), 0)]
    return _drop_empty(out)


def _service_at_location(row, *, full):
    service_id = ids.asset_uuid("service", row["id"], row["n"])
    out = {"id": ids.asset_uuid("service_at_location", row["id"], row["n"]), "service_id": service_id,
           "location_id": ids.asset_uuid("location", row["id"]), "location": _location(row, full=full)}
    return out


def _service_full(row):
    out = _service_basic(row)
    out["organization"] = _organization(row)
    out["service_at_locations"] = [_service_at_location(row, full=True)]
    attrs = [_attribute(out["id"], "service", tax, term, i)
             for i, (tax, term) in enumerate(taxonomies.category_terms(row["category"]))]
    if row["offer"]:
        found = taxonomies.offer_term(row["offer"])
        if found:
            attrs.append(_attribute(out["id"], "service", found[0], found[1], len(attrs)))
    if attrs:
        out["attributes"] = attrs
    return out


def page(contents, total, page_number, per_page, *, attribution=None, licence=None):
    """The HSDS paging object around a page of ``contents``."""
    pages = max(1, math.ceil(total / per_page)) if total else 0
    out = {"total_items": total, "total_pages": pages, "page_number": page_number, "size": len(contents),
           "first_page": page_number == 1, "last_page": page_number >= pages, "empty": len(contents) == 0,
           "contents": contents}
    if attribution:
        out["attribution"] = attribution
    if licence:
        out["licence"] = licence
    return out


# -- endpoints ---------------------------------------------------------------------------------------------------
def root(openapi_url, *, attribution, licence):
    return {"version": VERSION, "profile": PROFILE, "openapi_url": openapi_url, "attribution": attribution,
            "licence": licence}


def services(engine, args, *, role, **meta):
    q = parse_services(engine, args)
    total, rows = (0, []) if q.empty else _rows(engine, q, role)
    return page([_service_basic(r) for r in rows], total, q.page, q.per_page, **meta)


def _one(engine, kind, value, role):
    parsed = ids.parse(kind, value)
    if parsed is None:
        msg = f"There is no {kind.replace('_', ' ')} {str(value)[:64]!r}."
        raise NotFound(msg)
    # Closed assets are still answered by id (status defunct), so a partner's stored link explains itself.
    q = ServiceQuery(per_page=1, flt=AssetFilter(tier=taxonomies.PUBLIC_TIERS, status=(*DEFAULT_STATUSES, "closed")))
    _, rows = _rows(engine, q, role, one=parsed)
    if not rows:
        msg = f"There is no {kind.replace('_', ' ')} {str(value)[:64]!r}."
        raise NotFound(msg)
    return rows[0]


def service(engine, service_id, *, role):
    return _service_full(_one(engine, "service", service_id, role))


def service_at_locations(engine, args, *, role, **meta):
    q = parse_services(engine, args, with_location=True)
    total, rows = (0, []) if q.empty else _rows(engine, q, role)
    contents = []
    for r in rows:
        sal = _service_at_location(r, full=False)
        sal["service"] = _service_basic(r)
        contents.append(sal)
    return page(contents, total, q.page, q.per_page, **meta)


def service_at_location(engine, sal_id, *, role):
    parsed = ids.parse("service_at_location", sal_id)
    row = _one(engine, "service", ids.asset_uuid("service", *parsed) if parsed else "-", role)
    out = _service_at_location(row, full=True)
    out["service"] = _service_full(row)
    return out


def _taxonomy_json(tax, *, with_terms=False):
    out = _drop_empty({"id": tax.id, "name": tax.name, "description": tax.description, "uri": tax.uri,
                       "version": None})
    if with_terms:
        out["taxonomy_terms"] = [_term_json(tax, t) for t in tax.terms]
    return out


def _term_json(tax, term):
    return _drop_empty({"id": term.id, "name": term.name, "description": term.description,
                        "parent_id": term.parent_id, "taxonomy": tax.name, "taxonomy_id": tax.id,
                        "term_uri": term.uri, "term": term.code})


def taxonomies(engine, args, **meta):
    number, per_page = paging(args)
    every = taxonomies.taxonomies(engine)
    chunk = every[(number - 1) * per_page:number * per_page]
    return page([_taxonomy_json(t) for t in chunk], len(every), number, per_page, **meta)


def taxonomy(engine, taxonomy_id):
    for tax in taxonomies.taxonomies(engine):
        if tax.id == taxonomy_id:
            return _taxonomy_json(tax, with_terms=True)
    msg = f"There is no taxonomy {str(taxonomy_id)[:64]!r}."
    raise NotFound(msg)


def taxonomy_terms(engine, args, **meta):
    number, per_page = paging(args)
    every = [(tax, term) for tax in taxonomies.taxonomies(engine) for term in tax.terms]
    taxonomy_id = args.get("taxonomy_id")
    if taxonomy_id:
        every = [(tax, term) for tax, term in every if tax.id == taxonomy_id]
    chunk = every[(number - 1) * per_page:number * per_page]
    return page([_term_json(tax, term) for tax, term in chunk], len(every), number, per_page, **meta)


def taxonomy_term(engine, term_id):
    for tax in taxonomies.taxonomies(engine):
        for term in tax.terms:
            if term.id == term_id:
                return _term_json(tax, term)
    msg = f"There is no taxonomy term {str(term_id)[:64]!r}."
    raise NotFound(msg)
