"""Import a register: read -> map -> validate -> geocode -> assign areas -> store, the store part in ONE transaction.

Rows that cannot be placed go to the ``quarantine`` table with every reason; a re-import matches assets by source key,
else by normalised name + postcode, and never duplicates them; assets missing from a new version are marked withdrawn.
A crash or an error at any step leaves the database as it was. This is the one place that hands an import's frames
to the store.
"""

import json
import logging
import time
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
from asset_map.registers import areas
from asset_map.registers.mapping import Mapping, load_mapping, shipped_mapping
from asset_map.registers.readers import ROW, read_register
from asset_map.registers.report import ImportReport
from asset_map.registers.schema import FIELDS
from asset_map.registers.validate import PROBLEM_COLUMNS, Problems, _name_keys, validate
from asset_map.store import assets, writes

log = logging.getLogger(__name__)
STEPS = ("read", "validate", "geocode", "areas", "save")


def import_register(engine, path, *, register, mapping=None, settings=None, progress=None, actor="cli"):
    """Import the file at ``path`` as ``register``; returns the ImportReport (also saved on the register).

    ``mapping`` is a Mapping, a path to a mapping YAML, or None (the shipped mapping for a known file name, else
    columns named like the fields)."""
    settings = settings or load_settings()
    path = Path(path)
    _check_register_name(register)
    timer = _Timer(progress)
    if mapping is None:
        shipped = shipped_mapping(path.name)
        mapping = load_mapping(shipped) if shipped else Mapping()
    elif not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    raw = read_register(path, max_columns=int(settings.get("IMPORT_MAX_COLUMNS", 1000)))
    mapped = mapping.apply(raw, file_name=path.name)
    timer.step("read")
    report = ImportReport(register=register, source=path.name, kind="import", rows_read=len(raw),
                          mapping=mapping.as_dict(), auto_columns=mapped.attrs.get("auto", {}))
    extra = _uncalculated(raw)
    placed, problems = _prepare(engine, mapped, settings, timer, extra)
    with engine.begin() as conn:
        _lock(conn, register)
        assets.ensure_register(conn, register, source_file=path.name, mapping=mapping.as_dict())
        counts, quarantined = _store(conn, register, placed, problems, mapped, withdraw=True, timer=timer)
        report.finish(placed, problems, counts, quarantined, _district_names(conn))
        report.duplicates = cross_register_duplicates(conn, register)
        timer.mark("duplicates")
        report.timings = timer.timings
        _save(conn, register, report, path.name, mapping, actor)
        timer.step("save")
    return report


def retry(engine, register, *, settings=None, progress=None, actor="cli"):
    """Try the register's quarantined rows again (after loading a newer gazetteer or UPRNs, or a taxonomy fix):
    rows that now pass are imported, the rest stay quarantined with their new reasons. Nothing is withdrawn."""
    settings = settings or load_settings()
    timer = _Timer(progress)
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
        timer.step("read")
        placed, problems = _prepare(engine, mapped, settings, timer, None)
    else:
        mapped = placed = None
        problems = pd.DataFrame(columns=PROBLEM_COLUMNS)
    with engine.begin() as conn:
        _lock(conn, register)
        if rows:
            conn.execute(text("DELETE FROM quarantine WHERE register = :r"), {"r": register})
            counts, quarantined = _store(conn, register, placed, problems, mapped, withdraw=False)
        else:
            counts, quarantined = {"inserted": 0, "updated": 0, "unchanged": 0, "withdrawn": 0}, 0
        report.finish(placed, problems, counts, quarantined, _district_names(conn))
        report.timings = timer.timings
        _save(conn, register, report, None, None, actor)
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


