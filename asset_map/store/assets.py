"""Assets in the store: the one filter every surface shares (map, table, exports, API, gap report), the privacy
rule for each role, and the bulk write the importer ends with.

The query parameters ``district, tier, category, offer, status, verified_within, q`` (plus ``bbox`` and
``updated_since``) mean the same everywhere because they are parsed here, once.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import text

from asset_map import privacy
from asset_map.errors import InputError
from asset_map.store import history, partitions
from asset_map.vocabulary import DEFAULT_STATUSES, ROLES, STORED_STATUSES, TIERS, role_rank

# geopandas, pandas, numpy and the bulk writers are imported where they are used: the map, tiles and table read
# assets through this module's filter and never need them, and a serving process that does not load them holds
# about a third of the memory (BENCHMARKS.md, issue 16).

# The statuses a filter may ask for include the store's own "withdrawn" (gone from its register).
STATUSES = STORED_STATUSES
FILTER_PARAMS = ("district", "area", "tier", "category", "offer", "status", "verified_within", "q", "bbox",
                 "updated_since")

ASSET_COLUMNS = ["id", "register", "source_row", "source_key", "tier", "category", "name", "description", "offers",
                 "address", "postcode", "uprn", "email", "phone", "url", "status", "last_verified", "visibility",
                 "geocode_method", "geocode_quality", "district_code", "lsoa11_code", "lsoa21_code", "created_at",
                 "updated_at"]
CONTACT_COLUMNS = ["email", "phone", "url"]
_CODE = re.compile(r"^[A-Z][0-9]{8}$")
_WORD = re.compile(r"^[a-z0-9_/ -]{1,64}$")
# An area of any loaded geography: "geography:code", e.g. divisions:E58001234 or pilot-neighbourhoods:PN-01.
_AREA = re.compile(r"^[a-z][a-z0-9_-]{0,63}:[A-Za-z0-9 _.-]{1,64}$")


def _values(args, name):
    """Repeated parameters and comma lists both work: ?tier=a&tier=b and ?tier=a,b."""
    raw = args.getlist(name) if hasattr(args, "getlist") else ([args[name]] if name in args else [])
    if isinstance(raw, (list, tuple)) and len(raw) == 1 and isinstance(raw[0], (list, tuple)):
        raw = list(raw[0])
    out = []
    for item in raw:
        out.extend(v.strip() for v in str(item).split(",") if v.strip())
    return tuple(dict.fromkeys(out))


def _bad(name, value, expected):
    msg = f"Parameter '{name}' has value {value!r}: {expected}."
    return InputError(msg)


@dataclass(frozen=True)
class AssetFilter:
    district: tuple = ()
    area: tuple = ()
    tier: tuple = ()
    category: tuple = ()
    offer: tuple = ()
    status: tuple = DEFAULT_STATUSES
    verified_within: int | None = None
    q: str | None = None
    bbox: tuple | None = None
    updated_since: datetime | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_args(cls, args):
        """Parse request or CLI arguments; anything malformed is an InputError naming parameter and value."""
        district = _values(args, "district")
        for code in district:
            if not _CODE.match(code):
                raise _bad("district", code, "expected an ONS code such as E07000199")
        area = _values(args, "area")
        for value in area:
            if not _AREA.match(value):
                raise _bad("area", value, "expected geography:code, e.g. divisions:E58000123")
        tier = _values(args, "tier")
        for t in tier:
            if t not in TIERS:
                raise _bad("tier", t, f"expected one of {', '.join(TIERS)}")
        category = tuple(c.lower() for c in _values(args, "category"))
        offer = tuple(o.lower() for o in _values(args, "offer"))
        for name, items in (("category", category), ("offer", offer)):
            for item in items:
                if not _WORD.match(item):
                    raise _bad(name, item, "expected a short name of letters, digits, '_', '/', '-' or spaces")
        status = tuple(s.lower() for s in _values(args, "status"))
        if status == ("all",):
            status = STATUSES
        for s in status:
            if s not in STATUSES:
                raise _bad("status", s, f"expected one of {', '.join(STATUSES)} or all")
        verified = _one(args, "verified_within")
        if verified is not None:
            try:
                verified = int(verified)
            except ValueError as err:
                raise _bad("verified_within", verified, "expected a whole number of months") from err
            if not 0 < verified <= 1200:
                raise _bad("verified_within", verified, "expected between 1 and 1200 months")
        q = _one(args, "q")
        q = q.strip()[:200] if q and q.strip() else None
        return cls(district=district, area=area, tier=tier, category=category, offer=offer,
                   status=status or DEFAULT_STATUSES, verified_within=verified, q=q,
                   bbox=parse_bbox(_one(args, "bbox")),
                   updated_since=parse_datetime(_one(args, "updated_since"), "updated_since"))

    def as_args(self):
        """The filter as query parameters (for links that keep the view)."""
        out = {}
        for name in ("district", "area", "tier", "category", "offer"):
            if getattr(self, name):
                out[name] = ",".join(getattr(self, name))
        if self.status != DEFAULT_STATUSES:
            out["status"] = ",".join(self.status)
        if self.verified_within:
            out["verified_within"] = str(self.verified_within)
        if self.q:
            out["q"] = self.q
        if self.bbox:
            out["bbox"] = ",".join(f"{v:g}" for v in self.bbox)
        if self.updated_since:
            out["updated_since"] = self.updated_since.isoformat()
        return out

    def where(self, *, role="public", alias="a", today=None):
        """SQL conditions and bound parameters for this filter as seen by ``role``."""
        p = f"{alias}." if alias else ""
        conds, params = [f"{p}withdrawn_at IS NULL"] if "withdrawn" not in self.status else [], {}
        statuses = [s for s in self.status if s != "withdrawn"]
        in_status = one_of(f"{p}status", "f_status", statuses, params)
        if "withdrawn" in self.status:
            conds.append(f"({in_status} OR {p}withdrawn_at IS NOT NULL)")
        else:
            conds.append(in_status)
        for name in ("district", "tier", "category"):
            values = getattr(self, name)
            if values:
                column = "district_code" if name == "district" else name
                conds.append(one_of(f"{p}{column}", f"f_{name}", values, params))
        if self.area:
            conds.append(area_condition(self.area, f"{p}id", params))
        if self.offer:
            conds.append(f"{p}offers && CAST(:f_offer AS text[])")
            params["f_offer"] = list(self.offer)
        if self.verified_within:
            conds.append(f"{p}last_verified >= (CAST(:f_today AS date) - make_interval(months => :f_months))")
            params["f_months"] = self.verified_within
            params["f_today"] = today or date.today()
        if self.q:
            conds.append(f"{p}name ILIKE :f_q")
            params["f_q"] = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if self.bbox:
            conds.append(f"{p}geom && ST_MakeEnvelope(:f_minx, :f_miny, :f_maxx, :f_maxy, 4326)")
            params.update(zip(("f_minx", "f_miny", "f_maxx", "f_maxy"), self.bbox))
        if self.updated_since:
            conds.append(f"{p}updated_at >= :f_updated")
            params["f_updated"] = self.updated_since
        privacy, privacy_params = visibility_condition(role, alias)
        conds.append(privacy)
        params.update(privacy_params)
        return " AND ".join(conds), params


def one_of(column, name, values, params):
    """``column`` equal to one of ``values``, a bound parameter each (``name_0``, ``name_1``...), added to
    ``params``. Not ``= ANY(:array)``: PostgreSQL plans that for a category in one district about ten times slower
    (measured: 75 ms against 8 ms at 100,000 assets), since it cannot see the values inside the array."""
    if not values:
        return "FALSE"
    keys = [f"{name}_{i}" for i in range(len(values))]
    params.update(zip(keys, values))
    if len(keys) == 1:
        return f"{column} = :{keys[0]}"
    return f"{column} IN ({', '.join(':' + k for k in keys)})"


def area_condition(values, id_column, params):
    """SQL true for assets in any of the areas ('geography:code' values) of any loaded geography; binds its
    parameters into ``params``."""
    by_geography = {}
    for value in values:
        geography, _, code = value.partition(":")
        by_geography.setdefault(geography, []).append(code)
    terms = []
    for i, (geography, codes) in enumerate(sorted(by_geography.items())):
        params[f"f_geo_{i}"], params[f"f_geo_codes_{i}"] = geography, codes
        terms.append(f"(x.geography = :f_geo_{i} AND x.area_code = ANY(:f_geo_codes_{i}))")
    return f"EXISTS (SELECT 1 FROM asset_areas x WHERE x.asset_id = {id_column} AND ({' OR '.join(terms)}))"


def _one(args, name):
    """A single-valued parameter, taken whole (a bbox or a search text may hold commas)."""
    raw = args.getlist(name) if hasattr(args, "getlist") else ([args[name]] if name in args else [])
    raw = [str(v) for v in raw if v is not None and str(v).strip()]
    return raw[0] if raw else None


def parse_int(args, name, default, low, high):
    """A whole-number parameter within [low, high]; ``default`` when absent. Errors name parameter and value."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise _bad(name, raw, "expected a whole number") from err
    if not low <= value <= high:
        raise _bad(name, raw, f"expected between {low} and {high}")
    return value


