"""Register pages (officers: everything under /registers is protected by path, auth.PATH_ROLES): the list of
registers, each register's management page (source, mapping, imports over time, import jobs with their progress,
next steps, rollback, CSV downloads), and the browser workflow: upload -> map columns -> preview -> import in the
background; the quarantine with its fixes. Routes are thin: the work is in asset_map.registers and asset_map.jobs."""

import io

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from asset_map import jobs, privacy
from asset_map.csv_writer import MEDIA_TYPE, CsvWriter
from asset_map.errors import InputError, NotFound
from asset_map.filenames import safe_filename
from asset_map.registers.schema import FIELDS
from asset_map.registers.store import get_register, list_registers
from asset_map.store import keyset
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role, record_read, require_role
from asset_map.web.lazy import lazy

# The importer and its readers (pandas, GDAL) load with the first register page, not at start-up (issue 16).
edits = lazy("asset_map.registers.edits")
manage = lazy("asset_map.registers.manage")
preview_ = lazy("asset_map.registers.preview")
quarantine = lazy("asset_map.registers.quarantine")
uploads = lazy("asset_map.registers.uploads")
duplicates = lazy("asset_map.registers.duplicates")
import_report = lazy("asset_map.registers.import_report")

bp = Blueprint("registers", __name__, url_prefix="/registers")
QUARANTINE_PAGE = 25


def _settings():
    return current_app.config["ASSET_MAP"]


@bp.get("")
def index():
    return render_template("registers/index.html", registers=list_registers(extensions.engine()))


@bp.get("/<name>")
def show(name):
    engine = extensions.engine()
    import_jobs = jobs.jobs_of(engine, name)
    try:
        register, report = get_register(engine, name)
    except NotFound:
        if not import_jobs:
            raise
        # A register's first import, queued or failed: the page shows its job.
        register, report = {"name": name, "source_file": None, "version": 0}, None
    hidden = bool(report and report.personal and not privacy.sees_individual_points(current_role()))
    facts, imports = manage.facts(engine, name, stale_months=_settings()["STALE_MONTHS"])
    mapping_yaml = uploads.as_yaml(facts.pop("mapping") or {}, register=name) if facts.get("mapping") else None
    running = any(j["status"] in ("queued", "running") and not j["interrupted"] for j in import_jobs)
    shown = import_report.redacted(report) if hidden else report
    return render_template("registers/show.html", register=register, report=shown,
                           hidden=hidden, facts=facts, imports=imports, jobs=import_jobs, running=running,
                           mapping_yaml=mapping_yaml)


@bp.get("/<name>/duplicates.csv")
def duplicates_csv(name):
    """Every possible duplicate of the register's assets in other registers, as the store holds them now (the page
    lists the first ones found at import)."""
    engine = extensions.engine()
    _, report = get_register(engine, name)
    hidden = bool(report and report.personal and not privacy.sees_individual_points(current_role()))
    with engine.connect() as conn:
        pairs = duplicates.cross_register_duplicates(conn, name)
    out = io.StringIO()
    import_report.write_duplicates_csv(pairs, out, hidden=hidden, bom=True)
    record_read(f"duplicates:{name}", details={"format": "csv", "register": name}, rows=len(pairs))
    return _csv(out.getvalue(), f"{name}-duplicates.csv")


