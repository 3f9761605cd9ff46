"""OGC API - Features Part 4 (create, replace, update, delete) on the asset collections, through the one edit path
(``asset_map.registers.edits``): the importer's validation, geocoding and area assignment, the history, the audit
log and the privacy rule of who may change what. Nothing here knows Flask.

A feature is a GeoJSON Feature in CRS84: a Point geometry (or none, when a postcode or UPRN places it) and
properties named like the collection's columns. Derived columns (district and LSOA codes, register, updated_at)
may be sent back as they were read (QGIS sends whole features) but not changed. The ETag of a feature is its
version; ``If-Match`` with an older one is refused with 412 and nothing is written.
"""

import json
import math
import re

from sqlalchemy import text

from asset_map.api.geojson import properties_sql
from asset_map.api.ogc import CRS84
from asset_map.errors import AssetMapError, InputError, NotFound
from asset_map.registers import edits
from asset_map.store.assets import AssetFilter

WRITABLE = ("tier", "category", "name", "description", "offers", "address", "postcode", "uprn", "email", "phone",
            "url", "status", "last_verified", "visibility", "consent")
CRS_OK = {None, "", CRS84, f"<{CRS84}>", "http://www.opengis.net/def/crs/EPSG/0/4326",
          "<http://www.opengis.net/def/crs/EPSG/0/4326>", "EPSG:4326", "OGC:CRS84"}
MAX_BODY = 1024 * 1024
_ETAG = re.compile(r'^(?:W/)?"v([0-9]{1,12})"$')


class PreconditionFailed(AssetMapError):
    """If-Match names a version of the feature that is no longer the current one."""

    status = 412


class NotAllowed(AssetMapError):
    status = 405


def etag(version):
    return f'"v{int(version)}"'


def _check_layer(layer):
    if layer.kind != "assets":
        msg = f"Collection '{layer.id}' cannot be edited: only asset collections can."
        raise NotAllowed(msg)


def _version(if_match, current):
    """The version the client read: from If-Match, or the current one when it sends none (last write wins)."""
    if if_match in (None, "", "*"):
        return current
    tags = [t.strip() for t in str(if_match).split(",")]
    versions = [int(m.group(1)) for m in (_ETAG.match(t) for t in tags) if m]
    if not versions:
        msg = f"If-Match {str(if_match)[:60]!r} is not an ETag of this feature (they look like \"v3\")."
        raise PreconditionFailed(msg)
    if current not in versions:
        msg = (f"The feature has changed since you read it (now version {current}, you sent If-Match "
               f"{str(if_match)[:60]}). Nothing was saved: read it again, then make your change.")
        raise PreconditionFailed(msg)
    return current


def parse_body(raw, content_crs=None):
    """The request body as a GeoJSON Feature dict; a clear 400 otherwise."""
    if content_crs not in CRS_OK:
        msg = f"Content-Crs {str(content_crs)[:80]!r}: features are written in {CRS84} (lon/lat) only."
        raise InputError(msg)
    if raw is None or len(raw) == 0:
        raise InputError("The request has no body: send a GeoJSON Feature.")
    if len(raw) > MAX_BODY:
        raise InputError(f"The body is larger than {MAX_BODY // 1024} KB; send one feature at a time.")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise InputError(f"The body is not JSON: {str(err)[:120]}.") from err
    if not isinstance(doc, dict) or doc.get("type") != "Feature":
        raise InputError("The body must be a GeoJSON Feature ({\"type\": \"Feature\", ...}).")
    crs = doc.get("crs")
    if crs is not None:
        name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else crs
        if name not in CRS_OK and name != "urn:ogc:def:crs:OGC:1.3:CRS84":
            raise InputError(f"The feature's crs {str(name)[:80]!r} is not supported: send lon/lat in {CRS84}.")
    if not isinstance(doc.get("properties") or {}, dict):
        raise InputError("The feature's properties must be an object.")
    return doc


def _point(geometry):
    if geometry is None:
        return {}
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise InputError(f"geometry: an asset is a Point, not {str(kind)[:30]}.")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or len(coords) not in (2, 3) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in coords):
        raise InputError("geometry: a Point's coordinates are [lon, lat] numbers.")
    lon, lat = coords[0], coords[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"geometry: ({lon}, {lat}) is not lon/lat in {CRS84}; was another CRS sent?")
    return {"lon": repr(float(lon)), "lat": repr(float(lat))}


def _text(name, value):
    if value is None:
        return ""
    if name == "offers":
        if isinstance(value, list):
            return "; ".join(str(v) for v in value if v is not None)
        return str(value)
    if name == "consent" and isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        raise InputError(f"{name}: expected text, not {type(value).__name__}.")
    return str(value)


def _fields(layer, doc, current=None):
    """EDITABLE text fields from the feature; unknown properties and changed derived ones are 400s."""
    columns = {c.name: c for c in layer.columns}
    out = {}
    for name, value in (doc.get("properties") or {}).items():
        if name in WRITABLE:
            out[name] = _text(name, value)
        elif name in columns:
            if current is None or _same(current["_read"].get(name), value):
                continue
            msg = f"Property {name!r} is derived by asset-map (from the point or the register); it cannot be set."
            raise InputError(msg)
        else:
            msg = (f"Unknown property {str(name)[:40]!r} for collection '{layer.id}'. Writable: "
                   f"{', '.join(WRITABLE)}.")
            raise InputError(msg)
    out.update(_point(doc.get("geometry")))
    return out


