"""/districts/<code>/freshness: how fresh a district's part of the map is, as a page (table, chart, stale list,
confirm links, suggestions waiting) and as CSV. Thin routes over asset_map.maps.freshness."""

from flask import Blueprint, Response, current_app, render_template

from asset_map.csv_writer import BOM, MEDIA_TYPE
from asset_map.maps import freshness, summary
from asset_map.registers.schema import taxonomy
from asset_map.web import extensions
from asset_map.web.auth import current_role, role_at_least

bp = Blueprint("freshness", __name__)


def _data(code):
    engine = extensions.engine()
    info = summary.district(engine, code)
    return info, freshness.district(engine, code, role=current_role(),
                                    stale_months=current_app.config["ASSET_MAP"]["STALE_MONTHS"])


@bp.get("/districts/<code>/freshness")
def district(code):
    info, data = _data(code)
    labels = {cid: spec["label"] for cid, spec in taxonomy().categories.items()}
    return render_template("freshness/district.html", info=info, data=data, labels=labels,
                           signed_in=role_at_least("organiser"))


@bp.get("/districts/<code>/freshness.csv")
def district_csv(code):
    info, data = _data(code)
    return Response(BOM + freshness.csv_text(data, info["code"]), content_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="freshness-{info["code"]}.csv"'})
