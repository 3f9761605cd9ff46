"""Rate limits shared by every server process: the ``limits`` storage on PostgreSQL (asset_map.store.rate_limits).
Two storages (as two gunicorn workers have) count against one limit; with memory storage, the protection off, each
counts alone and the limit is as many times looser as there are processes."""

import threading
import time

from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter
from sqlalchemy import create_engine, text

from asset_map.store import rate_limits
from tests.community_data import community_engine, community_template, community_url  # noqa: F401
from tests.conftest import make_app

TAMWORTH_PC = "B79 7DN"
LIMIT = parse("5 per hour")  # hours, not minutes: a slow machine must not see the window slide mid-test


def _workers(url, n=2):
    """``n`` storages with their own engines (their own connections), as separate processes have."""
    return [storage_from_string(f"{rate_limits.SCHEME}://", engine=create_engine(url)) for _ in range(n)]


def _allowed(storages, strategy, hits):
    limiters = [strategy(s) for s in storages]
    return sum(limiters[i % len(limiters)].hit(LIMIT, "127.0.0.1") for i in range(hits))


def test_two_workers_share_one_limit_and_memory_does_not(community_url, community_engine):
    for strategy in (SlidingWindowCounterRateLimiter, FixedWindowRateLimiter):
        workers = _workers(community_url)
        workers[0].reset()
        assert _allowed(workers, strategy, 20) == 5, strategy
    # The protection off: each worker's memory counts alone, so two workers let twice the limit through.
    assert _allowed([MemoryStorage(), MemoryStorage()], SlidingWindowCounterRateLimiter, 20) == 10


def test_concurrent_hits_from_many_connections_never_pass_the_limit(community_url, community_engine):
    workers = _workers(community_url, 4)
    limiters = [SlidingWindowCounterRateLimiter(s) for s in workers]
    item, results, start = parse("10 per hour"), [], threading.Barrier(16)

    def hit(i):
        start.wait()
        results.append(limiters[i % 4].hit(item, "10.0.0.1"))

    threads = [threading.Thread(target=hit, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 10 and len(results) == 16


def test_window_stats_and_clear(community_url, community_engine):
    [storage] = _workers(community_url, 1)
    limiter = SlidingWindowCounterRateLimiter(storage)
    for _ in range(3):
        assert limiter.hit(LIMIT, "a")
    assert limiter.get_window_stats(LIMIT, "a").remaining == 2 and limiter.test(LIMIT, "a")
    limiter.clear(LIMIT, "a")
    assert limiter.get_window_stats(LIMIT, "a").remaining == 5
    fixed = FixedWindowRateLimiter(storage)
    fixed.hit(LIMIT, "b")
    assert storage.get(LIMIT.key_for("b")) == 1 and storage.get_expiry(LIMIT.key_for("b")) > time.time()
    assert storage.check()


def test_expired_rows_are_swept(community_url, community_engine):
    [storage] = _workers(community_url, 1)
    with community_engine.begin() as conn:
        conn.execute(text("INSERT INTO rate_limits SELECT 'old/' || i, :t, 1 FROM generate_series(1, 100) i"),
                     {"t": time.time() - 3600})
    storage.incr("fresh", 60)
    with community_engine.connect() as conn:
        keys = [k for (k,) in conn.execute(text("SELECT key FROM rate_limits"))]
    assert keys == ["fresh"]


def _post(app, n, addr="10.1.1.1"):
    client = app.test_client()
    page = client.get("/suggest").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    return [client.post("/suggest", data={"csrf_token": token, "name": f"Club {i}", "postcode": TAMWORTH_PC,
                                          "category": "youth_club"}, environ_base={"REMOTE_ADDR": addr}).status_code
            for i in range(n)]


def test_two_app_instances_share_the_limit_of_an_address(community_url, community_engine, tmp_path):
    first = make_app(community_url, tmp_path / "a", PUBLIC_WRITE_LIMIT="5 per hour")
    second = make_app(community_url, tmp_path / "b", PUBLIC_WRITE_LIMIT="5 per hour")
    assert _post(first, 3) == [302] * 3
    assert _post(second, 4) == [302, 302, 429, 429]
    # The protection off (memory storage): the second instance knows nothing of the first's three.
    first = make_app(community_url, tmp_path / "c", PUBLIC_WRITE_LIMIT="5 per hour", RATE_LIMIT_STORAGE="memory://")
    second = make_app(community_url, tmp_path / "d", PUBLIC_WRITE_LIMIT="5 per hour", RATE_LIMIT_STORAGE="memory://")
    assert _post(first, 3, "10.2.2.2") == [302] * 3
    assert _post(second, 4, "10.2.2.2") == [302] * 4
