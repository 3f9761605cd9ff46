"""Import a register: read -> map -> validate -> geocode -> assign areas -> store, the store part in ONE transaction.

Rows that cannot be placed go to the ``quarantine`` table with every reason; a re-import matches assets by source key,
else by normalised name + postcode, and never duplicates them; assets missing from a new version are marked withdrawn.
A crash or an error at any step leaves the database as it was. This is the one place that hands an import's frames
to the store.
"""

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text

from asset_map import audit
from asset_map.config import load_settings
from asset_map.errors import InputError, NotFound
from asset_map.geocode import INPUTS as GEOCODE_INPUTS
from asset_map.geocode import GeocodeContext, geocode, order_from_settings
from asset_map.geocode.base import reference_cached
from asset_map.privacy import PERSONAL_FIELDS
from asset_map.registers import areas, duplicates, matching, overrides, quarantine
from asset_map.registers.mapping import Mapping, load_mapping, shipped_mapping
from asset_map.registers.readers import ROW, read_register
from asset_map.registers.import_report import ImportReport
from asset_map.registers.schema import FIELDS
from asset_map.registers.validate import PROBLEM_COLUMNS, Problems, validate
from asset_map.store import assets, history, partitions, writes
from asset_map.store import geographies as store_geographies
from asset_map.timer import StepTimer

log = logging.getLogger(__name__)
STEPS = ("read", "validate", "geocode", "areas", "save")


def import_register(engine, path, *, register, mapping=None, settings=None, progress=None, actor="cli",
                    dry_run=False, source_name=None, upload_id=None, inspect=None):
    """Import the file at ``path`` as ``register``; returns the ImportReport (also saved on the register).

    ``mapping`` is a Mapping, a path to a mapping YAML, or None (the shipped mapping for a known file name, else
    columns named like the fields). The register's overrides (edits made in the app) are applied to its rows before
    validation. ``dry_run``: do everything in a transaction that is rolled back (the preview); the report says what
    the import would do (its counts and problem rows, not the possible duplicates), and what only the import needs
    is skipped (history, indexes, area links, the quarantine's rows: ``_store``); ``inspect(conn, table)``, when
    given, is called just before that rollback with the table that holds the register's rows (``assets.sync``), and
    its result set as ``report.inspected``. ``source_name``: the file's name as the user knows it (an upload is stored under
    another)."""
    settings = settings or load_settings()
    path = Path(path)
    source_name = source_name or path.name
    _check_register_name(register)
    with engine.connect() as conn:
        _check_kind(conn, register)
    timer = StepTimer(progress, decimals=3)
    if mapping is None:
        shipped = shipped_mapping(source_name)
        mapping = load_mapping(shipped) if shipped else Mapping()
    elif not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    raw = read_register(path, max_columns=int(settings.get("IMPORT_MAX_COLUMNS", 1000)))
    mapped = mapping.apply(raw, file_name=source_name)
    with engine.connect() as conn:
        mapped, conflicts = overrides.apply(mapped, overrides.live(conn, register))
    timer.step("read", rows_read=len(raw))
    report = ImportReport(register=register, source=source_name, kind="import", rows_read=len(raw),
                          mapping=mapping.as_dict(), auto_columns=mapped.attrs.get("auto", {}))
    extra = _uncalculated(raw)
    placed, problems = _prepare(engine, mapped, settings, timer, extra)
    with engine.connect() as conn, conn.begin() as trans:
        _lock(conn, register)
        assets.ensure_register(conn, register, source_file=source_name, mapping=mapping.as_dict())
        import_id = history.start_import(conn, register, kind="import", actor=actor, source_file=source_name,
                                         upload_id=upload_id)
        stamp = history.Stamp(actor=actor, action="import", import_id=import_id)
        counts, quarantined = _store(conn, register, placed, problems, mapped, withdraw=True, timer=timer,
                                     stamp=stamp, actor=actor, dry_run=dry_run)
        overrides.save_conflicts(conn, conflicts)
        report.finish(placed, problems, counts, quarantined, _district_names(conn))
        if not dry_run:  # the preview does not show possible duplicates; the import reports them
            report.add_duplicates(duplicates.cross_register_duplicates(conn, register))
            timer.mark("duplicates")
        report.timings = timer.timings
        if dry_run:
            report.inspected = inspect(conn, partitions.partition_name(register)) if inspect else None
            trans.rollback()
            return report
        _save(conn, register, report, source_name, mapping, actor, import_id, conflicts=len(conflicts))
        timer.step("save", written=report.imported, quarantined=report.quarantined)
    return report