def parse_bbox(value):
    if value is None:
        return None
    try:
        parts = [float(v) for v in str(value).split(",")]
    except ValueError as err:
        raise _bad("bbox", value, "expected minLon,minLat,maxLon,maxLat") from err
    if len(parts) != 4:
        raise _bad("bbox", value, "expected four numbers minLon,minLat,maxLon,maxLat")
    minx, miny, maxx, maxy = parts
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise _bad("bbox", value, "longitudes must lie within -180..180 and latitudes within -90..90")
    if minx > maxx or miny > maxy:
        raise _bad("bbox", value, "the minimum must not exceed the maximum")
    return (minx, miny, maxx, maxy)


def parse_datetime(value, name):
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise _bad(name, value, "expected an ISO 8601 date or date-time such as 2025-01-31") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def visibility_condition(role, alias="a"):
    """What a role may see as points: below officer, no individuals and no restricted assets."""
    p = f"{alias}." if alias else ""
    if role not in ROLES:
        msg = f"Unknown role {role!r}."
        raise InputError(msg)
    if privacy.sees_individual_points(role):
        # An individual without recorded consent should never have been stored (privacy.consent_problem); if one
        # was, nobody sees it.
        return f"({p}tier <> 'individual' OR ({p}consent IS TRUE AND {p}erased_at IS NULL))", {}
    return f"{p}tier <> 'individual' AND {p}visibility = 'public'", {}