class _Timer:
    def __init__(self, progress):
        self.progress = progress
        self.timings = {}
        self._last = time.perf_counter()

    def step(self, name, *, report=True):
        now = time.perf_counter()
        self.timings[name] = round(now - self._last, 3)
        self._last = now
        if self.progress and report:
            self.progress(name)

    def mark(self, name):
        """A part of a step, timed for the report but not a step of the progress bar."""
        self.step(name, report=False)


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
    timer.step("geocode")
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
    problems = problems.sort_values(["row", "severity"], kind="stable").reset_index(drop=True)
    clean["geometry"] = gpd.array.from_shapely(points.geometry(), crs=4326)
    # clean is this function's own frame: the GeoDataFrame may take its columns without copying them.
    return gpd.GeoDataFrame(clean, geometry="geometry", crs=4326, copy=False), problems


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


def _store(conn, register, placed, problems, mapped, *, withdraw, timer=None):
    good = placed[~placed["error"].to_numpy()].copy()
    bad = placed[placed["error"].to_numpy()]
    good["match_key"], bad_keys = _match_keys(conn, register, good, bad)
    if timer:
        timer.mark("match keys")
    good["register"] = register
    good["source_row"] = good[ROW].astype("int64")
    good["geocode_quality"] = good["geocode_quality"].astype(float)
    if withdraw:
        counts = assets.sync(conn, good, register=register, keep_keys=bad_keys)
    else:
        assets.upsert(conn, good)
        counts = {"inserted": len(good), "updated": 0, "unchanged": 0, "withdrawn": 0}
    if timer:
        timer.mark("write assets")
    if withdraw:
        conn.execute(text("DELETE FROM quarantine WHERE register = :r"), {"r": register})
    quarantined = _quarantine(conn, register, bad, problems, mapped)
    if timer:
        timer.mark("quarantine")
    return counts, quarantined


def _match_keys(conn, register, good, bad):
    """The key each row is stored under: an existing asset's when its source key (else its normalised name and
    postcode) matches one, else a new key made the same way. Also the keys of quarantined rows that match existing
    assets, so those are not withdrawn while their row waits in the quarantine."""
    existing = _fetch(conn, "SELECT match_key, source_key, name, postcode FROM assets WHERE register = %s",
                      (register,), ["match_key", "source_key", "name", "postcode"])
    cols = ["natural_key", "source_key", "name_key", "postcode", ROW]
    both = pd.concat([pd.DataFrame(good[cols]).assign(_good=True), pd.DataFrame(bad[cols]).assign(_good=False)],
                     ignore_index=True)
    keys = both["natural_key"].to_numpy(dtype=object).copy()
    if len(existing):
        existing["name_key"] = _name_keys(existing["name"].fillna(""))
        by_source = existing.dropna(subset=["source_key"]).drop_duplicates("source_key").set_index("source_key")
        hit = both["source_key"].map(by_source["match_key"])
        claimed = set(hit.dropna())
        by_name = existing.assign(pair=existing["name_key"] + "|" + existing["postcode"].fillna("None"))
        by_name = by_name[~by_name["match_key"].isin(claimed)].drop_duplicates("pair").set_index("pair")
        pair = pd.Series(both["name_key"].to_numpy(dtype=object).astype(str), dtype=object) + "|" + \
            both["postcode"].astype(object).where(both["postcode"].notna(), "None").astype(str)
        by_pair = pair.map(by_name["match_key"]).astype(object).where(both["source_key"].isna().to_numpy(), None)
        hit = hit.astype(object).where(hit.notna(), by_pair)
        # Two rows must not claim one asset (that would update it twice in one statement): the first keeps it.
        dup = hit.notna() & hit.duplicated(keep="first")
        hit[dup] = None
        keys = np.where(hit.notna(), hit.astype(object), keys)
    taken = pd.Series(keys).duplicated(keep="first").to_numpy()
    keys[taken] = keys[taken] + "#" + both.loc[taken, ROW].astype(str).to_numpy()
    is_good = both["_good"].to_numpy()
    known = set(existing["match_key"]) if len(existing) else set()
    return keys[is_good], [k for k in keys[~is_good] if k in known]


def _fetch(conn, sql, params, columns):
    """Rows straight from the driver as tuples: much faster than Row objects for a whole register."""
    with conn.connection.driver_connection.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame.from_records(cur.fetchall(), columns=columns)


