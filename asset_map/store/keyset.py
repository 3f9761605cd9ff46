"""Keyset (seek) paging for tables that grow without bound (the audit log, a register's quarantine): a page starts
after (or before) the last row a reader saw, found through an index on (key, id), so the millionth page costs what
the first does. Counts are exact up to EXACT_COUNT_UP_TO rows and the planner's estimate beyond.

A cursor is the (key value, id) of a row, base64 JSON: opaque to readers, checked when it comes back. The asset
table (maps.table) uses the same cursors and counts, with its own seek for sort columns that may be null.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field

from sqlalchemy import text

from asset_map.errors import InputError

EXACT_COUNT_UP_TO = 2_000


@dataclass
class Page:
    """Rows in reading order; ``total`` exact up to EXACT_COUNT_UP_TO and estimated beyond (``estimated``);
    ``cursors`` for the links: 'first' and 'prev' when rows come before this page, 'next' and 'last' when rows
    come after it ('first' and 'last' are '': the ends need no position)."""

    rows: list
    total: int
    estimated: bool
    cursors: dict = field(default_factory=dict)


def encode_cursor(value, row_id):
    raw = json.dumps([None if value is None else str(value), int(row_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(token, name):
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
        if value is not None and not isinstance(value, str):
            raise ValueError
        return value, int(row_id)
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error) as err:
        msg = (f"Parameter '{name}' has value {token[:40]!r}: not a position this table gave out; start again from "
               "the first page.")
        raise InputError(msg) from err


def count(conn, source, params, *, exact_up_to=None):
    """(total, estimated) of ``SELECT ... {source}`` (``FROM table alias WHERE ...``): a bounded scan, then the
    planner's estimate, which reads nothing (a million rows are never counted to draw a page)."""
    cap = EXACT_COUNT_UP_TO if exact_up_to is None else exact_up_to
    capped = conn.execute(text(f"SELECT count(*) FROM (SELECT 1 {source} LIMIT :cap) c"),
                          {**params, "cap": cap + 1}).scalar()
    if capped <= cap:
        return int(capped), False
    plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) SELECT 1 {source}"), params).scalar()
    planned = plan[0]["Plan"]["Plan Rows"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]["Plan Rows"]
    return max(int(planned), cap + 1), True


def seek(conn, columns, source, params, *, key, cast, descending=False, size=100, after=None, before=None,
         last=False, counted=True):
    """One Page of ``SELECT columns {source}`` in (``key``, id) order (``descending``: newest first): the first
    page, the one ``after`` or ``before`` a cursor, or the ``last``. ``key`` is a SQL expression that is never null
    (coalesce a nullable column) and ``id`` the unique id of the table aliased in ``source`` (``FROM table alias
    WHERE ...``), both as an index of the table has them; the cursor's key value travels as text and is cast back
    with ``cast`` (a SQL type name). ``counted=False``: no count (total 0), for a walk through every row."""
    total, estimated = count(conn, source, params) if counted else (0, False)
    reverse = bool(last or before)
    forward_desc = descending != reverse      # the direction rows are read in
    cursor = decode_cursor(before, "before") if before else decode_cursor(after, "after") if after else None
    cond = ""
    row_id = _alias(source) + ".id"
    if cursor is not None:
        op = "<" if forward_desc else ">"
        cond = f" AND ({key}, {row_id}) {op} (CAST(:c_value AS {cast}), :c_id)"
        params = {**params, "c_value": cursor[0], "c_id": cursor[1]}
    order = "DESC" if forward_desc else "ASC"
    rows = [dict(r) for r in conn.execute(text(
        f"SELECT {columns}, {key} AS seek_key {source}{cond} ORDER BY {key} {order}, {row_id} {order} LIMIT :n"),
        {**params, "n": size + 1}).mappings()]
    rows, cursors = window(rows, size, "seek_key", reverse=reverse, last=last, started=cursor is not None)
    for r in rows:
        del r["seek_key"]
    return Page(rows, total, estimated, cursors)


def window(rows, size, key, *, reverse, last, started):
    """(the page's rows in reading order, its cursors) from up to ``size + 1`` rows read in seek order (backwards
    when ``reverse``), ``key`` naming the sort value in each row. Going forward, rows come before this page when it
    ``started`` from a cursor; going back, rows come after it unless it is the ``last``."""
    more = len(rows) > size
    rows = rows[:size]
    if reverse:
        rows.reverse()
    has_prev = more if reverse else started
    has_next = (not last) if reverse else more
    cursors = {}
    if rows:
        if has_prev:
            cursors["first"], cursors["prev"] = "", encode_cursor(rows[0][key], rows[0]["id"])
        if has_next:
            cursors["next"], cursors["last"] = encode_cursor(rows[-1][key], rows[-1]["id"]), ""
    return rows, cursors


def _alias(source):
    """The alias of the one table in ``FROM table alias WHERE ...``."""
    return source.split()[2]