_ORDER_TERM = re.compile(r"^([a-z0-9_]+)(\s+(?:asc|desc))?(\s+nulls\s+(?:first|last))?$", re.IGNORECASE)


def _order_by(order):
    """An ORDER BY list ("name DESC NULLS LAST, id") checked term by term: it is SQL text, not a parameter."""
    terms = []
    for term in str(order).split(","):
        match = _ORDER_TERM.match(term.strip())
        if not match or match.group(1) not in ASSET_COLUMNS:
            msg = (f"Cannot sort by {str(order)[:80]!r}: expected columns of {', '.join(ASSET_COLUMNS)}, each "
                   "optionally followed by ASC or DESC and NULLS FIRST or LAST.")
            raise InputError(msg)
        terms.append("a." + match.group(1) + (match.group(2) or "").upper() + (match.group(3) or "").upper())
    return ", ".join(terms)


def visible_columns(columns, role):
    """The columns ``role`` may read: without asset_map.privacy's contacts, no e-mail or phone (a web address is
    public)."""
    if not privacy.sees_contacts(role):
        return [c for c in columns if c not in CONTACT_COLUMNS or c == "url"]
    return list(columns)


def select(engine, flt=None, *, role="public", columns=None, limit=None, offset=0, order="id"):
    """Assets matching the filter that ``role`` may see, as a GeoDataFrame in EPSG:4326."""
    flt = flt or AssetFilter()
    order = _order_by(order)
    cols = visible_columns([c for c in (columns or ASSET_COLUMNS) if c in ASSET_COLUMNS], role)
    where, params = flt.where(role=role)
    sql = (f"SELECT {', '.join('a.' + c for c in cols)}, a.geom AS geometry FROM assets a WHERE {where} "
           f"ORDER BY {order}")
    if limit is not None:
        sql += " LIMIT :limit OFFSET :offset"
        params.update(limit=int(limit), offset=int(offset))
    import geopandas as gpd

    with engine.connect() as conn:
        return gpd.read_postgis(text(sql), conn, geom_col="geometry", crs=4326, params=params)


