"""The non-map view of the map: the same filtered assets as rows, sorted and paged, and as CSV.

CSV is written for spreadsheets by the one CSV writer (``asset_map.csv_writer``: BOM, formula guard).
"""

import io
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import text

from asset_map.csv_writer import CsvWriter

from asset_map.errors import InputError
from asset_map.store import keyset
from asset_map.store.keyset import decode_cursor
from asset_map.vocabulary import role_rank

COLUMNS = [("name", "Name"), ("tier", "Tier"), ("category", "Category"), ("offers", "Offers"),
           ("address", "Address"), ("postcode", "Postcode"), ("district_code", "District"),
           ("status", "Status"), ("last_verified", "Last verified")]
CONTACT = [("url", "Website"), ("email", "Email"), ("phone", "Phone")]
SORTABLE = ("name", "tier", "category", "postcode", "district_code", "status", "last_verified")
PAGE_SIZE = 100
# Counting is exact up to this many matching rows (a bounded scan of a few milliseconds); beyond, the table says
# "about N (estimated)" from the planner's estimate.
EXACT_COUNT_UP_TO = keyset.EXACT_COUNT_UP_TO
# Sort columns whose cursor value is not text.
_SORT_TYPES = {"last_verified": "date"}


def parse_sort(sort, direction):
    sort = sort or "name"
    direction = direction or "asc"
    if sort not in SORTABLE:
        msg = f"Parameter 'sort' has value {sort!r}: expected one of {', '.join(SORTABLE)}."
        raise InputError(msg)
    if direction not in ("asc", "desc"):
        msg = f"Parameter 'dir' has value {direction!r}: expected asc or desc."
        raise InputError(msg)
    return sort, direction


def columns_for(role):
    contact = [c for c in CONTACT if c[0] == "url" or role_rank(role) >= role_rank("organiser")]
    return COLUMNS + contact


@dataclass
class Page:
    """One page of the table. ``total`` is exact up to EXACT_COUNT_UP_TO rows and an estimate beyond
    (``estimated``); ``cursors`` are the keyset positions for the links (first, prev, next, last: None when there
    is no such page)."""

    rows: list
    total: int
    estimated: bool
    pages: int
    page_no: int
    cursors: dict = field(default_factory=dict)


def count(engine, flt, *, role):
    """(total, estimated): exact up to EXACT_COUNT_UP_TO (a bounded scan), else the planner's estimate, which costs
    no scan at all (a million rows are never counted to draw a page)."""
    with engine.connect() as conn:
        return _count(conn, flt, role=role)


def _count(conn, flt, *, role):
    where, params = flt.where(role=role)
    return keyset.count(conn, f"FROM assets a WHERE {where}", params, exact_up_to=EXACT_COUNT_UP_TO)


def _seek_sql(cols, where, sort, direction, *, nulls_first, cursor):
    """Keyset SQL for one page in (sort, id) order, nulls in their own segment so that the (sort, id) index serves
    both directions: the non-null rows by a range scan on (sort, id), the null ones by id. ``cursor`` is the
    (value, id) the page starts after, or None for the start."""
    op = ">" if direction == "asc" else "<"
    cast = _SORT_TYPES.get(sort, "text")
    select = f"SELECT {', '.join('a.' + c for c in cols)}, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat"
    segments = []
    for seg, is_null in ((0, nulls_first), (1, not nulls_first)):
        cond = f"a.{sort} IS NULL" if is_null else f"a.{sort} IS NOT NULL"
        if cursor is not None:
            value_null = cursor[0] is None
            if value_null == is_null:
                cond += (f" AND a.id {op} :c_id" if is_null else
                         f" AND (a.{sort}, a.id) {op} (CAST(:c_value AS {cast}), :c_id)")
            elif value_null and not is_null and not nulls_first:
                continue  # the cursor is among the nulls, after every non-null row
            elif not value_null and is_null and nulls_first:
                continue  # the cursor is among the non-null rows, after every null one
        order = f"a.id {direction.upper()}" if is_null else f"a.{sort} {direction.upper()}, a.id {direction.upper()}"
        segments.append(f"({select}, {seg} AS seg FROM assets a WHERE {where} AND {cond} ORDER BY {order} "
                        "LIMIT :n)")
    outer = f"{sort} {direction.upper()}, id {direction.upper()}"
    return f"SELECT * FROM ({' UNION ALL '.join(segments)}) p ORDER BY seg, {outer} LIMIT :n"


