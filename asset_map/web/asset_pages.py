"""Assets one at a time: the asset page (/assets/<id>) and the forms that add, edit, verify, close and withdraw an
asset. Routes are thin: the work (checks, geocoding, history, audit) is in asset_map.registers.edits, who sees what
in asset_map.privacy and asset_map.store.assets."""

from pathlib import Path

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy.exc import SQLAlchemyError

from asset_map import privacy
from asset_map.errors import Forbidden, InputError
from asset_map.maps import page_cache, styles
from asset_map.registers.schema import taxonomy
from asset_map.vocabulary import STATUSES, TIERS, VISIBILITIES
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role, require_role
from asset_map.web.lazy import lazy
from asset_map.web.serving import send_kept

# geopandas comes with the edits module: loaded by the first edit, not at start-up.
asset_page = lazy("asset_map.maps.asset_page")
edits = lazy("asset_map.registers.edits")

bp = Blueprint("asset_pages", __name__)


def _need():
    indicator, _, vintage = str(current_app.config["ASSET_MAP"].get("DEFAULT_NEED") or "imd:2025").partition(":")
    return indicator or "imd", vintage


def _map_config(asset=None, *, pick=False, nearby=()):
    settings = current_app.config["ASSET_MAP"]
    tiles = settings.get("TILES") or ""
    return {"tiles": "" if tiles.lower() == "none" else tiles, "attribution": settings.get("TILES_ATTRIBUTION", ""),
            "point": [asset["lon"], asset["lat"]] if asset and asset.get("lon") is not None else None,
            "name": asset["name"] if asset else None, "pick": pick,
            "districts": url_for("ogc.items", collection_id="districts", limit=1000) if pick else None,
            "nearby": [{"lon": n["lon"], "lat": n["lat"], "name": n["name"],
                        "url": url_for("asset_pages.show", asset_id=n["id"])} for n in nearby]}


@bp.get("/assets/<int:asset_id>")
def show(asset_id):
    role = current_role()
    engine = extensions.engine()
    # Kept pages are the anonymous page exactly: no query string (the sign-in link repeats it), no session (flash
    # messages, a CSRF token). Who may see the asset is checked on every hit of the table (maps.page_cache), and
    # for this process's copies at most every PAGE_RECHECK_MS and after each of its writes.
    keepable = role in page_cache.ROLES and not request.query_string and not session
    if keepable:
        pages = _process_pages()
        checked = pages.stamp(engine, _deployment())
        page = pages.get(asset_id, role, checked)
        if page is None:
            stamp, html = page_cache.lookup(engine, asset_id, role=role, deployment=_deployment())
            if html is not None:
                page = pages.put(asset_id, role, checked, html)
        if page is not None:
            return send_kept(page)
    asset = asset_page.load(engine, asset_id, role=role, need=_need())
    settings = current_app.config["ASSET_MAP"]
    html = render_template("assets/show.html", asset=asset, may_edit=privacy.may_edit(role, asset["tier"],
                                                                                     asset.get("visibility")),
                           is_officer=role in ("officer", "admin"), stale_months=settings["STALE_MONTHS"],
                           map_config=_map_config(asset, nearby=asset["nearby"]), label=styles.label_for,
                           walk_network=asset["walk_network"],
                           tiles=settings["TILES"], tiles_attribution=settings["TILES_ATTRIBUTION"])
    if keepable and not session:
        kept = page_cache.holed(html, g.get("csp_nonce"))
        try:
            page_cache.keep(engine, asset_id, role=role, stamp=stamp, html=kept)
        except SQLAlchemyError as err:  # a page not kept is drawn again next time; the reader still gets this one
            current_app.logger.warning("asset page %s not kept: %s", asset_id, err)
        pages.put(asset_id, role, checked, kept)
    return html


def _process_pages():
    return extensions.kept("asset_map.asset_pages", lambda settings: page_cache.ProcessPages(
        settings["PAGE_CACHE_MB"] * 2**20, recheck_s=settings["PAGE_RECHECK_MS"] / 1000))


