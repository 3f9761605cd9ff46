"""/changes: the public feed of accepted changes per district as a page, Atom (/changes.atom) and JSON
(/changes.json). Thin routes over asset_map.changes."""

from flask import Blueprint, Response, current_app, render_template, request, url_for
from sqlalchemy import text

from asset_map import changes
from asset_map.store.assets import AssetFilter, parse_int
from asset_map.web import extensions

bp = Blueprint("changes", __name__)


def _query():
    since = changes.parse_since(request.args.get("since"))
    districts = AssetFilter.from_args({"district": request.args.get("district", "")}).district
    limit = parse_int(request.args, "limit", 200, 1, changes.MAX_LIMIT)
    items = changes.feed(extensions.engine(), since=since, districts=districts, limit=limit)
    return since, districts, items


def _link(item):
    # The asset's own page where there is one (issue 13), else the map filtered to it.
    if "asset_pages.show" in current_app.view_functions:
        return url_for("asset_pages.show", asset_id=item["asset_id"], _external=True)
    return url_for("maps.index", q=item["name"], district=item["district_code"], _external=True)


def _args(since, districts):
    out = {"since": since.isoformat()}
    if districts:
        out["district"] = ",".join(districts)
    return out


@bp.get("/changes")
def page():
    if request.args.get("f") == "json" or request.accept_mimetypes.best == "application/json":
        return as_json()
    since, districts, items = _query()
    with extensions.engine().connect() as conn:
        names = [tuple(r) for r in conn.execute(text("SELECT code, name FROM districts ORDER BY name"))]
    return render_template("changes/index.html", items=items, since=since, districts=districts, names=names,
                           args=_args(since, districts), link=_link)


@bp.get("/changes.json")
def as_json():
    since, districts, items = _query()
    return Response(changes.as_json(items, since=since, districts=districts, link_for=_link),
                    content_type="application/json")


@bp.get("/changes.atom")
def as_atom():
    since, districts, items = _query()
    self_url = url_for("changes.as_atom", _external=True, **_args(since, districts))
    return Response(changes.as_atom(items, since=since, districts=districts, self_url=self_url, link_for=_link),
                    content_type="application/atom+xml; charset=utf-8")
