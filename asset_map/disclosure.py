"""Disclosure control for every count of individuals anybody below officer sees: the map API, district pages, gap
reports (every format, every role), exports, OGC API collections, tables and charts. Designed once, here; every
surface calls ``individual_table`` (or, for SQL that builds a response in PostGIS, ``table_sql`` with ``sql_value``).

The method is the NHS England (NHS Digital, Secondary Care Analysis) rule for small numbers, adapted so that a zero
cannot be told from a few:

1. **Fixed tables only.** Individuals are counted for a fixed set of tables: area (district, LSOA 2021 or LSOA 2011)
   by offer group (all offers, or one of the taxonomy's offer groups). No other filter (category, status, date,
   name, bounding box) changes a count, so no sequence of filtered requests can carve one person out. A bounding
   box or district only chooses which rows of the table are returned.
2. **Every area is listed**, including those with nobody, and **counts below ``threshold``** (0 included) are
   suppressed: shown as "fewer than 5", never as a number, so "none" and "a few" look the same.
3. **Other counts are rounded to the nearest ``base``** (5). Two published counts then differ by a multiple of 5,
   so a total and its parts, or two overlapping geographies (LSOA 2011 and 2021), never disagree by an exact small
   number.
4. **Totals are built from the protected cells** (``total``): the sum of the rounded cells shown beside it.

ONS cell-key perturbation (the ``cell-key-perturbation`` package) was considered: it needs the microdata and a
record key per person on every request and returns noisy values that still need a threshold; its shipped p-table is
a threshold-10, base-5 rounding rule. Rounding and suppression give the same protection for these one-dimensional
tables, deterministically, at a fraction of the cost, and are what English public-sector analysts recognise.

``Method.enabled = False`` (setting ``DISCLOSURE_CONTROL=0``) switches the protection back to the rule asset-map had
before: counts below the threshold suppressed, nothing else (exact counts, only areas with somebody listed, every
filter narrowing the count). It exists for the attack suite, which shows the attacks succeed then; never switch it
off in service.
"""

import re
from dataclasses import dataclass

from sqlalchemy import text

from asset_map.errors import InputError

GEOGRAPHIES = {"district": ("district_code", None), "lsoa21": ("lsoa21_code", 2021),
               "lsoa11": ("lsoa11_code", 2011)}
_BY_COLUMN = {"district_code": "district", "lsoa21_code": "lsoa21", "lsoa11_code": "lsoa11"}
# Filters a public count of individuals ignores (named in responses, so a user knows the count is not filtered).
IGNORED_FILTERS = ("tier", "category", "status", "verified_within", "q", "updated_since")
_CODE = re.compile(r"^[A-Z][0-9]{8}$")


@dataclass(frozen=True)
class Method:
    threshold: int = 5
    base: int = 5
    enabled: bool = True

    def label_below(self):
        return f"fewer than {self.threshold}"


def as_method(value):
    """A Method from a Method or a bare threshold (callers that pass ``suppress_below``)."""
    if isinstance(value, Method):
        return value
    return Method(threshold=int(value if value is not None else 5))


def describe(how):
    """What a response says about the protection it applied (machine-readable)."""
    return {"method": "suppress-and-round" if how.enabled else "none", "suppressed_below": how.threshold,
            "rounded_to": how.base if how.enabled else 1,
            "note": (f"Counts of individuals below {how.threshold} (zero included) are shown as "
                     f"'{how.label_below()}'; the others are rounded to the nearest {how.base}.")
            if how.enabled else "Disclosure control is switched off: small counts suppressed only."}


def method(settings=None):
    """The method the settings choose: ``SUPPRESS_BELOW``, ``ROUND_TO``, ``DISCLOSURE_CONTROL``."""
    settings = settings or {}
    return Method(threshold=int(settings.get("SUPPRESS_BELOW", 5)), base=int(settings.get("ROUND_TO", 5)),
                  enabled=bool(int(settings.get("DISCLOSURE_CONTROL", 1))))


@dataclass(frozen=True)
class Cell:
    value: int | None       # None: suppressed (fewer than the threshold, zero included)
    label: str


@dataclass(frozen=True)
class AreaCell:
    code: str
    name: str | None
    value: int | None
    label: str


