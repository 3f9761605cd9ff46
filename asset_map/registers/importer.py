"""Import a register: read -> map -> validate -> geocode -> assign areas -> store, the store part in ONE transaction.

Rows that cannot be placed go to the ``quarantine`` table with every reason; a re-import matches assets by source key,
else by normalised name + postcode, and never duplicates them; assets missing from a new version are marked withdrawn.
A crash or an error at any step leaves the database as it was. This is the one place that hands an import's frames
to the store.
"""

import json
import logging
import time
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
from asset_map.registers import areas
from asset_map.registers.mapping import Mapping, load_mapping, shipped_mapping
from asset_map.registers.readers import ROW, read_register
from asset_map.registers.report import DUPLICATE_COLUMNS, ImportReport
from asset_map.registers.schema import FIELDS
from asset_map.registers.validate import PROBLEM_COLUMNS, Problems, _name_keys, validate
from asset_map.store import assets, partitions, writes

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
        report.add_duplicates(cross_register_duplicates(conn, register))
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
    error = placed["error"].to_numpy()
    # Only the columns stored or matched on: splitting every column of a million rows costs most of a second.
    keys = ["natural_key", "source_key", "name_key", "postcode", ROW]
    stored = [c for c in dict.fromkeys(assets.WRITE_COLUMNS + keys) if c in placed] + [placed.geometry.name]
    good = placed.loc[~error, stored]
    bad = placed.loc[error, keys]
    good["match_key"], bad_keys = _match_keys(conn, register, good, bad)
    if timer:
        timer.mark("match keys")
    good["register"] = register
    good["source_row"] = good[ROW].astype("int64")
    good["geocode_quality"] = good["geocode_quality"].astype(float)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The quarantine's JSON is built here while the database copies and indexes the assets (a second core's
        # worth of work that would otherwise wait for it).
        records = pool.submit(_quarantine_records, register, bad, problems, mapped)
        if withdraw:
            counts = assets.sync(conn, good, register=register, keep_keys=bad_keys)
        else:
            assets.upsert(conn, good)
            counts = {"inserted": len(good), "updated": 0, "unchanged": 0, "withdrawn": 0}
        if timer:
            timer.mark("write assets")
        records = records.result()
    if withdraw:
        conn.execute(text("DELETE FROM quarantine WHERE register = :r"), {"r": register})
    writes.copy_rows(conn, "quarantine", ["register", "source_row", "row", "problems"], records)
    if timer:
        timer.mark("quarantine")
    return counts, len(records)


def _match_keys(conn, register, good, bad):
    """The key each row is stored under: an existing asset's when its source key (else its normalised name and
    postcode) matches one, else a new key made the same way. Also the keys of quarantined rows that match existing
    assets, so those are not withdrawn while their row waits in the quarantine."""
    existing = _fetch(conn, "SELECT match_key, source_key, name, postcode FROM assets WHERE register = %s",
                      (register,), ["match_key", "source_key", "name", "postcode"])
    keys = _both(good, bad, "natural_key")
    if len(existing):
        hit = _existing_keys(existing, good, bad)
        keys = np.where(pd.notna(hit), hit, keys)
    taken = _objects(keys).duplicated(keep="first").to_numpy()
    if taken.any():
        keys[taken] = keys[taken] + "#" + _both(good, bad, ROW)[taken].astype(str).astype(object)
    quarantined = keys[len(good):]
    known = _objects(quarantined).isin(_objects(existing["match_key"])).to_numpy()
    return keys[:len(good)], quarantined[known].tolist()


def _objects(values, index=None):
    """A Series of plain Python strings: pandas hashes and compares those much faster than its Arrow-backed strings
    (whose ``isin`` and ``map`` go one value at a time), and would infer that dtype unless told otherwise."""
    if index is not None:
        index = pd.Index(np.asarray(index, dtype=object), dtype=object)
    return pd.Series(np.asarray(values, dtype=object), index=index, dtype=object)


def _both(good, bad, column):
    """One column of the stored rows then the quarantined ones, as a NumPy object array."""
    return np.concatenate([good[column].to_numpy(dtype=object), bad[column].to_numpy(dtype=object)])


def _existing_keys(existing, good, bad):
    """For each row (stored then quarantined), the match key of the existing asset it is, else None: the one with its
    source key, else (rows without a source key) the one with its normalised name and postcode that no source key
    claimed. Two rows never claim one asset (that would update it twice in one statement): the first keeps it."""
    match_key = existing["match_key"].to_numpy(dtype=object)
    with_source = existing["source_key"].notna().to_numpy()
    by_source = _objects(match_key[with_source], existing["source_key"].to_numpy(dtype=object)[with_source])
    source = _objects(_both(good, bad, "source_key"))
    hit = source.map(by_source[~by_source.index.duplicated(keep="first")])
    unclaimed = ~_objects(match_key).isin(hit.dropna()).to_numpy()
    pairs = (_name_keys(existing["name"].fillna("")) + "|" + existing["postcode"].fillna("None")).to_numpy(dtype=object)
    by_name = _objects(match_key[unclaimed], pairs[unclaimed])
    postcode = _both(good, bad, "postcode")
    pair = _objects(_both(good, bad, "name_key").astype(str)) + "|" + \
        _objects(np.where(pd.isna(postcode), "None", postcode).astype(str))
    by_pair = pair.map(by_name[~by_name.index.duplicated(keep="first")]).where(source.isna(), None)
    hit = hit.where(hit.notna(), by_pair)
    hit[hit.notna() & hit.duplicated(keep="first")] = None
    return hit.to_numpy(dtype=object)


