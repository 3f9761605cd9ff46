"""The non-map view of the map: the same filtered assets as rows, sorted and paged, and as CSV.

CSV is written for spreadsheets by the one CSV writer (``asset_map.csv_writer``: BOM, formula guard).
"""

import io
from decimal import Decimal

from sqlalchemy import text

from asset_map.csv_writer import CsvWriter

from asset_map.errors import InputError
from asset_map.store import assets as store
from asset_map.vocabulary import role_rank

COLUMNS = [("name", "Name"), ("tier", "Tier"), ("category", "Category"), ("offers", "Offers"),
           ("address", "Address"), ("postcode", "Postcode"), ("district_code", "District"),
           ("status", "Status"), ("last_verified", "Last verified")]
CONTACT = [("url", "Website"), ("email", "Email"), ("phone", "Phone")]
SORTABLE = ("name", "tier", "category", "postcode", "district_code", "status", "last_verified")
PAGE_SIZE = 100


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


def page(engine, flt, *, role="public", sort="name", direction="asc", page_no=1, page_size=PAGE_SIZE):
    """(rows as dicts, total, pages) for one page of the table."""
    sort, direction = parse_sort(sort, direction)
    total = store.count(engine, flt, role=role)
    pages = max(1, -(-total // page_size))
    if page_no < 1 or page_no > pages:
        msg = f"Parameter 'page' has value {page_no}: expected 1 to {pages}."
        raise InputError(msg)
    order = f"{sort} {direction.upper()} NULLS LAST, id"
    frame = store.select(engine, flt, role=role, columns=["id"] + [c for c, _ in columns_for(role)],
                         limit=page_size, offset=(page_no - 1) * page_size, order=order)
    return [_plain(r) for r in frame.drop(columns="geometry").to_dict("records")], total, pages


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


def to_csv(engine, flt, *, role="public"):
    """All matching assets as CSV text (with BOM), lon/lat in EPSG:4326 for organisations and associations."""
    cols = columns_for(role)
    frame = store.select(engine, flt, role=role, columns=["id"] + [c for c, _ in cols], order="name, id")
    names = district_names(engine)
    out = io.StringIO()
    writer = CsvWriter(out)
    # People read the district's name; the ONS code stays beside it for joining to other data.
    labels = ["District code" if c == "district_code" else label for c, label in cols]
    at = [c for c, _ in cols].index("district_code") + 1
    writer.header(labels[:at] + ["District name"] + labels[at:] + ["Longitude", "Latitude"])
    for row, geom in zip(frame.drop(columns="geometry").to_dict("records"), frame.geometry):
        plain = _plain(row)
        values = [plain[c] for c, _ in cols]
        values.insert(at, names.get(plain["district_code"], ""))
        # Decimal keeps the fixed 6 decimals (about 0.1 m) and is written as a number, minus sign and all.
        xy = [None, None] if geom is None or geom.is_empty else [Decimal(f"{geom.x:.6f}"), Decimal(f"{geom.y:.6f}")]
        writer.row(values + xy)
    return out.getvalue()