def retry(engine, register, *, settings=None, progress=None, actor="cli", action="import"):
    """Try the register's quarantined rows again (after loading a newer gazetteer or UPRNs, a taxonomy fix, or a
    fix made in the browser, kept as an override): rows that now pass are imported, the rest stay quarantined with
    their new reasons. Nothing is withdrawn. ``action``: how the history names the placed rows' creation."""
    settings = settings or load_settings()
    timer = StepTimer(progress, decimals=3)
    with engine.connect() as conn:
        known = conn.execute(text("SELECT 1 FROM registers WHERE name = :r"), {"r": register}).scalar()
        rows = conn.execute(text("SELECT source_row, row FROM quarantine WHERE register = :r ORDER BY source_row"),
                            {"r": register}).all()
    if not known:
        msg = f"No register named {register!r} has been imported."
        raise NotFound(msg)
    report = ImportReport(register=register, source="quarantine", kind="retry", rows_read=len(rows))
    if rows:
        mapped = pd.DataFrame([{f: str(r[1].get("fields", {}).get(f, "")) for f in FIELDS} for r in rows])
        mapped["properties"] = [json.dumps(r[1].get("properties", {}), ensure_ascii=False) for r in rows]
        mapped[ROW] = [r[0] for r in rows]
        with engine.connect() as conn:
            mapped, _ = overrides.apply(mapped, overrides.live(conn, register))
        timer.step("read", rows_read=len(rows))
        placed, problems = _prepare(engine, mapped, settings, timer, None)
    else:
        mapped = placed = None
        problems = pd.DataFrame(columns=PROBLEM_COLUMNS)
    with engine.begin() as conn:
        _lock(conn, register)
        import_id = history.start_import(conn, register, kind="retry", actor=actor, source_file="quarantine")
        if rows:
            conn.execute(text("DELETE FROM quarantine WHERE register = :r"), {"r": register})
            counts, quarantined = _store(conn, register, placed, problems, mapped, withdraw=False,
                                         stamp=history.Stamp(actor=actor, action=action, import_id=import_id),
                                         actor=actor)
        else:
            counts, quarantined = {"inserted": 0, "updated": 0, "unchanged": 0, "withdrawn": 0}, 0
        report.finish(placed, problems, counts, quarantined, _district_names(conn))
        report.timings = timer.timings
        _save(conn, register, report, None, None, actor, import_id)
        timer.step("save")
    return report


def _check_register_name(name):
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_. " for c in name):
        msg = f"Register name {name!r}: use up to 128 letters, digits, '-', '_', '.' or spaces."
        raise InputError(msg)


def _lock(conn, register):
    # Two imports of one register at once would race on match keys: the second waits for the first to commit.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": "import:" + register})
    # The statement timeout protects web requests; a million-row import may take longer, and must not be cut.
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    # JIT compiling the import's few big statements costs seconds and saves nothing.
    conn.execute(text("SET LOCAL jit = off"))


def _uncalculated(raw):
    cells = raw.attrs.get("uncalculated") or []
    return pd.DataFrame([{"row": r, "field": col, "value": f, "severity": "error",
                          "reason": "a formula with no saved value: open the file in Excel and save it"}
                         for r, col, f in cells], columns=PROBLEM_COLUMNS)


