"""Assets one at a time: create, edit, verify, close, withdraw, restore. No Flask: the web forms, the CLI and the
OGC API Part 4 (transactions) all come through here.

Every change goes through the importer's own steps (validation, geocoding, area assignment: ``importer._prepare``)
and the store's own write (``assets.upsert``), and writes its history version and its audit event in the same
transaction. Optimistic locking: the caller passes the version it read; a save against an older version is refused
with what changed since (``StaleEdit``, 409), never silently overwritten.

Hand-made assets live in a register of their own per district (``manual-<district code>``). Edits of an imported
asset are also kept as overrides of its register's row (registers.overrides), so the next import of the register
does not undo them.
"""

import json
import uuid
from datetime import date

import geopandas as gpd
import pandas as pd
from sqlalchemy import text

from asset_map import audit, privacy
from asset_map.config import load_settings
from asset_map.errors import AssetMapError, InputError, NotFound
from asset_map.registers import overrides
from asset_map.registers.readers import ROW
from asset_map.registers.schema import FIELDS
from asset_map.store import assets, history

MANUAL_PREFIX = "manual-"
# Fields a form (or an API client) may set; the rest (source_key, easting/northing) come from registers. Consent
# matters for individuals only, whom only officers change (privacy.may_edit).
EDITABLE = ("tier", "category", "name", "description", "offers", "address", "postcode", "uprn", "email", "phone",
            "url", "status", "last_verified", "visibility", "consent", "lon", "lat")
LOCATION = ("postcode", "uprn", "lon", "lat", "address")
_READ = ("id, register, source_row, source_key, match_key, tier, category, name, description, offers, address, "
         "postcode, uprn, email, phone, url, status, last_verified, visibility, consent, geocode_method, "
         "geocode_quality, district_code, lsoa11_code, lsoa21_code, area_flag, properties, withdrawn_at, version, "
         "ST_X(geom) AS lon, ST_Y(geom) AS lat")


class StaleEdit(AssetMapError):
    """The asset changed since the editor read it: ``changes`` says how (versions after the one read)."""

    status = 409

    def __init__(self, user_message, *, current_version, changes):
        super().__init__(user_message)
        self.current_version = current_version
        self.changes = changes


class EditRefused(InputError):
    """The edited values do not pass the importer's checks; ``problems`` lists (field, value, reason)."""

    status = 422

    def __init__(self, user_message, *, problems):
        super().__init__(user_message)
        self.problems = problems


def manual_register(district_code):
    return f"{MANUAL_PREFIX}{district_code}"


def read(conn, asset_id):
    row = conn.execute(text(f"SELECT {_READ} FROM assets WHERE id = :i"), {"i": int(asset_id)}).mappings().first()
    if row is None:
        msg = f"There is no asset {asset_id}."
        raise NotFound(msg)
    return dict(row)


def as_fields(asset, *, register_view=False):
    """The asset's values as the text fields of a register row (what a form shows and an override stores).
    ``register_view``: as its register gave them, as far as the store knows: a point found from a postcode was not
    in the register, so lon/lat are blank."""
    out = {}
    for f in FIELDS:
        value = asset.get(f)
        if f == "offers":
            value = "; ".join(value or [])
        elif f == "consent":
            value = "" if value is None else ("yes" if value else "no")
        elif f in ("lon", "lat"):
            value = "" if value is None else f"{float(value):.6f}"
        elif f == "last_verified":
            value = value.isoformat() if value else ""
        out[f] = "" if value is None else str(value)
    if register_view and asset.get("geocode_method") != "coordinates":
        out["lon"] = out["lat"] = ""
    return out