def page(engine, flt, *, role="public", sort="name", direction="asc", page_no=None, after=None, before=None,
         last=False, page_size=PAGE_SIZE, counted=None):
    """One page of the table by keyset: the first (nothing given), the one ``after`` or ``before`` a cursor, or
    the ``last``. ``page_no`` alone (an old ?page=N link) seeks by offset; it is also carried in links for the
    "Page N of M" caption. Nulls sort last in both directions. ``counted``: the filter's (total, estimated) when the
    caller kept it from an earlier page (``count``)."""
    sort, direction = parse_sort(sort, direction)
    with engine.connect() as conn:  # one connection for the page's questions
        return _page(conn, flt, role=role, sort=sort, direction=direction, page_no=page_no, after=after,
                     before=before, last=last, page_size=page_size, counted=counted)


def _page(conn, flt, *, role, sort, direction, page_no, after, before, last, page_size, counted):
    total, estimated = counted or _count(conn, flt, role=role)
    pages = max(1, -(-total // page_size))
    shown_no = page_no or 1
    if page_no is not None and (page_no < 1 or (page_no > pages and not estimated)):
        msg = f"Parameter 'page' has value {page_no}: expected 1 to {pages}."
        raise InputError(msg)
    cols = ["id"] + [c for c, _ in columns_for(role) if c != "id"]
    where, params = flt.where(role=role)
    # One row more than a page, to know whether there is another page beyond this one in the seek direction.
    params["n"] = page_size + 1
    reverse = False
    if last:
        reverse, cursor, shown_no = True, None, pages
    elif before:
        reverse, cursor = True, decode_cursor(before, "before")
    elif after:
        cursor = decode_cursor(after, "after")
    elif page_no and page_no > 1:
        cursor = _cursor_at(conn, where, params, sort, direction, (page_no - 1) * page_size)
        if cursor is None:
            msg = f"Parameter 'page' has value {page_no}: expected 1 to {pages}."
            raise InputError(msg)
    else:
        cursor = None
    seek_dir = ("desc" if direction == "asc" else "asc") if reverse else direction
    if cursor is not None:
        params.update(c_value=cursor[0], c_id=cursor[1])
    sql = _seek_sql(cols, where, sort, seek_dir, nulls_first=reverse, cursor=cursor)
    rows = [dict(r._mapping) for r in conn.execute(text(sql), params)]
    rows, cursors = keyset.window(rows, page_size, sort, reverse=reverse, last=last, started=cursor is not None)
    for r in rows:
        r.pop("seg", None)
    plain = [_plain(r) for r in rows]
    if "prev" not in cursors:
        shown_no = 1
    return Page(plain, total, estimated, pages, min(shown_no, pages), cursors)


def _cursor_at(conn, where, params, sort, direction, offset):
    """The cursor after the row at ``offset`` in (sort, id) order: how an old ?page=N link finds its place."""
    d = direction.upper()
    sql = (f"SELECT a.{sort}, a.id FROM assets a WHERE {where} ORDER BY a.{sort} {d} NULLS LAST, a.id {d} "
           "OFFSET :off LIMIT 1")
    row = conn.execute(text(sql), {**params, "off": offset - 1}).first()
    return None if row is None else (None if row[0] is None else str(row[0]), int(row[1]))


def _plain(row):
    out = {}
    for key, value in row.items():
        if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
            value = "; ".join(str(v) for v in list(value))
        elif value is None or value != value:
            value = ""
        out[key] = value
    return out


def district_names(engine):
    """{ONS code: name} of the loaded districts."""
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT code, name FROM districts")).all())


def csv_chunks(engine, flt, *, role="public", chunk=5000):
    """All matching assets as CSV text pieces (with BOM), sorted by name, lon/lat in EPSG:4326: read by keyset a
    chunk at a time, so a download of a million rows holds one chunk in memory and no transaction open."""
    cols = columns_for(role)
    names = [c for c, _ in cols]
    where, params = flt.where(role=role)
    params["n"] = chunk
    district = district_names(engine)
    out = io.StringIO()
    writer = CsvWriter(out)
    # People read the district's name; the ONS code stays beside it for joining to other data.
    labels = ["District code" if c == "district_code" else label for c, label in cols]
    at = names.index("district_code") + 1
    writer.header(labels[:at] + ["District name"] + labels[at:] + ["Longitude", "Latitude"])
    cursor = None
    while True:
        if cursor is not None:
            params.update(c_value=cursor[0], c_id=cursor[1])
        sql = _seek_sql(["id"] + [c for c in names if c != "id"], where, "name", "asc", nulls_first=False,
                        cursor=cursor)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(text(sql), params)]
        for row in rows:
            plain = _plain(row)
            # Decimal keeps the fixed 6 decimals (about 0.1 m) and is written as a number, minus sign and all.
            xy = [None, None] if row["lon"] is None else [Decimal(f"{row['lon']:.6f}"), Decimal(f"{row['lat']:.6f}")]
            values = [plain[c] for c in names]
            values.insert(at, district.get(plain["district_code"], ""))
            writer.row(values + xy)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < chunk:
            return
        cursor = (rows[-1]["name"], rows[-1]["id"])