def _prepare(engine, mapped, settings, timer, extra):
    """Validate, geocode and assign areas: (placed GeoDataFrame of every row, problems)."""
    clean, problems = validate(mapped)
    clean.attrs = {}
    if extra is not None and len(extra):
        problems = pd.concat([problems, extra], ignore_index=True)
        clean["error"] |= np.isin(clean[ROW].to_numpy(), extra["row"].to_numpy())
    timer.step("validate")
    ctx = GeocodeContext(engine=engine, settings=settings)
    todo = ~clean["error"].to_numpy()
    # Only the columns the geocoders read: filtering the whole frame's rows would copy every column.
    inputs = clean[[c for c in GEOCODE_INPUTS if c in clean]]
    located = geocode(inputs if todo.all() else inputs[todo], ctx, order_from_settings(settings))
    for col in located.columns:
        clean[col] = _on_all_rows(located[col], todo)
    p = Problems(clean[ROW].to_numpy())
    unplaced = todo & clean["lon"].isna().to_numpy()
    sector = (clean["geocode_method"] == "postcode_sector").to_numpy()
    # The problem lists need a few rows of million-row columns: only those rows are turned into Python objects.
    notes = _at(clean["geocode_note"], unplaced | sector)
    reasons = np.where(pd.notna(notes), notes, "no usable coordinates, grid reference, UPRN or postcode").astype(object)
    postcodes = _at(clean["postcode"].fillna(""), unplaced | sector)
    p.add(unplaced, "postcode", postcodes, reasons)
    p.add(sector, "postcode", postcodes, notes, "warning")
    timer.step("geocode", geocoded=int((todo & ~unplaced).sum()))
    boundaries = reference_cached(ctx, "boundaries", areas.load_boundaries)
    tolerance = float(settings.get("AREA_TOLERANCE_M", 200))
    points = areas.DistinctPoints.of(clean["lon"].to_numpy(dtype=float), clean["lat"].to_numpy(dtype=float))
    assigned = areas.assign_distinct(points, boundaries, tolerance_m=tolerance)
    for col in ("district_code", "lsoa11_code", "lsoa21_code", "area_flag"):
        clean[col] = assigned[col].array
    outside = assigned["outside_m"].to_numpy()
    far = ~np.isnan(outside)
    if far.any():
        p.add(far, "lon/lat", _lon_lat_text(points, far), _on_rows(far, outside, lambda distances: [
            f"point is {d / 1000:.1f} km outside every loaded district (tolerance {tolerance:.0f} m): out of area"
            for d in distances]))
    flags = assigned["area_flag"].to_numpy(dtype=object)
    flagged = pd.notna(flags) & ~far
    if flagged.any():
        p.add(flagged, "lon/lat", _lon_lat_text(points, flagged), _on_rows(flagged, flags, lambda distinct: [
            f"just outside the generalised boundaries: {f} (within {tolerance:.0f} m)" for f in distinct]), "warning")
    more = p.frame()
    problems = pd.concat([problems, more], ignore_index=True) if len(more) else problems
    clean["error"] |= np.isin(clean[ROW].to_numpy(), more.loc[more["severity"] == "error", "row"].to_numpy())
    timer.step("areas")
    problems = _scrub_personal(clean, problems.sort_values(["row", "severity"], kind="stable").reset_index(drop=True))
    clean["geometry"] = gpd.array.from_shapely(points.geometry(), crs=4326)
    # clean is this function's own frame: the GeoDataFrame may take its columns without copying them.
    return gpd.GeoDataFrame(clean, geometry="geometry", crs=4326, copy=False), problems


def _scrub_personal(clean, problems):
    """An individual's problem rows keep their reasons, not the personal values (name, contact, postcode, point):
    the report is saved, shown and printed, and the person may never be stored."""
    person_rows = clean.loc[(clean["tier"] == "individual").to_numpy(), ROW].to_numpy()
    if not len(person_rows) or not len(problems):
        return problems
    personal = problems["row"].isin(person_rows) & problems["field"].isin(list(PERSONAL_FIELDS) + ["lon/lat"])
    if personal.any():
        problems = problems.copy()
        problems["value"] = problems["value"].astype(object).where(~personal, "(personal: not kept)")
    return problems