def _csv(body, filename):
    filename = safe_filename(filename, default="register.csv")
    return Response(body.encode("utf-8"), content_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# -- downloads ----------------------------------------------------------------------------------------------------
_ASSET_CSV = ["id", "source_row", "source_key", "tier", "category", "name", "description", "offers", "address",
              "postcode", "uprn", "email", "phone", "url", "status", "last_verified", "visibility",
              "geocode_method", "geocode_quality", "district_code", "lsoa11_code", "lsoa21_code", "withdrawn_at",
              "updated_at", "version"]


@bp.get("/<name>/assets.csv")
@require_role("officer")
def assets_csv(name):
    from sqlalchemy import text

    from asset_map.web.auth import audit

    engine = extensions.engine()
    get_register(engine, name)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {', '.join(_ASSET_CSV)}, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                                 f"FROM assets WHERE register = :r ORDER BY id"), {"r": name}).all()
    audit("export", target=f"register:{name}", details={"format": "csv", "what": "assets"}, rows=len(rows))
    return _csv_table(_ASSET_CSV + ["lon", "lat", "page"], ([*row, f"/assets/{row[0]}"] for row in rows),
                      f"{name}-assets.csv")


@bp.get("/<name>/quarantine.csv")
@require_role("officer")
def quarantine_csv(name):
    from asset_map.web.auth import audit

    engine = extensions.engine()
    get_register(engine, name)
    with engine.connect() as conn:
        total = quarantine.count(conn, name)
    audit("export", target=f"register:{name}", details={"format": "csv", "what": "quarantine"}, rows=total)
    body = ([r["id"], r["source_row"],
             "; ".join(f"{p['field']}: {p['reason']}" for p in r["problems"] if p.get("severity") == "error"),
             *quarantine.row_fields(r).values()] for r in quarantine.every_row(engine, name))
    return _csv_stream(["quarantine_id", "source_row", "problems", *FIELDS], body, f"{name}-quarantine.csv")


