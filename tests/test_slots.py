"""Export slots: a bounded number of downloads per process, a polite 503 with Retry-After when all are taken, and
each slot given back when its stream ends (so one download after another never waits)."""

from tests.conftest import hold_slot
from tests.conftest import make_app


def test_exports_take_a_slot_and_give_it_back(db_url, tmp_path):
    app = make_app(db_url, tmp_path, EXPORT_SLOTS=1, EXPORT_WAIT_S=0)
    web = app.test_client()
    for fmt in ("geojson", "csv", "gpkg", "geojson"):
        res = web.get(f"/export/assets.{fmt}")
        assert res.status_code == 200, (fmt, res.get_data(as_text=True)[:200])
        res.get_data()
        res.close()
    held = hold_slot(app, "export")
    try:
        busy = web.get("/export/assets.geojson?q=not-made-before")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
        assert "try again in 5 seconds" in busy.get_json()["description"]
        # The map keeps answering while every export slot is taken.
        assert web.get("/api/assets.geojson").status_code == 200
    finally:
        held.release()
    assert web.get("/export/assets.geojson?q=not-made-before").status_code == 200


def test_a_stream_abandoned_halfway_gives_its_slot_back(db_url, tmp_path):
    app = make_app(db_url, tmp_path, EXPORT_SLOTS=1, EXPORT_WAIT_S=0)
    web = app.test_client()
    res = web.get("/export/assets.geojson", buffered=False)
    assert res.status_code == 200
    res.close()  # the client went away
    assert web.get("/export/assets.csv").status_code == 200


def test_a_public_download_is_kept_until_the_data_changes(db_url, engine, tmp_path):
    """The same public export again is sent from the kept file (identical bytes), in a slot like any download (it
    holds a thread while it is sent); a new asset changes the stamp, so the next download is made afresh."""
    from tests.explorer_data import add_hand_made

    add_hand_made(engine, [("k1", "Kept Hall", "organisation", "community_centre", -2.1, 52.8, {})])
    app = make_app(db_url, tmp_path, EXPORT_SLOTS=1, EXPORT_WAIT_S=0)
    web = app.test_client()
    first = web.get("/export/assets.geojson").get_data()
    kept = list((tmp_path / "exports").glob("*.geojson"))
    assert len(kept) == 1 and kept[0].read_bytes() == first
    held = hold_slot(app, "export")
    try:
        assert web.get("/export/assets.geojson").status_code == 503  # kept, but every slot is taken
        assert web.get("/export/assets.geojson?category=library").status_code == 503
    finally:
        held.release()
    with web.get("/export/assets.geojson") as again:
        assert again.status_code == 200 and again.get_data() == first
    add_hand_made(engine, [("k2", "Newer Hall", "organisation", "community_centre", -2.1, 52.8, {})])
    fresh = web.get("/export/assets.geojson").get_data()
    assert b"Newer Hall" in fresh and b"Newer Hall" not in first
    assert len(list((tmp_path / "exports").glob("*.geojson"))) == 1  # the older stamp's file is gone