def _on_all_rows(column, todo):
    """A geocoded column (on the ``todo`` rows) on every row, missing on the others."""
    if todo.all():
        return column.array
    values = column.to_numpy()
    full = np.full(len(todo), None if values.dtype == object else np.nan, dtype=values.dtype)
    full[todo] = values
    return full


def _at(column, mask):
    """``column``'s values as Python objects on the ``mask`` rows, None on the others."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = column[mask].to_numpy(dtype=object)
    return out


def _lon_lat_text(points, mask):
    """"lon, lat" (rounded to 6 places) on the ``mask`` rows, None on the others."""
    def describe(codes):
        return (pd.Series(points.lon[codes]).round(6).astype(str) + ", "
                + pd.Series(points.lat[codes]).round(6).astype(str))
    return _on_rows(mask, points.codes, describe)


def _on_rows(mask, values, describe):
    """Texts on the ``mask`` rows (None on the others) from ``describe(distinct values)``: rows share a few values
    (a point, a distance), so each is described once, not once a row."""
    out = np.full(len(mask), None, dtype=object)
    distinct, inverse = np.unique(values[mask], return_inverse=True)
    out[mask] = np.asarray(describe(distinct), dtype=object)[inverse]
    return out


def _store(conn, register, placed, problems, mapped, *, withdraw, timer=None, stamp=None, actor="cli",
           dry_run=False):
    """Write the placed rows and the quarantine; returns (counts, rows quarantined). ``dry_run`` (withdraw only):
    the transaction is rolled back after the caller reads the register's rows, so what only the import needs is
    not written (assets.sync; the quarantine's rows and the links to loaded geographies)."""
    error = placed["error"].to_numpy()
    # Only the columns stored or matched on: splitting every column of a million rows costs most of a second.
    keys = ["natural_key", "source_key", "name_key", "postcode", "tier", "consent_state", ROW]
    stored = [c for c in dict.fromkeys(assets.WRITE_COLUMNS + keys + ["consent_date", "consent_wording"])
              if c in placed] + [placed.geometry.name]
    good = placed.loc[~error, stored]
    bad = placed.loc[error, [k for k in keys if k in placed]]
    good["match_key"], bad_keys, bad_at = matching.match_keys(conn, register, good, bad)
    if timer:
        timer.mark("match keys")
    good["register"] = register
    good["source_row"] = good[ROW].astype("int64")
    good["geocode_quality"] = good["geocode_quality"].astype(float)
    _consent_record(good, register)
    # A quarantined individual's earlier entry is not kept for them: only a clear yes keeps a person stored
    # (asset_map.privacy), so their key is not among those spared from withdrawal, and the sync erases them.
    bad_person = (bad["tier"] == "individual").to_numpy()[bad_at]
    keep_keys = [k for k, person in zip(bad_keys, bad_person) if not person]
    bad_states = dict(zip(bad_keys, bad["consent_state"].to_numpy(dtype=object)[bad_at]))
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The quarantine's JSON is built here while the database copies and indexes the assets (a second core's
        # worth of work that would otherwise wait for it).
        records = pool.submit(quarantine.records, register, bad, problems, mapped)
        if withdraw:
            counts = assets.sync(conn, good, register=register, keep_keys=keep_keys, stamp=stamp, dry_run=dry_run)
            assets.date_consents(conn, register)
            counts["erased"] = _erase_missing(conn, register, counts.pop("missing_individuals", []), bad_states,
                                              actor)
        else:
            assets.upsert(conn, good, stamp=stamp)
            assets.date_consents(conn, register)
            counts = {"inserted": len(good), "updated": 0, "unchanged": 0, "withdrawn": 0}
        if timer:
            timer.mark("write assets")
        records = records.result()
    if dry_run:
        return counts, len(records)
    if withdraw:
        conn.execute(text("DELETE FROM quarantine WHERE register = :r"), {"r": register})
    writes.copy_rows(conn, "quarantine", ["register", "source_row", "row", "problems"], records)
    if timer:
        timer.mark("quarantine")
    # Districts and LSOAs are columns of the asset; the areas of loaded geographies (divisions, wards, drawn
    # neighbourhoods) are links, made here for the assets just written.
    store_geographies.assign_register(conn, register)
    return counts, len(records)


def _consent_record(good, register):
    """Each stored individual's consent record: the date the register gives (else the date already stored, else
    the day of the import that first saw it: ``assets.date_consents``), the source (register and row) and the
    wording's version."""
    person = (good["tier"] == "individual").to_numpy()
    dates = good["consent_date"].to_numpy(dtype=object) if "consent_date" in good else np.full(len(good), None)
    good["consent_at"] = np.where(person & pd.notna(dates), dates, None).astype(object)
    good["consent_source"] = np.where(person, "register " + register + " row " + good[ROW].astype(str), None)
    wording = good["consent_wording"].to_numpy(dtype=object) if "consent_wording" in good \
        else np.full(len(good), None)
    good["consent_wording"] = np.where(person, wording, None).astype(object)


_ERASE_REASONS = {"refused": "consent refused in the register's new version",
                  "withdrawn": "consent withdrawn in the register's new version",
                  "missing": "consent missing in the register's new version",
                  "unknown": "consent not recognised in the register's new version"}


def _erase_missing(conn, register, missing, states, actor):
    """Individuals stored before but not consenting in this version (or absent from it): their personal fields are
    erased in this transaction (asset_map.people). Returns how many."""
    from asset_map import people

    if not missing:
        return 0
    by_reason = {}
    for asset_id, key in missing:
        reason = _ERASE_REASONS.get(states.get(key), "absent from the register's new version")
        by_reason.setdefault(reason, []).append(asset_id)
    erased = 0
    for reason, ids in sorted(by_reason.items()):
        erased += len(people.erase_assets(conn, ids, reason=f"{register}: {reason}", actor=actor,
                                          action="consent-erase")["erased"])
    return erased


def _district_names(conn):
    return dict(conn.execute(text("SELECT code, name FROM districts")).all())


def _save(conn, register, report, source_file, mapping, actor, import_id, *, conflicts=0):
    data = report.as_dict()
    # A big register's report is megabytes of JSON (every problem row): lz4, where the server has it, compresses it
    # several times faster than the default pglz. For this transaction only; reading needs no setting.
    conn.execute(text("SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
                      "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"))
    conn.execute(text(
        "UPDATE registers SET report = CAST(:rep AS jsonb), imported_at = now(), version = version + 1, "
        "source_file = COALESCE(:f, source_file), mapping = COALESCE(CAST(:m AS jsonb), mapping) WHERE name = :r"),
        {"rep": json.dumps(data, default=str), "f": source_file,
         "m": json.dumps(mapping.as_dict()) if mapping else None, "r": register})
    counts = {"imported": report.imported, "quarantined": report.quarantined, "withdrawn": report.withdrawn,
              "inserted": report.inserted, "updated": report.updated,
              "unchanged": report.unchanged, "conflicts": conflicts, "rows_read": report.rows_read}
    history.finish_import(conn, import_id, counts)
    audit.record(conn, actor=actor, action="import", target=register, rows=report.imported,
                 details={"kind": report.kind, "source": report.source, "quarantined": report.quarantined,
                          "withdrawn": report.withdrawn, "import_id": import_id, "conflicts": conflicts})


def _check_kind(conn, register):
    """A manual register holds hand-made assets: importing a file over it would withdraw them all."""
    kind = conn.execute(text("SELECT kind FROM registers WHERE name = :r"), {"r": register}).scalar()
    if kind == "manual":
        msg = f"Register {register!r} holds assets made by hand in the app; import the file as another register."
        raise InputError(msg)