def _round(n, base):
    # Half up (7.5 -> 10), as the NHS rule and PostgreSQL's round() do; Python's round() would go to even.
    return int((n + base / 2) // base * base) if base > 1 else int(n)


def protect(n, how=None):
    """One protected count: suppressed below the threshold (zero included), else rounded to the nearest base."""
    how = how or Method()
    n = int(n or 0)
    if n < how.threshold:
        return Cell(None, how.label_below())
    if not how.enabled:
        return Cell(n, str(n))
    value = max(_round(n, how.base), how.threshold)
    return Cell(value, f"{value:,}")


def total(cells, how=None):
    """A total built from protected cells: the sum of what is shown (suppressed cells count as nothing), so it
    agrees with its parts. Labelled "at least N" when some parts are suppressed, "fewer than T in each" when all
    are (several small parts can add up to more than T: the total does not say how many)."""
    how = how or Method()
    cells = list(cells)
    shown = sum(c.value for c in cells if c.value is not None)
    hidden = any(c.value is None for c in cells)
    if shown == 0:
        return Cell(None, how.label_below() + (" in each" if len(cells) > 1 else ""))
    return Cell(shown, f"at least {shown:,}" if hidden else f"{shown:,}")


def sql_value(count):
    """``protect`` as an SQL expression over the count ``count``, for responses built in PostGIS; binds
    ``:dc_threshold`` and ``:dc_base`` (``sql_params``)."""
    return (f"(CASE WHEN {count} >= :dc_threshold AND {count} > 0 THEN GREATEST(CAST(round({count} / "
            f"CAST(:dc_base AS numeric)) * :dc_base AS integer), :dc_threshold) END)")


def sql_label(count):
    return f"COALESCE(CAST({sql_value(count)} AS text), 'fewer than ' || :dc_threshold)"


def sql_params(how):
    """Unprotected: small counts still suppressed, the rest exact (the attack suite's switch)."""
    if not how.enabled:
        return {"dc_threshold": int(how.threshold), "dc_base": 1}
    return {"dc_threshold": int(how.threshold), "dc_base": max(int(how.base), 1)}


def offer_groups():
    from asset_map.registers.schema import taxonomy

    return tuple(taxonomy().offers)


def table_request(args, default_geography="lsoa21"):
    """(geography, districts, offer group or None, names of the given filters that do not apply) from request or
    CLI arguments. Only these choose a table; anything else is ignored on purpose (see the module's docstring)."""
    def values(name):
        raw = args.getlist(name) if hasattr(args, "getlist") else ([args[name]] if args.get(name) else [])
        out = []
        for item in raw:
            out.extend(v.strip() for v in str(item).split(",") if v.strip())
        return out

    geography = (values("geography") or [default_geography])[0]
    if geography not in GEOGRAPHIES:
        msg = f"Parameter 'geography' has value {geography[:40]!r}: expected one of {', '.join(GEOGRAPHIES)}."
        raise InputError(msg)
    districts = tuple(values("district"))
    for code in districts:
        if not _CODE.match(code):
            msg = f"Parameter 'district' has value {code[:40]!r}: expected an ONS code such as E07000199."
            raise InputError(msg)
    offers = [o.lower() for o in values("offer")]
    groups = offer_groups()
    offer = offers[0] if len(offers) == 1 and offers[0] in groups else None
    ignored = [name for name in IGNORED_FILTERS if values(name)]
    if offers and offer is None:
        ignored.append("offer")
    return geography, districts, offer, ignored


def _counts_sql(geography, districts, offer, bbox, unprotected_filter=None):
    column, vintage = GEOGRAPHIES[geography]
    params = {}
    # The fixed universe of the table: every area of the geography (in the chosen districts), zeros included.
    if vintage is None:
        universe = "SELECT g.code, g.name, g.code AS district_code, g.geom FROM districts g WHERE TRUE"
    else:
        universe = "SELECT g.code, g.name, g.district_code, g.geom FROM areas g WHERE g.vintage = :vintage"
        params["vintage"] = vintage
    if districts:
        universe += " AND g.code = ANY(:districts)" if vintage is None else " AND g.district_code = ANY(:districts)"
        params["districts"] = list(districts)
    if bbox:
        universe += " AND g.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox))
    if unprotected_filter is not None:
        # Protection off (the attack suite's switch): any filter narrows the count, as before issue 12.
        from dataclasses import replace

        where, fparams = replace(unprotected_filter, district=(), bbox=None, tier=("individual",)).where(
            role="officer", alias="a")
        params.update(fparams)
        counted = (f"SELECT a.{column} AS code, count(*) AS n FROM assets a WHERE {where} AND a.{column} IS NOT NULL "
                   f"GROUP BY a.{column}")
        return universe, counted, params
    # Who is counted is fixed too: consenting, not erased, not withdrawn, open or temporarily closed.
    counted = ("SELECT a.{c} AS code, count(*) AS n FROM assets a WHERE a.tier = 'individual' AND a.consent IS TRUE "
               "AND a.erased_at IS NULL AND a.withdrawn_at IS NULL AND a.status IN ('open', 'temporarily closed') "
               "AND a.{c} IS NOT NULL{o} GROUP BY a.{c}").format(c=column, o=" AND :offer = ANY(a.offers)"
                                                                 if offer else "")
    if offer:
        params["offer"] = offer
    return universe, counted, params


def individual_counts(engine, geography="lsoa21", *, districts=(), offer=None, bbox=None, unprotected_filter=None):
    """Exact counts per area of the fixed table, every area in scope listed (zeros too): [(code, name, n)].
    For ``individual_table`` and officers' own views only; nothing below officer may see these numbers."""
    if geography in _BY_COLUMN:
        geography = _BY_COLUMN[geography]
    if geography not in GEOGRAPHIES:
        msg = f"Individuals are counted by {', '.join(GEOGRAPHIES)}, not {geography!r}."
        raise InputError(msg)
    universe, counted, params = _counts_sql(geography, districts, offer, bbox, unprotected_filter)
    sql = (f"SELECT u.code, u.name, COALESCE(c.n, 0) FROM ({universe}) u LEFT JOIN ({counted}) c ON c.code = u.code "
           "ORDER BY u.code")
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def individual_table(engine, geography="lsoa21", *, districts=(), offer=None, bbox=None, how=None, flt=None):
    """The protected table of individuals per area (and offer group): an AreaCell per area in scope, in code order.
    The ONE way anything below officer, and any shareable output, counts individuals. ``flt`` (the request's
    AssetFilter) is ignored unless the protection is switched off."""
    how = how or Method()
    rows = individual_counts(engine, geography, districts=districts, offer=offer, bbox=bbox,
                             unprotected_filter=None if how.enabled else flt)
    out = []
    for code, name, n in rows:
        if not how.enabled and n == 0:
            continue  # unprotected: areas with nobody left out, as the old surfaces did
        cell = protect(n, how)
        out.append(AreaCell(code, name, cell.value, cell.label))
    return out


def table_sql(geography, how, *, districts=(), offer=None, bbox=None, flt=None):
    """(FROM ... WHERE clause, params) of the protected table for responses built in SQL (OGC API, exports): area
    rows ``g`` (code, name, district_code, geom) joined to counts ``c.n``; select ``sql_value("COALESCE(c.n, 0)")``
    and ``sql_label(...)``."""
    universe, counted, params = _counts_sql(geography, districts, offer, bbox, None if how.enabled else flt)
    source = f"FROM ({universe}) g LEFT JOIN ({counted}) c ON c.code = g.code WHERE "
    source += "TRUE" if how.enabled else "c.n > 0"
    return source, {**params, **sql_params(how)}


def area_total(engine, area, how=None):
    """One protected count of the consenting individuals inside an area of a loaded geography
    (``"divisions:E05001234"``), as a briefing shows it: the exact count is protected like every cell of the
    tables (small counts, zero included, suppressed; the rest rounded), so two overlapping areas cannot be
    differenced into a person."""
    from asset_map.store.assets import AssetFilter

    how = how or Method()
    where, params = AssetFilter(area=(area,), tier=("individual",)).where(role="officer", alias="a")
    sql = f"SELECT count(*) FROM assets a WHERE {where} AND a.consent IS TRUE AND a.erased_at IS NULL"
    with engine.connect() as conn:
        n = conn.execute(text(sql), params).scalar()
    return protect(int(n), how)