def create_asset(engine, fields, *, actor, role="officer", reason=None, settings=None):
    """A hand-made asset in its district's manual register; returns (asset id, warnings). ``fields`` are text
    values of EDITABLE fields; the point comes from lon/lat, else the postcode (or UPRN)."""
    fields = _clean(fields)
    privacy.check_may_edit(role, fields.get("tier") or None)
    reason = history.check_reason(reason)
    source_key = f"m-{uuid.uuid4().hex[:12]}"
    row = {f: "" for f in FIELDS} | fields | {"source_key": source_key}
    placed, warnings = _placed(engine, row, settings)
    privacy.check_may_edit(role, placed["tier"].iat[0])
    register = manual_register(placed["district_code"].iat[0])
    placed["register"] = register
    placed["match_key"] = "k:" + source_key
    placed["source_row"] = 0
    placed["properties"] = "{}"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO registers (name, source_file, kind) VALUES (:n, 'made in asset-map', "
                          "'manual') ON CONFLICT (name) DO NOTHING"), {"n": register})
        assets.upsert(conn, _writable(placed), stamp=history.Stamp(actor=actor, action="create", reason=reason))
        asset_id = conn.execute(text("SELECT id FROM assets WHERE register = :r AND match_key = :k"),
                                {"r": register, "k": "k:" + source_key}).scalar_one()
        audit.record(conn, actor=actor, action="asset-create", target=f"asset:{asset_id}",
                     details={"register": register, "name": placed["name"].iat[0], "reason": reason,
                              "tier": placed["tier"].iat[0]})
    return asset_id, warnings


def update_asset(engine, asset_id, changes, *, version, actor, role="officer", reason=None, action="edit",
                 settings=None):
    """Change some EDITABLE fields of an asset (text values, as a form sends them); returns (new version,
    warnings). ``version`` is the version the editor read; an older one raises StaleEdit."""
    changes = _clean(changes)
    reason = history.check_reason(reason)
    with engine.connect() as conn:
        current = read(conn, asset_id)
    privacy.check_may_edit(role, current["tier"], current["visibility"])
    _check_version(engine, current, version)
    before = as_fields(current)
    changed = {f: v for f, v in changes.items() if overrides.comparable(f, v) != overrides.comparable(f, before[f])}
    if not changed:
        return current["version"], []
    row = before | changed
    moved = any(f in changed for f in LOCATION)
    if moved and not ({"lon", "lat"} & set(changed)):
        # A new postcode or UPRN places the asset again; the old point must not win over it.
        row["lon"] = row["lat"] = ""
    placed, warnings = _placed(engine, row, settings)
    privacy.check_may_edit(role, placed["tier"].iat[0], placed["visibility"].iat[0])
    if not moved:
        # Nothing about the location changed: keep the point, its method and areas as they were found.
        for col in ("geocode_method", "geocode_quality", "district_code", "lsoa11_code", "lsoa21_code", "area_flag"):
            placed[col] = [current[col]]
        if current["lon"] is not None:
            placed["geometry"] = gpd.points_from_xy([current["lon"]], [current["lat"]], crs=4326)
    for col in ("register", "match_key", "source_row", "source_key"):
        placed[col] = [current[col]]
    placed["properties"] = json.dumps(current["properties"] or {}, ensure_ascii=False)
    if not current["district_code"] or placed["district_code"].iat[0] != current["district_code"]:
        warnings.append(f"moved to district {placed['district_code'].iat[0]}")
    stamp = history.Stamp(actor=actor, action=action, reason=reason)
    with engine.begin() as conn:
        _lock(conn, current, version)
        assets.upsert(conn, _writable(placed), stamp=stamp)
        new_version = conn.execute(text("SELECT version FROM assets WHERE id = :i"), {"i": current["id"]}).scalar()
        kind = conn.execute(text("SELECT kind FROM registers WHERE name = :r"), {"r": current["register"]}).scalar()
        if kind != "manual":
            _keep_as_overrides(conn, current, as_fields(current, register_view=True), changed, actor, reason)
        audit.record(conn, actor=actor, action=f"asset-{action}", target=f"asset:{current['id']}",
                     details={"fields": sorted(changed), "version": new_version, "reason": reason,
                              "register": current["register"]})
    return new_version, warnings


def verify_asset(engine, asset_id, *, version, actor, role="officer", on=None, reason=None):
    """Mark the asset checked (``last_verified`` = ``on``, default today)."""
    on = on or date.today()
    return update_asset(engine, asset_id, {"last_verified": on.isoformat()}, version=version, actor=actor,
                        role=role, reason=reason, action="verify")


