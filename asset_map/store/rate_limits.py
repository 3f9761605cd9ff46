"""Rate-limit counts in PostgreSQL, for the ``limits`` library (and so Flask-Limiter): every server process counts
against one limit per address. With memory storage each gunicorn worker kept its own counts, and the effective
limit was the setting times ``WORKERS``.

The storage scheme is ``asset-map-database://``: the app's own database (``DATABASE_URL`` or the project's cluster);
the engine is made on first use, so building an app connects to nothing. Counters live in the UNLOGGED table
``rate_limits`` (migration 0020): one row per key, where the sliding-window-counter strategy puts the window's number
in the key, so a hit is one atomic upsert. Expired rows are deleted now and then by whichever request comes, at
most once a minute per process, through the index on ``expires_at``.

Supports the fixed-window and sliding-window-counter strategies (the moving window would need a row per hit).
Nothing imports Flask.
"""

import threading
import time
from math import floor

from limits.storage import Storage
from limits.storage.base import SlidingWindowCounterSupport, TimestampedSlidingWindow
from sqlalchemy import exc, text

SCHEME = "asset-map-database"
SWEEP_EVERY_S = 60
# The counter's new value; a row past its expiry starts again at ``amount`` with a new expiry (the fixed window's
# semantics, as the library's memory and Redis storages have them).
_INCR = text(
    "INSERT INTO rate_limits AS r (key, expires_at, count) VALUES (:k, :now + :exp, :n) ON CONFLICT (key) DO UPDATE "
    "SET count = CASE WHEN r.expires_at <= :now THEN :n ELSE r.count + :n END, "
    "expires_at = CASE WHEN r.expires_at <= :now THEN :now + :exp ELSE r.expires_at END RETURNING count")
_GET = text("SELECT count, expires_at FROM rate_limits WHERE key = :k AND expires_at > :now")


class DatabaseStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """``limits`` storage on the app's PostgreSQL. ``engine`` is an engine or a callable returning one (called on
    first use)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri=None, wrap_exceptions=False, engine=None, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if engine is None:
            msg = f"{SCHEME}:// needs the app's database engine (storage option 'engine')."
            raise ValueError(msg)
        self._engine_or_factory = engine
        self._engine = None
        self._swept = 0.0
        self._lock = threading.Lock()

    @property
    def base_exceptions(self):
        return exc.SQLAlchemyError

    @property
    def engine(self):
        if self._engine is None:
            source = self._engine_or_factory
            self._engine = source() if callable(source) and not hasattr(source, "connect") else source
        return self._engine

    def _sweep(self, conn, now):
        """Delete rows expired a while ago, at most once a minute per process."""
        with self._lock:
            if now - self._swept < SWEEP_EVERY_S:
                return
            self._swept = now
        conn.execute(text("DELETE FROM rate_limits WHERE expires_at < :t"), {"t": now - SWEEP_EVERY_S})

    def _incr(self, conn, key, expiry, amount, now):
        self._sweep(conn, now)
        return conn.execute(_INCR, {"k": key, "now": now, "exp": float(expiry), "n": int(amount)}).scalar_one()

    def incr(self, key, expiry, amount=1):
        with self.engine.begin() as conn:
            return self._incr(conn, key, expiry, amount, time.time())

    def get(self, key):
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"k": key, "now": time.time()}).first()
        return row.count if row else 0

    def get_expiry(self, key):
        now = time.time()
        with self.engine.connect() as conn:
            row = conn.execute(_GET, {"k": key, "now": now}).first()
        return row.expires_at if row else now

    def check(self):
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1 FROM rate_limits LIMIT 1"))
        except exc.SQLAlchemyError:
            return False
        return True

    def reset(self):
        with self.engine.begin() as conn:
            return conn.execute(text("DELETE FROM rate_limits")).rowcount

    def clear(self, key):
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM rate_limits WHERE key = :k"), {"k": key})

    # -- sliding window counter: the previous and current window's counters, weighted --------------------------
    def _window(self, conn, key, expiry, now):
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        counts = dict(conn.execute(text("SELECT key, count FROM rate_limits WHERE key IN (:p, :c) "
                                        "AND expires_at > :now"),
                                   {"p": previous_key, "c": current_key, "now": now}).all())
        previous, current = counts.get(previous_key, 0), counts.get(current_key, 0)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl, current_key

    def acquire_sliding_window_entry(self, key, limit, expiry, amount=1):
        if amount > limit:
            return False
        now = time.time()
        with self.engine.begin() as conn:
            # One transaction per key at a time, across every process: read, decide and count as one step.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})
            previous, previous_ttl, current, _ttl, current_key = self._window(conn, key, expiry, now)
            if floor(previous * previous_ttl / expiry + current) + amount > limit:
                return False
            # A window's counter lives for two windows: it is the "previous" one during the next.
            self._incr(conn, current_key, 2 * expiry, amount, now)
        return True

    def get_sliding_window(self, key, expiry):
        with self.engine.connect() as conn:
            return self._window(conn, key, expiry, time.time())[:4]

    def clear_sliding_window(self, key, expiry):
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM rate_limits WHERE key IN (:p, :c)"), {"p": previous_key, "c": current_key})
