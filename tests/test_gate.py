"""web.gate: at most THREADS of a process's requests serve the map at once; a download leaves that share as soon as
it asks for an export slot, so the threads beyond THREADS (EXPORT_THREADS) are the downloads'."""

import threading
import time

from tests.conftest import hold_slot, make_app


def test_a_download_waiting_for_its_slot_does_not_hold_a_map_thread(db_url, tmp_path):
    app = make_app(db_url, tmp_path, THREADS=1, EXPORT_THREADS=1, EXPORT_SLOTS=1, EXPORT_WAIT_S=3)
    held = hold_slot(app, "export")
    statuses = []
    try:
        download = threading.Thread(
            target=lambda: statuses.append(app.test_client().get("/export/assets.geojson").status_code))
        download.start()
        time.sleep(0.5)  # the download is waiting for the slot...
        started = time.monotonic()
        assert app.test_client().get("/healthz").status_code == 200  # ...and the one map thread is free
        assert time.monotonic() - started < 2
        download.join(10)
    finally:
        held.release()
    assert statuses == [503]


def test_the_map_runs_at_most_threads_requests_at_once(db_url, tmp_path):
    from asset_map.web import gate

    app = make_app(db_url, tmp_path, THREADS=1, EXPORT_THREADS=1)
    share = app.extensions[gate.KEY]
    assert share.acquire(timeout=1)  # one map request under way
    done = []
    try:
        other = threading.Thread(target=lambda: done.append(app.test_client().get("/healthz").status_code))
        other.start()
        other.join(0.5)
        assert other.is_alive() and not done  # the second waits for the first
    finally:
        share.release()
    other.join(10)
    assert done == [200]
    assert gate.KEY not in make_app(db_url, tmp_path, EXPORT_THREADS=0).extensions  # no extra threads, no gate


def test_a_process_takes_no_more_downloads_than_its_download_threads(db_url, tmp_path):
    """EXPORT_THREADS downloads at once per process, waiting or sent; one more gets a 503 at once rather than wait
    for a slot on a thread the map needs. The thread is given back with the slot."""
    app = make_app(db_url, tmp_path, THREADS=1, EXPORT_THREADS=1, EXPORT_SLOTS=2, EXPORT_WAIT_S=3)
    web = app.test_client()
    first = app.test_client().get("/export/assets.geojson", buffered=False)  # under way, holding its thread
    statuses = []
    other = threading.Thread(target=lambda: statuses.append(web.get("/export/assets.csv").status_code))
    started = time.monotonic()
    other.start()
    other.join(10)
    assert statuses == [503] and time.monotonic() - started < 2  # told at once, though a slot was free
    first.close()
    assert web.get("/export/assets.csv").status_code == 200