def close_asset(engine, asset_id, *, version, actor, role="officer", reason=None, status="closed"):
    """Close (or temporarily close) the asset: it stays in the store, hidden from the map by default."""
    if status not in ("closed", "temporarily closed"):
        raise InputError(f"Status {status!r}: an asset is closed or temporarily closed.")
    return update_asset(engine, asset_id, {"status": status}, version=version, actor=actor, role=role,
                        reason=reason, action="close")


def reopen_asset(engine, asset_id, *, version, actor, role="officer", reason=None):
    return update_asset(engine, asset_id, {"status": "open"}, version=version, actor=actor, role=role,
                        reason=reason, action="reopen")


def withdraw_asset(engine, asset_id, *, version, actor, role="officer", reason=None, restore=False):
    """Withdraw the asset (it is not there any more, or was never an asset): kept with its history, hidden
    everywhere; ``restore`` brings it back. Imported assets stay withdrawn through re-imports (an override)."""
    reason = history.check_reason(reason, required=not restore)
    action = "restore" if restore else "withdraw"
    with engine.connect() as conn:
        current = read(conn, asset_id)
    privacy.check_may_edit(role, current["tier"], current["visibility"])
    _check_version(engine, current, version)
    if (current["withdrawn_at"] is None) == restore:
        raise InputError("This asset is already " + ("in the register." if restore else "withdrawn."))
    with engine.begin() as conn:
        _lock(conn, current, version)
        row = conn.execute(text(
            "UPDATE assets SET withdrawn_at = CASE WHEN :restore THEN NULL ELSE now() END, updated_at = now(), "
            "version = version + 1 WHERE id = :i AND register = :r RETURNING version, withdrawn_at"),
            {"restore": restore, "i": current["id"], "r": current["register"]}).one()
        conn.execute(text(
            "INSERT INTO asset_versions (asset_id, version, register, actor, action, reason, changes) VALUES "
            "(:i, :v, :r, :a, :x, :why, jsonb_build_object('withdrawn_at', jsonb_build_array("
            "CAST(:old AS timestamptz), CAST(:new AS timestamptz))))"),
            {"i": current["id"], "v": row.version, "r": current["register"], "a": actor, "x": action, "why": reason,
             "old": current["withdrawn_at"], "new": row.withdrawn_at})
        kind = conn.execute(text("SELECT kind FROM registers WHERE name = :r"), {"r": current["register"]}).scalar()
        if kind != "manual":
            key = _row_key(conn, current)
            if restore:
                conn.execute(text("UPDATE asset_overrides SET revoked_at = now() WHERE register = :r AND "
                                  "row_key = :k AND field = :f AND revoked_at IS NULL"),
                             {"r": current["register"], "k": key, "f": overrides.WITHDRAWN})
            else:
                overrides.put(conn, register=current["register"], row_key=key, asset_id=current["id"],
                              field=overrides.WITHDRAWN, value="yes", base=None, actor=actor, reason=reason)
        audit.record(conn, actor=actor, action=f"asset-{action}", target=f"asset:{current['id']}",
                     details={"version": row.version, "reason": reason, "register": current["register"]})
    return row.version, []


def _clean(fields):
    out = {}
    for f, v in (fields or {}).items():
        if f not in EDITABLE:
            raise InputError(f"Field {str(f)[:40]!r} cannot be set here; fields: {', '.join(EDITABLE)}.")
        v = "" if v is None else str(v).strip()
        if len(v) > 2000:
            raise InputError(f"{f}: at most 2,000 characters.")
        out[f] = v
    return out


def _check_version(engine, current, version):
    try:
        version = int(version)
    except (TypeError, ValueError) as err:
        raise InputError("The form is missing the version of the asset it was read at; reload the page.") from err
    if version != current["version"]:
        with engine.connect() as conn:
            _refuse(conn, current, version)


def _lock(conn, current, version):
    """Inside the write's transaction: the row is locked, then its version checked again (it may have moved
    between the read and the lock)."""
    now = conn.execute(text("SELECT version FROM assets WHERE id = :i AND register = :r FOR UPDATE"),
                       {"i": current["id"], "r": current["register"]}).scalar()
    if now != int(version):
        _refuse(conn, current, int(version))


