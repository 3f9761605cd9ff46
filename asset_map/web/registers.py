"""Register pages: the list of imported registers and each one's saved import report."""

import io

from flask import Blueprint, Response, render_template

from asset_map.api.csv_ import BOM, MEDIA_TYPE
from asset_map.filenames import safe_filename
from asset_map.registers.store import get_register, list_registers
from asset_map.store.assets import role_rank
from asset_map.web import extensions
from asset_map.web.auth import current_role
from asset_map.web.lazy import lazy

# The import report's module brings pandas: loaded by the first register page, not at start-up.
duplicates = lazy("asset_map.registers.duplicates")
report_ = lazy("asset_map.registers.report")

bp = Blueprint("registers", __name__, url_prefix="/registers")


@bp.get("")
def index():
    return render_template("registers/index.html", registers=list_registers(extensions.engine()))


@bp.get("/<name>")
def show(name):
    register, report = get_register(extensions.engine(), name)
    hidden = bool(report and report.personal and role_rank(current_role()) < role_rank("officer"))
    return render_template("registers/show.html", register=register, report=report_.redacted(report) if hidden else report,
                           hidden=hidden)


@bp.get("/<name>/duplicates.csv")
def duplicates_csv(name):
    """Every possible duplicate of the register's assets in other registers, as the store holds them now (the page
    lists the first ones found at import)."""
    engine = extensions.engine()
    _, report = get_register(engine, name)
    hidden = bool(report and report.personal and role_rank(current_role()) < role_rank("officer"))
    with engine.connect() as conn:
        pairs = duplicates.cross_register_duplicates(conn, name)
    out = io.StringIO()
    out.write(BOM)
    report_.write_duplicates_csv(pairs, out, hidden=hidden)
    filename = safe_filename(f"{name}-duplicates.csv", default="duplicates.csv")
    return Response(out.getvalue().encode("utf-8"), content_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
