"""api.kept without a database: the rate cap's pacing decisions, and following a file as its maker writes it."""

import threading

import pytest

from asset_map.api import kept


def test_pause_keeps_a_download_to_the_cap_after_its_burst():
    mb = 1e6
    assert kept.pause(10 * mb, 0.0, 0) == 0  # no cap
    assert kept.pause(mb, 0.0, 10 * mb, burst=mb) == 0  # the burst goes at once
    assert kept.pause(11 * mb, 0.0, 10 * mb, burst=mb) == pytest.approx(1.0)  # 10 MB more at 10 MB/s: wait 1 s
    assert kept.pause(11 * mb, 0.4, 10 * mb, burst=mb) == pytest.approx(0.6)  # less the time already taken
    assert kept.pause(11 * mb, 5.0, 10 * mb, burst=mb) == 0  # a slow client is never held back further


def test_paced_sends_at_the_cap_on_a_clock_of_its_own():
    """100 chunks of 1,000 bytes at 10,000 bytes/s after a 1,000-byte burst: the last chunk starts at 9.8 s (the
    98,000 bytes after the burst before it took that long), each wait before a chunk."""
    now, slept = [0.0], []

    def sleep(s):
        slept.append(s)
        now[0] += s

    out = list(kept.paced((b"x" * 1000 for _ in range(100)), 10_000, burst=1000, clock=lambda: now[0], sleep=sleep))
    assert len(out) == 100 and sum(map(len, out)) == 100_000
    assert now[0] == pytest.approx(9.8) and len(slept) == 98
    # Unlimited: no waits at all.
    slept.clear()
    assert len(list(kept.paced(iter([b"a"] * 5), 0, clock=lambda: 0.0, sleep=sleep))) == 5 and not slept


def test_a_follower_reads_the_part_file_to_the_end_once_it_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(kept, "FOLLOW_POLL_S", 0.01)
    cache = tmp_path / "exports" / "a1-r1-key.geojson"
    maker = kept.Maker.begin(cache)
    maker.gzip_thread = False
    assert kept.Maker.begin(cache) is None  # one writer at a time
    maker.write(b"one ")
    follower = kept.follow(cache)
    assert follower is not None
    got = []
    reader = threading.Thread(target=lambda: got.append(b"".join(follower)))
    reader.start()
    maker.write(b"two ")
    reader.join(0.2)
    assert reader.is_alive()  # not done while the maker is
    maker.write(b"three")
    assert maker.finish(3, True)
    reader.join(5)
    assert got == [b"one two three"] and follower.complete and follower.rows == 3
    assert cache.read_bytes() == b"one two three" and kept.follow(cache) is None  # kept: nothing to follow


def test_a_follower_of_a_file_that_is_not_kept_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(kept, "FOLLOW_POLL_S", 0.01)
    cache = tmp_path / "a1-r1-key.csv"
    maker = kept.Maker.begin(cache)
    maker.write(b"half")
    follower = kept.follow(cache)
    maker.finish(0, False)  # the maker's stream broke
    with pytest.raises(kept.FollowFailed):
        b"".join(follower)
    assert not cache.exists() and not list(tmp_path.glob("*.part"))
