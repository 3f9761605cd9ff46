"""/gaps: the gap report form, the report, and its downloads. Thin: parse, call asset_map.gaps, render."""

from flask import Blueprint, Response, current_app, render_template, request, url_for

from asset_map import disclosure, gaps
from asset_map.analysis import gap_defaults
from asset_map.vocabulary import DEFAULT_STATUSES
from asset_map.maps import page
from asset_map.errors import NotFound
from asset_map.maps.queries import need_options
from asset_map.store import gap_inputs, geographies
from asset_map.web import extensions
from asset_map.web.auth import current_role, record_read

bp = Blueprint("gaps", __name__)
_DOWNLOADS = {"csv": ("text/csv; charset=utf-8", "csv"), "geojson": ("application/geo+json", "geojson"),
              "html": ("text/html; charset=utf-8", "html")}


def _run(req):
    settings = current_app.config["ASSET_MAP"]
    return gaps.run(extensions.engine(), req, role=current_role(), suppress_below=disclosure.method(settings),
                    settings=settings)


def _request():
    return gaps.GapRequest.from_args(request.args, default_need=current_app.config["ASSET_MAP"]["DEFAULT_NEED"])


# Words for the form's choices; the choices and defaults themselves are gap_defaults' (a new one shows as its name).
_LABELS = {"quantiles": "thirds of the score", "higher": "a higher score", "lower": "a lower score",
           "access": "2SFCA accessibility", "per_1000": "assets inside per 1,000", "distance": "distance to nearest",
           "none": "none", "linear": "linear", "gaussian": "gaussian"}


def _choices():
    hi, med = gap_defaults.NEED_BREAKS
    labels = {**_LABELS, "deciles": f"deciles (1-{hi} high, {hi + 1}-{med} medium)"}

    def pairs(values):
        return [(v, labels.get(v, v)) for v in values]

    return {"statuses": [(",".join(gap_defaults.STATUS), " or ".join(gap_defaults.STATUS)),
                         (",".join(DEFAULT_STATUSES), " or ".join(DEFAULT_STATUSES))],
            "need_classes": pairs(gap_defaults.NEED_METHODS), "need_directions": pairs(gap_defaults.NEED_DIRECTIONS),
            "supply": pairs(gap_defaults.SUPPLY_MEASURES), "decays": pairs(gap_defaults.DECAYS)}


def _form(engine, req):
    role = current_role()
    return {"choices": _choices(), "districts": sorted(gap_inputs.district_names(engine).items()),
            "areas": geographies.choices(engine),
            "categories": gap_inputs.categories(engine, role=role), "offers": gap_inputs.offers(engine, role=role),
            "needs": [(f"{i}:{v}", f"{page.need_label(i, v)} ({n} areas)") for i, v, n in need_options(engine)],
            "distances": gaps.distance_choices(engine),
            "selected": {"district": req.filter.district, "area": req.filter.area,
                         "category": req.filter.category,
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
    req = _request()
    result = _run(req)
    if fmt == "csv":
        body = gaps.csv_text(result)
    elif fmt == "geojson":
        body = gaps.geojson_text(result)
    else:
        extensions.folium_assets()
        body = gaps.standalone_html(result, current_app.config["ASSET_MAP"])
    record_read("gap-report", details={"format": fmt, "filters": result.request.as_args()}, rows=len(result.frame))
    content_type, ext = _DOWNLOADS[fmt]
    parts = [a.replace(":", "-") for a in req.filter.area] or result.inputs["districts"][:3] or ["all"]
    name = "gap-report-" + "-".join(parts)[:80] + f".{ext}"
    return Response(body, content_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
