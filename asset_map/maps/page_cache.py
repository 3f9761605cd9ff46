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

In front of the table, each web process keeps the pages it served in memory (``ProcessPages``): a hit there costs no
query at all, which is what a page read far more often than anything on it changes should cost. Those copies are
checked against the store at most every ``recheck_s`` (one statement: the change stamps, and which of the kept
assets the role may still see), and at once after any write this process made; so a change made by another process
is served stale for at most ``recheck_s``.
"""

import hashlib
import json
import random
import re
import struct
import threading
import time
import zlib
from collections import OrderedDict
from pathlib import Path

from sqlalchemy import text

from asset_map.errors import NotFound
from asset_map.store import change_stamps
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


# What every kept page depends on besides its own asset: the deployment, the newest change of any asset and of
# reference data (the database triggers of migration 0015 write those for every statement that changes them, so a
# nearby asset's change or a new need decile is seen) and the street networks loaded.
_STAMP = (f"concat_ws(':', CAST(:d AS text), {change_stamps.newest('assets')}, {change_stamps.newest('reference')}, "
          "(SELECT extract(epoch FROM max(loaded_at)) FROM network_loads))")


def _visible(role):
    """The asset ``a`` is one ``role`` may see on its page (``asset_map.store.assets.visibility_condition``, and
    not withdrawn below officer)."""
    condition, params = visibility_condition(role, "a")
    if role_rank(role) < role_rank("officer"):
        condition += " AND a.withdrawn_at IS NULL"
    return condition, params


def lookup(engine, asset_id, *, role, deployment):
    """(stamp, html or None): the page kept for ``role`` if still current. NotFound when there is no such asset or
    the role may not see it, whatever is kept."""
    condition, params = _visible(role)
    sql = (f"WITH s AS (SELECT a.id, concat_ws(':', {_STAMP}, a.version) AS stamp "
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


def holed(html, nonce):
    """A page as it is kept: this response's nonce replaced by ``NONCE_HOLE``."""
    return html.replace(nonce, NONCE_HOLE) if nonce else html


def _check_role(role):
    if role not in ROLES:
        msg = f"Pages of role {role!r} are not kept."
        raise ValueError(msg)


def keep(engine, asset_id, *, role, stamp, html):
    """Keep a page rendered for ``role`` (``holed``) under the stamp ``lookup`` gave before it was made (data read
    after the stamp is at least as new, so a page is never kept under a newer stamp than its data)."""
    _check_role(role)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO asset_page_cache (asset_id, role, stamp, html) VALUES (:a, :r, :s, :h) "
            "ON CONFLICT (asset_id, role) DO UPDATE SET stamp = EXCLUDED.stamp, html = EXCLUDED.html, at = now()"),
            {"a": int(asset_id), "r": role, "s": stamp, "h": html})
        if random.randrange(_PURGE_EVERY) == 0:
            conn.execute(text("DELETE FROM asset_page_cache "
                              "WHERE at < now() - make_interval(secs => CAST(:ttl AS integer))"), {"ttl": TTL_S})


class Page:
    """A kept page (``holed``) ready to serve with a response's nonce, as text or gzip-compressed. It is compressed
    once, in parts that end at each nonce (a full flush: byte-aligned, nothing refers back past it), so a
    response's gzip body is those parts with its nonce between them as stored blocks, not a new compression of
    the whole page."""

    __slots__ = ("at", "_parts", "_deflated", "weight")

    def __init__(self, html, at=0.0):
        self.at = at
        self._parts = html.encode("utf-8").split(NONCE_HOLE.encode())
        deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)   # raw deflate: the gzip frame is ours
        self._deflated = [deflate.compress(p) + deflate.flush(zlib.Z_FULL_FLUSH) for p in self._parts[:-1]]
        self._deflated.append(deflate.compress(self._parts[-1]) + deflate.flush())
        self.weight = sum(map(len, self._parts)) + sum(map(len, self._deflated))

    def served(self, nonce):
        """The page's bytes (UTF-8) with ``nonce``."""
        return nonce.encode().join(self._parts)

    def gzipped(self, nonce):
        """``served(nonce)`` as a gzip member (RFC 1952)."""
        raw = nonce.encode()
        stored = b"\x00" + struct.pack("<HH", len(raw), len(raw) ^ 0xFFFF) + raw   # not final, no compression
        data = raw.join(self._parts)
        return (_GZIP_HEADER + stored.join(self._deflated)
                + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF))


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"   # deflate, no flags, no time, unknown OS