@bp.after_app_request
def _writes_seen(response):
    """Any request that may have written (a form, an API call, whichever blueprint) makes this process's next asset
    page and public tile check the store again, so what this process changed (a withdrawal, a restricted asset) is
    seen at once."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        for name in ("asset_map.asset_pages", "asset_map.tile_snapshot"):
            if name in current_app.extensions:
                current_app.extensions[name].forget()
    return response


def _deployment():
    """The settings and templates kept pages depend on, hashed once per process."""
    key = current_app.extensions.get("asset_map_page_key")
    if key is None:
        key = page_cache.deployment_key(current_app.config["ASSET_MAP"],
                                        [Path(current_app.root_path, current_app.template_folder)])
        current_app.extensions["asset_map_page_key"] = key
    return key


def _choices():
    tax = taxonomy()
    return {"tiers": TIERS, "statuses": STATUSES, "visibilities": VISIBILITIES,
            "categories": sorted(((c, styles.label_for(c)) for c in tax.categories), key=lambda x: x[1])}


def _form(template_values, *, asset=None, error=None, problems=(), status=200):
    role = current_role()
    values = template_values
    point = None
    if values.get("lon") and values.get("lat"):
        try:
            point = {"lon": float(values["lon"]), "lat": float(values["lat"]), "name": values.get("name")}
        except ValueError:
            point = None
    return render_template("assets/form.html", asset=asset, values=values, error=error, problems=problems,
                           choices=_choices(), role=role, editable=edits.EDITABLE,
                           map_config=_map_config(point, pick=True),
                           address_lookup=bool(current_app.config["ASSET_MAP"].get("GEOCODER"))), status


def _posted():
    return {f: request.form.get(f, "") for f in edits.EDITABLE if f in request.form}


@bp.route("/assets/new", methods=["GET", "POST"])
@require_role("organiser")
def new():
    if request.method == "GET":
        privacy.check_may_edit(current_role())
        return _form({"status": "open", "visibility": "public", "lon": request.args.get("lon", ""),
                      "lat": request.args.get("lat", "")})
    values = _posted()
    try:
        asset_id, warnings = edits.create_asset(extensions.engine(), values, actor=current_actor(),
                                                role=current_role(), reason=request.form.get("reason"))
    except edits.EditRefused as err:
        return _form(values, error=err.user_message, problems=err.problems, status=422)
    except (InputError, Forbidden) as err:
        return _form(values, error=err.user_message, status=err.status)
    flash("Asset added." + (" Warnings: " + "; ".join(warnings) if warnings else ""))
    return redirect(url_for("asset_pages.show", asset_id=asset_id))


@bp.route("/assets/<int:asset_id>/edit", methods=["GET", "POST"])
@require_role("organiser")
def edit(asset_id):
    engine = extensions.engine()
    with engine.connect() as conn:
        asset = edits.read(conn, asset_id)
    privacy.check_may_edit(current_role(), asset["tier"], asset["visibility"])
    if request.method == "GET":
        return _form(edits.as_fields(asset) | {"version": asset["version"]}, asset=asset)
    values = _posted()
    try:
        _, warnings = edits.update_asset(engine, asset_id, values, version=request.form.get("version"),
                                         actor=current_actor(), role=current_role(),
                                         reason=request.form.get("reason"))
    except edits.StaleEdit as err:
        return _form(values | {"version": request.form.get("version")}, asset=asset, error=err.user_message,
                     status=409)
    except edits.EditRefused as err:
        return _form(values | {"version": request.form.get("version")}, asset=asset, error=err.user_message,
                     problems=err.problems, status=422)
    except InputError as err:
        return _form(values | {"version": request.form.get("version")}, asset=asset, error=err.user_message,
                     status=err.status)
    flash("Changes saved." + (" Warnings: " + "; ".join(warnings) if warnings else ""))
    return redirect(url_for("asset_pages.show", asset_id=asset_id))


# Looked up when used, so the edits module (geopandas) loads with the first edit rather than at start-up.
_ACTIONS = {
    "verify": (lambda *a, **k: edits.verify_asset(*a, **k), "Marked as checked today."),
    "close": (lambda *a, **k: edits.close_asset(*a, **k), "Marked as closed."),
    "reopen": (lambda *a, **k: edits.reopen_asset(*a, **k), "Marked as open."),
    "withdraw": (lambda *a, **k: edits.withdraw_asset(*a, **k), "Withdrawn: it no longer shows on the map."),
    "restore": (lambda *a, **k: edits.withdraw_asset(*a, restore=True, **k), "Restored to the map."),
}


@bp.post("/assets/<int:asset_id>/<any(verify, close, reopen, withdraw, restore):action>")
@require_role("organiser")
def act(asset_id, action):
    run, done = _ACTIONS[action]
    try:
        run(extensions.engine(), asset_id, version=request.form.get("version"), actor=current_actor(),
            role=current_role(), reason=request.form.get("reason"))
    except InputError as err:
        flash(err.user_message, "error")
        return redirect(url_for("asset_pages.show", asset_id=asset_id))
    except edits.StaleEdit as err:
        flash(err.user_message, "error")
        return redirect(url_for("asset_pages.show", asset_id=asset_id))
    flash(done)
    return redirect(url_for("asset_pages.show", asset_id=asset_id))