def _csv_stream(header, rows, filename, *, every=1000):
    """Rows as a spreadsheet-safe CSV download sent as they are read, ``every`` rows a piece."""
    def pieces():
        out = io.StringIO()
        writer = CsvWriter(out)
        writer.header(header)
        for n, row in enumerate(rows, start=1):
            writer.row(row)
            if n % every == 0:
                yield out.getvalue().encode("utf-8")
                out.seek(0)
                out.truncate()
        yield out.getvalue().encode("utf-8")

    filename = safe_filename(filename, default="register.csv")
    return Response(pieces(), content_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csv_table(header, rows, filename):
    """Rows as a spreadsheet-safe CSV download (the project's one CSV writer: BOM, formula-like cells neutralised)."""
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.header(header)
    writer.rows(rows)
    return _csv(out.getvalue(), filename)


@bp.get("/<name>/mapping.yaml")
def register_mapping(name):
    register, _ = get_register(extensions.engine(), name)
    from sqlalchemy import text

    with extensions.engine().connect() as conn:
        mapping = conn.execute(text("SELECT mapping FROM registers WHERE name = :r"), {"r": name}).scalar()
    return _yaml(uploads.as_yaml(mapping or {}, register=name), f"{name}-mapping.yaml")


def _yaml(body, filename):
    return Response(body, content_type="text/yaml; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe_filename(filename)}"'})


# -- upload -> mapping -> preview -> import ----------------------------------------------------------------------
@bp.route("/upload", methods=["GET", "POST"])
@require_role("officer")
def upload():
    engine = extensions.engine()
    names = [r["name"] for r in list_registers(engine) if not r["name"].startswith("manual-")]
    register = request.values.get("register", "").strip()
    if request.method == "GET":
        return render_template("registers/upload.html", names=names, register=register, error=None)
    file = request.files.get("file")
    try:
        if file is None or not file.filename:
            raise InputError("Choose a file to upload.")
        register = register or request.form.get("new_register", "").strip()
        upload_id = uploads.save(engine, _settings(), register=register, filename=file.filename, stream=file.stream,
                                 actor=current_actor(), max_bytes=_settings()["MAX_UPLOAD_MB"] * 1024 * 1024)
    except InputError as err:
        return render_template("registers/upload.html", names=names, register=register,
                               error=err.user_message), err.status
    return redirect(url_for("registers.mapping", upload_id=upload_id))


@bp.route("/uploads/<int:upload_id>/mapping", methods=["GET", "POST"])
@require_role("officer")
def mapping(upload_id):
    engine = extensions.engine()
    upload_row = uploads.get(engine, upload_id)
    raw = uploads.read(_settings(), upload_row)
    proposed, source = uploads.propose(engine, upload_row, raw)
    error = None
    if request.method == "POST":
        try:
            chosen = uploads.from_form(request.form, raw, source=upload_row["original_name"])
        except InputError as err:
            error = err.user_message
        else:
            uploads.save_mapping(engine, upload_id, chosen, actor=current_actor())
            return redirect(url_for("registers.preview", upload_id=upload_id))
    assigned = uploads.assignment(proposed, raw)
    if request.method == "POST":
        assigned = {c: request.form.get(f"col-{i}", "") for i, c in enumerate(c for c in raw.columns if c != "_row")}
    return render_template("registers/mapping.html", upload=upload_row, columns=uploads.columns(raw),
                           assigned=assigned, fields=FIELDS, mapping=proposed, source=source, error=error,
                           rows=len(raw), yaml=uploads.as_yaml(proposed.as_dict(), register=upload_row["register"]),
                           form=request.form if request.method == "POST" else None), (422 if error else 200)


@bp.get("/uploads/<int:upload_id>/mapping.yaml")
@require_role("officer")
def upload_mapping_yaml(upload_id):
    upload_row = uploads.get(extensions.engine(), upload_id)
    return _yaml(uploads.as_yaml(upload_row["mapping"] or {}, register=upload_row["register"]),
                 f"{upload_row['register']}-mapping.yaml")


@bp.get("/uploads/<int:upload_id>/preview")
@require_role("officer")
def preview(upload_id):
    from asset_map.registers.mapping import Mapping

    engine = extensions.engine()
    upload_row = uploads.get(engine, upload_id)
    if not upload_row["mapping"]:
        return redirect(url_for("registers.mapping", upload_id=upload_id))
    mapping_ = Mapping.from_dict(uploads.mapping_keys(upload_row["mapping"]), source="mapping form")
    result = preview_.preview(engine, uploads.path_of(_settings(), upload_row["stored_name"]),
                              register=upload_row["register"], mapping=mapping_, settings=_settings(),
                              source_name=upload_row["original_name"])
    from asset_map.web.auth import audit

    report = result["report"]
    audit("preview", target=upload_row["register"], rows=report.rows_read,
          details={"upload": upload_id, "file": upload_row["original_name"], "inserted": report.inserted,
                   "updated": report.updated, "withdrawn": report.withdrawn, "quarantined": report.quarantined})
    return render_template("registers/preview.html", upload=upload_row, result=result, report=result["report"],
                           map_config={"tiles": _tiles(), "attribution": _settings().get("TILES_ATTRIBUTION", ""),
                                       "points": result["points"], "districts": _districts_url()})


def _districts_url():
    return url_for("ogc.items", collection_id="districts", limit=1000)


def _tiles():
    tiles = _settings().get("TILES") or ""
    return "" if tiles.lower() == "none" else tiles


@bp.post("/uploads/<int:upload_id>/import")
@require_role("officer")
def start_import(upload_id):
    engine = extensions.engine()
    upload_row = uploads.get(engine, upload_id)
    try:
        jobs.enqueue(engine, register=upload_row["register"], upload_id=upload_id, actor=current_actor(),
                     settings=_settings())
    except InputError as err:
        flash(err.user_message, "error")
        return redirect(url_for("registers.show", name=upload_row["register"]))
    flash(f"The import of {upload_row['original_name']} has started. You can leave this page: it carries on.")
    return redirect(url_for("registers.show", name=upload_row["register"]) + "#jobs")


@bp.get("/<name>/jobs.json")
def jobs_json(name):
    from flask import jsonify

    return jsonify([{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in j.items()}
                    for j in jobs.jobs_of(extensions.engine(), name)])


# -- rollback -------------------------------------------------------------------------------------------------------
@bp.post("/<name>/rollback/<int:import_id>")
@require_role("officer")
def rollback(name, import_id):
    try:
        counts = manage.rollback(extensions.engine(), name, import_id, actor=current_actor(),
                                 reason=request.form.get("reason"))
    except InputError as err:
        flash(err.user_message, "error")
    else:
        restored = counts.get("quarantine_restored")
        quarantined = (f" The quarantine is back to the {restored:,} rows that import left." if restored is not None
                       else " That import is older than the quarantine's snapshots: the quarantine is unchanged.")
        flash(f"Rolled back: {counts['restored']:,} assets restored to their values after that import "
              f"({counts['withdrawn']:,} added since were withdrawn).{quarantined} The history keeps every version.")
    return redirect(url_for("registers.show", name=name) + "#imports")


# -- quarantine -----------------------------------------------------------------------------------------------------
@bp.get("/<name>/quarantine")
def quarantine_list(name):
    engine = extensions.engine()
    get_register(engine, name)
    field = request.args.get("field") or None
    q = (request.args.get("q") or "").strip() or None
    with engine.connect() as conn:
        found = quarantine.page(conn, name, field=field, q=q, size=QUARANTINE_PAGE, after=request.args.get("after"),
                                before=request.args.get("before"), last=request.args.get("last") == "1")
        reasons = quarantine.reasons(conn, name)
    kept = {k: v for k, v in (("name", name), ("field", field), ("q", q)) if v}
    return render_template("registers/quarantine.html", name=name, found=found, kept=kept, field=field, q=q or "",
                           reasons=reasons, row_fields=quarantine.row_fields, exact_up_to=keyset.EXACT_COUNT_UP_TO)


@bp.route("/<name>/quarantine/<int:qid>", methods=["GET", "POST"])
@require_role("officer")
def quarantine_fix(name, qid):
    engine = extensions.engine()
    with engine.connect() as conn:
        row = quarantine.one(conn, name, qid)
    values = quarantine.row_fields(row)
    error, problems = None, [p for p in row["problems"]]
    status = 200
    if request.method == "POST":
        changes = {f: request.form.get(f, "") for f in edits.EDITABLE if f in request.form}
        values = values | changes
        try:
            outcome, detail = manage.fix_quarantined(engine, name, qid, changes, actor=current_actor(),
                                                     reason=request.form.get("reason"), settings=_settings())
        except InputError as err:
            error, status = err.user_message, err.status
        else:
            if outcome == "placed":
                flash(f"Row {row['source_row']} is fixed and placed on the map; the fix is kept for the next "
                      "import of this register.")
                return redirect(url_for("asset_pages.show", asset_id=detail))
            error, problems, status = "Still not placed: see the problems below.", detail, 422
    point = None
    try:
        if values.get("lon") and values.get("lat"):
            point = [float(values["lon"]), float(values["lat"])]
    except ValueError:
        point = None
    return render_template("registers/quarantine_fix.html", name=name, row=row, values=values, error=error,
                           problems=problems, editable=edits.EDITABLE,
                           map_config={"tiles": _tiles(), "attribution": _settings().get("TILES_ATTRIBUTION", ""),
                                       "point": point, "pick": True, "nearby": [], "name": values.get("name"),
                                       "districts": _districts_url()}), \
        status


@bp.post("/<name>/quarantine/<int:qid>/dismiss")
@require_role("officer")
def quarantine_dismiss(name, qid):
    try:
        manage.dismiss_quarantined(extensions.engine(), name, qid, actor=current_actor(),
                                   reason=request.form.get("reason"))
    except InputError as err:
        flash(err.user_message, "error")
        return redirect(url_for("registers.quarantine_fix", name=name, qid=qid))
    flash("Row dismissed: it stays out of this register's imports. The reason is in the audit log.")
    return redirect(url_for("registers.quarantine_list", name=name))
