"""The non-map view: /assets as an accessible, sortable table with the map's filters, its CSV download, and the
GOV.UK Frontend fonts and images its CSS asks for at /assets/... (the same prefix; Flask tells them apart)."""

import json
from datetime import date

from flask import (Blueprint, Response, current_app, g, render_template, request, send_from_directory, session,
                   stream_with_context)

from asset_map.config import attribution_lines

from asset_map.errors import NotFound
from asset_map.maps import page_cache, styles, table
from asset_map.store.change_stamps import StampedCache
from asset_map.vocabulary import TIER_LABELS
from asset_map.web import extensions
from asset_map.web.auth import current_role, record_read
from asset_map.web.filters import form_choices, request_filter
from asset_map.web.serving import send_kept
from asset_map.web.slots import slots
from asset_map.web.vendored import DEFAULT_DIR

bp = Blueprint("tables", __name__)
# The category styles are checked when the app starts, like the layer files: a broken file names every problem.
bp.record_once(lambda _state: styles.load())
COUNTS_KEPT = 1024   # filters whose counts a process keeps
GOVUK_ASSETS = DEFAULT_DIR / "govuk-frontend" / "dist" / "govuk" / "assets"


@bp.app_context_processor
def _page_context():
    """What every GOV.UK-styled page shows: the data attribution in its footer, category and tier names."""
    return {"attribution": attribution_lines(current_app.config["ASSET_MAP"]), "labels": styles.label_for,
            "tiers": TIER_LABELS}


@bp.get("/assets")
def assets():
    role = current_role()
    # The public's pages are kept rendered per process until the assets or reference data change (a hit costs the
    # change stamps' one statement): a page is the same for every anonymous reader of the same address on the same
    # day. Signed-in readers (contact columns, flash messages, CSRF tokens) are always drawn afresh.
    if role not in page_cache.ROLES or session or not current_app.config["ASSET_MAP"]["TABLE_CACHE_MB"]:
        return _table_page(role)
    page = _kept_pages().get(extensions.read_engine(), _page_key(role), lambda: page_cache.Page(
        page_cache.holed(_table_page(role), g.get("csp_nonce"))), now=extensions.stamps())
    return send_kept(page)


def _page_key(role):
    # The role too, though only the public's pages are kept: a page is never served to a role it was not drawn for.
    return role, request.query_string, date.today().isoformat()


def _kept_pages():
    return extensions.kept("asset_map.table_pages", lambda settings: StampedCache(
        settings["TABLE_CACHE_MB"] * 2**20, weigh=lambda page: page.weight))


def _kept_counts():
    return extensions.kept("asset_map.table_counts", lambda _: StampedCache(COUNTS_KEPT, weigh=lambda _: 1))


def _table_page(role):
    flt = request_filter()
    sort, direction = table.parse_sort(request.args.get("sort"), request.args.get("dir"))
    page_no = request.args.get("page")
    page_no = None if page_no is None else (int(page_no) if page_no.isdigit() else 0)
    engine = extensions.read_engine()
    # Every page of a filter has the same count: kept per process until the assets change (or the day, which moves
    # "verified within" filters).
    key = (role, json.dumps(flt.as_args(), sort_keys=True), date.today().isoformat())
    counted = _kept_counts().get(engine, key, lambda: table.count(engine, flt, role=role), now=extensions.stamps())
    result = table.page(engine, flt, role=role, sort=sort, direction=direction, page_no=page_no,
                        after=request.args.get("after"), before=request.args.get("before"),
                        last=request.args.get("last") == "1", counted=counted)
    return render_template("assets/table.html", rows=result.rows, total=result.total, estimated=result.estimated,
                           pages=result.pages, page_no=result.page_no, cursors=result.cursors, sort=sort,
                           direction=direction, columns=table.columns_for(role), sortable=table.SORTABLE,
                           flt=flt, form=form_choices(flt), labels=styles.label_for, tiers=TIER_LABELS,
                           exact_up_to=table.EXACT_COUNT_UP_TO)


@bp.get("/assets.csv")
def assets_csv():
    engine, flt, role = extensions.engine(), request_filter(), current_role()
    held = slots("export").acquire()  # held until the last byte is sent (or the client goes away)
    details = {"format": "csv", "filters": flt.as_args(), "role": role}
    body = stream_with_context(_encoded(table.csv_chunks(engine, flt, role=role), held, details))
    name = f"assets-{date.today().isoformat()}.csv"
    res = Response(body, content_type="text/csv; charset=utf-8",
                   headers={"Content-Disposition": f'attachment; filename="{name}"'})
    res.call_on_close(held.release)
    return res


def _encoded(chunks, held, details):
    # The bulk read is logged when the stream ends (or the client goes away), with the rows actually sent.
    lines = 0
    try:
        for piece in chunks:
            lines += piece.count("\r\n")
            yield piece.encode("utf-8")
    finally:
        held.release()
        record_read("assets.csv", details=details, rows=max(lines - 1, 0))


@bp.get("/assets/<path:filename>")
def govuk_assets(filename):
    if not GOVUK_ASSETS.is_dir():
        raise NotFound("GOV.UK Frontend is not installed: run `make install`.")
    return send_from_directory(GOVUK_ASSETS, filename, max_age=86400)
