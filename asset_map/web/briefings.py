"""Geographies, briefings and local directories on the web. Thin: parse, call asset_map.briefing / the store,
render. Who sees what is the shared rule: the role decides the stale list and contact details, and a briefing never
lists individuals (asset_map.briefing.data)."""

import json
from datetime import date

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from asset_map.errors import InputError
from asset_map.maps import queries
from asset_map.store.change_stamps import StampedCache
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role, current_user_id, require_role, role_at_least
from asset_map.web.lazy import lazy

# Briefings draw with matplotlib and read with GDAL: loaded by the first briefing, not when a worker starts.
batch = lazy("asset_map.briefing.batch")
councillors = lazy("asset_map.briefing.councillors")
data = lazy("asset_map.briefing.data")
directory = lazy("asset_map.briefing.directory")
render = lazy("asset_map.briefing.render")
geographies = lazy("asset_map.store.geographies")

bp = Blueprint("briefings", __name__)
LISTED_AREAS = 500
COUNTIES_KEPT = 8       # the county's shared briefing data per (role, since) asked for today, per process


def _since():
    raw = request.args.get("since", "").strip()
    if not raw:
        return None
    try:
        since = date.fromisoformat(raw)
    except ValueError as err:
        raise InputError(f"Parameter 'since' has value {raw[:20]!r}: expected a date such as 2026-10-01.") from err
    if since > date.today():
        raise InputError("Parameter 'since' is in the future: changes can only be shown since a past date.")
    return since


def _document(geography, code, *, pdf):
    engine, settings = extensions.engine(), current_app.config["ASSET_MAP"]
    role, since, today = current_role(), _since(), date.today()
    # What every briefing shares (the county's gap analysis and need profile) takes seconds and changes only with
    # the data: kept per process while the change stamps stand, read by every briefing of the day.
    shared = _counties().get(engine, ("county", role, since, today),
                             lambda: data.county(engine, settings, role=role, today=today, since=since))
    return batch.document(engine, shared, geography, code, pdf=pdf)


def _counties():
    return extensions.kept("asset_map.briefing_counties", lambda _: StampedCache(COUNTIES_KEPT, weigh=lambda _: 1))


@bp.get("/briefings")
def index():
    engine = extensions.engine()
    mine = councillors.areas_of(engine, current_user_id()) if current_user_id() else []
    listed = []
    for g in geographies.list_geographies(engine):
        areas = geographies.areas(engine, g["name"], role=current_role()) if g["areas"] <= LISTED_AREAS else None
        listed.append((g, areas))
    return render_template("briefing/index.html", mine=mine, geographies=listed, can_draw=role_at_least("officer"))


@bp.get("/briefings/mine")
def mine():
    """A signed-in user's own areas (a councillor's home page after sign-in)."""
    if not current_user_id():
        return redirect(url_for("auth.sign_in", next=url_for("briefings.mine")))
    return index()


@bp.get("/geographies/<name>")
def geography(name):
    engine = extensions.engine()
    areas = geographies.areas(engine, name, role=current_role())
    info = next(g for g in geographies.list_geographies(engine) if g["name"] == name)
    return render_template("briefing/geography.html", info=info, areas=areas)


@bp.get("/briefings/<geography>/<code>")
def page(geography, code):
    doc = _document(geography, code, pdf=False)
    ctx = render.context(doc.briefing, doc.png)
    return render_template("briefing/page.html", since_value=request.args.get("since", ""), **ctx)


@bp.get("/briefings/<geography>/<code>/print")
def printable(geography, code):
    doc = _document(geography, code, pdf=False)
    # Rendered by the app (not render.briefing_html) so its <style> carries this response's CSP nonce.
    return render_template("briefing/print.html", **render.context(doc.briefing, doc.png))


@bp.get("/briefings/<geography>/<code>/pdf")
def pdf(geography, code):
    doc = _document(geography, code, pdf=True)
    name = f"briefing-{batch.file_stem(geography, code)}.pdf"
    return Response(doc.pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/geographies/draw", methods=["GET", "POST"])
@require_role("officer")
def draw():
    engine, settings = extensions.engine(), current_app.config["ASSET_MAP"]
    form = {"geography": request.form.get("geography", "pilot-neighbourhoods"), "code": request.form.get("code", ""),
            "name": request.form.get("name", ""), "label": request.form.get("label", ""),
            "geometry": request.form.get("geometry", "")}
    error = None
    if request.method == "POST":
        try:
            geometry = json.loads(form["geometry"] or "null")
            if isinstance(geometry, dict) and geometry.get("type") == "Feature":
                geometry = geometry.get("geometry")
            done = geographies.save_drawn(engine, form["geography"], form["code"], form["name"], geometry,
                                          actor=current_actor(), label=form["label"] or None)
        except json.JSONDecodeError:
            error = "Draw the area on the map first: no outline was sent."
        except InputError as err:
            error = err.user_message
        else:
            flash(f"Saved {done['name']} as area {done['code']} of {done['geography']}: {done['assets_linked']} "
                  f"assets inside." + (f" Note: {done['note']}." if done["note"] else ""))
            return redirect(url_for("briefings.geography", name=done["geography"]))
    districts = queries.districts(engine)
    existing = {g["name"]: g["label"] for g in geographies.list_geographies(engine)}
    config = {"districts": json.loads(districts.to_json()), "tiles": settings["TILES"],
              "tiles_attribution": settings["TILES_ATTRIBUTION"], "bounds": _bounds(districts)}
    return render_template("briefing/draw.html", form=form, error=error, config=config, existing=existing), \
        (400 if error else 200)


def _bounds(gdf):
    if not len(gdf):
        return [[49.9, -6.4], [55.8, 1.8]]
    minx, miny, maxx, maxy = gdf.total_bounds
    return [[miny, minx], [maxy, maxx]]


@bp.get("/directory")
def directory_form():
    args = request.args
    return render_template("briefing/directory_form.html", args=args, areas=geographies.choices(extensions.engine()))


@bp.get("/directory/<fmt>")
def directory_file(fmt):
    if fmt not in ("print", "pdf"):
        raise InputError("A directory is available as print or pdf.")
    args = request.args
    where = directory.Where.parse(postcode=args.get("postcode"), asset=args.get("asset"), area=args.get("area"),
                                  miles=args.get("miles") or 1)
    doc = directory.document(extensions.engine(), current_app.config["ASSET_MAP"], where, role=current_role(),
                             title=(args.get("title") or "").strip()[:120] or None)
    if fmt == "pdf":
        return Response(doc.pdf, mimetype="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="local-directory.pdf"'})
    # The printable page is a document of its own: its one <style> needs this response's nonce.
    from asset_map.web.security import csp_nonce_tags

    return Response(str(csp_nonce_tags(doc.html)), mimetype="text/html")