def count(engine, flt=None, *, role="public"):
    flt = flt or AssetFilter()
    where, params = flt.where(role=role)
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM assets a WHERE {where}"), params).scalar()


def individual_counts(engine, flt=None, *, by="lsoa21_code", suppress_below=5):
    """Individuals per area as everybody below officer sees them: rows (area_code, count or None, label) of the
    protected table of ``asset_map.disclosure`` (every area listed; small counts, zero included, suppressed; the
    rest rounded). Of the filter only ``district`` (which rows) and one offer group apply: see the disclosure
    module for why. ``suppress_below``: a threshold or a ``disclosure.Method``."""
    from asset_map import disclosure

    flt = flt or AssetFilter()
    how = disclosure.as_method(suppress_below)
    offer = flt.offer[0] if len(flt.offer) == 1 and flt.offer[0] in disclosure.offer_groups() else None
    cells = disclosure.individual_table(engine, by, districts=flt.district, offer=offer, how=how, flt=flt)
    return [(c.code, c.value, c.label) for c in cells]


def ensure_register(conn, name, *, source_file=None, mapping=None):
    conn.execute(text("INSERT INTO registers (name, source_file, mapping) VALUES (:n, :f, CAST(:m AS jsonb)) "
                      "ON CONFLICT (name) DO NOTHING"),
                 {"n": name, "f": source_file, "m": _json(mapping)})


def _json(value):
    import json

    return None if value is None else json.dumps(value)


WRITE_COLUMNS = ["register", "source_row", "source_key", "match_key", "tier", "category", "name", "description",
                 "offers", "address", "postcode", "uprn", "email", "phone", "url", "status", "last_verified",
                 "visibility", "consent", "geocode_method", "geocode_quality", "district_code", "lsoa11_code",
                 "lsoa21_code", "area_flag", "properties"]
# The consent record of an individual (migration 0011): when, from which register row or form, which wording.
# Optional in a frame: a frame without them writes nulls.
CONSENT_COLUMNS = ["consent_at", "consent_source", "consent_wording"]
_STORED = WRITE_COLUMNS + CONSENT_COLUMNS


def upsert(conn, frame, *, stamp=None):
    """Write placed assets (a GeoDataFrame of WRITE_COLUMNS + geometry, EPSG:4326) by (register, match_key):
    new ones are inserted, known ones updated (``updated_at`` moves only when something changed), none duplicated.
    ``offers`` is a ';'-joined string and ``properties`` a JSON string in the frame. Every insert and update is a
    version in the history, stamped with ``stamp`` (history.Stamp; default: an import by nobody named). Returns rows
    written."""
    stamp = stamp or history.Stamp()
    from asset_map.store import writes

    written = 0
    known = partitions.existing(conn, frame["register"].unique().tolist())
    for register, part in frame.groupby("register", sort=True):
        if register in known:
            staged = stage_assets(conn, part)
            written += _merge(conn, staged, stamp)["total"]
            writes.drop(conn, staged)
        else:
            written += _load_new(conn, register, part, stamp)
    return written


