"""Stable, reversible UUIDs for what an asset becomes in an ORUK feed.

HSDS ids are UUIDs. An asset's organisation, services, location and service-at-locations get ids that carry the
asset's database id and the service's ordinal, so ``/services/{id}`` finds its row by primary key with no lookup
table, and the ids stay the same across requests and re-imports (they change only if the asset is deleted).
Taxonomies and their terms are data: their ids are UUID5 of a name, stable while the name is.

Layout: ``a55e7000-KKKK-4NNN-8000-AAAAAAAAAAAA`` (KKKK kind, NNN ordinal, AAAA... asset id; version 4 and the RFC 4122
variant, so validators that check the format accept them).
"""

import re
import uuid

KINDS = {"organization": 1, "service": 2, "location": 3, "service_at_location": 4, "address": 5}
_PREFIX = "a55e7000"
_PATTERN = re.compile(r"^a55e7000-([0-9a-f]{4})-4([0-9a-f]{3})-8000-([0-9a-f]{12})$")
_NAMESPACE = uuid.UUID("6f1c2d7e-4b1a-5c3e-9d2f-0a55e7000000")
MAX_ORDINAL = 0xFFF


def asset_uuid(kind, asset_id, ordinal=0):
    if not 0 <= ordinal <= MAX_ORDINAL:
        msg = f"ordinal {ordinal} out of range"
        raise ValueError(msg)
    return f"{_PREFIX}-{KINDS[kind]:04x}-4{ordinal:03x}-8000-{int(asset_id):012x}"


def parse(kind, value):
    """(asset id, ordinal) of one of our ids of ``kind``, or None for anything else (a foreign or forged id)."""
    match = _PATTERN.match(str(value).lower())
    if not match or int(match.group(1), 16) != KINDS[kind]:
        return None
    return int(match.group(3), 16), int(match.group(2), 16)


def named_uuid(*parts):
    """The UUID5 of a vocabulary item: ``named_uuid("taxonomy", "asset-map-categories")``."""
    return str(uuid.uuid5(_NAMESPACE, ":".join(str(p) for p in parts)))
