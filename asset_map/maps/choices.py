"""What the filter form and the layer control offer: districts, and the tiers, categories and offers present in the
store as ``role`` may see them (so the public form never lists a category only individuals have).

Counting categories and offers reads every asset (about 0.1 s at 50,000, seconds at a million), so the answers are
kept until the assets change: the change stamp that database triggers move on every write to assets (store.change_stamps,
migration 0015), withdrawals and deletions included. CACHE_SECONDS is only a safety net.
"""

import threading
import time

from sqlalchemy import text

from asset_map.store import change_stamps
from asset_map.store.assets import AssetFilter
from asset_map.vocabulary import STATUSES

CACHE_SECONDS = 3600
_CACHE = {}
_LOCK = threading.Lock()


def _assets_version(conn):
    return change_stamps.stamps(conn)["assets"]


def _cached(engine, name, role, compute, version=None):
    """``version``: the assets' change stamp when the caller has read it already."""
    with engine.connect() as conn:
        if version is None:
            version = _assets_version(conn)
        key = (str(engine.url), name, role)
        now = time.monotonic()
        with _LOCK:
            hit = _CACHE.get(key)
        if hit and hit[0] == version and now - hit[1] < CACHE_SECONDS:
            return hit[2]
        value = compute(conn)
    with _LOCK:
        _CACHE[key] = (version, now, value)
    return value


def districts(engine):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT code, name FROM districts ORDER BY name"))]


def categories(engine, *, role="public", version=None):
    """[(tier, category, assets)] of all non-withdrawn assets ``role`` may see, whatever their status."""
    where, params = AssetFilter(status=STATUSES).where(role=role)
    sql = f"SELECT a.tier, a.category, count(*) FROM assets a WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2"
    return _cached(engine, "categories", role, lambda conn: [tuple(r) for r in conn.execute(text(sql), params)],
                   version)


def offers(engine, *, role="public"):
    where, params = AssetFilter(status=STATUSES).where(role=role)
    sql = f"SELECT DISTINCT o FROM assets a, unnest(a.offers) AS o WHERE {where} ORDER BY o"
    return _cached(engine, "offers", role, lambda conn: [r[0] for r in conn.execute(text(sql), params)])
