"""Admin pages: the audit log (filterable, downloadable as CSV) and users with their roles. Everything under
/admin needs the admin role (auth.PATH_ROLES); the views say so again with @require_role."""

import json
from pathlib import Path

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from asset_map import audit, people, users, vocabulary
from asset_map.errors import InputError, NotFound
from asset_map.store import keyset
from asset_map.web import extensions
from asset_map.web.auth import current_actor, require_role

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 100


def _filters():
    return {name: request.args.get(name, "") for name in audit.FILTERS}


@bp.get("/")
@require_role("admin")
def index():
    return redirect(url_for("admin.audit_log"))


@bp.get("/audit")
@require_role("admin")
def audit_log():
    filters = _filters()
    found = audit.page(extensions.engine(), filters, size=PAGE_SIZE, after=request.args.get("after"),
                       before=request.args.get("before"), last=request.args.get("last") == "1")
    kept = {k: v for k, v in filters.items() if v}
    return render_template("admin/audit.html", found=found, filters=filters, kept=kept, actions=audit.ACTIONS,
                           exact_up_to=keyset.EXACT_COUNT_UP_TO)


@bp.get("/audit.csv")
@require_role("admin")
def audit_csv():
    filters = _filters()
    engine = extensions.engine()
    total, _ = audit.events(engine, filters, limit=0)
    upto = audit.last_id(engine)
    # The log holds e-mails and addresses: taking a copy of it is itself an export.
    with engine.begin() as conn:
        audit.record(conn, actor=current_actor(), action="export", target="audit_log",
                     details={"format": "csv", "filters": {k: v for k, v in filters.items() if v}}, rows=total)
    return Response(audit.csv_lines(engine, filters, upto=upto), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})


@bp.get("/users")
@require_role("admin")
def user_list():
    return render_template("admin/users.html", users=users.list_users(extensions.engine()),
                           roles=vocabulary.ACCOUNT_ROLES)


def _email_of(user_id):
    user = users.get_user(extensions.engine(), user_id)
    if user is None:
        raise NotFound(f"There is no user with id {user_id}.")
    return user.email


@bp.post("/users/<int:user_id>/role")
@require_role("admin")
def user_role(user_id):
    user = users.set_role(extensions.engine(), _email_of(user_id), request.form.get("role", ""),
                          actor=current_actor())
    flash(f"{user.email} is now {user.role}.")
    return redirect(url_for("admin.user_list"))


@bp.post("/users/<int:user_id>/remove")
@require_role("admin")
def user_remove(user_id):
    user = users.remove_user(extensions.engine(), _email_of(user_id), actor=current_actor())
    flash(f"{user.email} was removed.")
    return redirect(url_for("admin.user_list"))


# -- people's rights: find, subject access, erasure ---------------------------------------------------------------
# Searches are POSTed: an e-mail or a name in a query string would land in the server's and proxies' access logs.
@bp.route("/people", methods=["GET", "POST"])
@require_role("admin")
def people_page():
    form = {k: (request.form.get(k) or "").strip()[:254] for k in ("email", "name", "postcode", "source_key")}
    found, error = None, None
    if request.method == "POST":
        try:
            found = people.find(extensions.engine(), email=form["email"] or None, name=form["name"] or None,
                                postcode=form["postcode"] or None, source_key=form["source_key"] or None,
                                actor=current_actor())
        except InputError as err:
            error = err.user_message
    return render_template("admin/people.html", form=form, found=found, error=error)


def _ids():
    """(asset ids, waiting offer ids) ticked on the page."""
    ids = [int(v) for v in request.form.getlist("asset_id") if v.isdigit()]
    offers = [int(v) for v in request.form.getlist("offer_id") if v.isdigit()]
    if not ids and not offers:
        raise InputError("Choose at least one person (find them first).")
    return ids, offers


@bp.post("/people/export")
@require_role("admin")
def people_export():
    ids, offers = _ids()
    doc = people.export(extensions.engine(), ids, offer_ids=offers, actor=current_actor())
    return Response(json.dumps(doc, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="subject-access.json"'})


@bp.post("/people/erase")
@require_role("admin")
def people_erase():
    ids, offers = _ids()
    if request.form.get("confirm") != "yes":
        raise InputError("Tick the box to confirm the erasure: it cannot be undone.")
    reason = (request.form.get("reason") or "").strip()[:200]
    if not reason:
        raise InputError("Give a reason for the erasure (it is kept in the audit log).")
    settings = current_app.config["ASSET_MAP"]
    done = people.erase(extensions.engine(), ids, offer_ids=offers, reason=reason, actor=current_actor(),
                        files_dir=Path(settings["VAR_DIR"]) / "tmp")
    flash(f"Erased {len(done['erased'])} individual(s) and {len(done['offers'])} waiting offer(s): "
          f"{done['quarantine_rows']} quarantined row(s) and {done['report_rows']} report entr(ies) removed.")
    return redirect(url_for("admin.people_page"))