def sync(conn, frame, *, register, keep_keys=(), stamp=None, dry_run=False):
    """Upsert one register's assets and mark those of the register missing from ``frame`` withdrawn (not deleted),
    except ``keep_keys`` (rows still in the register but quarantined this time). Returns counts
    ``inserted, updated, unchanged, withdrawn``. Each change is a version in the history, stamped with ``stamp``.

    ``dry_run``: the caller reads the register's rows and rolls the transaction back (an import's preview), so
    what nobody reads before the rollback is not written: no history, and a new register's partition is filled but
    neither indexed nor attached (most of a first import's time). Read the rows from the register's own partition
    (``partitions.partition_name``), which holds them either way."""
    stamp = stamp or history.Stamp()
    from asset_map.store import writes

    if not partitions.existing(conn, [register]):
        return {"inserted": _load_new(conn, register, frame, stamp, dry_run=dry_run), "updated": 0, "unchanged": 0,
                "withdrawn": 0}
    staged = stage_assets(conn, frame)
    counts = _merge(conn, staged, stamp, history_kept=not dry_run)
    keep = list(keep_keys)
    # Only assets stored before this transaction can be missing from the new version (now() is the transaction's
    # start, so rows inserted just now have created_at = now()). The set difference is done here, in memory: the
    # planner has no good estimate for a temporary table joined against a million assets.
    before = {r[0] for r in conn.execute(text(
        "SELECT match_key FROM assets WHERE register = :r AND withdrawn_at IS NULL AND created_at < now()"),
        {"r": register})}
    missing = sorted(before - set(frame["match_key"]) - set(keep))
    withdrawn, individuals = 0, []
    if missing:
        # Associations and organisations gone from the register are marked withdrawn and kept, as a version in
        # their history; individuals are returned to the caller, which erases them (asset_map.people): a person no
        # longer in the register has not consented to be kept.
        withdrawn = conn.execute(text(
            "WITH w AS (UPDATE assets SET withdrawn_at = now(), updated_at = now(), version = version + 1 "
            "WHERE register = :r AND match_key = ANY(:m) AND tier <> 'individual' "
            "RETURNING id, version, register, withdrawn_at) "
            "INSERT INTO asset_versions (asset_id, version, register, actor, action, reason, import_id, changes) "
            "SELECT w.id, w.version, w.register, h.*, jsonb_build_object('withdrawn_at', "
            "jsonb_build_array(NULL, w.withdrawn_at)) "
            f"FROM w, (VALUES {history.VALUES}) AS h"),
            {"r": register, "m": missing, **stamp.params()}).rowcount
        individuals = [tuple(r) for r in conn.execute(text(
            "SELECT id, match_key FROM assets WHERE register = :r AND match_key = ANY(:m) AND tier = 'individual' "
            "AND erased_at IS NULL"), {"r": register, "m": missing})]
    writes.drop(conn, staged)
    out = {"inserted": counts["inserted"], "updated": counts["updated"],
           "unchanged": counts["total"] - counts["inserted"] - counts["updated"],
           "withdrawn": withdrawn + len(individuals)}
    if individuals:
        out["missing_individuals"] = individuals
    return out


def date_consents(conn, register):
    """Individuals of the register stored without a consent date (the register gives none) take today's: the day
    asset-map learned of their consent."""
    conn.execute(text("UPDATE assets SET consent_at = CURRENT_DATE WHERE register = :r AND tier = 'individual' "
                      "AND consent IS TRUE AND consent_at IS NULL AND erased_at IS NULL"), {"r": register})


def _load_new(conn, register, frame, stamp, *, dry_run=False):
    """A register's first assets: COPY straight into its own new partition, then index and attach it (not in a
    dry run: see ``sync``)."""
    from asset_map.store import bulk

    name = partitions.create_detached(conn, register)
    bulk.copy_columns(conn, name, _columns(frame, offers_as_array=True))
    if not dry_run:
        partitions.attach(conn, register)
        history.created_from_table(conn, name, stamp)
    return len(frame)


