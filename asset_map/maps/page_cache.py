"""Asset pages as the public sees them, kept rendered in ``asset_page_cache`` (migration 0019, unlogged) so every
web process serves a page another one made: a hit costs one statement and no template.

A kept page is used only when, in the same statement that fetches it:
- the asset is still one the role may see (``asset_map.store.assets.visibility_condition``, the rule of
  ``asset_map.privacy``; checked on every hit, so nothing a role may not see is ever served from here), and
- its stamp still matches: the asset's version, the newest change of any asset and of reference data (the database
  triggers of migration 0015 write those for every statement that changes them, so a nearby asset's change or a
  new need decile is seen), the street networks loaded, and the deployment (settings and templates).

Only pages of the anonymous role are kept (``ROLES``): signed-in pages carry forms with CSRF tokens, flash messages
and account names. Pages are dropped ``TTL_S`` after they were made.
"""

import hashlib
import json
import random
import re
from pathlib import Path

from sqlalchemy import text

from asset_map.errors import NotFound
from asset_map.store.assets import role_rank, visibility_condition

ROLES = ("public",)
TTL_S = 600
# The nonce of a page's <script> tags differs per response (its CSP header): kept pages hold this in its place.
NONCE_HOLE = "@@asset-map-csp-nonce@@"
_SECRET = re.compile(r"SECRET|PASSWORD|TOKEN|KEY|URL|DSN", re.IGNORECASE)
_PURGE_EVERY = 200   # about one write in this many also drops expired pages


def deployment_key(settings, template_dirs):
    """What else a kept page depends on: the settings and the templates' files (a new release, a new setting)."""
    mtimes = sorted((str(p), p.stat().st_mtime_ns) for d in template_dirs for p in Path(d).rglob("*.html"))
    # Secrets stay out of it (the key is stored beside the pages).
    shown = sorted((k, str(v)) for k, v in settings.items() if not _SECRET.search(k))
    blob = json.dumps([shown, mtimes])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def lookup(engine, asset_id, *, role, deployment):
    """(stamp, html or None): the page kept for ``role`` if still current. NotFound when there is no such asset or
    the role may not see it, whatever is kept."""
    condition, params = visibility_condition(role, "a")
    if role_rank(role) < role_rank("officer"):
        condition += " AND a.withdrawn_at IS NULL"
    sql = (f"WITH s AS (SELECT a.id, concat_ws(':', CAST(:d AS text), a.version, "
           f"(SELECT max(id) FROM tile_changes WHERE family = 'assets'), "
           f"(SELECT max(id) FROM tile_changes WHERE family = 'reference'), "
           f"(SELECT extract(epoch FROM max(loaded_at)) FROM network_loads)) AS stamp "
           f"FROM assets a WHERE a.id = CAST(:id AS bigint) AND {condition}) "
           f"SELECT s.stamp, c.html FROM s LEFT JOIN asset_page_cache c ON c.asset_id = s.id AND c.role = :role "
           f"AND c.stamp = s.stamp AND c.at > now() - make_interval(secs => CAST(:ttl AS integer))")
    with engine.connect() as conn:
        row = conn.execute(text(sql), {**params, "id": int(asset_id), "role": role, "d": deployment,
                                       "ttl": TTL_S}).first()
    if row is None:
        msg = f"There is no asset {asset_id}."
        raise NotFound(msg)
    return row.stamp, row.html


def keep(engine, asset_id, *, role, stamp, html, nonce):
    """Keep a page rendered for ``role`` under the stamp ``lookup`` gave before it was made (data read after the
    stamp is at least as new, so a page is never kept under a newer stamp than its data)."""
    if role not in ROLES:
        msg = f"Pages of role {role!r} are not kept."
        raise ValueError(msg)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO asset_page_cache (asset_id, role, stamp, html) VALUES (:a, :r, :s, :h) "
            "ON CONFLICT (asset_id, role) DO UPDATE SET stamp = EXCLUDED.stamp, html = EXCLUDED.html, at = now()"),
            {"a": int(asset_id), "r": role, "s": stamp, "h": html.replace(nonce, NONCE_HOLE) if nonce else html})
        if random.randrange(_PURGE_EVERY) == 0:
            conn.execute(text("DELETE FROM asset_page_cache "
                              "WHERE at < now() - make_interval(secs => CAST(:ttl AS integer))"), {"ttl": TTL_S})


def served(html, nonce):
    """A kept page with this response's nonce."""
    return html.replace(NONCE_HOLE, nonce)
