"""Change stamps for caches of derived data (tiles): ``tile_changes`` (migration 0015) gets a row whenever a statement
writes reference data or assets, from database triggers, so every writer is covered. ``stamps`` reads the newest row
per family; a cache entry made under older stamps is stale."""

import threading
import time
from collections import OrderedDict

from sqlalchemy import text

FAMILIES = ("reference", "assets")
# Suggestions and offers waiting for moderators (migration 0024): a family of its own, so the public's suggestions
# do not make the map's tiles and the feed's answers stale.
COMMUNITY = "community"


def newest(family):
    """SQL for the newest change id of ``family`` (one of ours, so written in as it is), for statements that read
    a stamp together with what depends on it."""
    return f"(SELECT max(id) FROM tile_changes WHERE family = '{family}')"


def _sql(families):
    # Constant (the families are ours), so it is sent as it is: binding and compiling cost three times the round
    # trip on a path every kept answer takes.
    return f"SELECT {', '.join(f'{f!r}, {newest(f)}' for f in families)}"


_SQL = {FAMILIES: _sql(FAMILIES)}


def stamps(conn, families=FAMILIES):
    """{family: newest change id}; one index probe per family."""
    sql = _SQL.get(families) or _SQL.setdefault(families, _sql(families))
    row = conn.exec_driver_sql(sql).one()
    return {row[i]: int(row[i + 1] or 0) for i in range(0, len(row), 2)}


def record(conn, family):
    """For writes no trigger sees (attaching a partition that was filled while detached)."""
    conn.execute(text("INSERT INTO tile_changes (family) VALUES (:f)"), {"f": family})


class StampedCache:
    """Answers derived from the store, kept in this process while the change stamps they were made under are still
    the newest: a hit costs the one stamps query, and any write to assets or reference data (every writer moves a
    stamp through triggers) makes every older entry unreachable. Bounded, least recently used out first.

    The stamps are read *before* the answer is computed, so an answer can be newer than its stamps but never older:
    a write that lands in between moves the stamp and the next request recomputes."""

    def __init__(self, capacity, weigh=len, families=FAMILIES):
        """At most ``capacity`` in all, each value weighing ``weigh(value)`` (bytes by default); the answers
        depend on the data of ``families``."""
        self.capacity = capacity
        self.weigh = weigh
        self.families = tuple(families)
        self._entries = OrderedDict()    # (stamps, key) -> value
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, engine, key, compute, *, now=None):
        """The value for ``key`` under the store's current stamps; ``compute()`` makes it on a miss. ``now``: the
        stamps (every family) when the caller has read them already, this request."""
        if now is None:
            with engine.connect() as conn:
                now = stamps(conn, self.families)
        full = (str(engine.url), tuple(sorted((f, now[f]) for f in self.families)), key)
        with self._lock:
            value = self._entries.get(full)
            if value is not None:
                self._entries.move_to_end(full)
                return value
        value = compute()
        if self.weigh(value) <= self.capacity // 4:  # one huge answer must not flush all the others
            with self._lock:
                if full not in self._entries:
                    self._entries[full] = value
                    self._weight += self.weigh(value)
                while self._weight > self.capacity:
                    _, old = self._entries.popitem(last=False)
                    self._weight -= self.weigh(old)
        return value


class Recheck:
    """When a process reads the stamps again for what it keeps: at most every ``every_s`` seconds, and at once after
    ``forget()`` (a write by this process). A read begun before a ``forget()`` may predate that write: it is used
    once, not trusted after."""

    def __init__(self, every_s, *, clock=time.monotonic):
        self.every_s = every_s
        self._clock = clock
        self._at = None           # when the last trusted read began; None: read on the next request
        self._forgotten = 0       # forget() calls so far
        self._lock = threading.Lock()

    def due(self):
        """None while the last read is fresh; else a token to hand to ``checked`` when the new read is done."""
        now = self._clock()
        with self._lock:
            if self._at is not None and now - self._at < self.every_s:
                return None
            return now, self._forgotten

    def checked(self, token):
        now, forgotten = token
        with self._lock:
            if forgotten == self._forgotten:
                self._at = now

    def forget(self):
        with self._lock:
            self._at = None
            self._forgotten += 1