class ProcessPages:
    """Kept pages (``holed``) in this process's memory, in front of the table: a hit costs no query. Bounded in
    bytes, least recently used out first, each page dropped ``TTL_S`` after it was kept (its "checked N months ago"
    ages with the calendar).

    ``stamp(engine, deployment)`` gives the stamp under which pages are served and kept now. It is read from the
    store at most every ``recheck_s`` seconds, and again right after ``forget()`` (a write by this process), in one
    statement that also asks which of the kept assets each role may still see: a changed stamp drops every page,
    and an asset its role may no longer see is dropped even when no stamp moved (a write with triggers off).
    The stamp is read *before* a page's data, so a page can be newer than its stamp but never older."""

    def __init__(self, capacity, *, recheck_s=1.0, clock=time.monotonic):
        """At most ``capacity`` bytes of pages (0: none kept, no query made)."""
        self.capacity = capacity
        self._recheck = change_stamps.Recheck(recheck_s, clock=clock)
        self._clock = clock
        self._pages = OrderedDict()   # (asset_id, role) -> Page
        self._weight = 0
        self._stamp = None
        self._lock = threading.Lock()

    def stamp(self, engine, deployment):
        if not self.capacity:
            return None
        token = self._recheck.due()
        with self._lock:
            if token is None:
                return self._stamp
            kept = {role: [a for a, r in self._pages if r == role] for role in ROLES}
        stamp, visible = _check(engine, deployment, kept)
        with self._lock:
            if stamp != self._stamp:
                self._pages.clear()
                self._weight = 0
            else:
                for role, ids in kept.items():
                    for asset_id in set(ids) - visible[role]:
                        self._drop((asset_id, role))
            self._stamp = stamp
        self._recheck.checked(token)
        return stamp

    def forget(self):
        """This process has written to the store: the next ``stamp`` reads it again."""
        self._recheck.forget()

    def get(self, asset_id, role, stamp):
        """The Page kept for ``role`` under ``stamp``, or None."""
        key = (int(asset_id), role)
        with self._lock:
            page = self._pages.get(key)
            if page is None or stamp is None or stamp != self._stamp:
                return None
            if self._clock() - page.at > TTL_S:
                self._drop(key)
                return None
            self._pages.move_to_end(key)
            return page

    def put(self, asset_id, role, stamp, html):
        """The Page of ``html`` (``holed``), kept when made after ``stamp`` was read and the stamp has not moved on
        since."""
        _check_role(role)
        key = (int(asset_id), role)
        page = Page(html, self._clock())
        with self._lock:
            if stamp is None or stamp != self._stamp or page.weight > self.capacity // 4:
                return page
            self._drop(key)
            self._pages[key] = page
            self._weight += page.weight
            while self._weight > self.capacity:
                self._drop(next(iter(self._pages)))
        return page

    def _drop(self, key):
        page = self._pages.pop(key, None)
        if page is not None:
            self._weight -= page.weight


def _check(engine, deployment, kept):
    """(stamp, {role: ids among ``kept[role]`` the role may still see}) in one statement."""
    columns, params = [], {"d": deployment}
    for i, role in enumerate(kept):
        condition, role_params = _visible(role)
        params.update(role_params)
        params[f"ids_{i}"] = kept[role]
        columns.append(f"(SELECT COALESCE(array_agg(a.id), '{{}}') FROM assets a "
                       f"WHERE a.id = ANY(CAST(:ids_{i} AS bigint[])) AND {condition})")
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {', '.join([_STAMP] + columns)}"), params).one()
    return row[0], {role: set(row[i + 1]) for i, role in enumerate(kept)}