def _fetch(conn, sql, params, columns):
    """Rows straight from the driver as tuples: much faster than Row objects for a whole register."""
    with conn.connection.driver_connection.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame.from_records(cur.fetchall(), columns=columns)


def _quarantine_records(register, bad, problems, mapped):
    """Rows for the quarantine table: (register, source row, the row as JSON, its problems as JSON)."""
    if not len(bad):
        return []
    rows = mapped.set_index(ROW).loc[bad[ROW].to_numpy()]
    reasons = _problems_json(problems, rows.index)
    # Columns as plain object arrays, zipped into rows: pandas' to_dict boxes every Arrow string one at a time.
    fields = zip(*(rows[f].to_numpy(dtype=object) for f in FIELDS))
    return [(register, row, _row_json(values, prop), reasons.get(row, "[]"))
            for row, values, prop in zip(rows.index.tolist(), fields, rows["properties"].to_numpy(dtype=object))]


_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _row_json(values, properties):
    """The source row as the quarantine keeps it: its field values and its unmapped columns. ``properties`` is
    already JSON text (from the mapping), so it goes in as it is rather than parsed and written again."""
    return f'{{"fields": {_ENCODE(dict(zip(FIELDS, values)))}, "properties": ' \
           f'{properties if isinstance(properties, str) else "{}"}}}'


def _problems_json(problems, rows):
    """{row: JSON list of that row's problems} for the given rows."""
    grouped = {}
    mine = problems[problems["row"].isin(rows)]
    for r, fld, value, reason, severity in mine[["row", "field", "value", "reason", "severity"]].itertuples(
            index=False, name=None):
        grouped.setdefault(r, []).append({"field": fld, "value": value, "reason": reason, "severity": severity})
    return {r: _ENCODE(items) for r, items in grouped.items()}


def _district_names(conn):
    return dict(conn.execute(text("SELECT code, name FROM districts")).all())


def _save(conn, register, report, source_file, mapping, actor):
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
    audit.record(conn, actor=actor, action="import", target=register, rows=report.imported,
                 details={"kind": report.kind, "source": report.source, "quarantined": report.quarantined,
                          "withdrawn": report.withdrawn})


def cross_register_duplicates(conn, register, *, within_m=50):
    """Every asset of ``register`` that looks like an asset of another register: the same source key or UPRN, or the
    same normalised name within ``within_m`` metres. One dict per pair (DUPLICATE_COLUMNS) with its strongest reason
    (source key, then UPRN, then name and place), by row. Reported, never merged."""
    others = conn.execute(text("SELECT EXISTS (SELECT 1 FROM registers WHERE name <> :r)"), {"r": register}).scalar()
    if not others:
        return []
    _analyse_if_new(conn, register)
    with conn.connection.driver_connection.cursor() as cur:
        # The hash joins below hold a register's assets: in the default work_mem they spill to disk in batches.
        # Compiling the big statement (JIT) costs more than it saves. Both for this transaction only.
        cur.execute("SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true)")
        cur.execute(_duplicates_sql(within_m), {"r": register})
        return [dict(zip(DUPLICATE_COLUMNS, row)) for row in cur.fetchall()]


def _analyse_if_new(conn, register):
    """Planner statistics for a register stored for the first time in this transaction (autovacuum only gets to
    it after the commit): without them the planner takes a million new assets for a few, and hashes them rather
    than the other registers'. The columns the duplicate search filters and joins on are enough, and quick."""
    table = partitions.partition_name(register)
    fresh = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL AND NOT EXISTS "
                              "(SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = :t)"),
                         {"t": table}).scalar()
    if fresh:
        conn.execute(text(f'ANALYZE "{table}" (register, source_key, uprn, withdrawn_at)'))


def _duplicates_sql(within_m):
    name = "btrim(regexp_replace(lower({}.name), '[^a-z0-9]+', ' ', 'g'))"
    tests = {  # strongest first
        "same source key": "b.source_key = a.source_key",
        # Equal UPRNs are never null; saying so lets the planner see from its statistics that registers without
        # UPRNs have nothing to join, rather than sort a million assets by a column that is all null.
        "same UPRN": "b.uprn = a.uprn AND a.uprn IS NOT NULL AND b.uprn IS NOT NULL",
        # Names first (a hash join, each name normalised once), then the distance on the spheroid: driving this
        # from the spatial index instead probes every asset's crowded neighbourhood.
        f"same name within {within_m} m": (f"{name.format('b')} = {name.format('a')} AND "
                                           f"ST_DWithin(a.geom::geography, b.geom::geography, {float(within_m)})"),
    }
    # Equi-joins (hashable) rather than one join on OR, which would compare every pair of assets. Saying
    # `b.register <> :r` (not `<> a.register`) lets the planner size, and hash, the other registers' assets alone,
    # rather than every asset paired with the same ones of this register.
    parts = [f"""SELECT a.source_row, a.name, b.register AS other_register, b.source_row AS other_row,
                        b.name AS other_name, '{reason}' AS reason, {strength} AS strength
                 FROM assets a JOIN assets b ON {condition}
                 WHERE a.register = %(r)s AND a.withdrawn_at IS NULL
                   AND b.register <> %(r)s AND b.withdrawn_at IS NULL"""
             for strength, (reason, condition) in enumerate(tests.items())]
    # One line per pair: the strongest reason.
    return (f"SELECT DISTINCT ON (source_row, other_register, other_row) {', '.join(DUPLICATE_COLUMNS)} "
            f"FROM ({' UNION ALL '.join(parts)}) pairs ORDER BY source_row, other_register, other_row, strength")