def _refuse(conn, current, version):
    since = history.changes_since(conn, current["id"], version)
    latest = since[-1]["version"] if since else current["version"]
    who = ", ".join(dict.fromkeys(f"{c['action']} by {c['actor'] or 'an import'}" for c in since)) or "another save"
    fields = sorted({f for c in since for f in (c["changes"] or {})})
    msg = (f"This asset was changed after you opened it ({who}; now version {latest}, you read version {version})"
           + (f": {', '.join(fields)} changed" if fields else "")
           + ". Your changes were not saved: reload the page to see the new values, then make your change again.")
    raise StaleEdit(msg, current_version=latest, changes=since)


def _placed(engine, row, settings):
    """The importer's validation, geocoding and area assignment on one row: (placed frame, warnings)."""
    from asset_map.registers.importer import _prepare
    from asset_map.timer import StepTimer

    settings = settings or load_settings()
    row, placed_by = _address_postcode(row, settings)
    mapped = pd.DataFrame([{f: row.get(f, "") for f in FIELDS}])
    mapped["properties"] = "{}"
    mapped[ROW] = 1
    placed, problems = _prepare(engine, mapped, settings, StepTimer(None, decimals=3), None)
    errors = problems[problems["severity"] == "error"]
    if len(errors):
        listed = [(p.field, p.value, p.reason) for p in errors.itertuples()]
        msg = "; ".join(f"{f}: {r}" + (f" ({v!r})" if v not in (None, "") else "") for f, v, r in listed)
        raise EditRefused(f"Not saved: {msg}.", problems=listed)
    warnings = [f"{p.field}: {p.reason}" for p in problems.itertuples()]
    if placed_by:
        warnings.insert(0, placed_by)
    return placed, warnings


def _address_postcode(row, settings):
    """Without an online geocoder (ASSET_MAP_GEOCODER empty, the default) an address alone cannot be looked up: an
    address that contains a postcode is placed by that postcode from the gazetteer, and the editor is told so;
    one without a postcode is refused with what to do instead. Returns (row, message or None)."""
    from asset_map.reference.postcodes import postcode_in

    def given(f):
        return str(row.get(f) or "").strip()

    if any(given(f) for f in ("postcode", "uprn", "lon", "lat")) or not given("address"):
        return row, None
    if settings.get("GEOCODER"):
        return row, None   # the online geocoder reads the address
    found = postcode_in(row["address"])
    if not found:
        msg = ("Not saved: address: this server does not look up addresses (no online geocoder is switched on), "
               "and the address has no postcode in it. Add the postcode, or place the point by clicking the map.")
        raise EditRefused(msg, problems=[("address", row["address"], "address lookup is switched off")])
    return row | {"postcode": found}, (f"placed by the postcode {found} found in the address (this server does "
                                       f"not look up addresses); click the map to place it more exactly")


def _writable(placed):
    frame = placed.copy()
    frame["geocode_quality"] = frame["geocode_quality"].astype(float)
    frame["source_row"] = frame["source_row"].astype("int64")
    return gpd.GeoDataFrame(frame[assets.WRITE_COLUMNS + ["geometry"]], geometry="geometry", crs=4326)


def _row_key(conn, current):
    key = conn.execute(text("SELECT row_key FROM asset_overrides WHERE asset_id = :a ORDER BY id LIMIT 1"),
                       {"a": current["id"]}).scalar()
    return key or overrides.asset_key(current["source_key"], current["name"], current["postcode"])


def _keep_as_overrides(conn, current, before, changed, actor, reason):
    key = _row_key(conn, current)
    bases = dict(conn.execute(text(
        "SELECT field, base FROM asset_overrides WHERE register = :r AND row_key = :k AND revoked_at IS NULL"),
        {"r": current["register"], "k": key}).all())
    for field, value in changed.items():
        overrides.put(conn, register=current["register"], row_key=key, asset_id=current["id"], field=field,
                      value=value, base=bases.get(field, before[field]), actor=actor, reason=reason)
