"""Register pages: the list of imported registers and each one's saved import report."""

from flask import Blueprint, render_template

from asset_map.registers.report import redacted
from asset_map.registers.store import get_register, list_registers
from asset_map.store.assets import role_rank
from asset_map.web import extensions
from asset_map.web.auth import current_role

bp = Blueprint("registers", __name__, url_prefix="/registers")


@bp.get("")
def index():
    return render_template("registers/index.html", registers=list_registers(extensions.engine()))


@bp.get("/<name>")
def show(name):
    register, report = get_register(extensions.engine(), name)
    hidden = bool(report and report.personal and role_rank(current_role()) < role_rank("officer"))
    return render_template("registers/show.html", register=register, report=redacted(report) if hidden else report,
                           hidden=hidden)