def _same(read, sent):
    """A derived value sent back as it was read (timestamps to the second: clients may reformat them)."""
    if read in (None, "") or sent in (None, ""):
        return read in (None, "") and sent in (None, "")
    return read == sent or str(read)[:19] == str(sent)[:19]


def _tier_of(layer, fields):
    """A feature written to a tier's collection is of that tier."""
    if layer.tier and len(layer.tier) == 1:
        if fields.get("tier") not in (None, "", layer.tier[0]):
            msg = f"tier: collection '{layer.id}' holds {layer.tier[0]}s, not {fields['tier']}s."
            raise InputError(msg)
        fields["tier"] = layer.tier[0]
    return fields


def _current(engine, layer, feature_id, role):
    """The asset behind ``feature_id`` if it is in this collection as ``role`` sees it; NotFound otherwise (a forged
    or hidden id looks like a missing one)."""
    missing = f"There is no feature {str(feature_id)[:40]!r} in '{layer.id}'."
    if not str(feature_id).isdigit() or len(str(feature_id)) > 18:
        raise NotFound(missing)
    source, params = layer.source(AssetFilter(status=("open", "temporarily closed", "closed")), role=role,
                                  conditions=["g.id = :fid"], params={"fid": int(feature_id)})
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT g.id, {properties_sql(layer)} {source}"), params).first()
        if row is None:
            raise NotFound(missing)
        current = edits.read(conn, row[0])
    # The properties as a client read them: a derived one sent back unchanged is accepted.
    current["_read"] = row[1]
    return current


def _check_id(doc, feature_id):
    sent = doc.get("id")
    if sent is not None and str(sent) != str(feature_id):
        msg = f"The feature's id {str(sent)[:40]!r} is not the one in the address ({feature_id}): ids cannot change."
        raise InputError(msg)


def create(engine, layer, doc, *, role, actor):
    """POST: a new asset; returns (id, version, warnings)."""
    _check_layer(layer)
    if doc.get("id") is not None:
        raise InputError("A new feature has no id: asset-map assigns it (leave 'id' out).")
    fields = _tier_of(layer, _fields(layer, doc))
    asset_id, warnings = edits.create_asset(engine, fields, actor=actor, role=role,
                                            reason="Created through the OGC API")
    with engine.connect() as conn:
        version = edits.read(conn, asset_id)["version"]
    return asset_id, version, warnings


def replace(engine, layer, feature_id, doc, *, role, actor, if_match=None):
    """PUT: the feature as sent; writable properties it leaves out are emptied. Returns (version, warnings)."""
    _check_layer(layer)
    current = _current(engine, layer, feature_id, role)
    _check_id(doc, feature_id)
    fields = _fields(layer, doc, current)
    # Only what the collection shows is replaced: a field the client never read (visibility, consent, UPRN) keeps
    # its value, so reading and writing back a restricted asset cannot make it public.
    shown = {c.name for c in layer.columns}
    full = {f: "" for f in WRITABLE if f in shown} | fields
    if "lon" not in fields:
        full["lon"] = full["lat"] = ""
    full["tier"] = full.get("tier") or current["tier"]
    return _update(engine, layer, current, _tier_of(layer, full), role, actor, if_match)


def update(engine, layer, feature_id, doc, *, role, actor, if_match=None):
    """PATCH: only the properties sent (and the point, if a geometry is sent). Returns (version, warnings)."""
    _check_layer(layer)
    current = _current(engine, layer, feature_id, role)
    _check_id(doc, feature_id)
    fields = _fields(layer, doc, current)
    if not fields:
        raise InputError("Nothing to change: send the properties (or geometry) to change.")
    return _update(engine, layer, current, _tier_of(layer, fields) if "tier" in fields else fields, role, actor,
                   if_match)


def _update(engine, layer, current, fields, role, actor, if_match):
    version = _version(if_match, current["version"])
    try:
        return edits.update_asset(engine, current["id"], fields, version=version, actor=actor, role=role,
                                  reason="Edited through the OGC API")
    except edits.StaleEdit as err:
        # Changed between our read and the edit's lock: the client's version is stale all the same.
        raise PreconditionFailed(err.user_message) from err


def delete(engine, layer, feature_id, *, role, actor, if_match=None):
    """DELETE: the asset is withdrawn (kept with its history, hidden everywhere), never erased."""
    _check_layer(layer)
    current = _current(engine, layer, feature_id, role)
    version = _version(if_match, current["version"])
    try:
        return edits.withdraw_asset(engine, current["id"], version=version, actor=actor, role=role,
                                    reason="Deleted through the OGC API")
    except edits.StaleEdit as err:
        raise PreconditionFailed(err.user_message) from err


def current_version(engine, feature_id):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version FROM assets WHERE id = :i"), {"i": int(feature_id)}).scalar()