def stage_assets(conn, frame):
    """COPY the frame into a temporary table typed like ``assets`` (offers as text); returns its name."""
    import uuid

    from asset_map.store import bulk
    from asset_map.store.models import Asset

    name = f"_stage_{uuid.uuid4().hex[:12]}"
    types = {c.name: c.type.compile(dialect=conn.dialect) for c in Asset.__table__.columns}
    cols = ", ".join(f"{c} {'text' if c == 'offers' else types[c]}" for c in _STORED)
    conn.execute(text(f'CREATE TEMP TABLE "{name}" ({cols}, geom geometry(Point, 4326)) ON COMMIT DROP'))
    bulk.copy_columns(conn, name, _columns(frame, offers_as_array=False))
    return name


def _columns(frame, *, offers_as_array):
    """WRITE_COLUMNS plus ``geom`` (hex EWKB, EPSG:4326) as COPY wants them; ``offers`` as a PostgreSQL array
    literal, or as the ';'-joined text that ``_merge`` splits."""
    import numpy as np

    from asset_map.store import bulk

    geoms = frame.geometry
    if geoms.crs is not None and geoms.crs.to_epsg() != 4326:
        geoms = geoms.to_crs(4326)
    out = {c: frame[c] for c in WRITE_COLUMNS}
    for c in CONSENT_COLUMNS:
        out[c] = frame[c] if c in frame else np.full(len(frame), None, dtype=object)
    out["uprn"] = bulk.integers(out["uprn"])
    if offers_as_array:
        out["offers"] = _pg_arrays(out["offers"])
    out["geom"] = bulk.points_ewkb(geoms.to_numpy(), 4326)
    return out


def _pg_arrays(offers):
    """';'-joined offers as PostgreSQL array literals, split as ``_merge`` splits them in SQL (blanks dropped).
    Registers repeat a few offer lists, so each distinct one is converted once."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(offers, dtype=object), use_na_sentinel=True)
    literals = []
    for value in uniques:
        items = [v for v in re.split(r"\s*;\s*", str(value).strip()) if v]
        quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in items)
        literals.append("{" + ",".join(quoted) + "}")
    return np.array(literals + ["{}"], dtype=object)[codes]


def _merge(conn, staged, stamp, *, history_kept=True):
    cols = ", ".join(_STORED)
    select_cols = ", ".join(
        r"COALESCE(array_remove(regexp_split_to_array(NULLIF(btrim(offers), ''), '\s*;\s*'), ''), '{}')"
        if c == "offers" else c
        for c in _STORED)
    compared = [c for c in _STORED if c not in ("register", "match_key")]
    # A register without consent dates keeps the date stored (date_consents set it when the person was first seen).
    new = {c: f"EXCLUDED.{c}" for c in _STORED}
    new["consent_at"] = "COALESCE(EXCLUDED.consent_at, assets.consent_at)"
    changed = " OR ".join(f"assets.{c} IS DISTINCT FROM {new[c]}" for c in compared) + \
        " OR assets.geom IS DISTINCT FROM EXCLUDED.geom OR assets.withdrawn_at IS NOT NULL"
    updates = ", ".join(f"{c} = {new[c]}" for c in compared)
    # Unchanged rows are left alone (no new row version, updated_at kept); RETURNING counts only what was written,
    # and the history CTE gives each written row its version (see history.merged_cte).
    sql = (f"WITH w AS (INSERT INTO assets ({cols}, geom) SELECT {select_cols}, geom FROM \"{staged}\" "
           f"ON CONFLICT (register, match_key) DO UPDATE SET {updates}, geom = EXCLUDED.geom, withdrawn_at = NULL, "
           f"updated_at = now(), version = assets.version + 1 WHERE {changed} "
           f"RETURNING assets.*, (created_at = now()) AS inserted)"
           f"{history.merged_cte('w', compared + ['geom', 'withdrawn_at']) if history_kept else ''} "
           f"SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), "
           f"(SELECT count(*) FROM \"{staged}\") FROM w")
    inserted, updated, total = conn.execute(text(sql), stamp.params()).one()
    return {"inserted": int(inserted), "updated": int(updated), "total": int(total)}
