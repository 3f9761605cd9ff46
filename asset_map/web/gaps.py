"""/gaps: the gap report form, the report, and its downloads. Thin: parse, call asset_map.gaps, render."""

from flask import Blueprint, Response, current_app, render_template, request, url_for

from asset_map.errors import NotFound
from asset_map.web import extensions
from asset_map.web.auth import current_role
from asset_map.web.lazy import lazy

# The gap analysis (scipy, geopandas) and the page builder are loaded by the first gap report, not at start-up.
gaps = lazy("asset_map.gaps")
page = lazy("asset_map.layers.page")
gap_inputs = lazy("asset_map.store.gap_inputs")
queries = lazy("asset_map.layers.queries")

bp = Blueprint("gaps", __name__)
_DOWNLOADS = {"csv": ("text/csv; charset=utf-8", "csv"), "geojson": ("application/geo+json", "geojson"),
              "html": ("text/html; charset=utf-8", "html")}


def _run(req):
    settings = current_app.config["ASSET_MAP"]
    return gaps.run(extensions.engine(), req, role=current_role(), suppress_below=settings["SUPPRESS_BELOW"])


def _request():
    return gaps.GapRequest.from_args(request.args, default_need=current_app.config["ASSET_MAP"]["DEFAULT_NEED"])


def _form(engine, req):
    role = current_role()
    return {"districts": sorted(gap_inputs.district_names(engine).items()),
            "categories": gap_inputs.categories(engine, role=role), "offers": gap_inputs.offers(engine, role=role),
            "needs": [(f"{i}:{v}", f"{page.need_label(i, v)} ({n} areas)")
                      for i, v, n in queries.need_options(engine)],
            "selected": {"district": req.filter.district, "category": req.filter.category,
                         "offer": req.filter.offer, **req.as_args()}}


@bp.get("/gaps")
def index():
    engine, req = extensions.engine(), _request()
    ctx = {"form": _form(engine, req), "report": False, "args": req.as_args()}
    if request.args.get("run"):
        result = _run(req)
        static = url_for("static", filename="")
        extensions.folium_assets()
        ctx.update(gaps.report_context(result, current_app.config["ASSET_MAP"], static_url=static), report=True)
    return render_template("gaps/report.html", **ctx)


@bp.get("/gaps/report.<fmt>")
def download(fmt):
    if fmt not in _DOWNLOADS:
        raise NotFound(f"There is no gap report as {fmt!r}; try csv, geojson or html.")
    result = _run(_request())
    if fmt == "csv":
        body = gaps.csv_text(result)
    elif fmt == "geojson":
        body = gaps.geojson_text(result)
    else:
        extensions.folium_assets()
        body = gaps.standalone_html(result, current_app.config["ASSET_MAP"])
    content_type, ext = _DOWNLOADS[fmt]
    name = "gap-report-" + "-".join(result.inputs["districts"][:3] or ["all"]) + f".{ext}"
    return Response(body, content_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