def _quarantine(conn, register, bad, problems, mapped):
    if not len(bad):
        return 0
    rows = mapped.set_index(ROW).loc[bad[ROW].to_numpy()]
    grouped = {}
    mine = problems[problems["row"].isin(bad[ROW])]
    for r, fld, value, reason, severity in mine[["row", "field", "value", "reason", "severity"]].itertuples(
            index=False, name=None):
        grouped.setdefault(r, []).append({"field": fld, "value": value, "reason": reason, "severity": severity})
    fields = rows[list(FIELDS)].to_dict("records")
    props = rows["properties"].tolist()
    records = []
    for row, values, prop in zip(rows.index.tolist(), fields, props):
        data = {"fields": values, "properties": json.loads(prop) if isinstance(prop, str) else {}}
        records.append((register, int(row), json.dumps(data, ensure_ascii=False, default=str),
                        json.dumps(grouped.get(row, []), ensure_ascii=False, default=str)))
    writes.copy_rows(conn, "quarantine", ["register", "source_row", "row", "problems"], records)
    return len(records)


def _district_names(conn):
    return dict(conn.execute(text("SELECT code, name FROM districts")).all())


def _save(conn, register, report, source_file, mapping, actor):
    data = report.as_dict()
    conn.execute(text(
        "UPDATE registers SET report = CAST(:rep AS jsonb), imported_at = now(), version = version + 1, "
        "source_file = COALESCE(:f, source_file), mapping = COALESCE(CAST(:m AS jsonb), mapping) WHERE name = :r"),
        {"rep": json.dumps(data, default=str), "f": source_file,
         "m": json.dumps(mapping.as_dict()) if mapping else None, "r": register})
    audit.record(conn, actor=actor, action="import", target=register, rows=report.imported,
                 details={"kind": report.kind, "source": report.source, "quarantined": report.quarantined,
                          "withdrawn": report.withdrawn})


def cross_register_duplicates(conn, register, *, within_m=50):
    """Assets of ``register`` that look like assets of other registers: the same source key or UPRN, or the same
    normalised name within ``within_m`` metres. Reported, never merged."""
    others = conn.execute(text("SELECT EXISTS (SELECT 1 FROM assets WHERE register <> :r)"), {"r": register}).scalar()
    if not others:
        return []
    name = "btrim(regexp_replace(lower({}.name), '[^a-z0-9]+', ' ', 'g'))"
    # Three equi-joins (hashable) rather than one join on OR, which would compare every pair of assets.
    matches = {
        "same source key": "a.source_key = b.source_key",
        "same UPRN": "a.uprn = b.uprn",
        # Names first (a hash join, each name normalised once), then the distance on the spheroid: driving this
        # from the spatial index instead probes every asset's crowded neighbourhood.
        f"same name within {within_m} m": (f"{name.format('a')} = {name.format('b')} AND "
                                           f"ST_DWithin(a.geom::geography, b.geom::geography, {float(within_m)})"),
    }
    parts = [f"""SELECT a.source_row, a.name, b.register AS other_register, b.name AS other_name,
                        b.source_row AS other_row, '{reason}' AS reason
                 FROM assets a JOIN assets b ON b.register <> a.register AND b.withdrawn_at IS NULL AND {cond}
                 WHERE a.register = :r AND a.withdrawn_at IS NULL""" for reason, cond in matches.items()]
    sql = " UNION ".join(parts) + " ORDER BY source_row, other_register, other_row, reason"
    found = [dict(r._mapping) for r in conn.execute(text(sql), {"r": register})]
    # One line per pair: the strongest reason (source key, then UPRN, then name and place).
    seen, out = set(), []
    for item in sorted(found, key=lambda d: (d["source_row"], d["other_register"], d["other_row"],
                                             list(matches).index(d["reason"]))):
        pair = (item["source_row"], item["other_register"], item["other_row"])
        if pair not in seen:
            seen.add(pair)
            out.append(item)
    return out
